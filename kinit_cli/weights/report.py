"""`kinit inspect-weights`: find the weights a target names and report on them.

A target is a config file (the model is built, not trained: exactly what the initializers
made), a saved `.keras` model, a run directory from `kinit train` (its model.keras, with
weights-init.json for comparison), or a `.weights.h5` checkpoint inside a run directory.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kinit_cli.errors import KinitError, ModelFileError, UsageError, keras_message
from kinit_cli.storage import checkpoint, rundir
from kinit_cli.weights import provenance, stats

CONFIG_SUFFIXES = (".yaml", ".yml")


@dataclass
class Inspected:
    """A model's weights and where they came from."""

    kind: str  # config | model | run | checkpoint
    source: str
    model: Any
    weights: list[Any]  # variables.WeightInfo
    initial: dict[str, dict[str, Any]] | None = None  # weights-init.json entries by path
    prepared: Any = None  # prepare.Prepared, for a config target
    calls: dict[str, list[str]] | None = None  # layer -> where it is applied (config target)
    # Values read straight from a .keras file, by id of the (uninitialized) variable.
    stored: dict[int, Any] | None = None
    epochs: int | None = None  # a run's trained epochs (metrics.json)
    file: str | None = None  # the file the values were read from (a run's model or weights)
    notes: list[str] = field(default_factory=list)  # warnings: works, but deserves a word

    def array(self, variable: Any) -> Any:
        """A variable's value as NumPy, from the file when it was read without a rebuild."""
        if self.stored is not None:
            return self.stored[id(variable)]
        return np.asarray(variable.numpy())

    def arrays(self, weights: Sequence[Any]) -> dict[str, Any]:
        return {w.path: self.array(w.variable) for w in weights}


def load(
    target: str, overrides: Sequence[str] = (), plugins: Sequence[str] = (), unsafe: bool = False
) -> Inspected:
    """Load `target`'s model and weights; UsageError when it is none of the known kinds.

    `unsafe` lets Keras load the Python code a .keras file holds (a Lambda layer's function:
    safe_mode=False), with a note saying it did; without it such a file is a ModelFileError.
    """
    path = Path(target)
    if not path.exists():
        raise UsageError(f"{target} does not exist")
    if path.is_dir():
        return _run_directory(path, plugins, unsafe)
    if path.name.endswith(".weights.h5"):
        return _checkpoint(path, plugins)
    if path.suffix == ".keras":
        _load_plugins([], plugins, None)
        return _saved_model(path, "model", str(path), unsafe)
    if path.suffix in CONFIG_SUFFIXES:
        prepared, built = _build_seeded(path, overrides, plugins)
        calls = {info.name: info.calls for info in built.layers}
        return Inspected(
            "config",
            f"{path} (built, not trained)",
            built.model,
            built.weights,
            None,
            prepared,
            calls,
        )
    raise UsageError(
        f"{target}: expected a config (.yaml), a saved model (.keras), a run directory or a "
        "checkpoint (.weights.h5)"
    )


def _build_seeded(
    path: Path, overrides: Sequence[str], plugins: Sequence[str], fresh: bool = False
) -> tuple[Any, Any]:
    """Build the config's model as `kinit train` does: seeded first, so the same seed gives
    the same initial weights a run started from. `fresh`: without init_from, so every value
    is what its initializer draws."""
    from kinit_cli.model.build import build
    from kinit_cli.model.sources import prepare
    from kinit_cli.runtime.imports import keras

    prepared = prepare(path, overrides, plugins, build=False)
    resolved = {**prepared.resolved, "init_from": None} if fresh else prepared.resolved
    if resolved["seed"] is not None:
        keras().utils.set_random_seed(resolved["seed"])
    return prepared, build(prepared.config, resolved, prepared.registry)


def _load_plugins(config_plugins: Sequence[str], plugins: Sequence[str], base: Path | None) -> None:
    from kinit_cli.registry.plugins import load_plugins

    load_plugins(list(config_plugins), base_dir=base)
    load_plugins(list(plugins), base_dir=Path.cwd(), entry_points=False)


