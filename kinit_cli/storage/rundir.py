"""The run directory: where a run's config, model, history and reports land, written atomically."""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kinit_cli.config.schema import safe_name
from kinit_cli.errors import RecordError, UsageError, WriteError
from kinit_cli.runtime import memory
from kinit_cli.storage import records, strictjson
from kinit_cli.storage.records import count, list_of, mapping, nullable, number, text

CONFIG = "config.yaml"
MODEL = "model.keras"
# Written instead of MODEL when Keras could not reload the model (portability.py): kinit
# rebuilds it from CONFIG and fills it from this file.
WEIGHTS = "model.weights.h5"
HISTORY = "history.csv"
METRICS = "metrics.json"
WEIGHTS_INIT = "weights-init.json"
WEIGHTS_FINAL = "weights-final.json"
BACKUP = "backup"  # Keras BackupAndRestore's folder: the state after the last full epoch
# What was done to the data before the model saw it, and which examples went where
# (data/preprocessing.py): what predict and evaluate repeat.
PREPROCESSING = "preprocessing.json"
SPLIT = "split.json"


# train.weight_history: each variable's statistics every epoch, and the layers' outputs at
# initialisation; history.png: the loss and metric curves, drawn with every run.
WEIGHT_HISTORY = "weight-history.csv"
ACTIVATIONS = "activations-init.json"
HISTORY_PLOT = "history.png"
MARKER = ".kinit-run"  # says kinit made the folder (ownership.py); locked while a run uses it
# What kinit writes in a run directory: all that --overwrite may replace.
OWN_FILES = (
    CONFIG,
    MODEL,
    WEIGHTS,
    HISTORY,
    METRICS,
    WEIGHTS_INIT,
    WEIGHTS_FINAL,
    BACKUP,
    PREPROCESSING,
    SPLIT,
    WEIGHT_HISTORY,
    ACTIVATIONS,
    HISTORY_PLOT,
    MARKER,
)


def config_of(run_dir: Path, command: str = "") -> Path:
    """The run's config.yaml, which every reader of a run directory starts from; UsageError
    when there is none (`command`: what the user typed, to begin the message with)."""
    path = run_dir / CONFIG
    if not path.is_file():
        head = f"{command} {run_dir}" if command else str(run_dir)
        raise UsageError(f"{head} has no {CONFIG}: is it a kinit run directory?")
    return path


def default_path(name: str) -> Path:
    """runs/<name>-<timestamp>, the name reduced to characters safe in any file system (a
    validated name already is; the reduction keeps any other from becoming a path)."""
    return Path("runs") / f"{safe_name(name)}-{time.strftime('%Y%m%d-%H%M%S')}"


# Constructor arguments of Keras callbacks that name files or folders.
PATH_ARGUMENTS = ("filename", "filepath", "log_dir", "backup_dir")


@dataclass
class Placed:
    """A callback spec with its file arguments placed: relative ones inside the run directory.
    `files`: the run-directory entries it writes; `problems`: (key path, message) pairs."""

    spec: Any
    files: list[str] = field(default_factory=list)
    problems: list[tuple[tuple[str, ...], str]] = field(default_factory=list)


