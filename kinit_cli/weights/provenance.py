"""Where each variable's values come from, and what `--check` can honestly say about them.

An initializer's theory describes the values it draws, not what training or `init_from`
made of them: judged against the theory, trained weights FAIL for being trained. So only
fresh values are held to the theory; on a run directory those are the run's initial
weights, rebuilt from its config and seed and proven the same by weights-init.json's
SHA-256; loaded values are compared with their source instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kinit_cli.model.variables import digest
from kinit_cli.weights import stats, verdict

# What a variable's values are, by kind of target.
FRESH = "initializer"
LOADED = "loaded"
TRAINED = "trained"
CHECKPOINT = "checkpoint"
SAVED = "saved"  # a .keras file: nothing says whether it was trained


@dataclass(frozen=True)
class Provenance:
    kind: str  # FRESH | LOADED | TRAINED | CHECKPOINT | SAVED
    detail: str = ""  # the source of loaded values, the epochs of trained ones

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "detail": self.detail}


def of(kind: str, weight: Any, epochs: int | None = None) -> Provenance:
    """The provenance of one variable (variables.WeightInfo) of a target of `kind`."""
    if kind == "config":
        return Provenance(LOADED, weight.loaded_from) if weight.loaded_from else Provenance(FRESH)
    if kind == "run":
        if weight.loaded_from and not weight.trainable:  # loaded into a frozen layer
            return Provenance(LOADED, weight.loaded_from)
        return Provenance(TRAINED, _epochs(epochs))
    if kind == "checkpoint":
        return Provenance(CHECKPOINT)
    return Provenance(SAVED)


def check(
    weights: Sequence[Any],
    arrays: dict[str, np.ndarray],
    report: dict[str, stats.VariableStats],
    provenance: dict[str, Provenance],
    initial: dict[str, dict[str, Any]] | None = None,
    rebuilt: dict[str, np.ndarray] | None = None,
    sources: dict[str, str] | None = None,
    unbuilt: str | None = None,
) -> dict[str, verdict.Verdict]:
    """A verdict per variable, by where its values come from.

    `report` holds the statistics (and SHA-256) already measured for each variable;
    `initial` (a run's weights-init.json entries) and `rebuilt` (the run's model built again
    from its config and seed) let a run directory's initial weights be checked; `sources`
    (path -> SHA-256 of its init_from source's values now) its loaded ones; `unbuilt`: why
    the run's model could not be rebuilt, said of each trained value that needed it.
    """
    out = {}
    for w in weights:
        origin = provenance[w.path]
        if origin.kind in (FRESH, SAVED):
            measured = report[w.path].stats.moments
            out[w.path] = _against_theory(w, arrays[w.path], measured)
        elif origin.kind == LOADED:
            out[w.path] = _loaded(w, report[w.path].stats)
        elif origin.kind == TRAINED and rebuilt is not None and initial is not None:
            out[w.path] = _initial(
                w, initial.get(w.path), rebuilt.get(w.path), (sources or {}).get(w.path)
            )
        elif origin.kind == TRAINED and unbuilt and initial and w.path in initial:
            out[w.path] = _not_checkable(
                f"{origin.kind} values ({origin.detail or 'after training'}): checking the "
                f"run's initial weights needs its model rebuilt, {unbuilt}"
            )
        else:
            out[w.path] = _not_checkable(
                f"{origin.kind} values ({origin.detail or 'after training'}): an initializer's "
                "theory describes fresh values only"
            )
    return out


def _loaded(weight: Any, measured: stats.ArrayStats) -> verdict.Verdict:
    same = weight.loaded_sha256 is not None and measured.sha256 == weight.loaded_sha256
    reason = (
        f"identical to its source {weight.loaded_from}"
        if same
        else f"differs from its source {weight.loaded_from}"
    )
    observed = {k: getattr(measured, k) for k in ("mean", "std", "min", "max")}
    return verdict.Verdict("LOADED" if same else "FAIL", None, observed, [reason])


def _initial(
    weight: Any, record: dict[str, Any] | None, fresh: np.ndarray | None, source: str | None
) -> verdict.Verdict:
    if record is None or fresh is None:
        return _not_checkable("the run recorded no initial values for this variable")
    shape = tuple(weight.shape)
    if tuple(record.get("shape", shape)) != shape or tuple(fresh.shape) != shape:
        # The model file is another model than the one the run built and recorded.
        return _not_checkable(
            f"the run's files disagree: the model file holds shape {shape}, weights-init.json "
            f"records {tuple(record.get('shape', shape))} and config.yaml builds "
            f"{tuple(fresh.shape)}; the recorded initial values are not this variable's"
        )
    if record.get("loaded_from"):
        # Loaded at the start, trained since: what can be said is whether the run started
        # from its source's values, which weights-init.json's SHA-256 records.
        same = source is not None and source == record.get("sha256")
        if same:
            return verdict.Verdict(
                "LOADED",
                None,
                {},
                [f"started identical to its source {record['loaded_from']}; trained since"],
            )
        return _not_checkable(
            f"its initial values were loaded from {record['loaded_from']} (init_from), which "
            "now holds other values or cannot be read"
        )
    if digest(fresh) != record.get("sha256"):
        return _not_checkable(
            "the initial values rebuilt from the run's config and seed differ from "
            "weights-init.json (SHA-256), so they are not the run's"
        )
    return _against_theory(weight, fresh)


def _against_theory(
    weight: Any, array: np.ndarray, measured: stats.Moments | None = None
) -> verdict.Verdict:
    """The theory check, or NO THEORY saying why no initializer is known for the variable."""
    found = verdict.check(weight.initializer, array, measured)
    why = getattr(weight, "unknown", None)
    if weight.initializer is None and why:
        return verdict.Verdict(found.status, None, found.observed, [why])
    return found


def _not_checkable(reason: str) -> verdict.Verdict:
    return verdict.Verdict("NOT CHECKABLE", None, {}, [reason])


def summary(verdicts: dict[str, verdict.Verdict]) -> dict[str, int]:
    """How many variables passed, warned, failed, and how many no theory can judge."""
    statuses = [v.status for v in verdicts.values()]
    return {
        "pass": statuses.count("PASS"),
        "warn": statuses.count("WARN"),
        "fail": statuses.count("FAIL"),
        "loaded": statuses.count("LOADED"),
        "not_checkable": statuses.count("NOT CHECKABLE") + statuses.count("NO THEORY"),
    }


def _epochs(epochs: int | None) -> str:
    if epochs is None:
        return ""
    return f"{epochs} epoch" if epochs == 1 else f"{epochs} epochs"
