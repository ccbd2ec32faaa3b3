"""A built model's variables: what made each one, and a path for it that is the same in
every process.

Keras keeps no reference from a variable to the initializer that filled it, and names
unnamed variables and layers by process-wide counters; kinit records every `add_weight`
call during a build and names variables by the model's structure instead.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kinit_cli.registry.registration import user_class, where_defined
from kinit_cli.registry.signatures import own_parameters
from kinit_cli.runtime import compat
from kinit_cli.runtime.imports import keras


@dataclass
class WeightInfo:
    """One variable of a built model; a shared variable appears once with all its layers."""

    path: str
    shape: tuple[int, ...]
    dtype: str
    trainable: bool
    initializer: dict[str, Any] | None  # {class_name, config} of what made it; None: unknown
    layers: list[str]
    variable: Any = field(repr=False, compare=False, default=None)
    loaded_from: str | None = None  # 'source.keras:layer/variable' when init_from filled it
    loaded_sha256: str | None = None  # SHA-256 of the source's values it was filled with
    unknown: str | None = None  # why no initializer is known, where none is

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def first_difference(
    weights: list[WeightInfo], recorded: dict[str, tuple[int, ...]]
) -> tuple[str, str, str, int] | None:
    """Where a model's variables and a record of them (path -> shape) first part:
    (path, the model's shape or 'absent', the record's, how many differ); None when they
    agree."""
    held = {w.path: tuple(w.shape) for w in weights}
    paths = list(held) + [p for p in recorded if p not in held]
    differing = [p for p in paths if held.get(p) != recorded.get(p)]
    if not differing:
        return None
    first = differing[0]
    shape = lambda p, table: str(table[p]) if p in table else "absent"  # noqa: E731
    return first, shape(first, held), shape(first, recorded), len(differing)


@contextmanager
def recording_weights() -> Iterator[dict[int, tuple[Any, Any]]]:
    """Record `(variable, initializer)` for every `Layer.add_weight` call in the block.

    Keras keeps no reference from a variable to the initializer that filled it, and custom
    layers name their initializer attributes as they like; `add_weight` is the one place
    every layer goes through (in `build()` or in `__init__`).
    """
    layer_cls = keras().layers.Layer
    original = layer_cls.add_weight
    records: dict[int, tuple[Any, Any]] = {}

    def add_weight(self: Any, *args: Any, **kwargs: Any) -> Any:
        variable = original(self, *args, **kwargs)
        initializer = args[1] if len(args) > 1 else kwargs.get("initializer")
        if initializer is None:
            initializer = "glorot_uniform" if "float" in str(variable.dtype) else "zeros"
        records[id(variable)] = (variable, initializer)
        return variable

    layer_cls.add_weight = add_weight
    try:
        yield records
    finally:
        layer_cls.add_weight = original


def describe_initializer(initializer: Any) -> dict[str, Any] | None:
    """`{class_name, config}` of an initializer given as a name, an object or a function.

    TensorFlow's own initializers (`tf.random_normal_initializer()`, `tf.zeros_initializer()`,
    which tutorials pass to Keras) are not Keras objects but have the same class names and
    configs as Keras's (RandomNormal, Zeros, ...), so their record resolves to the same theory.
    """
    k = keras()
    if initializer is None:
        return None
    if isinstance(initializer, dict):  # a config's serialized form: {class_name, config, ...}
        try:
            initializer = k.initializers.get(copy.deepcopy(initializer))
        except Exception:  # a class nothing here defines: its name and parameters still tell
            name = initializer.get("registered_name") or initializer.get("class_name")
            if not isinstance(name, str):
                return None
            return {"class_name": name, "config": dict(initializer.get("config") or {})}
    if isinstance(initializer, str):
        try:
            initializer = k.initializers.get(initializer)
        except ValueError:
            return {"class_name": initializer, "config": {}}
    if isinstance(initializer, k.initializers.Initializer):
        name = k.saving.get_registered_name(type(initializer))
        config = {key: v for key, v in initializer.get_config().items() if v is not None}
        config.update(_unserialized_arguments(initializer, config))
        if isinstance(initializer, k.initializers.Identity) and "gain" not in config:
            # Keras's Identity.get_config() leaves its gain out; the theory check needs it.
            config["gain"] = float(initializer.gain)
        return {"class_name": name, "config": config}
    if inspect.isfunction(initializer) or inspect.ismethod(initializer):
        return {"class_name": k.saving.get_registered_name(initializer), "config": {}}
    if callable(initializer):  # an object with __call__: TensorFlow's initializers and the like
        get_config = getattr(initializer, "get_config", None)
        try:
            config = get_config() if callable(get_config) else {}
        except Exception:  # user code: a broken get_config only loses the parameters
            config = {}
        config = {key: _plain_value(v) for key, v in dict(config).items() if v is not None}
        return {"class_name": type(initializer).__name__, "config": config}
    return None  # an initial value (array) rather than an initializer


def _unserialized_arguments(obj: Any, config: dict[str, Any]) -> dict[str, Any]:
    """A user initializer's constructor arguments its get_config leaves out, read from the
    attributes of the same names (`self.mean = mean`, the tutorials' way), so the report
    says `ScaledNormal(mean=0.0, stddev=0.1)` where the class has no get_config."""
    if not user_class(type(obj)):
        return {}
    out = {}
    for p in own_parameters(type(obj)):
        value = getattr(obj, p.name, None)
        if p.name not in config and isinstance(value, bool | int | float | str):
            out[p.name] = value
    return out


def _plain_value(value: Any) -> Any:
    """A config value as YAML/JSON can hold it (TensorFlow configs may hold NumPy scalars)."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


# Keras's name for a variable made without one: `variable`, `variable_1`, ... process-wide.
_UNNAMED = re.compile(r"variable(_\d+)?")


def variable_paths(model: Any) -> dict[int, str]:
    """A path for every variable of `model` that does not depend on what else the process built.

    `layer/name` for a variable its layer named; unnamed variables are numbered within their
    layer in creation order (`variable`, `variable_1`); a nested layer is named by the
    attribute that holds it (`hidden`, `blocks.0`), or by its own name in a Keras container.
    """
    paths: dict[int, str] = {}
    for layer in model.layers:
        _name_variables(layer, layer.name, paths)
    return paths


def _name_variables(layer: Any, prefix: str, paths: dict[int, str]) -> None:
    children = sublayers(layer)
    inner = {id(v) for _, sub in children for v in sub.weights}
    used: dict[str, int] = {}
    unnamed = 0
    for v in layer.weights:
        if id(v) in inner or id(v) in paths:
            continue
        if _UNNAMED.fullmatch(v.name):
            leaf = "variable" if unnamed == 0 else f"variable_{unnamed}"
            unnamed += 1
        else:
            leaf = v.name
        if leaf in used:  # two variables a layer named alike
            used[leaf] += 1
            leaf = f"{leaf}_{used[leaf]}"
        used.setdefault(leaf, 0)
        paths[id(v)] = f"{prefix}/{leaf}"
    for segment, sub in children:
        _name_variables(sub, f"{prefix}/{segment}", paths)


def sublayers(layer: Any) -> list[tuple[str, Any]]:
    """A layer's direct sub-layers as (path segment, layer), in the order Keras tracks them."""
    tracked = compat.tracked_layers(layer)
    if not tracked:
        return []
    layer_cls = keras().layers.Layer
    held: dict[int, str] = {}

    def hold(value: Any, segment: str) -> None:
        if isinstance(value, layer_cls):
            held.setdefault(id(value), segment)
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                hold(item, f"{segment}.{i}")
        elif isinstance(value, dict):
            for key, item in value.items():
                hold(item, f"{segment}.{key}")

    for attr, value in vars(layer).items():
        if not attr.startswith("_"):
            hold(value, attr)
    out, seen = [], set()
    for sub in tracked:
        if id(sub) in seen:
            continue
        seen.add(id(sub))
        out.append((held.get(id(sub), sub.name), sub))
    return out


def untracked_weights(model: Any) -> list[tuple[Any, list[str]]]:
    """(top-level layer, ['attr (tf.Variable)', ...]) for weights Keras 3 does not track.

    Keras 3 trains and saves only variables made by `add_weight` (or `keras.Variable`);
    a `tf.Variable` attribute, the Keras 2 and TensorFlow-guide way, is invisible to it: the
    model would train without it and report 0 parameters for it.
    """
    import sys

    import numpy as np

    # A tf.Variable exists only where TensorFlow is loaded (its backend, or a plugin's own).
    tf = sys.modules.get("tensorflow")
    tf_variable = tf.Variable if tf is not None and hasattr(tf, "Variable") else ()
    k = keras()
    out = []
    for top in model.layers:
        found: list[str] = []
        stack: list[tuple[str, Any]] = [("", top)]
        while stack:
            prefix, layer = stack.pop()
            for attr, value in vars(layer).items():
                items = value if isinstance(value, list | tuple) else [value]
                for item in items:
                    if isinstance(item, tf_variable) and not isinstance(item, k.Variable):
                        found.append(f"{prefix}{attr} (tf.Variable)")
                        break
                    if (
                        isinstance(item, np.ndarray)
                        and item.dtype.kind == "f"
                        and item.ndim >= 2
                        and not layer.weights
                    ):
                        found.append(f"{prefix}{attr} (NumPy array)")
                        break
            stack += [(f"{prefix}{seg}.", sub) for seg, sub in sublayers(layer)]
        if found:
            out.append((top, found))
    return out


def untracked_message(layer: Any, attributes: list[str]) -> str:
    names = ", ".join(attributes)
    return (
        f"{type(layer).__name__} '{layer.name}' ({where_defined(type(layer))}) keeps weights "
        f"Keras 3 does not track: {names}. They would be neither trained nor saved. Make "
        "each with self.add_weight(shape=..., initializer=..., trainable=True) in build() "
        "or __init__ instead."
    )


def weight_infos(model: Any, records: dict[int, tuple[Any, Any]] | None = None) -> list[WeightInfo]:
    """Every variable of `model` once, with its layers and the initializer that made it.

    `records` (from recording_weights) are exact; for a variable they lack, the layer that
    owns it (the innermost, for sub-layers a class makes itself) is asked by Keras's
    convention: its `<name>_initializer` attribute or config key (owned_initializer).
    """
    users: dict[int, list[str]] = {}
    for layer in model.layers:
        for v in layer.weights:
            names = users.setdefault(id(v), [])
            if layer.name not in names:
                names.append(layer.name)
    owners = _owners(model)
    paths = variable_paths(model)
    infos, seen = [], set()
    for v in model.weights:
        if id(v) in seen:
            continue
        seen.add(id(v))
        unknown = None
        if records is not None and id(v) in records:
            init = describe_initializer(records[id(v)][1])
        else:
            init, unknown = owned_initializer(owners.get(id(v)), v.name)
        path = paths.get(id(v)) or v.path.removeprefix(f"{model.name}/")
        infos.append(
            WeightInfo(
                path,
                tuple(v.shape),
                str(v.dtype),
                bool(v.trainable),
                init,
                users.get(id(v), []),
                v,
                unknown=unknown,
            )
        )
    return infos


def _owners(model: Any) -> dict[int, Any]:
    """id(variable) -> the layer that made it: the innermost one holding it as its own."""
    owners: dict[int, Any] = {}
    for layer in compat.all_layers(model):
        for v in compat.own_variables(layer):
            owners.setdefault(id(v), layer)
    return owners


def owned_initializer(layer: Any, name: str) -> tuple[dict[str, Any] | None, str | None]:
    """(the initializer of `layer`'s variable `name`, None), or (None, why none is known):
    the layer's `<name>_initializer` attribute, else what its config names
    (config_initializer)."""
    if layer is None:
        return None, "no layer of the model owns this variable, so no initializer is known"
    for key in _initializer_keys(name):
        found = describe_initializer(getattr(layer, key, None))
        if found is not None:
            return found, None
    others = [v.name for v in compat.own_variables(layer) if v.name != name]
    found, lacks = config_initializer(_config_of(layer), name, others)
    if found is not None:
        return found, None
    return None, (
        f"no initializer is known: {type(layer).__name__} '{layer.name}' did not make "
        f"'{name}' with add_weight(initializer=...) while kinit watched, and its config {lacks}"
    )


def config_initializer(
    config: dict[str, Any], name: str, others: Sequence[str] = ()
) -> tuple[dict[str, Any] | None, str]:
    """The initializer a layer's config (get_config()'s, or config.json's) names for its
    variable `name`, as `{class_name, config}`; else (None, what the config lacks).

    Keras's convention, which libraries follow: `kernel` -> `kernel_initializer`,
    `embeddings` -> `embeddings_initializer`, `moving_mean` -> `moving_mean_initializer`,
    `depthwise_kernel` -> `depthwise_initializer`, `recurrent_kernel` ->
    `recurrent_initializer`. A class that names its variable otherwise (DepthwiseConv2D's
    `kernel`, made by its depthwise_initializer) gets the one initializer the config names
    for none of the layer's `others` variables.
    """
    for key in _initializer_keys(name):
        found = describe_initializer(config.get(key))
        if found is not None:
            return found, ""
    claimed = {key for other in others for key in _initializer_keys(other)}
    spare = [k for k, v in config.items() if k.endswith("_initializer") and v and k not in claimed]
    if len(spare) == 1:
        found = describe_initializer(config[spare[0]])
        if found is not None:
            return found, ""
    which = f" (only {' and '.join(spare)}: which one made it is ambiguous)" if spare else ""
    return None, f"names no {_initializer_keys(name)[0]}{which}"


def _initializer_keys(name: str) -> list[str]:
    """The config keys Keras's convention gives a variable's initializer."""
    return list(
        dict.fromkeys((f"{name}_initializer", f"{name.removesuffix('_kernel')}_initializer"))
    )


def _config_of(layer: Any) -> dict[str, Any]:
    try:
        config = layer.get_config()
    except Exception:  # user code: a broken get_config only loses this fallback
        return {}
    return config if isinstance(config, dict) else {}


def digest(array: np.ndarray) -> str:
    """SHA-256 of the values' bytes: what reports, init_from and --check identify values by
    (stats.moments computes the same one while it scans)."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