def _run_config(run_dir: Path, plugins: Sequence[str]) -> None:
    from kinit_cli.config import schema
    from kinit_cli.config import source as config

    path = run_dir / rundir.CONFIG
    if not path.exists():
        raise UsageError(f"{run_dir} has no {rundir.CONFIG}: is it a kinit run directory?")
    resolved = schema.validate(config.load(path))
    _load_plugins(resolved["plugins"], plugins, run_dir)


def _run_directory(run_dir: Path, plugins: Sequence[str], unsafe: bool = False) -> Inspected:
    _run_config(run_dir, plugins)
    model_path, weights_path = run_dir / rundir.MODEL, run_dir / rundir.WEIGHTS
    inspected = None
    if model_path.exists():
        try:
            inspected = _saved_model(model_path, "run", str(run_dir), unsafe)
            inspected.file = str(model_path)
        except ModelFileError:
            if not weights_path.exists():
                raise  # a damaged model.keras cannot fill a rebuilt model either
        except KinitError:
            inspected = None  # Keras cannot reload its classes: rebuild from the config
    if inspected is None:
        source = weights_path if weights_path.exists() else model_path
        if not source.exists():
            raise UsageError(_no_trained_weights(run_dir))
        inspected = _rebuilt(run_dir, source, plugins)
        inspected.file = str(source)
    inspected.epochs = rundir.metrics(run_dir).get("epochs")
    inspected.initial = rundir.initial_weights(run_dir)
    if inspected.initial:
        for w in inspected.weights:
            # What made each variable, or where init_from took it from, was recorded exactly
            # when the run built it; a reload can only guess from the layer's attributes.
            record = inspected.initial.get(w.path, {})
            if record.get("initializer") is not None:
                w.initializer = record["initializer"]
            if record.get("loaded_from"):
                w.loaded_from, w.loaded_sha256 = record["loaded_from"], record.get("sha256")
    return inspected


def _no_trained_weights(run_dir: Path) -> str:
    """Why a run directory has no weights to inspect, what it still holds, and what to do."""
    state = checkpoint.read(run_dir / rundir.BACKUP)
    head = f"{run_dir} has neither {rundir.MODEL} nor {rundir.WEIGHTS}"
    status = rundir.status(run_dir)
    if status == "completed":
        state_text = f"{head}, though the run completed: its trained weights are gone"
    else:
        state_text = f"{head}: the run did not finish ({status or 'it wrote no metrics.json'})"
    if state is not None and state.weights is not None:
        return (
            f"{state_text}; inspect its last backup (after epoch {state.epoch}) instead: "
            f"kinit inspect-weights {state.weights}"
        )
    kept = sorted(
        p.name
        for p in run_dir.iterdir()
        if not p.name.startswith(".") and (p.name != rundir.BACKUP or any(p.iterdir()))
    )
    return (
        f"{state_text}, and it holds no checkpoint either (it has: {', '.join(kept)}). "
        f"`kinit inspect-weights {run_dir / rundir.CONFIG}` shows the weights its config and "
        f"seed build (its initial ones); `kinit train {run_dir / rundir.CONFIG}` trains it again"
    )


def rebuild_run(run_dir: Path, plugins: Sequence[str]) -> Any:
    """The run's model (model.BuiltModel) built again from its own config.yaml and seed, as
    `kinit train` built it; no init_from, so every value is what its initializer draws."""
    return _build_seeded(run_dir / rundir.CONFIG, (), plugins, fresh=True)[1]


def _rebuilt(run_dir: Path, weights: Path, plugins: Sequence[str]) -> Inspected:
    """The run's model rebuilt (rebuild_run), then filled from `weights` (model.weights.h5
    or model.keras)."""
    built = rebuild_run(run_dir, plugins)
    try:
        built.model.load_weights(weights)
    except Exception as exc:
        raise KinitError(
            f"cannot load {weights} into the model {run_dir / rundir.CONFIG} builds: "
            f"{keras_message(exc)}"
        ) from exc
    return Inspected("run", str(run_dir), built.model, built.weights, prepared=None)