def callback_paths(
    spec: Any, run_dir: Path | None, existing_ok: bool = False, *, any_run: bool = False
) -> Placed:
    """Place a callback's file arguments: a relative path lands inside the run directory and
    may neither leave it (`..`) nor take a name kinit writes there; an absolute path may not
    lead into another kinit run, nor replace an existing file unless `existing_ok`
    (--overwrite, or a resumed run's own). With no `run_dir` (before there is one) only
    relative paths are checked, an absolute one may be in the run --output will name; unless
    `any_run` (validate, which writes no run): then one inside any kinit run is refused."""
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        return Placed(spec)
    config, placed = dict(spec["config"]), Placed(spec)
    for key in PATH_ARGUMENTS:
        value = config.get(key)
        if not isinstance(value, str):
            continue
        where = ("config", key)
        target = Path(value).expanduser()
        if target.is_absolute() and run_dir is None:
            other = _other_run(target, None) if any_run else None
            if other is not None:
                placed.problems.append((where, _in_other_run(value, other)))
            continue
        if target.is_absolute():
            assert run_dir is not None
            inside = _inside(target, run_dir)
            other = _other_run(target, run_dir) if inside is None else None
            if other is not None:
                placed.problems.append((where, _in_other_run(value, other)))
                continue
            if inside is None:
                if target.exists() and not existing_ok:
                    placed.problems.append(
                        (
                            where,
                            f"{value} already exists, and kinit does not replace a file "
                            "outside the run directory unless --overwrite is given; name a new "
                            "file, or a relative path (it goes in the run directory)",
                        )
                    )
                continue
        else:
            inside = os.path.normpath(value)
            if inside == ".." or inside.startswith(("../", "..\\")):
                placed.problems.append(
                    (
                        where,
                        f"{value!r} leads out of the run directory; relative paths are "
                        "taken inside it (give an absolute path to write elsewhere)",
                    )
                )
                continue
            if run_dir is not None:
                config[key] = str(run_dir / inside)
        first = Path(inside).parts[0] if inside not in ("", ".") else ""
        if not first or is_own_name(first):
            what = "a file kinit writes in the run directory" if first else "the run directory"
            placed.problems.append((where, f"{value!r} is {what}; give the callback its own name"))
            continue
        placed.files.append(first)
    placed.spec = {**spec, "config": config}
    return placed


def _other_run(path: Path, run_dir: Path | None) -> Path | None:
    """The kinit run (a folder with the marker) that `path` is in or is, other than
    `run_dir` (any, with None); None when there is none."""
    resolved, own = path.resolve(), run_dir.resolve() if run_dir is not None else None
    return next(
        (p for p in (resolved, *resolved.parents) if p != own and (p / MARKER).is_file()), None
    )


def _in_other_run(value: str, other: Path) -> str:
    return (
        f"{value} is inside the kinit run {other}, which this run must not write into (that "
        "run's --overwrite and --resume would then refuse or remove its files); name a folder "
        "outside it, or a relative path (it goes in this run's directory)"
    )


def _inside(path: Path, run_dir: Path) -> str | None:
    """`path` relative to `run_dir` when it is inside it, else None."""
    try:
        return str(path.resolve().relative_to(run_dir.resolve()))
    except ValueError:
        return None


# The temporary name replacing() gives FILE while it is written: mkstemp's 8 random
# characters between `.FILE.` and the suffix the writer goes by.
_TEMPORARY = r"\.{}\.[a-z0-9_]{{8}}(?:\.tmp|\.keras|\.weights\.h5)"


def temporary_of(names: str) -> re.Pattern[str]:
    """The pattern of replacing()'s temporary names for files matching the regex `names`."""
    return re.compile(_TEMPORARY.format(f"(?:{names})"))


_OWN_TEMPORARY = temporary_of("|".join(re.escape(own) for own in OWN_FILES))


def is_own_name(name: str) -> bool:
    """Whether `name` (a run directory entry) is one of the files kinit itself writes, or
    one of them being written."""
    return name in OWN_FILES or is_temporary(name)


def is_temporary(name: str) -> bool:
    """Whether `name` is a temporary file replacing() left (a process killed mid-write)."""
    return _OWN_TEMPORARY.fullmatch(name) is not None


def reason(exc: BaseException) -> str:
    """Why a write failed, as the system says it ('no space left on device'): h5py reports
    the errno inside a RuntimeError's text."""
    number = getattr(exc, "errno", None)
    if number is None:
        match = re.search(r"errno = (\d+)", str(exc))
        number = int(match.group(1)) if match else None
    text = os.strerror(number) if number else str(exc).splitlines()[0]
    return text[:1].lower() + text[1:]


