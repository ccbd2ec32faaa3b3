"""Whose a run directory is: the marker that says kinit made it, the lock a run holds on it,
and what --overwrite may replace in it.

A user's files are never deleted: --overwrite empties a folder only when kinit made it and
everything in it is kinit's, checked file by file (backup/ included). What a run's callbacks
wrote (a CSVLogger's file, TensorBoard's folder) is recorded in the marker when the run ends;
a run killed before that leaves only the paths its callbacks were given, and then whatever
lies under those paths counts as theirs.

The marker's keys: `pid` (the holder), `callback_paths` (as the config gives them),
`recorded` (every file the callbacks were seen to write, across resumes), `callback_files`
(the same, present only once a run has ended: then exactly these are theirs) and
`not_ours` (what was not kinit's when a resume took over: a user's, for good).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kinit_cli.errors import RecordError, RunDirError, UsageError, WriteError
from kinit_cli.runtime import versions
from kinit_cli.storage import records, rundir
from kinit_cli.storage.records import count, list_of, mapping, text

# What kinit writes in backup/ (checkpoint.py; Keras's BackupAndRestore names for old runs),
# and the temporary names replacing() gives them while they are written.
_BACKUP_NAMES = r"epoch-\d{5}\.weights\.h5|training_metadata\.json"
_BACKUP_FILES = re.compile(
    rf"{_BACKUP_NAMES}|(?:latest\.weights\.h5|training_metadata\.json)(?:\.bkp)?"
)
_BACKUP_TEMPORARY = rundir.temporary_of(_BACKUP_NAMES)


class RunLock:
    """An exclusive lock on a run directory's marker, held for the run's lifetime.

    `flock` is released by the kernel when the process ends, however it ends, so a killed
    run never leaves a stale lock; the marker records the holder's process id to name it.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.made_dir = False  # whether create() made the folder (abandon() removes it)
        path = run_dir / rundir.MARKER
        try:
            # Never through a link: O_CREAT would make a dangling one's target, and the
            # writes below would truncate a file outside the run.
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
            self.fd: int | None = os.open(path, flags, 0o666)
        except OSError as exc:
            if path.is_symlink():
                message = _links_message(run_dir, [rundir.MARKER])
                raise RunDirError(f"the run directory {run_dir} {message}") from None
            raise WriteError(f"{rundir.reason(exc)} writing {path}") from None
        if not stat.S_ISREG(os.fstat(self.fd).st_mode):
            self.release()
            raise RecordError(path, "it is not a regular file")
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = marker(run_dir).get("pid")
            self.release()
            who = f"kinit process {holder}" if holder else "another kinit process"
            raise RunDirError(
                f"run directory {run_dir} is in use by {who}; wait for it to finish, or give "
                "another --output"
            ) from None

    def claim(self) -> None:
        """Take over an existing run (--resume): record this process as the holder, and what
        is not kinit's under the callbacks' paths now (a user's file added since), which
        stays so; until this run records its files, its callbacks' paths count as theirs."""
        refuse_links(self.run_dir, "--resume")  # again, under the lock
        marker(self.run_dir, strict=True)  # what is the user's must be known
        # Under the lock no kinit process writes here: a temporary file is a killed one's.
        backup = self.run_dir / rundir.BACKUP
        for entry in [*self.run_dir.iterdir(), *(backup.iterdir() if backup.is_dir() else [])]:
            stale = rundir.is_temporary(entry.name) or (
                entry.parent == backup and _BACKUP_TEMPORARY.fullmatch(entry.name)
            )
            if stale and entry.is_file() and not entry.is_symlink():
                entry.unlink()
        data = marker(self.run_dir)
        kept = set(data.get("not_ours") or [])
        self._write(
            pid=os.getpid(), not_ours=sorted(kept | set(foreign(self.run_dir))), callback_files=None
        )

    def declare(self, callback_paths: Sequence[str]) -> None:
        """Claim a new run's directory, recording the entries its callbacks were given
        (patterns such as `ckpt-{epoch:02d}.keras` included): theirs, should the run never
        reach record()."""
        self._write(
            pid=os.getpid(),
            callback_paths=list(callback_paths),
            callback_files=None,
            recorded=None,
            not_ours=None,
        )

    def record(self) -> None:
        """Record the files and folders the callbacks wrote: exactly what a later --overwrite
        may replace besides kinit's own files (what was not kinit's when the run began,
        left out)."""
        data = marker(self.run_dir)
        not_ours = set(data.get("not_ours") or [])
        found = set(data.get("recorded") or [])
        for entry in sorted(self.run_dir.iterdir()):
            if _matches(entry.name, data) and not entry.is_symlink():
                found.update(rel for rel in _tree(self.run_dir, entry) if rel not in not_ours)
        self._write(callback_files=sorted(found), recorded=sorted(found))

    def _write(self, **changes: Any) -> None:
        """Rewrite the marker in place: a renamed file would leave the lock behind."""
        assert self.fd is not None
        data = {**marker(self.run_dir), "kinit": versions.KINIT, **changes}
        data = {k: v for k, v in data.items() if v is not None}
        try:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, (json.dumps(data) + "\n").encode(), 0)
        except OSError as exc:
            raise WriteError(
                f"{rundir.reason(exc)} writing {self.run_dir / rundir.MARKER}"
            ) from None

    def abandon(self) -> None:
        """Undo create() for a run that could not start: remove kinit's files, the marker
        and, when create() made it, the folder; then release the lock."""
        for entry in self.run_dir.iterdir():
            if rundir.is_own_name(entry.name) and entry.is_file() and not entry.is_symlink():
                entry.unlink()
        self.release()
        if self.made_dir:
            with contextlib.suppress(OSError):
                self.run_dir.rmdir()

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None


