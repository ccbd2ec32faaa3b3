"""--resume: a run continues from its own config, and only its number of epochs may change."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kinit_cli.config import schema
from kinit_cli.config import source as config_mod
from kinit_cli.errors import RecordError, RunDirError, UsageError
from kinit_cli.model import sources
from kinit_cli.model.prepared import Checked
from kinit_cli.storage import checkpoint, ownership, rundir


def saved_config(
    run_dir: Path, config_path: str | None, overrides: Sequence[str], requested: str | None = None
) -> Checked:
    """The run's own config, read once, after checking that what was given alongside (a
    CONFIG, --set, --backend: `requested`) changes only train.epochs; with that change
    applied."""
    ownership.refuse_links(run_dir, "--resume")
    ownership.marker(run_dir, strict=True)  # what is the user's must be known
    if not ownership.is_kinit_run(run_dir):
        raise UsageError(
            f"--resume {run_dir}: not a kinit run directory (it has no {rundir.MARKER}, nor a "
            f"{rundir.METRICS} kinit wrote)"
        )
    saved_path = rundir.config_of(run_dir, "--resume")
    saved = config_mod.load(saved_path)
    ran_on = saved.data.get("backend") or "tensorflow"  # runs from before backend: were TF's
    if requested and requested != ran_on:
        raise UsageError(
            f"--resume {run_dir}: the run trains on backend {ran_on}; --backend "
            f"{requested} cannot continue it"
        )
    saved.data.setdefault("backend", ran_on)
    checked = sources.check_config(saved, requested=requested)
    if config_path is None and not overrides:
        return checked
    old = checked.settings.document()
    given = config_mod.load(config_path or saved_path, overrides)
    new = schema.validate(given)
    # What the run's config left to defaults was filled in when it ran.
    filled = (("seed",), ("backend",), ("train", "steps_per_execution"), ("train", "jit_compile"))
    for path in filled:
        *parents, key = path
        old_part, new_part = old, new
        for p in parents:
            old_part, new_part = old_part[p], new_part[p]
        if new_part[key] is None:
            new_part[key] = old_part[key]
    if config_path is not None and not given.data.get("name"):
        new["name"] = old["name"]
    differences = [
        f"{path}: {a!r} in the run, {b!r} now"
        for path, a, b in _diff(old, new, "")
        if path != "train.epochs"
    ]
    if differences:
        raise UsageError(
            f"--resume {run_dir}: only train.epochs may change when resuming; "
            "these differ:\n  " + "\n  ".join(differences)
        )
    if new["train"]["epochs"] == old["train"]["epochs"]:
        return checked
    # From --set or from the CONFIG given with --resume: the one change allowed.
    config_mod.apply_overrides(saved, [f"train.epochs={new['train']['epochs']}"])
    return sources.check_config(saved, requested=requested)


def _diff(a: Any, b: Any, path: str) -> list[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in list(a) + [k for k in b if k not in a]:
            sub = f"{path}.{key}" if path else key
            out += _diff(a.get(key), b.get(key), sub)
        return out
    return [] if a == b else [(path, a, b)]


def up_to_date(run_dir: Path, epochs: int) -> bool:
    """Whether the run already has `epochs` epochs: then --resume has nothing to do. A
    completed run continues from its backup when asked for more; fewer is refused."""
    try:
        done = checkpoint.completed_epochs(run_dir)
        record = rundir.metrics(run_dir, strict=True)
        _records_agree(run_dir, done, record)
    except RecordError as exc:
        raise RunDirError(
            f"--resume {run_dir}: {exc}; put the file back as the run left it, or start the "
            "run again"
        ) from None
    if done > epochs:
        raise UsageError(
            f"--resume {run_dir}: the run has trained {done} epochs, and train.epochs={epochs} "
            f"asks for fewer; give train.epochs={done} or more"
        )
    if record.get("status") != "completed":
        return False
    if done == 0:  # completed before runs kept their backup: there is no state to go on from
        trained = record.get("epochs")
        if trained == epochs:
            return True
        raise UsageError(
            f"--resume {run_dir}: the run completed {trained} epochs without keeping a backup "
            "(runs made before kinit kept one), so it cannot go on with its optimizer's state; "
            f"start a new run from its weights with init_from: {{source: {run_dir}}}"
        )
    # A continuation that failed after its last epoch's backup still has its files to write.
    return done == epochs and record.get("epochs") == epochs


def _records_agree(run_dir: Path, done: int, record: dict[str, Any]) -> None:
    """RecordError when metrics.json counts more epochs than the backup holds: the backup
    is committed before the record, so the record can lag behind it (a killed run), never
    lead. A run completed before runs kept their backup has none to compare."""
    attempt = record.get("continuation") or record
    recorded = attempt.get("epochs")
    legacy = done == 0 and attempt.get("status") == "completed"
    if recorded is None or recorded <= done or legacy:
        return
    backup = run_dir / rundir.BACKUP / checkpoint.METADATA
    holds = f"holds {done} epoch{'' if done == 1 else 's'}" if done else "holds none"
    raise RecordError(
        run_dir / rundir.METRICS,
        f"`{'continuation.' if attempt is not record else ''}epochs` is {recorded}, "
        f"but the backup {backup} {holds}",
    )