def _saved_model(path: Path, kind: str, source: str, unsafe: bool = False) -> Inspected:
    from kinit_cli.model.variables import weight_infos
    from kinit_cli.runtime.imports import keras

    _check_archive(path)
    notes: list[str] = []
    read = _read_without_rebuild(path, safe_mode=True)
    if read is not None:
        model, stored = read
        return Inspected(kind, source, model, weight_infos(model), stored=stored)
    try:
        model = keras().saving.load_model(path, safe_mode=True)
    except Exception as exc:
        code = _code_in(exc)
        if code is None:
            raise KinitError(
                f"cannot load {path}: {keras_message(exc)}. If it uses plugin objects, load the "
                "plugin with --plugin."
            ) from exc
        if not unsafe:
            raise ModelFileError(
                f"{path} holds {code} (Python code, which Keras will not load by default); if "
                "you trust the file, add --unsafe-deserialization",
                str(path),
                code=code,
            ) from exc
        notes.append(
            f"--unsafe-deserialization: {path} holds {code}, and Keras loaded its Python code, "
            "which runs whenever the model is called"
        )
        read = _read_without_rebuild(path, safe_mode=False)
        if read is not None:
            model, stored = read
            return Inspected(kind, source, model, weight_infos(model), stored=stored, notes=notes)
        try:
            model = keras().saving.load_model(path, safe_mode=False)
        except Exception as again:
            raise KinitError(f"cannot load {path}: {keras_message(again)}") from again
    return Inspected(kind, source, model, weight_infos(model), notes=notes)


def _code_in(exc: BaseException) -> str | None:
    """What Keras refused to deserialize in safe mode ('a Lambda layer'), or None when the
    error is another one. Keras says so only in its message, which names `safe_mode=False`."""
    text = str(exc)
    if "safe_mode" not in text:
        return None
    return "a Lambda layer" if "`Lambda` layer" in text else "a Python lambda function"


def _check_archive(path: Path) -> None:
    """ModelFileError unless `path` is a zip archive holding config.json, as every .keras file
    is (Keras itself answers 'File not found' for a file that is there but unreadable)."""
    import zipfile

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if "config.json" in names:
            return
        reason = f"a zip archive without config.json; it holds {', '.join(names[:5]) or 'nothing'}"
    else:
        with open(path, "rb") as f:
            head = f.read(8)
        size = path.stat().st_size
        if not head:
            reason = "an empty file"
        elif head.startswith(b"PK"):
            reason = (
                f"zip archive truncated: {size} bytes that start as a zip archive but lack the "
                "directory at its end; was it copied or downloaded in full?"
            )
        elif head.startswith(b"\x89HDF"):
            reason = (
                "an HDF5 file (a .weights.h5 checkpoint, or a Keras 2 .h5 model), not a .keras "
                "zip archive"
            )
        else:
            reason = f"not a zip archive: {size} bytes starting {head.hex(' ')}"
    raise ModelFileError(
        f"{path} is not a readable Keras model file ({reason}); a .keras file is the zip "
        "archive model.save('NAME.keras') writes",
        str(path),
    )


def _read_without_rebuild(path: Path, safe_mode: bool = True) -> tuple[Any, dict[int, Any]] | None:
    """The model's structure from config.json with no initializer run, and the values from
    model.weights.h5; None when the file does not fit that reading (load_model then).

    `load_model` builds every layer, which draws every initial value, then overwrites them:
    on a 50M-parameter model that is most of the time. Under Keras's StatelessScope the
    variables are only declared; the values come straight from the HDF5 store, where Keras
    keeps each layer's own variables (trainable, then non-trainable) as layers/<name>/vars/<i>.
    """
    import io
    import zipfile

    import h5py

    from kinit_cli.runtime.imports import keras

    try:
        from keras.src.backend.common.stateless_scope import StatelessScope

        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            weights = archive.read("model.weights.h5")
        config.pop("compile_config", None)  # the optimizer is not inspected
        with StatelessScope():
            model = keras().saving.deserialize_keras_object(config, safe_mode=safe_mode)
        stored: dict[int, Any] = {}
        with h5py.File(io.BytesIO(weights), "r") as store:
            for layer in model.layers:
                own = list(layer._trainable_variables) + list(layer._non_trainable_variables)
                if not own:
                    continue
                group = store["layers"][layer.name]["vars"]
                if len(group) != len(own):
                    return None
                for i, variable in enumerate(own):
                    value = np.asarray(group[str(i)])
                    if value.shape != tuple(variable.shape):
                        return None
                    stored.setdefault(id(variable), value)
        if any(id(v) not in stored for v in model.weights):
            return None  # variables of nested layers: leave them to load_model
        return model, stored
    except Exception:  # any surprise in the file's layout: the slower, general path
        return None


