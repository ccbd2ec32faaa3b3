"""The run directory: where a run's config, model, history and reports land, written atomically."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import fnmatch
import io
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kinit_cli import strictjson
from kinit_cli.errors import RunDirError, UsageError, WriteError

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


MARKER = ".kinit-run"  # says kinit made the folder; its lock is held while a run uses it
# What kinit writes in a run directory: all that --overwrite may replace.
OWN_FILES = (CONFIG, MODEL, WEIGHTS, HISTORY, METRICS, WEIGHTS_INIT, WEIGHTS_FINAL, BACKUP, MARKER)


def default_path(name: str) -> Path:
    """runs/<name>-<timestamp>, the name reduced to characters safe in any file system."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._-") or "run"
    return Path("runs") / f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}"


class RunLock:
    """An exclusive lock on a run directory's marker, held for the run's lifetime.

    `flock` is released by the kernel when the process ends, however it ends, so a killed
    run never leaves a stale lock; the marker records the holder's process id to name it.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / MARKER
        try:
            self.fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise WriteError(f"{reason(exc)} writing {self.path}") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _marker(run_dir).get("pid")
            os.close(self.fd)
            self.fd = None
            who = f"kinit process {holder}" if holder else "another kinit process"
            raise RunDirError(
                f"run directory {run_dir} is in use by {who}; wait for it to finish, or give "
                "another --output"
            ) from None

    def record(self, callback_files: Sequence[str]) -> None:
        """Write who holds the directory and which files its callbacks write (theirs to
        replace on a later --overwrite), in place: a renamed file would leave the lock behind."""
        assert self.fd is not None
        from kinit_cli import __version__

        data = {"kinit": __version__, "pid": os.getpid(), "callback_files": list(callback_files)}
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, (json.dumps(data) + "\n").encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None


def create(path: Path, overwrite: bool, callback_files: Sequence[str] = ()) -> RunLock:
    """Make (or, with `overwrite`, empty of kinit's files) the run directory and lock it.

    A non-empty folder is used only with `overwrite`, only when kinit made it, and only
    when everything in it is kinit's: a user's own files are never deleted.
    """
    if path.exists() and not path.is_dir():
        raise UsageError(f"--output {path} exists and is not a directory")
    present = _names(path)
    if MARKER in present:
        RunLock(path).release()  # in use by another run: say so before anything else
    if present and not overwrite:
        raise UsageError(
            f"run directory {path} already exists and is not empty; give another "
            "--output, add --overwrite to replace kinit's files in it, or continue it "
            f"with --resume {path}"
        )
    if present and MARKER not in present and METRICS not in present:
        raise RunDirError(
            f"--overwrite replaces only a run directory kinit made, and {path} is not one "
            f"(it has no {MARKER} or {METRICS}); it holds: {_listing(present)}. Give another "
            "--output."
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"{reason(exc)} creating the run directory {path}") from None
    lock = RunLock(path)
    present = _names(path)  # again, under the lock: another run may have come and gone
    owned = _owned(path)
    in_the_way = [n for n in present if not owned(n)]
    if in_the_way:
        lock.release()
        raise RunDirError(
            f"--overwrite replaces only the files kinit writes, and {path} holds others: "
            f"{_listing(in_the_way)}. Move them away, or give another --output."
        )
    for name in present:
        if name != MARKER:
            # A stale file would mix with the new run's: a checkpoint would even resume it.
            target = path / name
            shutil.rmtree(target) if target.is_dir() else target.unlink()
    lock.record(callback_files)
    return lock


# Constructor arguments of Keras callbacks that name files or folders.
PATH_ARGUMENTS = ("filename", "filepath", "log_dir", "backup_dir")


@dataclass
class Placed:
    """A callback spec with its file arguments placed: relative ones inside the run directory.
    `files`: the run-directory entries it writes; `problems`: (key path, message) pairs."""

    spec: Any
    files: list[str] = field(default_factory=list)
    problems: list[tuple[tuple[str, ...], str]] = field(default_factory=list)


def callback_paths(spec: Any, run_dir: Path | None, existing_ok: bool = False) -> Placed:
    """Place a callback's file arguments: a relative path lands inside the run directory and
    may neither leave it (`..`) nor take a name kinit writes there; an absolute path may not
    replace an existing file unless `existing_ok` (--overwrite, or a resumed run's own).
    With no `run_dir` (validate, before there is one) only relative paths are checked."""
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
            continue
        if target.is_absolute():
            assert run_dir is not None
            inside = _inside(target, run_dir)
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


def _inside(path: Path, run_dir: Path) -> str | None:
    """`path` relative to `run_dir` when it is inside it, else None."""
    try:
        return str(path.resolve().relative_to(run_dir.resolve()))
    except ValueError:
        return None


def is_own_name(name: str) -> bool:
    """Whether `name` (a run directory entry) is one of the files kinit itself writes."""
    return name in OWN_FILES or any(name.startswith(f".{own}.") for own in OWN_FILES)


def _owned(path: Path) -> Callable[[str], bool]:
    patterns = [re.sub(r"\{[^}]*\}", "*", p) for p in _marker(path).get("callback_files", [])]
    return lambda name: is_own_name(name) or any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _marker(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / MARKER).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _names(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir()) if path.is_dir() else []


def _listing(names: Sequence[str], most: int = 8) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


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
        st = os.statvfs(path.parent)
    except OSError:
        return
    free = st.f_bavail * st.f_frsize
    if free < nbytes:
        raise WriteError(
            f"no space left on device writing {path} (it needs about {_size(nbytes)}; "
            f"{_size(free)} free)"
        )


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


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
    values = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)
    return values + 4096 * len(variables) + 65536


def initial_weights(run_dir: Path) -> dict[str, dict[str, Any]] | None:
    """The run's weights-init.json entries by variable path (None when it has none)."""
    path = run_dir / WEIGHTS_INIT
    if not path.exists():
        return None
    return {v["path"]: v for v in json.loads(path.read_text())["variables"]}


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


def read_history(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [
            {k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""}
            for row in csv.DictReader(f)
        ]


def status(run_dir: Path) -> str | None:
    """The `status` of the run's metrics.json (None before the run wrote one)."""
    try:
        return json.loads((run_dir / METRICS).read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return None
