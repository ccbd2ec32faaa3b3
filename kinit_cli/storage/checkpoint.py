"""The backup a run keeps for --resume: the weights with the optimizer's state after the last
full epoch, and the history up to it, committed together.

Keras's BackupAndRestore writes `latest.weights.h5` and its metadata in place, one after the
other: a full disk left a truncated checkpoint that --resume could not read, and a kill
between the two writes paired one epoch's weights with another's count. Here each epoch's
weights go to a file of their own (written to a temporary name and renamed), and only then
does the metadata, renamed over the old one, point to them: whatever stops the process, the
metadata names a complete file and the epoch and history that belong to it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kinit_cli.errors import RecordError, RunDirError, keras_message
from kinit_cli.storage import records, rundir
from kinit_cli.storage.records import count, list_of, mapping, nullable, number

METADATA = "training_metadata.json"  # Keras's name, so a backup Keras wrote still resumes
_KERAS_WEIGHTS = "latest.weights.h5"
# The weights files commit() writes (and Keras's), the only ones it ever removes.
_WEIGHTS_FILES = re.compile(r"epoch-\d{5}\.weights\.h5|latest\.weights\.h5")
_METADATA_SHAPE = mapping(
    {"epoch": count},
    {
        "weights": records.file_name,
        "history": nullable(list_of(mapping({"epoch": count}))),
        "generators": list_of(list_of(number)),
    },
)


@dataclass
class State:
    """A complete backup: `epoch` epochs trained, their weights file, their history rows
    (None for a backup Keras wrote, which keeps no history) and the random generators'
    states (see generators())."""

    epoch: int
    weights: Path
    history: list[dict[str, Any]] | None = field(default=None)
    generators: list[list[int]] = field(default_factory=list)


def generators(model: Any) -> list[Any]:
    """The state variables of the model's random generators (Dropout's, a noise layer's):
    save_weights leaves them out, so a resumed run would draw other dropout masks than
    the uninterrupted one. Keras names every SeedGenerator's state so."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def restore(state: State, model: Any) -> None:
    """Put the backup's state back into the model: the weights with the optimizer's
    variables (built first, so there is somewhere to load them), and the random
    generators' states."""
    optimizer = model.optimizer
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)
    try:
        model.load_weights(state.weights)
    except Exception as exc:  # Keras says why in a ValueError, h5py in an OSError
        raise RunDirError(
            f"cannot restore the backup {state.weights} into the run's model: {unfit(exc)}"
        ) from exc
    held = generators(model)
    if len(held) == len(state.generators):
        for variable, value in zip(held, state.generators, strict=True):
            size = math.prod(variable.shape)
            if len(value) != size:
                raise RecordError(
                    state.weights.with_name(METADATA),
                    f"a random generator's state has {len(value)} values where the model's "
                    f"{variable.path} holds {size}",
                )
            variable.assign(np.asarray(value, dtype=variable.dtype).reshape(variable.shape))


# Keras's load_weights error: the first object that did not fit, then its variable with
# all its values, then every object (the values alone can run to megabytes).
_SHAPES = re.compile(
    r"for object <\w+ name=(?P<layer>[^,>]+).*?variable\.shape=(?P<model>\([^)]*\)), "
    r"Received: value\.shape=(?P<backup>\([^)]*\))\. Target variable: <Variable "
    r"path=(?P<path>[^,>]+)",
    re.DOTALL,
)


def unfit(exc: BaseException) -> str:
    """Why the backup does not fit, in a line: the first variable whose shape differs, or
    Keras's first sentence (never a variable's values nor the list of objects)."""
    found = _SHAPES.search(str(exc))
    if found:
        variable = found["path"].rsplit("/", 1)[-1]
        return (
            f"the layer {found['layer']}'s {variable} is {found['backup']} in the backup and "
            f"{found['model']} in the model"
        )
    message = keras_message(exc) or type(exc).__name__
    message = re.split(r" Target variable: | List of objects |, value=", message)[0]
    return message if len(message) <= 300 else message[:297] + "..."


def read(backup_dir: Path) -> State | None:
    """The last complete backup in `backup_dir`, or None when there is none; RecordError
    when its metadata cannot be read back or the weights it names are gone (resuming
    without them would start from fresh weights and a fresh optimizer)."""
    try:
        meta = records.read_json(backup_dir / METADATA, _METADATA_SHAPE)
    except FileNotFoundError:
        return None
    weights = backup_dir / meta.get("weights", _KERAS_WEIGHTS)
    if not weights.is_file():
        raise RecordError(
            backup_dir / METADATA,
            f"the weights and optimizer state after epoch {meta['epoch']} it names, "
            f"{weights}, are missing",
        )
    _agrees(backup_dir / METADATA, meta)
    return State(meta["epoch"], weights, meta.get("history"), meta.get("generators", []))


def _agrees(path: Path, meta: dict[str, Any]) -> None:
    """RecordError when the metadata contradicts itself: an edited `epoch` would resume
    the weights of one epoch as another's and record a wrong count."""
    epoch = meta["epoch"]
    named = re.fullmatch(r"epoch-(\d{5})\.weights\.h5", meta.get("weights", ""))
    if named and int(named[1]) != epoch:
        raise RecordError(
            path,
            f"`epoch` is {epoch}, but the weights it names, {path.with_name(named[0])}, "
            f"are epoch {int(named[1])}'s",
        )
    history = meta.get("history")
    if history is not None and len(history) != epoch:
        raise RecordError(
            path, f"`epoch` is {epoch}, but its `history` holds {len(history)} epochs"
        )


def completed_epochs(run_dir: Path) -> int:
    """Epochs the run's last complete backup holds (0 when there is none)."""
    state = read(run_dir / rundir.BACKUP)
    return state.epoch if state else 0


def commit(backup_dir: Path, epoch: int, model: Any, history: list[dict[str, Any]]) -> None:
    """Save the model's state after `epoch` epochs, then point the metadata at it, then drop
    the backup it replaces. Raises WriteError with nothing committed when a write fails."""
    backup_dir.mkdir(exist_ok=True)
    name = f"epoch-{epoch:05d}.weights.h5"
    rundir.save_weights(model, backup_dir / name)
    states = [np.asarray(v.numpy()).ravel().tolist() for v in generators(model)]
    rundir.write_json(
        backup_dir / METADATA,
        {"epoch": epoch, "weights": name, "history": history, "generators": states},
    )
    for old in backup_dir.iterdir():
        if old.name != name and _WEIGHTS_FILES.fullmatch(old.name) and not old.is_symlink():
            old.unlink(missing_ok=True)
