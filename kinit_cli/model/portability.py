"""Whether Keras alone can save and reload a built model: get_config/from_config per class.

Tutorial classes often have no `get_config`, or one whose keys `__init__` does not take
(Keras's base config adds `name`, `trainable`, `dtype`; an `__init__(self, units)` takes
none of them). Keras then writes a `.keras` file it cannot load, or none at all. kinit
finds such classes before training, so the run can be kept in a form kinit reloads itself
(the run's config.yaml rebuilds the model, model.weights.h5 fills it).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from kinit_cli.errors import keras_message
from kinit_cli.registry.registration import user_class, where_defined
from kinit_cli.registry.signatures import own_parameters
from kinit_cli.runtime import compat
from kinit_cli.runtime.imports import keras


@dataclass(frozen=True)
class Unsaveable:
    """A class in the model that does not round-trip through get_config/from_config."""

    class_name: str
    where: str  # file:line of its definition
    reason: str
    missing: tuple[str, ...]  # constructor parameters its config does not hold

    def message(self) -> str:
        fix = (
            f" A get_config() returning {', '.join(self.missing)} would fix it."
            if self.missing
            else ""
        )
        return f"{self.class_name} ({self.where}) cannot be reloaded by Keras: {self.reason}.{fix}"


def check(model: Any, records: dict[int, tuple[Any, Any]]) -> list[Unsaveable]:
    """Every user class among `model`'s layers and its variables' initializers that does
    not round-trip; Keras's and TensorFlow's own classes are taken as sound."""

    k = keras()
    parts = (k.initializers.Initializer, k.regularizers.Regularizer, k.constraints.Constraint)
    objects = []
    for layer in model.layers:
        # A Keras layer's config holds the user's regularizers and constraints too.
        objects += [layer] + [v for v in vars(layer).values() if isinstance(v, parts)]
    return check_objects(objects + [init for _, init in records.values()])


def check_objects(objects: list[Any]) -> list[Unsaveable]:
    """Like check(), for objects outside the layers: a loss, metrics, an optimizer and its
    learning-rate schedule, which model.keras saves with the compile config."""
    out: list[Unsaveable] = []
    seen: set[type] = set()
    for obj in objects:
        cls = type(obj)
        if cls in seen or not user_class(cls) or not hasattr(obj, "get_config"):
            continue
        seen.add(cls)
        found = _round_trip(obj)
        if found is not None:
            out.append(found)
    return out


def _round_trip(obj: Any) -> Unsaveable | None:
    cls = type(obj)
    params = _init_parameters(cls)
    try:
        config = obj.get_config()
    except Exception as exc:
        return Unsaveable(cls.__name__, where_defined(cls), _reason("get_config()", exc), params)
    missing = tuple(p for p in params if p not in config)
    try:
        with compat.stateless_scope():  # declare, do not draw, the weights a constructor makes
            cls.from_config(copy.deepcopy(config))
    except Exception as exc:
        return Unsaveable(
            cls.__name__, where_defined(cls), _reason("from_config(get_config())", exc), missing
        )
    if missing:
        own = any("get_config" in vars(k) for k in cls.__mro__ if user_class(k))
        reason = (
            "its get_config() leaves out constructor arguments"
            if own
            else "it defines no get_config(), so Keras saves none of its constructor arguments"
        )
        return Unsaveable(
            cls.__name__,
            where_defined(cls),
            f"{reason} and a reload would take their defaults",
            missing,
        )
    return None


def _init_parameters(cls: type) -> tuple[str, ...]:
    """The parameters the class's own `__init__` names (none when it inherits Keras's)."""
    defining = next(k for k in cls.__mro__ if "__init__" in vars(k))
    return tuple(p.name for p in own_parameters(cls)) if user_class(defining) else ()


def _reason(what: str, exc: BaseException) -> str:
    text = keras_message(exc)
    # Keras wraps the constructor's error in the whole config dump; keep the error.
    inner = re.search(
        r"(?:Exception encountered|Error encountered during deserialization): (.*)", text
    )
    if inner:
        text = inner.group(1)
    text = re.sub(r"\s*Example:.*", "", text)
    if "unexpected keyword argument" in text:
        text += (
            " (Keras's base get_config adds keys of its own, such as name and dtype: an "
            "__init__ that takes **kwargs and passes them to super().__init__(**kwargs) "
            "accepts them)"
        )
    return f"{what} fails: {text.rstrip('.')}"
