"""`kinit inspect-weights`: the report on a target's weights (read by model.sources).

A target is a config file (the model is built, not trained: exactly what the initializers
made), a saved `.keras` model, a run directory from `kinit train` (its model.keras, with
weights-init.json for comparison), or a `.weights.h5` checkpoint inside a run directory.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
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


@dataclass(frozen=True)
class InspectOptions:
    """What inspect-weights was asked for beyond the target (its flags)."""

    layer: str | None = None  # --layer GLOB
    trainable_only: bool = False
    check: bool = False  # against each initializer's theory
    against: str | None = None  # another target to compare with
    activations: bool = False  # one batch through a config TARGET's model
    plot: str | None = None  # the file output.plot draws the panels into
    values: str | None = None  # --values GLOB
    full: bool = False  # --full: every value, not NumPy's summary
    backend: str | None = None  # --backend: what Keras is imported with, over the config's


@dataclass(frozen=True)
class TheoryCheck:
    """--check's verdicts, and whether they are of a run's initial weights rebuilt."""

    verdicts: dict[str, Verdict]
    of_rebuilt: bool


@dataclass(frozen=True)
class Report:
    """Everything inspect-weights found, complete when built; `document` is its one JSON
    document, derived."""

    loaded: Loaded
    variables: list[stats.VariableStats]
    origins: dict[str, provenance.Provenance]
    duplicates: list[stats.Duplicate]
    options: InspectOptions = InspectOptions()
    values: dict[str, Any] | None = None  # --values: path -> NumPy array
    activations: Any = None  # --activations: weights.propagation's document
    checked: TheoryCheck | None = None
    panels: list[Panel] = field(default_factory=list)  # --plot, drawn by output.plot
    # --plot of a run with weight-history.csv: the rows of its selected kernels.
    weight_history: list[dict[str, Any]] = field(default_factory=list)
    comparison: dict[str, Any] | None = None  # --against
    notes: list[str] = field(default_factory=list)  # the warnings of every target read

    @property
    def full(self) -> bool:
        return self.options.full

    @property
    def verdicts(self) -> dict[str, Verdict] | None:
        return self.checked.verdicts if self.checked else None

    @property
    def failed(self) -> bool:
        return any(v.status == "FAIL" for v in (self.verdicts or {}).values())

    @property
    def document(self) -> dict[str, Any]:
        """inspect-weights --json's one document."""
        document: dict[str, Any] = {
            "source": self.loaded.source,
            "kind": self.loaded.kind,
            **stats.report_json(self.variables),
        }
        for item in document["variables"]:
            item.update(_variable_extras(self.loaded, item["path"], item["layers"]))
            item["provenance"] = self.origins[item["path"]].to_json()
        document["duplicates"] = [
            {"paths": list(d.paths), "message": d.message()} for d in self.duplicates
        ]
        if self.values is not None:
            document["values"] = {path: a.tolist() for path, a in self.values.items()}
        if self.activations is not None:
            document["activations"] = self.activations
        if self.checked is not None:
            document["check"] = [_verdict_json(p, v) for p, v in self.checked.verdicts.items()]
            document["check_summary"] = provenance.summary(self.checked.verdicts)
            if self.checked.of_rebuilt:
                document["check_of"] = (
                    "the run's initial weights, rebuilt from its config and seed (their SHA-256 "
                    f"as in {rundir.WEIGHTS_INIT})"
                )
        if self.options.plot:
            document["plot"] = str(Path(self.options.plot))
        if self.comparison is not None:
            document["against"] = self.comparison
        return document


def _variable_extras(loaded: Loaded, path: str, layers: list[str]) -> dict[str, Any]:
    """A variable's call sites (a layer applied at several places uses its variables at each)
    and the initial values a run recorded for it."""
    extras: dict[str, Any] = {}
    sites = {n: (loaded.calls or {}).get(n, []) for n in layers}
    if any(len(s) > 1 for s in sites.values()):
        extras["call_sites"] = {n: s for n, s in sites.items() if s}
    if loaded.initial and path in loaded.initial:
        init = loaded.initial[path]
        extras["initial"] = {k: init.get(k) for k in ("mean", "std", "l2", "sha256")}
    return extras


