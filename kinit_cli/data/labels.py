"""The labels against the model and the loss: checked before training, not by TensorFlow.

A label past the output's last unit makes the sparse cross-entropy fail deep inside
TensorFlow's graph (a page of graph dump, after the run directory was started); a label
that no output unit can predict makes the accuracy meaningless. Only losses and metrics
whose label contract is known are checked: Keras's own, given by name, function or
instance; a plugin's (or a subclass of Keras's) may take any labels it likes.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import numpy as np

from kinit_cli.errors import DataError

if TYPE_CHECKING:
    from kinit_cli.data.splits import Splits

# By name without underscores, lower case -> the Keras spelling used in messages.
SPARSE = {  # class ids 0..units-1, one per example
    "sparsecategoricalcrossentropy": "sparse_categorical_crossentropy",
    "sparsecategoricalaccuracy": "sparse_categorical_accuracy",
    "sparsetopkcategoricalaccuracy": "sparse_top_k_categorical_accuracy",
}
ONE_HOT = {  # one row per example, as wide as the output
    "categoricalcrossentropy": "categorical_crossentropy",
    "categoricalfocalcrossentropy": "categorical_focal_crossentropy",
}
# Keras's wrappers of a plain function: the function says what they compute.
_WRAPPERS = ("LossFunctionWrapper", "MeanMetricWrapper")


def contract(objective: Any) -> tuple[str, str, Any] | None:
    """('sparse' or 'one_hot', the Keras name, its ignore_class) for a Keras loss or metric
    given as a name, a function or an instance; None when its contract is not known."""
    if isinstance(objective, str):
        package, _, name = objective.rpartition(">")
        if package and package.lower() != "keras":
            return None
        ignore = None
    else:
        target = objective if inspect.isfunction(objective) else type(objective)
        if target.__name__ in _WRAPPERS:
            target = getattr(objective, "fn", None)
            if not inspect.isfunction(target):
                return None
        if not target.__module__.startswith("keras."):
            return None
        name, ignore = target.__name__, getattr(objective, "ignore_class", None)
    key = name.replace("_", "").lower()
    if key in SPARSE:
        return "sparse", SPARSE[key], ignore
    if key in ONE_HOT:
        return "one_hot", ONE_HOT[key], ignore
    return None


def check_labels(data: Splits, model: Any, loss: Any, metrics: Any = ()) -> None:
    """DataError when the labels cannot be what the model's output and the loss expect:
    sparse losses take integer class ids 0..units-1 (`ignore_class` aside), categorical
    ones one-hot rows as wide as the output.

    Args:
        data: the loaded data set (data.load).
        model: the built Keras model, with one output.
        loss: compile's `loss` as kinit builds it (a name, a function or a Loss); None for none.
        metrics: compile's metrics; the first with a known contract is used when the loss
            has none.
    """
    found = None
    for objective in (loss, *metrics):
        found = None if objective is None else contract(objective)
        if found is not None:
            break
    outputs = getattr(model, "outputs", None) or []
    if found is None or len(outputs) != 1:
        return
    kind, name, ignore = found
    shape = tuple(outputs[0].shape)
    units = shape[-1] if len(shape) >= 2 else None
    if units is None:
        return
    layer = model.layers[-1].name
    splits = (("y_train", data.y_train), ("y_val", data.y_val), ("y_test", data.y_test))
    labels = {key: y for key, y in splits if y is not None and len(y)}
    if kind == "one_hot":
        _check_one_hot(labels, name, layer, units)
    else:
        _check_ids(labels, name, layer, units, ignore)


def _check_one_hot(labels: dict[str, np.ndarray], name: str, layer: str, units: int) -> None:
    for key, y in labels.items():
        if y.ndim == 1:
            raise DataError(
                f"the data has class ids ({key} has shape {y.shape}, one integer per example) "
                f"but {name} takes one-hot labels as wide as the last layer ('{layer}', "
                f"{units} units); use sparse_categorical_crossentropy for class ids"
            )
        if y.shape[-1] != units:
            raise DataError(
                f"the data has one-hot labels of width {y.shape[-1]} ({key} has shape "
                f"{y.shape}) but the last layer ('{layer}') has {units} units; {name} needs "
                "one unit per label column"
            )


def _check_ids(
    labels: dict[str, np.ndarray], name: str, layer: str, units: int, ignore: Any
) -> None:
    """Every way the labels are not class ids the output can predict, in one DataError."""
    takes = f"{name} takes class ids 0..{units - 1}"
    problems: list[str] = []
    lo = hi = None
    for key, y in labels.items():
        kept = y if ignore is None else y[y != ignore]
        if not kept.size:
            continue
        if not np.issubdtype(kept.dtype, np.integer):
            fractional = kept[np.mod(kept, 1) != 0]
            if fractional.size:
                problems.append(f"the data has the non-integer label {fractional[0]} (in {key})")
                continue
        y_lo, y_hi = int(kept.min()), int(kept.max())
        if y_lo < 0:
            problems.append(f"the data has the label {y_lo} (in {key})")
        lo = y_lo if lo is None else min(lo, y_lo)
        hi = y_hi if hi is None else max(hi, y_hi)
    if hi is not None and hi >= units:
        problems.append(
            f"the data has labels {max(lo or 0, 0)}..{hi} ({hi + 1} classes) but the last "
            f"layer ('{layer}') has {units} units"
        )
        takes += f". Give the last layer one unit per class, or relabel the data to 0..{units - 1}."
    if problems:
        raise DataError("; ".join(problems) + f"; {takes}")


# Keras's losses that compare a value with a value (by name without underscores, lower
# case): a table's label column is then a number to predict, not a class.
REGRESSION = {
    "meansquarederror",
    "mse",
    "meanabsoluteerror",
    "mae",
    "meanabsolutepercentageerror",
    "mape",
    "meansquaredlogarithmicerror",
    "msle",
    "huber",
    "logcosh",
}


def task_of(loss: Any) -> str:
    """ "regression" when compile.loss (a name or a {class_name, config} spec, as the config
    holds it) is one of Keras's regression losses, else "classification"."""
    name = loss.get("class_name") if isinstance(loss, dict) else loss
    if not isinstance(name, str):
        return "classification"
    package, _, name = name.rpartition(">")
    if package and package.lower() != "keras":
        return "classification"
    return "regression" if name.replace("_", "").lower() in REGRESSION else "classification"
