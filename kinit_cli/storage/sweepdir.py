"""A sweep directory's own files: what `kinit sweep` writes beside its trials' run
directories, and how a reader (compare, the summary) finds the trials in it.

    DIR/sweep.yaml     the config's text, --set, the grid and the seeds: what reruns it
    DIR/trials.json    every trial in order: its folder, settings, seed, status and error
    DIR/summary.csv    one row per combination of the grid
    DIR/<trial>/       one run directory per trial, as `kinit train` makes it
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kinit_cli.storage import records
from kinit_cli.storage.records import count, list_of, mapping, nullable, text

SWEEP = "sweep.yaml"
TRIALS = "trials.json"
SUMMARY = "summary.csv"
OWN_FILES = (SWEEP, TRIALS, SUMMARY)

# Where a trial stands: pending until a worker reports; then its run's status, or failed
# when it failed before its run directory existed.
STATUSES = ("pending", "completed", "failed", "diverged", "interrupted")


def _status(value: Any, where: str) -> str | None:
    if value not in STATUSES:
        return f"`{where}` must be one of {', '.join(STATUSES)}; it is {value!r}"
    return None


def _settings(value: Any, where: str) -> str | None:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        return f"`{where}` must be a mapping of config keys to values"
    return None


_TRIAL = mapping(
    {
        "name": records.file_name,
        "combination": count,
        "settings": _settings,
        "seed": count,
        "status": _status,
    },
    {"error": nullable(text)},
)
TRIALS_RECORD = mapping({"trials": list_of(_TRIAL)})


def is_sweep(path: Path) -> bool:
    return (path / SWEEP).is_file()


def read_trials(sweep_dir: Path) -> list[dict[str, Any]]:
    """trials.json's entries in order; RecordError when it cannot be read back,
    FileNotFoundError when the sweep has none yet."""
    return records.read_json(sweep_dir / TRIALS, TRIALS_RECORD)["trials"]