def _checkpoint(path: Path, plugins: Sequence[str]) -> Inspected:
    from kinit_cli.model.sources import prepare

    run_dir = next((p for p in path.resolve().parents if (p / rundir.CONFIG).exists()), None)
    if run_dir is None:
        raise UsageError(
            f"{path}: a checkpoint holds weights only; kinit finds the model in the "
            f"{rundir.CONFIG} of the run directory it sits in, and none of its folders has one"
        )
    prepared = prepare(run_dir / rundir.CONFIG, (), plugins)
    model = prepared.built.model
    # Keras's BackupAndRestore checkpoints hold the optimizer's state as well.
    model.compile(**prepared.compile_args)
    model.optimizer.build(model.trainable_variables)
    try:
        model.load_weights(path)
    except Exception as exc:
        raise KinitError(f"cannot load the checkpoint {path}: {keras_message(exc)}") from exc
    inspected = Inspected("checkpoint", str(path), model, prepared.built.weights)
    inspected.initial = rundir.initial_weights(run_dir)
    return inspected


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


@dataclass
class Result:
    """Everything inspect-weights found, as objects and as the one JSON document."""

    inspected: Inspected
    report: list[stats.VariableStats]
    document: dict[str, Any]
    verdicts: dict[str, Any] | None = None  # path -> verdict.Verdict
    comparison: dict[str, Any] | None = None
    values: dict[str, Any] | None = None  # --values: path -> NumPy array
    full: bool = False  # --full: print every value, not NumPy's summary

    @property
    def failed(self) -> bool:
        return any(v.status == "FAIL" for v in (self.verdicts or {}).values())