def inspect(
    target: str,
    overrides: Sequence[str] = (),
    trust: Trust | None = None,
    options: InspectOptions | None = None,
) -> Report:
    """Read, select, measure; check against theory and compare with another target on demand.
    With `options.plot`, the report holds the panels output.plot draws into that file."""
    options = options or InspectOptions()
    if options.full and options.values is None:
        raise UsageError("--full goes with --values GLOB: it prints every value of those")
    trust = trust or Trust()
    # Only --activations needs the model itself; the statistics need only the values.
    loaded = read(
        target,
        trust,
        overrides,
        by_path=True,
        requested=options.backend,
        files_only=not options.activations,
    )
    if options.activations and loaded.prepared is None:
        raise UsageError(
            "--activations needs a config TARGET: it pushes a batch through the "
            "model as its config builds it"
        )
    weights = _selected(loaded, options)
    scan = _scan(loaded, weights, options)
    measured = scan.measured
    if disowned(loaded, {s.path: s.stats.sha256 for s in measured}):
        measured = [replace(s, loaded_from=None) for s in measured]
    found = _duplicates(loaded, weights, measured, _Arrays(loaded, weights, scan.kept))
    origins = {w.path: provenance.of(loaded.kind, w, loaded.epochs) for w in weights}
    arrays = scan.kept
    values = None
    if options.values is not None:
        # The tutorials' `layer.get_weights()` / `print(net.weights[0])`, for any target.
        values = {w.path: arrays[w.path] for w in select(weights, options.values)}
    activations = None
    if options.activations:
        activations = propagate(loaded.prepared, BuiltModel(loaded.model, [], loaded.weights))
    checked = None
    if options.check:
        checked = _check(loaded, weights, scan, measured, origins, trust, options.backend)
    panels, history, notes = [], [], list(loaded.notes)
    if options.plot:
        panels = [_panel(w, arrays[w.path], origins[w.path]) for w in weights]
        history = _kernel_history(loaded, weights, notes)
    comparison = None
    if options.against:
        other = read(
            options.against,
            trust,
            overrides,
            by_path=True,
            requested=options.backend,
            files_only=True,
        )
        notes += other.notes
        other_arrays = other.arrays(select(other.weights, options.layer, options.trainable_only))
        comparison = {"source": other.source, **compare(arrays, other_arrays)}
    return Report(
        loaded=loaded,
        variables=measured,
        origins=origins,
        duplicates=found,
        options=options,
        values=values,
        activations=activations,
        checked=checked,
        panels=panels,
        weight_history=history,
        comparison=comparison,
        notes=notes,
    )


def _kernel_history(loaded: Loaded, weights: list[Any], notes: list[str]) -> list[dict[str, Any]]:
    """A run's weight-history.csv rows of the selected kernels (rank 2 or more: the weights
    an initializer's scale is about); [] for other targets, or a run that recorded none. A
    file that cannot be read back is named in `notes` and left out."""
    if loaded.kind != "run":
        return []
    kernels = {w.path for w in weights if len(w.shape) >= 2}
    try:
        rows = rundir.read_weight_history(Path(loaded.source))
    except KinitError as exc:
        notes.append(str(exc))
        return []
    return [r for r in rows if r["path"] in kernels]


def _selected(loaded: Loaded, options: InspectOptions) -> list[Any]:
    """The variables --layer and --trainable-only select; UsageError when none is left."""
    layer, trainable_only = options.layer, options.trainable_only
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
    return weights


