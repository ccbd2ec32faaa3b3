"""`kinit inspect-weights`: the report on a target's weights (read by model.sources).

A target is a config file (the model is built, not trained: exactly what the initializers
made), a saved `.keras` model, a run directory from `kinit train` (its model.keras, with
weights-init.json for comparison), or a `.weights.h5` checkpoint inside a run directory.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from kinit_cli.errors import KinitError, UsageError
from kinit_cli.model.build import BuiltModel
from kinit_cli.model.saved import Loaded
from kinit_cli.model.sources import disowned, read, rebuild_run
from kinit_cli.model.variables import digest
from kinit_cli.registry.trust import Trust
from kinit_cli.storage import rundir
from kinit_cli.weights import provenance, stats
from kinit_cli.weights.propagation import propagate
from kinit_cli.weights.theory import Theory, theory_for
from kinit_cli.weights.verdict import Verdict


def select(
    weights: Sequence[Any], layer: str | None = None, trainable_only: bool = False
) -> list[Any]:
    """The variables whose path or one of whose layers matches the glob `layer`."""
    out = []
    for w in weights:
        if trainable_only and not w.trainable:
            continue
        if layer and not (
            fnmatch.fnmatchcase(w.path, layer)
            or any(fnmatch.fnmatchcase(n, layer) for n in w.layers)
        ):
            continue
        out.append(w)
    return out


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Per shared variable: change and cosine similarity; and who exists on one side only."""
    rows = []
    for path in [p for p in a if p in b]:
        x, y = a[path], b[path]
        row: dict[str, Any] = {"path": path, "shape": list(x.shape)}
        if x.shape != y.shape:
            row["other_shape"] = list(y.shape)
        else:
            moved = stats.change(x, y)
            row.update(change=moved.absolute, relative_change=moved.relative, cosine=moved.cosine)
        rows.append(row)
    return {
        "variables": rows,
        "only_in_target": [p for p in a if p not in b],
        "only_in_other": [p for p in b if p not in a],
    }


@dataclass(frozen=True)
class Panel:
    """One histogram of --plot: a variable's values and the density its theory gives."""

    title: str
    values: np.ndarray
    theory: Theory | None  # None where none is drawn
    caption: str


@dataclass
class Report:
    """Everything inspect-weights found, as objects and as the one JSON document."""

    loaded: Loaded
    variables: list[stats.VariableStats]
    document: dict[str, Any]
    verdicts: dict[str, Verdict] | None = None
    comparison: dict[str, Any] | None = None
    values: dict[str, Any] | None = None  # --values: path -> NumPy array
    full: bool = False  # --full: print every value, not NumPy's summary
    panels: list[Panel] = field(default_factory=list)  # --plot, drawn by output.plot

    @property
    def failed(self) -> bool:
        return any(v.status == "FAIL" for v in (self.verdicts or {}).values())