def inspect(
    target: str,
    overrides: Sequence[str] = (),
    plugins: Sequence[str] = (),
    layer: str | None = None,
    trainable_only: bool = False,
    check: bool = False,
    against: str | None = None,
    activations: bool = False,
    plot: str | None = None,
    overwrite: bool = False,
    values: str | None = None,
    full: bool = False,
    unsafe: bool = False,
) -> Result:
    """Load, select, measure; check against theory and compare with another target on demand."""
    if full and values is None:
        raise UsageError("--full goes with --values GLOB: it prints every value of those")
    inspected = load(target, overrides, plugins, unsafe)
    if activations and inspected.prepared is None:
        raise UsageError(
            "--activations needs a config TARGET: it pushes a batch through the "
            "model as its config builds it"
        )
    weights = select(inspected.weights, layer, trainable_only)
    arrays = inspected.arrays(weights)
    report = stats.report(weights, arrays)
    document: dict[str, Any] = {
        "source": inspected.source,
        "kind": inspected.kind,
        **stats.report_json(report),
    }
    for item in document["variables"]:
        # A layer applied at several places uses its variables at each of them.
        sites = {n: (inspected.calls or {}).get(n, []) for n in item["layers"]}
        if any(len(s) > 1 for s in sites.values()):
            item["call_sites"] = {n: s for n, s in sites.items() if s}
    if inspected.initial:
        for item in document["variables"]:
            if item["path"] in inspected.initial:
                init = inspected.initial[item["path"]]
                item["initial"] = {k: init.get(k) for k in ("mean", "std", "l2", "sha256")}
    found = stats.duplicates(report, arrays)
    if inspected.kind in ("run", "checkpoint") and inspected.initial:
        # Training moves copies apart; the run recorded what they started from.
        chosen = {w.path for w in weights}
        entries = [e for p, e in inspected.initial.items() if p in chosen]
        seen = {d.paths for d in found}
        found += [d for d in stats.recorded_duplicates(entries) if d.paths not in seen]
    document["duplicates"] = [{"paths": list(d.paths), "message": d.message()} for d in found]
    origins = {w.path: provenance.of(inspected.kind, w, inspected.epochs) for w in weights}
    for item in document["variables"]:
        item["provenance"] = origins[item["path"]].to_json()
    result = Result(inspected, report, document, full=full)
    if values is not None:
        # The tutorials' `layer.get_weights()` / `print(net.weights[0])`, for any target.
        result.values = {w.path: arrays[w.path] for w in select(weights, values)}
        document["values"] = {path: a.tolist() for path, a in result.values.items()}
    if activations:
        from kinit_cli.weights.propagation import propagate

        document["activations"] = propagate(inspected.prepared, _built(inspected))
    if check:
        rebuilt = None
        if inspected.kind == "run" and inspected.initial:
            rebuilt = stats.values(rebuild_run(Path(inspected.source), plugins).weights)
        sources = _source_digests(weights) if inspected.kind == "run" else None
        measured = {s.path: s for s in report}
        result.verdicts = provenance.check(
            weights, arrays, measured, origins, inspected.initial, rebuilt, sources
        )
        document["check"] = [_verdict_json(p, v) for p, v in result.verdicts.items()]
        document["check_summary"] = provenance.summary(result.verdicts)
        if rebuilt is not None:
            document["check_of"] = (
                "the run's initial weights, rebuilt from its config and seed (their SHA-256 "
                f"as in {rundir.WEIGHTS_INIT})"
            )
    if plot:
        from kinit_cli.output import plot as plotting
        from kinit_cli.weights.theory import theory_for

        def drawn(w: Any) -> tuple[str, Any, Any, str]:
            origin = origins[w.path]
            title = f"{w.path} {tuple(w.shape)}"
            if origin.kind not in (provenance.FRESH, provenance.SAVED):
                # The theory describes fresh values only.
                why = f"{origin.kind} values ({origin.detail})" if origin.detail else origin.kind
                return title, arrays[w.path], None, f"{why}: no theoretical density drawn"
            theory = theory_for(w.initializer, w.shape)
            return title, arrays[w.path], theory, theory.description if theory else ""

        plotting.histograms([drawn(w) for w in weights], Path(plot), overwrite)
        document["plot"] = str(Path(plot))
    if against:
        other = load(against, overrides, plugins, unsafe)
        inspected.notes += other.notes
        other_arrays = other.arrays(select(other.weights, layer, trainable_only))
        result.comparison = {"source": other.source, **compare(arrays, other_arrays)}
        document["against"] = result.comparison
    return result


def _source_digests(weights: Sequence[Any]) -> dict[str, str]:
    """path -> SHA-256 of the values its init_from source holds now ('file:layer/var'),
    each source read once; a source that is gone or changed shape is left out."""
    by_source: dict[str, Inspected | None] = {}
    out = {}
    for w in weights:
        if not w.loaded_from:
            continue
        label, _, path = w.loaded_from.rpartition(":")
        if label not in by_source:
            try:
                by_source[label] = load(label)
            except KinitError:
                by_source[label] = None
        source = by_source[label]
        found = next((v for v in source.weights if v.path == path), None) if source else None
        if found is not None:
            out[w.path] = stats.digest(source.array(found.variable))
    return out


def _built(inspected: Inspected) -> Any:
    from kinit_cli.model.build import BuiltModel

    return BuiltModel(inspected.model, [], inspected.weights)


def _verdict_json(path: str, verdict: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {
        "path": path,
        "status": verdict.status,
        "theory": asdict(verdict.theory) if verdict.theory else None,
        "observed": verdict.observed,
        "reasons": list(verdict.reasons),
    }
