"""What a finished run directory says about itself, read as data (never its code): the
config it ran, its outcome and metrics, its curves, and its weights' statistics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kinit_cli.config import source as config_mod
from kinit_cli.errors import ConfigError, RecordError, UsageError
from kinit_cli.storage import ownership, records, rundir, sweepdir


@dataclass(frozen=True)
class RunRecord:
    """One run (a sweep's trial, or any kinit run directory) as its files record it."""

    run_dir: Path
    name: str  # the trial's name in its sweep, or the folder's name
    config: dict[str, Any]  # config.yaml as data ({} when the run has none yet)
    seed: int | None
    status: str  # completed, failed, diverged, interrupted; `missing`: no run directory
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # metrics.json
    history: list[dict[str, Any]] = field(default_factory=list)  # history.csv's rows
    weights_init: dict[str, dict[str, Any]] = field(default_factory=dict)  # by variable path
    weight_history: list[dict[str, Any]] = field(default_factory=list)  # weight-history.csv
    activations: dict[str, Any] | None = None  # activations-init.json
    notes: tuple[str, ...] = ()  # files that could not be read back, each named
    # A sweep's trial: its grid settings (trials.json), by key text; None outside a sweep.
    settings: dict[str, Any] | None = None

    @property
    def completed(self) -> bool:
        return self.status == "completed"


def read_run(
    run_dir: Path, name: str | None = None, settings: dict[str, Any] | None = None
) -> RunRecord:
    """The record of a kinit run directory; a side file that cannot be read back is left
    out with a note (what kinit cannot read, it does not trust)."""
    notes: list[str] = []

    def read(reader: Any, default: Any) -> Any:
        try:
            return reader(run_dir)
        except RecordError as exc:
            notes.append(str(exc))
            return default

    config = read(_config, {})
    metrics = read(lambda d: rundir.metrics(d, strict=True), {})
    status = metrics.get("status") or "interrupted"  # no record yet: it never finished
    seed = metrics.get("seed", config.get("seed"))
    return RunRecord(
        run_dir=run_dir,
        name=name or run_dir.name,
        config=config,
        seed=seed if isinstance(seed, int) else None,
        status=status,
        error=metrics.get("error"),
        metrics=metrics,
        history=read(lambda d: rundir.read_history(d / rundir.HISTORY), []),
        weights_init=read(rundir.initial_weights, None) or {},
        weight_history=read(rundir.read_weight_history, []),
        activations=read(rundir.read_activations, None),
        notes=tuple(notes),
        settings=settings,
    )


def _config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / rundir.CONFIG
    try:
        raw = records.read_bytes(path)
    except FileNotFoundError:
        return {}
    try:
        return config_mod.loads(raw.decode("utf-8"), str(path)).data
    except (ConfigError, UnicodeDecodeError) as exc:
        raise RecordError(path, f"it is not a config ({str(exc).splitlines()[0]})") from None


def collect(targets: Sequence[str | Path]) -> list[RunRecord]:
    """The runs the targets name, in order: a sweep directory stands for its trials (in
    trials.json's order; a trial that failed before its run directory existed is there
    too, `failed` with its error), a run directory for itself. UsageError for anything else."""
    out: list[RunRecord] = []
    for target in targets:
        path = Path(target)
        if sweepdir.is_sweep(path):
            out += sweep_records(path)
        elif ownership.is_kinit_run(path):
            out.append(read_run(path))
        else:
            raise UsageError(
                f"{path} is neither a kinit run directory nor a sweep directory (a run has "
                f"{rundir.MARKER}, a sweep {sweepdir.SWEEP})"
            )
    return out


def sweep_records(sweep_dir: Path) -> list[RunRecord]:
    """A sweep's trials as records, in order."""
    try:
        trials = sweepdir.read_trials(sweep_dir)
    except FileNotFoundError:
        return []
    except RecordError as exc:
        raise UsageError(str(exc)) from None
    out = []
    for trial in trials:
        run_dir = sweep_dir / trial["name"]
        if ownership.is_kinit_run(run_dir):
            out.append(read_run(run_dir, trial["name"], trial["settings"]))
            continue
        status = "failed" if trial["status"] == "failed" else "missing"
        out.append(
            RunRecord(
                run_dir=run_dir,
                name=trial["name"],
                config={},
                seed=trial["seed"],
                status=status,
                error=trial.get("error"),
                settings=trial["settings"],
            )
        )
    return out
