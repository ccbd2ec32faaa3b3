"""A trained model and what its inputs go through, read from a run directory or a `.keras`
file: what predict, evaluate and `kinit_cli.load_run` start from.

A run directory is read as inspect-weights reads it (model.sources.read): its model.keras,
or its weights put into the model its config.yaml builds, the run's plugins imported only
as the Trust allows. Its preprocessing.json says how inputs become the model's; a run
trained before kinit kept one gets the preprocessing training applied to arrays then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kinit_cli.config.settings import Settings
from kinit_cli.data import preprocessing as records
from kinit_cli.data.labels import task_of
from kinit_cli.data.preprocessing import Preprocessing
from kinit_cli.errors import UsageError
from kinit_cli.inference.inputs import open_input
from kinit_cli.model import saved, sources
from kinit_cli.model.prepared import Checked
from kinit_cli.registry.catalog import Registry
from kinit_cli.registry.trust import Trust


@dataclass(frozen=True)
class LoadedRun:
    """A trained Keras model ready to predict, and how its inputs are prepared.

    `settings` and `run_dir` are None for a `.keras` file, which records no preprocessing:
    its inputs are taken as the model's own (no scale, no standardisation) and its classes
    are named by their ids. `notes`: what works but deserves a word (stderr).
    """

    model: Any
    preprocessing: Preprocessing
    settings: Settings | None
    run_dir: Path | None
    target: str
    checked: Checked | None = None
    notes: tuple[str, ...] = ()
    recorded: bool = True  # preprocessing.json was there (False: the arrays fallback)
    compile_config: dict[str, Any] | None = field(default=None, repr=False)
    task: str = "classification"  # or "regression": values out, no classes

    @property
    def class_names(self) -> tuple[str, ...]:
        """One name per class of a classifier: the run's classes, else the ids (two for a
        model with one sigmoid unit)."""
        names = self.preprocessing.names()
        classes = max(self.output_units, 2)
        return names if len(names) == classes else tuple(str(i) for i in range(classes))

    @property
    def output_units(self) -> int:
        return _units(self.model)

    def compile_args(self) -> dict[str, Any]:
        """model.compile's arguments as train built them: the run's loss and metrics (the
        plugins they need were imported when the run was read, as far as Trust allowed)."""
        if self.checked is None:
            return {}
        config, settings = self.checked.config, self.checked.settings
        return sources.compile_arguments(config, settings, Registry())

    def preprocess(self, source: str | Path | Sequence[str] | np.ndarray) -> np.ndarray:
        """The model's input for `source` (a table path, image paths or an image folder, an
        .npy/.npz path or an array), prepared exactly as predict prepares it."""
        opened = open_input(source, self)
        parts = [batch.x for batch in opened.batches(max(1, opened.rows))]
        if not parts:
            return np.zeros((0, *self.preprocessing.input_shape), np.float32)
        return np.concatenate(parts)


def load(target: str | Path, trust: Trust | None = None, requested: str | None = None) -> LoadedRun:
    """Read a run directory (model.keras or weights only) or a `.keras` file, with its
    weights restored; UsageError for anything else."""
    trust = trust or Trust()
    path = Path(target)
    if path.exists() and not path.is_dir() and path.suffix != ".keras":
        raise UsageError(
            f"{target}: expected a run directory (kinit train's output) or a saved model (.keras)"
        )
    loaded = sources.read(str(path), trust, requested=requested)
    model = loaded.model
    if loaded.stored is not None:
        # Read without a rebuild: the variables hold what their initializers drew, the
        # file's values are beside them.
        for variable in model.weights:
            variable.assign(loaded.stored[id(variable)])
    notes = list(loaded.notes)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UsageError(
            f"{target}: kinit predicts with models of one input and one output; this one has "
            f"{len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    shape = tuple(model.inputs[0].shape[1:])
    if path.is_dir():
        checked = loaded.checked
        assert checked is not None  # a run's config.yaml, read by sources.read
        prep = records.read(path)
        recorded = prep is not None
        if prep is None:
            prep = fallback(checked.settings, shape, _units(model))
        task = prep.task if prep.table is not None else task_of(checked.settings.compile.loss)
        return LoadedRun(
            model,
            prep,
            checked.settings,
            path,
            str(target),
            checked,
            tuple(notes),
            recorded,
            task=task,
        )
    prep = Preprocessing(kind="arrays", input_shape=shape, num_classes=_units(model))
    notes.append(
        f"{target} is a saved model without a run's records: its inputs are taken as the "
        "model's own (no scaling, no standardisation) and its classes are named by their ids"
    )
    compile_config = saved.read_config(path).get("compile_config")
    task = task_of((compile_config or {}).get("loss"))
    return LoadedRun(
        model, prep, None, None, str(target), None, tuple(notes), False, compile_config, task
    )


def fallback(settings: Settings, input_shape: tuple[Any, ...], units: int) -> Preprocessing:
    """The preprocessing of a run trained before kinit kept preprocessing.json: arrays,
    uint8 pixels divided by 255 when the run normalised, flattened when the model takes
    vectors, classes named by their ids."""
    return Preprocessing(
        kind="arrays",
        input_shape=input_shape,
        scale=255.0 if settings.data.normalize else None,
        flatten=len(input_shape) == 1 if settings.data.flatten is None else settings.data.flatten,
        num_classes=units,
    )


def _units(model: Any) -> int:
    """Units of the model's one output (1 for a scalar output)."""
    shape = tuple(model.outputs[0].shape) if model.outputs else (None, 1)
    return int(shape[-1] or 1) if len(shape) > 1 else 1