def ensure_space(path: Path, nbytes: int) -> None:
    """Refuse to start a write that cannot fit: HDF5 fails badly on a full disk (a half-written
    file, once a crash), while this says so cleanly and writes nothing."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return
    if free < nbytes:
        raise WriteError(
            f"no space left on device writing {path} (it needs about "
            f"{memory.size_text(nbytes)}; {memory.size_text(free)} free)"
        )


@contextmanager
def replacing(path: Path, suffix: str) -> Iterator[str]:
    """A temporary file name beside `path` (ending in `suffix`, for writers that go by it)
    that replaces `path` when the block ends, so readers never see half a file; removed if
    the block fails, and a failed write is a WriteError naming `path`. The file gets the
    mode a plain `open` would give it, not mkstemp's owner-only 0600."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError as exc:
        raise WriteError(f"{reason(exc)} writing {path}") from None
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        raise WriteError(f"{reason(exc)} writing {path}") from exc
    except RuntimeError as exc:  # h5py's way of saying a write failed
        if "errno" not in str(exc):
            raise
        raise WriteError(f"{reason(exc)} writing {path}") from exc
    finally:
        with contextlib.suppress(OSError):
            Path(tmp).unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    with replacing(path, ".tmp") as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def write_json(path: Path, data: Any) -> None:
    """Strict JSON (strictjson.py): a non-finite number is written as null."""
    write_text(path, strictjson.dumps(data, indent=2, sort_keys=False) + "\n")


def save_model(model: Any, path: Path) -> None:
    """`model.save` through replacing() (Keras goes by the `.keras` suffix)."""
    ensure_space(path, state_bytes(model))
    with replacing(path, ".keras") as tmp:
        model.save(tmp)


def save_weights(model: Any, path: Path) -> None:
    """`model.save_weights` through replacing() (Keras wants the `.weights.h5` suffix)."""
    ensure_space(path, state_bytes(model))
    with replacing(path, ".weights.h5") as tmp:
        model.save_weights(tmp, overwrite=True)


def state_bytes(model: Any) -> int:
    """Bytes the model's variables and its optimizer's take in a file: their values, and
    HDF5's few kilobytes of metadata per variable (measured: 1.5-2.5 KB), with room to spare."""
    variables = list(model.weights)
    if getattr(model, "optimizer", None) is not None:
        variables += list(model.optimizer.variables)
    import numpy as np  # only where a model is saved: validate's path stays without NumPy

    values = sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in variables)
    return values + 4096 * len(variables) + 65536


# What weights-init.json holds for each variable, as far as kinit reads it back.
_VARIABLE = mapping(
    {"path": text, "shape": list_of(count), "size": count, "min": number, "max": number},
    {
        "sha256": nullable(text),
        "mean": number,
        "std": number,
        "l2": number,
        "trainable": records.boolean,
        "initializer": nullable(mapping({"class_name": text})),
        "loaded_from": nullable(text),
    },
)
WEIGHTS_REPORT = mapping({"variables": list_of(_VARIABLE)})


def initial_weights(run_dir: Path) -> dict[str, dict[str, Any]] | None:
    """The run's weights-init.json entries by variable path (None when it has none);
    RecordError when it cannot be read back."""
    return _weights_record(run_dir / WEIGHTS_INIT)


def final_weights(run_dir: Path) -> dict[str, dict[str, Any]] | None:
    """The run's weights-final.json entries by variable path, as initial_weights()."""
    return _weights_record(run_dir / WEIGHTS_FINAL)


def _weights_record(path: Path) -> dict[str, dict[str, Any]] | None:
    try:
        data = records.read_json(path, WEIGHTS_REPORT)
    except FileNotFoundError:
        return None
    return {v["path"]: v for v in data["variables"]}


def write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    """One row per epoch (`epoch` first, then every logged value)."""
    keys: list[str] = ["epoch"]
    for row in rows:
        keys += [k for k in row if k not in keys]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, out.getvalue())


def _history_row(row: Any, where: str) -> str | None:
    """A history.csv row: `epoch` a count, every other value a number (or empty)."""
    if row.get("epoch") is None or not row["epoch"].isdigit():
        return f"{where}: `epoch` must be a whole number of 0 or more; it is {row.get('epoch')!r}"
    for key, value in row.items():
        if key is None or value is None:
            return f"{where} has {'more' if key is None else 'fewer'} values than the header"
        try:
            float(value) if value != "" else None
        except ValueError:
            return f"{where}: `{key}` must be a number; it is {value!r}"
    return None