def inspect(
    target: str,
    overrides: Sequence[str] = (),
    trust: Trust | None = None,
    layer: str | None = None,
    trainable_only: bool = False,
    check: bool = False,
    against: str | None = None,
    activations: bool = False,
    plot: str | None = None,
    values: str | None = None,
    full: bool = False,
) -> Report:
    """Read, select, measure; check against theory and compare with another target on demand.
    With `plot`, the report holds the panels output.plot draws into that file."""
    if full and values is None:
        raise UsageError("--full goes with --values GLOB: it prints every value of those")
    trust = trust or Trust()
    loaded = read(target, trust, overrides, by_path=True)
    if activations and loaded.prepared is None:
        raise UsageError(
            "--activations needs a config TARGET: it pushes a batch through the "
            "model as its config builds it"
        )
    weights = select(loaded.weights, layer, trainable_only)
    if not weights and loaded.weights:
        what = " and ".join(
            f
            for f, given in ((f"--layer {layer}", layer), ("--trainable-only", trainable_only))
            if given
        )
        names = list(dict.fromkeys(n for w in loaded.weights for n in w.layers))
        raise UsageError(
            f"{what}: no variable of {loaded.source} matches; its layers: {', '.join(names)}"
        )
    arrays = loaded.arrays(weights)
    report = stats.report(weights, arrays)
    if disowned(loaded, {s.path: s.stats.sha256 for s in report}):
        report = [replace(s, loaded_from=None) for s in report]
    document: dict[str, Any] = {
        "source": loaded.source,
        "kind": loaded.kind,
        **stats.report_json(report),
    }
    for item in document["variables"]:
        # A layer applied at several places uses its variables at each of them.
        sites = {n: (loaded.calls or {}).get(n, []) for n in item["layers"]}
        if any(len(s) > 1 for s in sites.values()):
            item["call_sites"] = {n: s for n, s in sites.items() if s}
    if loaded.initial:
        for item in document["variables"]:
            if item["path"] in loaded.initial:
                init = loaded.initial[item["path"]]
                item["initial"] = {k: init.get(k) for k in ("mean", "std", "l2", "sha256")}
    found = stats.duplicates(report, arrays)
    if loaded.kind in ("run", "checkpoint") and loaded.initial:
        # Training moves copies apart; the run recorded what they started from.
        chosen = {w.path for w in weights}
        entries = [e for p, e in loaded.initial.items() if p in chosen]
        seen = {d.paths for d in found}
        found += [d for d in stats.recorded_duplicates(entries) if d.paths not in seen]
    document["duplicates"] = [{"paths": list(d.paths), "message": d.message()} for d in found]
    origins = {w.path: provenance.of(loaded.kind, w, loaded.epochs) for w in weights}
    for item in document["variables"]:
        item["provenance"] = origins[item["path"]].to_json()
    result = Report(loaded, report, document, full=full)
    if values is not None:
        # The tutorials' `layer.get_weights()` / `print(net.weights[0])`, for any target.
        result.values = {w.path: arrays[w.path] for w in select(weights, values)}
        document["values"] = {path: a.tolist() for path, a in result.values.items()}
    if activations:
        built = BuiltModel(loaded.model, [], loaded.weights)
        document["activations"] = propagate(loaded.prepared, built)
    if check:
        rebuilt = None
        if loaded.kind == "run" and loaded.initial and loaded.model is not None:
            rebuilt = stats.values(rebuild_run(Path(loaded.source), trust, loaded.checked).weights)
        sources = _source_digests(weights, trust) if loaded.kind == "run" else None
        # Read without its model (plugins not allowed): the warning says which and how.
        unbuilt = (
            "which needs the plugins it names (see the warning)" if loaded.model is None else None
        )
        measured = {s.path: s for s in report}
        result.verdicts = provenance.check(
            weights, arrays, measured, origins, loaded.initial, rebuilt, sources, unbuilt
        )
        document["check"] = [_verdict_json(p, v) for p, v in result.verdicts.items()]
        document["check_summary"] = provenance.summary(result.verdicts)
        if rebuilt is not None:
            document["check_of"] = (
                "the run's initial weights, rebuilt from its config and seed (their SHA-256 "
                f"as in {rundir.WEIGHTS_INIT})"
            )
    if plot:
        result.panels = [_panel(w, arrays[w.path], origins[w.path]) for w in weights]
        document["plot"] = str(Path(plot))
    if against:
        other = read(against, trust, overrides, by_path=True)
        loaded.notes += other.notes
        other_arrays = other.arrays(select(other.weights, layer, trainable_only))
        result.comparison = {"source": other.source, **compare(arrays, other_arrays)}
        document["against"] = result.comparison
    return result


def _source_digests(weights: Sequence[Any], trust: Trust) -> dict[str, str]:
    """path -> SHA-256 of the values its init_from source holds now ('file:layer/var'),
    each source read once; a source that is gone or changed shape is left out."""
    by_source: dict[str, Loaded | None] = {}
    out = {}
    for w in weights:
        if not w.loaded_from:
            continue
        label, _, path = w.loaded_from.rpartition(":")
        if label not in by_source:
            try:
                by_source[label] = read(label, trust.safe(), own=False)
            except KinitError:
                by_source[label] = None
        source = by_source[label]
        found = next((v for v in source.weights if v.path == path), None) if source else None
        if found is not None:
            out[w.path] = digest(source.array(found.variable))
    return out


def _panel(w: Any, values: Any, origin: provenance.Provenance) -> Panel:
    title = f"{w.path} {tuple(w.shape)}"
    if origin.kind not in (provenance.FRESH, provenance.SAVED):
        # The theory describes fresh values only.
        why = f"{origin.kind} values ({origin.detail})" if origin.detail else origin.kind
        return Panel(title, values, None, f"{why}: no theoretical density drawn")
    theory = theory_for(w.initializer, w.shape)
    return Panel(title, values, theory, theory.description if theory else "")


def _verdict_json(path: str, verdict: Verdict) -> dict[str, Any]:
    return {
        "path": path,
        "status": verdict.status,
        "theory": asdict(verdict.theory) if verdict.theory else None,
        "observed": verdict.observed,
        "reasons": list(verdict.reasons),
    }
