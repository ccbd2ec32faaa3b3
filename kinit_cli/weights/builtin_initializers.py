"""Keras's built-in initializers read from their configs alone, without importing Keras.

`--check` of a `.keras` file read from its files (model.weights_file) needs the theory of
each initializer its config.json records; for Keras's own classes that theory follows from
the class and its arguments, with the defaults and aliases of `keras/src/initializers/`
(Keras 3), so Keras (and TensorFlow) need not be imported to know it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Builtin:
    """One of Keras's initializers as its arguments describe it: the attributes theory.py
    reads from a Keras object of the same class."""

    name: str  # the class name, as Keras registers it
    family: str  # variance_scaling | normal | truncated_normal | uniform | constant | ...
    scale: float = 1.0
    mode: str = "fan_in"
    distribution: str = "truncated_normal"
    input_axes: Any = None
    output_axes: Any = None
    mean: float = 0.0
    stddev: float = 0.05
    minval: float = -0.05
    maxval: float = 0.05
    value: Any = 0.0
    gain: float = 1.0


_AXES = ("seed", "input_axes", "output_axes")


def _scaled(scale: float, mode: str, distribution: str) -> tuple[Builtin, tuple[str, ...]]:
    return Builtin("", "variance_scaling", scale, mode, distribution), _AXES


# class name -> (its defaults, the arguments its constructor takes)
_CLASSES: dict[str, tuple[Builtin, tuple[str, ...]]] = {
    "VarianceScaling": (
        Builtin("", "variance_scaling"),
        ("scale", "mode", "distribution", *_AXES),
    ),
    "GlorotUniform": _scaled(1.0, "fan_avg", "uniform"),
    "GlorotNormal": _scaled(1.0, "fan_avg", "truncated_normal"),
    "LecunUniform": _scaled(1.0, "fan_in", "uniform"),
    "LecunNormal": _scaled(1.0, "fan_in", "truncated_normal"),
    "HeUniform": _scaled(2.0, "fan_in", "uniform"),
    "HeNormal": _scaled(2.0, "fan_in", "truncated_normal"),
    "RandomNormal": (Builtin("", "normal"), ("mean", "stddev", "seed")),
    "TruncatedNormal": (Builtin("", "truncated_normal"), ("mean", "stddev", "seed")),
    "RandomUniform": (Builtin("", "uniform"), ("minval", "maxval", "seed")),
    "Zeros": (Builtin("", "constant", value=0.0), ()),
    "Ones": (Builtin("", "constant", value=1.0), ()),
    "Constant": (Builtin("", "constant"), ("value",)),
    "Identity": (Builtin("", "identity"), ("gain",)),
    "Orthogonal": (Builtin("", "orthogonal"), ("gain", "seed")),
}


def _snake_case(name: str) -> str:
    """keras.src.utils.naming.to_snake_case."""
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


# Every name keras.initializers.get takes for them (ALL_OBJECTS_DICT): class names,
# snake_case names and the old aliases.
_NAMES = {
    **{n: n for n in _CLASSES},
    **{_snake_case(n): n for n in _CLASSES},
    "IdentityInitializer": "Identity",
    "normal": "RandomNormal",
    "one": "Ones",
    "OrthogonalInitializer": "Orthogonal",
    "uniform": "RandomUniform",
    "zero": "Zeros",
}


def builtin(initializer: Any) -> Builtin | None:
    """The Builtin a name or {class_name, config} record names; None for anything else (a
    plugin's class, an object, arguments the class would refuse), which Keras resolves."""
    if isinstance(initializer, str):
        name, config = initializer, {}
    elif isinstance(initializer, dict):
        name, config = initializer.get("class_name"), initializer.get("config") or {}
        if initializer.get("module") not in (None, "keras.initializers"):
            return None
        if initializer.get("registered_name") not in (None, name):
            return None
    else:
        return None
    if not isinstance(name, str) or name not in _NAMES or not isinstance(config, dict):
        return None
    canonical = _NAMES[name]
    defaults, accepted = _CLASSES[canonical]
    if any(key not in accepted for key in config):
        return None  # Keras says what is wrong with it
    given = {k: v for k, v in config.items() if k != "seed" and v is not None}
    found = replace(defaults, name=canonical, **given)
    return _valid(found)


def _valid(found: Builtin) -> Builtin | None:
    """`found` as Keras's constructor normalizes it; None where Keras would raise."""
    if found.family != "variance_scaling":
        return found
    distribution = str(found.distribution).lower()
    distribution = "truncated_normal" if distribution == "normal" else distribution
    if distribution not in ("uniform", "truncated_normal", "untruncated_normal"):
        return None
    if found.mode not in ("fan_in", "fan_out", "fan_avg") or not float(found.scale) > 0:
        return None
    return replace(found, distribution=distribution)