def _duplicates(
    loaded: Loaded,
    weights: list[Any],
    measured: list[stats.VariableStats],
    arrays: Mapping[str, Any],
) -> list[stats.Duplicate]:
    """Variables holding the same values; in a run, also those that started out equal."""
    found = stats.duplicates(measured, arrays)
    if loaded.kind in ("run", "checkpoint") and loaded.initial:
        # Training moves copies apart; the run recorded what they started from.
        chosen = {w.path for w in weights}
        entries = [e for p, e in loaded.initial.items() if p in chosen]
        seen = {d.paths for d in found}
        found += [d for d in stats.recorded_duplicates(entries) if d.paths not in seen]
    return found


def _check(
    loaded: Loaded,
    weights: list[Any],
    scan: _Scan,
    measured: list[stats.VariableStats],
    origins: dict[str, provenance.Provenance],
    trust: Trust,
    requested: str | None,
) -> TheoryCheck:
    """--check: each variable against its initializer's theory (judged during the scan, see
    _scan), or a run's initial weights against those its config and seed rebuild."""
    rebuilt = None
    if loaded.kind == "run" and loaded.initial and loaded.model is not None:
        rebuilt = stats.values(rebuild_run(Path(loaded.source), trust, loaded.checked).weights)
    sources = _source_digests(weights, trust, requested) if loaded.kind == "run" else None
    # Read without its model (plugins not allowed): the warning says which and how.
    unbuilt = "which needs the plugins it names (see the warning)" if loaded.model is None else None
    by_path = {s.path: s for s in measured}
    rest = [w for w in weights if w.path not in scan.verdicts]
    # The rest are judged by records and digests, not by the values in the file.
    later = provenance.check(rest, {}, by_path, origins, loaded.initial, rebuilt, sources, unbuilt)
    verdicts = {w.path: scan.verdicts.get(w.path) or later[w.path] for w in weights}
    return TheoryCheck(verdicts, rebuilt is not None)


@dataclass(frozen=True)
class _Scan:
    """One pass over the selected variables: their statistics, the values a later step
    needs (--values, --plot, --against), and --check's verdicts of fresh or saved values."""

    measured: list[stats.VariableStats]
    kept: dict[str, Any]
    verdicts: dict[str, Verdict]


def _scan(loaded: Loaded, weights: list[Any], options: InspectOptions) -> _Scan:
    """Statistics one variable at a time, each value dropped once measured unless an option
    needs it: memory holds the largest variable, not the model. Values judged by their
    initializer's theory (fresh, or a saved file's) are judged here, while they are read;
    a run's are judged later from its records (_check), which the scan's digests decide."""
    shown = {w.path for w in select(weights, options.values)} if options.values else set()
    keep_all = bool(options.plot or options.against)
    measured, kept, verdicts = [], {}, {}
    for w, array in loaded.each(weights):
        measured += stats.report([w], {w.path: array})
        if keep_all or w.path in shown:
            kept[w.path] = array
        origin = provenance.of(loaded.kind, w, loaded.epochs)
        if options.check and origin.kind in (provenance.FRESH, provenance.SAVED):
            by_path = {w.path: measured[-1]}
            verdicts.update(provenance.check([w], {w.path: array}, by_path, {w.path: origin}))
    return _Scan(measured, kept, verdicts)


class _Arrays(Mapping[str, Any]):
    """Values by path for the duplicates search, read only when asked for (only variables
    whose SHA-256 equals another's are compared), or taken from those the scan kept."""

    def __init__(self, loaded: Loaded, weights: list[Any], kept: dict[str, Any]) -> None:
        self._loaded, self._kept = loaded, kept
        self._variables = {w.path: w.variable for w in weights}

    def __getitem__(self, path: str) -> Any:
        if path in self._kept:
            return self._kept[path]
        return self._loaded.array(self._variables[path])

    def __iter__(self) -> Iterator[str]:
        return iter(self._variables)

    def __len__(self) -> int:
        return len(self._variables)


def _source_digests(
    weights: Sequence[Any], trust: Trust, requested: str | None = None
) -> dict[str, str]:
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
                by_source[label] = read(label, trust.safe(), own=False, requested=requested)
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