def create(path: Path, overwrite: bool, callback_paths: Sequence[str] = ()) -> RunLock:
    """Make (or, with `overwrite`, empty of kinit's files) the run directory and lock it."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"--output {path} exists and is not a directory")
    if path.is_symlink() and not path.exists():
        raise RunDirError(
            f"--output {path} is a symbolic link to {os.readlink(path)}, which does not "
            "exist; kinit makes no run directory through a link: give the folder itself"
        )
    present = _names(path)
    if present:
        refuse_links(path, "--output")
    ours = is_kinit_run(path)
    if rundir.MARKER in present:
        marker(path, strict=True)  # what is the user's must be known
        RunLock(path).release()  # in use by another run: say so before anything else
        if overwrite and present != [rundir.MARKER]:
            _refuse_empty_marker(path)
    if present and not overwrite:
        if not ours:
            raise UsageError(
                f"run directory {path} already exists, is not empty and is not a kinit run "
                "(kinit never writes into a folder it did not make); give another --output"
            )
        then = "add --overwrite to replace kinit's files in it"
        if rundir.CONFIG in present:
            then += f", or continue it with --resume {path}"
        raise UsageError(
            f"run directory {path} already exists and is not empty; give another --output, "
            f"or {then}"
        )
    if present and not ours:
        raise RunDirError(
            f"--overwrite replaces only a run directory kinit made, and {path} is not one "
            f"(it has no {rundir.MARKER}, nor a {rundir.METRICS} kinit wrote); it holds: "
            f"{listing(present)}. Give another --output."
        )
    inside = next((p for p in path.resolve().parents if is_kinit_run(p)), None)
    if inside is not None:
        raise RunDirError(
            f"--output {path} is inside the run directory {inside}; give a folder outside it"
        )
    made = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"{rundir.reason(exc)} creating the run directory {path}") from None
    lock = RunLock(path)
    lock.made_dir = made
    in_the_way = foreign(path)  # under the lock: another run may have come and gone
    if in_the_way:
        lock.release()
        raise RunDirError(
            f"--overwrite replaces only the files kinit writes, and {path} holds others: "
            f"{listing(in_the_way)}. Move them away, or give another --output."
        )
    for name in _names(path):
        if name != rundir.MARKER:
            # A stale file would mix with the new run's: a checkpoint would even resume it.
            target = path / name
            real_dir = target.is_dir() and not target.is_symlink()
            shutil.rmtree(target) if real_dir else target.unlink()
    lock.declare(callback_paths)
    return lock


def _refuse_empty_marker(path: Path) -> None:
    """An empty marker says no more than "kinit began here": it lists no callback files and
    proves nothing of the files beside it, which --overwrite would delete."""
    if not records.read_bytes(path / rundir.MARKER).strip():
        raise RecordError(
            path / rundir.MARKER,
            "it is empty, so it does not show the files beside it are kinit's; --overwrite "
            "replaces none of them. Move them away, or give another --output",
        )


def links(run_dir: Path) -> list[str]:
    """The symbolic links where kinit or the run's callbacks write (relative paths): kinit's
    own names, backup/ and the callbacks' paths, at any depth. A link among a user's
    entries is theirs, and kinit touches none of those."""
    data = marker(run_dir)
    found = []
    for entry in sorted(run_dir.iterdir()):
        written = rundir.is_own_name(entry.name) or _matches(entry.name, data)
        if not written and entry.name not in (data.get("callback_files") or []):
            continue
        if entry.is_symlink():
            found.append(entry.name)
        elif entry.is_dir():
            found += [
                str(Path(top, name).relative_to(run_dir))
                for top, dirs, files in os.walk(entry)
                for name in sorted(dirs + files)
                if Path(top, name).is_symlink()
            ]
    return found


def refuse_links(run_dir: Path, option: str) -> None:
    """RunDirError when a run directory holds a link where kinit writes: a write through
    it would land outside the run (a marker truncated, a user's folder emptied)."""
    found = links(run_dir) if run_dir.is_dir() else []
    if found:
        raise RunDirError(
            f"{option} {run_dir}: the run directory " + _links_message(run_dir, found)
        )


def _links_message(run_dir: Path, found: Sequence[str]) -> str:
    shown = listing([f"{rel} -> {os.readlink(run_dir / rel)}" for rel in found])
    return (
        f"{'has symbolic links' if len(found) > 1 else 'has a symbolic link'} where "
        f"kinit writes: {shown}. kinit never writes, truncates or deletes through a link in a "
        "run directory; put the files themselves there, or give another run directory"
    )


def _matches(name: str, data: dict[str, Any]) -> bool:
    """Whether a run-directory entry is one the callbacks' declared paths could name: a
    format field ({epoch:02d}, {batch}) matches digits, one for a metric a number."""
    for declared in data.get("callback_paths") or []:
        parts = re.split(r"(\{[^}]*\})", declared)
        regex = "".join(
            (r"\d+" if re.match(r"\{(epoch|batch)\b", p) else r"[-+0-9.eEinfa]+")
            if p.startswith("{")
            else re.escape(p)
            for p in parts
        )
        if re.fullmatch(regex, name):
            return True
    return False


def has_marker(path: Path) -> bool:
    """Whether the folder holds kinit's marker: what reading counts as a run (a metrics.json
    anyone can write, so it proves nothing about the code the folder's config names)."""
    return (path / rundir.MARKER).is_file()


def is_kinit_run(path: Path) -> bool:
    """Whether kinit made the folder: its marker, or (runs older than the marker) a
    metrics.json that kinit wrote, which names kinit's version."""
    if has_marker(path):
        return True
    return "kinit" in (rundir.metrics(path).get("versions") or {})


def foreign(path: Path) -> list[str]:
    """Everything under the run directory that is not kinit's (relative paths): what
    --overwrite must not delete. Links are never kinit's, nor followed."""
    data = marker(path)
    recorded = data.get("callback_files")
    not_ours = set(data.get("not_ours") or [])
    out = []
    for entry in sorted(path.iterdir()):
        name = entry.name
        if entry.is_symlink():
            out.append(name)
        elif name == rundir.BACKUP and entry.is_dir():
            out += [
                f"{name}/{p.name}"
                for p in sorted(entry.iterdir())
                if p.is_symlink()
                or not p.is_file()
                or not (_BACKUP_FILES.fullmatch(p.name) or _BACKUP_TEMPORARY.fullmatch(p.name))
            ]
        elif rundir.is_own_name(name) and entry.is_file():
            continue
        elif recorded is not None:
            out += [rel for rel in _tree(path, entry) if rel not in recorded]
        elif _matches(name, data):  # a run in progress or killed: its callbacks' paths
            out += [rel for rel in _tree(path, entry) if rel in not_ours]
        else:
            out.append(name)
    return out


def _tree(root: Path, entry: Path) -> list[str]:
    """`entry` and, for a folder, everything under it, as paths relative to `root`."""
    rels = [str(entry.relative_to(root))]
    if entry.is_dir() and not entry.is_symlink():
        rels += [str(p.relative_to(root)) for p in sorted(entry.rglob("*"))]
    return rels


_MARKER_SHAPE = mapping(
    {},
    {
        "pid": count,
        "kinit": text,
        **{
            key: list_of(text)
            for key in ("callback_paths", "recorded", "callback_files", "not_ours")
        },
    },
)


def marker(run_dir: Path, strict: bool = False) -> dict[str, Any]:
    """The marker's record: empty when there is none, or it is empty (a run killed as it
    began). One that cannot be read back is a RecordError when `strict`, else empty too,
    which makes every file not named kinit's count as a user's."""
    try:
        if not records.read_bytes(run_dir / rundir.MARKER).strip():
            return {}
        return records.read_json(run_dir / rundir.MARKER, _MARKER_SHAPE)
    except FileNotFoundError:
        return {}
    except RecordError:
        if strict:
            raise
        return {}


def _names(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir()) if path.is_dir() else []


def listing(names: Sequence[str], most: int = 8) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")
