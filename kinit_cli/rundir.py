"""The run directory: where a run's config, model, history and reports land, written atomically."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kinit_cli.errors import UsageError

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


def default_path(name: str) -> Path:
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def create(path: Path, overwrite: bool) -> None:
    """Make the run directory; never reuse a non-empty one without `overwrite`."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"--output {path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise UsageError(
                f"run directory {path} already exists and is not empty; give another "
                "--output, add --overwrite to replace kinit's files in it, or continue it "
                f"with --resume {path}"
            )
        # A stale checkpoint would make the new run resume the old one.
        shutil.rmtree(path / BACKUP, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)


@contextmanager
def replacing(path: Path, suffix: str) -> Iterator[str]:
    """A temporary file name beside `path` (ending in `suffix`, for writers that go by it)
    that replaces `path` when the block ends, so readers never see half a file; removed if
    the block fails. The file gets the mode a plain `open` would give it, not mkstemp's
    owner-only 0600."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    with replacing(path, ".tmp") as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False, allow_nan=True) + "\n")


def save_model(model: Any, path: Path) -> None:
    """`model.save` through replacing() (Keras goes by the `.keras` suffix)."""
    with replacing(path, ".keras") as tmp:
        model.save(tmp)


def save_weights(model: Any, path: Path) -> None:
    """`model.save_weights` through replacing() (Keras wants the `.weights.h5` suffix)."""
    with replacing(path, ".weights.h5") as tmp:
        model.save_weights(tmp, overwrite=True)


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


def completed_epochs(run_dir: Path) -> int:
    """Epochs the last checkpoint holds (0 when there is none)."""
    meta = run_dir / BACKUP / "training_metadata.json"
    if not meta.exists():
        return 0
    return int(json.loads(meta.read_text())["epoch"])