def read_history(path: Path) -> list[dict[str, Any]]:
    """history.csv's rows ([] when there is none); RecordError when it cannot be read back."""
    try:
        rows = records.read_csv(path, _history_row)
    except FileNotFoundError:
        return []
    return [
        {k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""}
        for row in rows
    ]


# What kinit reads back from metrics.json; a run's other results are for the user.
_OUTCOME = mapping(
    {"status": text},
    {
        "epochs": count,
        "initial_epoch": count,
        "versions": records.values_of(text),
        "model_file": records.file_name,
        "continuation": mapping({"status": text}, {"epochs": count}),
    },
)
# A completed run's record holds what kinit writes for one: --resume and inspect trust it.
_COMPLETED = mapping(
    {
        "epochs": count,
        "test": records.values_of(number),
        "versions": records.values_of(text),
        "model_file": records.file_name,
    }
)


def _metrics_record(value: Any, where: str) -> str | None:
    """metrics.json's shape: a completed record checked for all it must hold."""
    wrong = _OUTCOME(value, where)
    if wrong is None and value["status"] == "completed":
        wrong = _COMPLETED(value, where)
    return wrong


def metrics(run_dir: Path, strict: bool = False) -> dict[str, Any]:
    """The run's metrics.json ({} before the run wrote one). One that cannot be read back
    is a RecordError when `strict`, else {} (what kinit cannot read, it does not trust)."""
    try:
        return records.read_json(run_dir / METRICS, _metrics_record)
    except FileNotFoundError:
        return {}
    except RecordError:
        if strict:
            raise
        return {}


def status(run_dir: Path) -> str | None:
    """The `status` of the run's metrics.json (None before the run wrote one)."""
    return metrics(run_dir).get("status")


def record_outcome(run_dir: Path, outcome: dict[str, Any]) -> None:
    """Write the metrics.json of a run that did not complete. A run that had completed
    before (and is being continued) keeps its record, and its model file with it: the
    attempt goes beside it, under `continuation`, and --resume may try again."""
    before = metrics(run_dir)
    if before.get("status") == "completed":
        kept = {k: v for k, v in before.items() if k != "continuation"}
        outcome = {**kept, "continuation": outcome}
    write_json(run_dir / METRICS, outcome)


# weight-history.csv: one row per variable per epoch, epoch 0 the initial values.
WEIGHT_HISTORY_COLUMNS = ("epoch", "path", "mean", "std", "l2", "relative_change")


def _weight_history_row(row: Any, where: str) -> str | None:
    if row.get("epoch") is None or not row["epoch"].isdigit():
        return f"{where}: `epoch` must be a whole number of 0 or more; it is {row.get('epoch')!r}"
    if not row.get("path"):
        return f"{where}: `path` is empty"
    for key in WEIGHT_HISTORY_COLUMNS[2:]:
        try:
            float(row.get(key) or "nan")
        except ValueError:
            return f"{where}: `{key}` must be a number; it is {row.get(key)!r}"
    return None


def read_weight_history(run_dir: Path) -> list[dict[str, Any]]:
    """weight-history.csv's rows, numbers as numbers (a non-finite one as nan); [] when the
    run has none; RecordError when it cannot be read back."""
    try:
        rows = records.read_csv(run_dir / WEIGHT_HISTORY, _weight_history_row)
    except FileNotFoundError:
        return []
    return [
        {
            "epoch": int(row["epoch"]),
            "path": row["path"],
            **{k: float(row.get(k) or "nan") for k in WEIGHT_HISTORY_COLUMNS[2:]},
        }
        for row in rows
    ]


_LAYER_OUTPUT = mapping({"name": text, "class_name": text, "mean": number, "std": number})
ACTIVATIONS_RECORD = mapping({"batch_size": count, "layers": list_of(_LAYER_OUTPUT)})


def read_activations(run_dir: Path) -> dict[str, Any] | None:
    """activations-init.json (None when the run has none); RecordError when unreadable."""
    try:
        return records.read_json(run_dir / ACTIVATIONS, ACTIVATIONS_RECORD)
    except FileNotFoundError:
        return None
