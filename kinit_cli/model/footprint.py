"""The memory a config's model needs, known before a weight is allocated.

Building allocates and fills every weight, before anything could refuse a model too large
(BENCHMARKS.md, "The memory check's parameter count"). `check()` counts the parameters
first, each layer built on a symbolic input under Keras's StatelessScope, where variables
get a shape and never a value (a 2.4e10-parameter Dense is counted in milliseconds), and
refuses a model whose weights cannot fit in the memory this machine has available. A layer
that cannot be built that way (a plugin whose build() reads a weight's value) is sized by
its rule in layer_sizes.py, and the count stops at a layer neither can size (such a
plugin's, a shared layer): what it counted so far is a lower bound, and a lower bound that
does not fit is reason enough to refuse. Activations, TensorFlow's own buffers and the data
are not counted. A `.keras` file's config.json is sized by the rules alone
(`check_saved()`), from the input shapes its layers recorded: reading a file runs none of
its code before its size is known.

Keras is imported only where the caller holds a Registry (plugins loaded, so Keras is in
already): without one, as for the config checks, the rules alone answer.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from dataclasses import dataclass
from typing import Any

from kinit_cli.errors import ResourceError
from kinit_cli.model.layer_sizes import MERGES, RULES, Shape
from kinit_cli.runtime import compat, memory
from kinit_cli.runtime.imports import keras

FLAG = memory.FLAG
_ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}


@dataclass(frozen=True)
class Estimate:
    """The parameters a model spec makes, and whether every layer was counted."""

    parameters: int
    itemsize: int  # bytes per parameter: 4 (float32) unless every counted layer says else
    stopped_at: str | None = None  # the first layer not sized: `parameters` is a lower bound

    @property
    def bytes(self) -> int:
        return self.parameters * self.itemsize


def estimate(model: dict[str, Any], registry: Any = None) -> Estimate:
    """Parameters of the `model:` section (validated) as kinit would build it.

    Args:
        model: the resolved config's `model` section.
        registry: the Registry the model will be built with: each `class_name` is resolved
            through it, so aliases and plugins mean what they mean when building. Without
            it, names are taken as Keras's own spellings.
    """
    if "inputs" in model:
        return _functional(model, registry)
    if "class_name" in model:  # one class is the whole model: nothing to read its size from
        return Estimate(0, 4, "model")
    shape: Shape = tuple(model["input_shape"])
    total, sizes = 0, set()
    for i, entry in enumerate(model["layers"]):
        counted = _layer(entry, shape, registry)
        if counted is None:
            return Estimate(total, _itemsize(sizes), f"model.layers[{i}]")
        total, shape = total + counted[0], counted[1]
        sizes.add(_dtype_size(entry))
    return Estimate(total, _itemsize(sizes))


def _functional(model: dict[str, Any], registry: Any) -> Estimate:
    """A graph of named layers: a layer whose inputs are not all sized is not counted, nor
    is anything downstream of it; the rest are still real parameters."""
    shapes: dict[str, Shape] = {item["name"]: tuple(item["shape"]) for item in model["inputs"]}
    total, sizes, stopped = 0, set(), None
    for i, entry in enumerate(model["layers"]):
        inputs = entry.get("inputs")
        names = [inputs] if isinstance(inputs, str) else inputs if isinstance(inputs, list) else []
        # Only a call on plain names is sized: constants or keywords may change its output.
        plain = all(isinstance(n, str) for n in names) and not {"args", "kwargs"} & set(entry)
        given = [shapes.get(n) for n in names] if plain else [None]
        counted = None
        if names and all(s is not None for s in given) and "shares" not in entry:
            if len(given) == 1:
                counted = _layer(entry, given[0], registry)
            else:
                counted = _merge(entry, given, registry)
        if counted is None:
            stopped = stopped or f"model.layers[{i}]"
            continue
        total += counted[0]
        sizes.add(_dtype_size(entry))
        if entry.get("name"):
            shapes[entry["name"]] = counted[1]
    return Estimate(total, _itemsize(sizes), stopped)


def saved_estimate(config: dict[str, Any]) -> Estimate:
    """Parameters the layers of a .keras file's config.json declare, before Keras builds any.

    Each of Keras's own layers is sized by RULES from the input shape its `build_config`
    records, else from the layer before it (as a Sequential feeds it); nested models are
    walked; any other layer stops the count there, a lower bound.
    """
    total, sizes, stopped = 0, set(), None
    models = [config]
    while models:
        inner = models.pop().get("config")
        layers = inner.get("layers") if isinstance(inner, dict) else None
        shape: Shape | None = None
        for i, entry in enumerate(layers if isinstance(layers, list) else []):
            if not isinstance(entry, dict):
                continue
            shape = _recorded_shape(entry, shape)
            layer_config = entry.get("config")
            if isinstance(layer_config, dict) and isinstance(layer_config.get("layers"), list):
                models.append(entry)  # a nested model: its layers record their own shapes
                shape = None
                continue
            counted = _saved_layer(entry, shape)
            if counted is None:
                stopped = stopped or f"config.json layers[{i}] ({entry.get('class_name')})"
                shape = None
                continue
            total, shape = total + counted[0], counted[1]
            sizes.add(_dtype_size(entry))
    return Estimate(total, _itemsize(sizes), stopped)


def _recorded_shape(entry: dict[str, Any], previous: Shape | None) -> Shape | None:
    """A saved layer's input shape without the batch axis: its build_config's, an
    InputLayer's batch_shape, or the previous layer's output."""
    config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
    build = entry.get("build_config")
    recorded = build.get("input_shape") if isinstance(build, dict) else None
    if entry.get("class_name") == "InputLayer":
        recorded = config.get("batch_shape") or config.get("batch_input_shape")
    if not isinstance(recorded, list) or not recorded:
        return previous
    if not all(d is None or (isinstance(d, int) and d >= 0) for d in recorded):
        return None  # several inputs, or not a shape
    return tuple(recorded[1:])


def _saved_layer(entry: dict[str, Any], shape: Shape | None) -> tuple[int, Shape] | None:
    """(parameters, output shape) of one of Keras's layers in a config.json, or None."""
    if entry.get("class_name") == "InputLayer":
        return (0, shape) if shape is not None else None
    module = entry.get("module")
    if shape is None or not (isinstance(module, str) and module.startswith("keras")):
        return None
    rule = RULES.get(entry.get("class_name"))  # type: ignore[arg-type]
    config = entry.get("config")
    if rule is None or not isinstance(config, dict):
        return None
    try:
        parameters, out = rule(config, shape)
    except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError):
        return None
    return max(0, parameters), out


def _itemsize(sizes: set[int]) -> int:
    # The smallest the layers name: an overestimate could refuse a model that fits.
    return min(sizes, default=4)


def _dtype_size(entry: dict[str, Any]) -> int:
    """Bytes per weight of a layer: its config's `dtype` when a plain float type, else 4
    (the mixed policies keep float32 variables)."""
    dtype = (entry.get("config") or {}).get("dtype")
    if isinstance(dtype, dict):  # a saved DTypePolicy: {"class_name": ..., "config": {"name"}}
        dtype = (dtype.get("config") or {}).get("name")
    return _ITEMSIZE.get(dtype, 4) if isinstance(dtype, str) else 4


def _class_name(entry: dict[str, Any], registry: Any) -> str | None:
    """The Keras (or kinit built-in layer) class an entry names, or None for any other."""
    name = entry.get("class_name")
    if not isinstance(name, str):
        return None
    if registry is None:
        bare = name.rpartition(">")[2]
        return bare if bare in RULES or bare in MERGES else None
    try:
        cls = registry.resolve("layer", name).obj
    except Exception:  # not resolvable: building reports it, the estimate just stops
        return None
    module = getattr(cls, "__module__", "")
    if module.startswith("keras.") or module == "kinit_cli.plugins.layers":
        return cls.__name__
    return None


def _layer(entry: dict[str, Any], shape: Shape, registry: Any) -> tuple[int, Shape] | None:
    """(parameters, output shape) of one layer: built symbolically, else by its rule."""
    return _symbolic(entry, [shape], registry) or _by_rule(entry, shape, registry)


def _by_rule(entry: dict[str, Any], shape: Shape, registry: Any) -> tuple[int, Shape] | None:
    """The fallback for a layer that cannot be built symbolically, and the whole count where
    Keras is not loaded: Keras's arithmetic for its own layers, written out in layer_sizes."""
    name = _class_name(entry, registry)
    rule = RULES.get(name) if name else None
    if rule is None:
        return None
    try:
        return rule(entry.get("config") or {}, shape)
    except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError):
        return None  # a config the rule does not understand: building will say what is wrong


# Arguments that shape no weight; left out for Keras's own layers, where each has a
# default, since a plugin's initializer named in them is not Keras's to resolve.
_NO_SHAPE = ("_initializer", "_regularizer", "_constraint", "activation")


def _symbolic(
    entry: dict[str, Any], shapes: list[Shape], registry: Any
) -> tuple[int, Shape] | None:
    """(parameters, output shape) of the layer an entry makes, called on symbolic inputs
    with its variables declared only (compat.declared_only): exact for any layer whose
    build() needs no values, allocating nothing. None without a registry, or when the layer
    cannot be made or built that way: building then reports it, and the rules may size it."""
    if registry is None or "class_name" not in entry:
        return None
    k = keras()
    inputs = [k.KerasTensor((None, *shape)) for shape in shapes]
    # torch traces on its "meta" device and, where that fails, again on the real one,
    # drawing the weights: kept on "meta", such a layer fails here instead.
    meta = k.device("meta") if k.backend.backend() == "torch" else contextlib.nullcontext()
    try:
        with compat.fresh_object_names(), compat.declared_only(), meta, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # build-time advice: building shows what matters
            layer = _made(entry, registry)
            # Built in a scratch trace, where a weight's value is symbolic: a build() that
            # reads one (to NumPy) fails there instead of drawing it. Then called as Keras
            # calls it while building a model (compute_output_shape where a layer has one).
            built = [(None, *shape) for shape in shapes]
            compat.compute_output_spec(
                lambda *_: layer.build(built[0] if len(built) == 1 else built), *inputs
            )
            out = layer(inputs[0] if len(inputs) == 1 else inputs)
            parameters = int(layer.count_params())
    except Exception:  # whatever a class raises here, building raises again and reports
        return None
    if not isinstance(out, k.KerasTensor):
        return None  # several outputs: nothing downstream can name one of them
    return parameters, tuple(out.shape[1:])


def _made(entry: dict[str, Any], registry: Any) -> Any:
    """The layer an entry names, made from its config; a `{class_name, config}` value that
    names a layer (a wrapper's `layer:`) is made first. For Keras's own classes, arguments
    that shape no weight are left to their defaults (a plugin initializer is not Keras's
    to resolve)."""
    cls = registry.resolve("layer", entry["class_name"]).obj
    config = copy.deepcopy(entry.get("config") or {})
    if getattr(cls, "__module__", "").startswith("keras."):
        config = {k: v for k, v in config.items() if not k.endswith(_NO_SHAPE)}
    for key, value in config.items():
        if isinstance(value, dict) and "class_name" in value:
            with contextlib.suppress(Exception):  # not a layer: the class takes it as is
                config[key] = _made(value, registry)
    return cls(**config)


def _merge(entry: dict[str, Any], shapes: list[Shape], registry: Any) -> tuple[int, Shape] | None:
    """Layers of several inputs, built symbolically; else, by rule, merges have no weights
    and Concatenate joins along its axis (-1 only)."""
    built = _symbolic(entry, shapes, registry)
    if built is not None:
        return built
    name = _class_name(entry, registry)
    if name in MERGES and name != "Concatenate":
        return (0, shapes[0]) if all(s == shapes[0] for s in shapes) else None
    if name == "Concatenate" and (entry.get("config") or {}).get("axis", -1) == -1:
        if any(s[-1] is None for s in shapes):
            return None
        return 0, (*shapes[0][:-1], sum(s[-1] for s in shapes))  # type: ignore[misc]
    return None


def optimizer_slots(spec: Any) -> tuple[str, int]:
    """(its name, the copies of every weight it keeps): Adam 2 (m and v), SGD with momentum
    1, ...; 0 for optimizers not listed, so training counts at least weights and gradients."""
    name = spec if isinstance(spec, str) else (spec or {}).get("class_name", "")
    config = {} if isinstance(spec, str) else (spec or {}).get("config") or {}
    bare = str(name).rpartition(">")[2]
    key = bare.replace("_", "").lower()
    if key in ("adam", "adamw"):
        return bare, 2 + bool(config.get("amsgrad"))
    if key in ("nadam", "adamax", "adadelta", "ftrl", "lamb"):
        return bare, 2
    if key in ("adagrad", "lion"):
        return bare, 1
    if key == "rmsprop":
        return bare, 1 + bool(config.get("momentum")) + bool(config.get("centered"))
    if key == "sgd":
        return bare, int(bool(config.get("momentum")))
    return bare, 0


def check(
    model: dict[str, Any],
    available: int | None = None,
    *,
    optimizer: Any = None,
    training: bool = False,
    registry: Any = None,
    ignore: bool | None = None,
) -> None:
    """ResourceError when the model's parameters cannot fit in the available memory.

    Args:
        model: the config's `model` section.
        available: bytes available (default: memory.available_bytes(); unknown: nothing
            refused).
        optimizer: `compile.optimizer`, a name or a spec (what training keeps per weight).
        training: count what training keeps per weight too: the gradients and the
            optimizer's slots (Adam: weights, gradients, m and v, 4x the weights).
        registry: the Registry the model is built with (see estimate()).
        ignore: skip the check (default: whether --ignore-memory-check was given).
    """
    if memory.ignored() if ignore is None else ignore:
        return
    found = estimate(model, registry)
    if not training:
        _refuse(found, available)
        return
    named, slots = optimizer_slots(optimizer)
    kept = f", and {named} keeps {slots} more per weight" if slots else ""
    _refuse(
        found,
        available,
        2 + slots,
        f"training the model needs {{}}: its weights take {{}}, the gradients as much again{kept}",
    )


def check_saved(config: dict[str, Any], path: str, available: int | None = None) -> None:
    """ResourceError when the weights a .keras file's config.json declares cannot fit twice
    in the available memory (the model's variables, and the values read from the file),
    checked before Keras builds a layer."""
    if memory.ignored():
        return
    _refuse(
        saved_estimate(config),
        available,
        2,
        "reading the model needs {}: its weights take {}, the values read from the file as "
        "much again",
        f"{path}: ",
    )


def _refuse(
    found: Estimate, available: int | None, copies: int = 1, many: str = "", where: str = ""
) -> None:
    """ResourceError when `copies` of the weights `found` counts do not fit in `available`
    bytes (default: what the machine has); `many` says what the copies are."""
    if available is None:
        available = memory.available_bytes()
    needed = found.bytes * copies
    if available is None or needed <= available:
        return
    least = "at least " if found.stopped_at else ""
    dtype = {2: "16-bit floats", 4: "float32", 8: "float64"}[found.itemsize]
    weights = (
        f"{least}{memory.size_text(found.bytes)} ({_count(found.parameters)} parameters as {dtype})"
    )
    if copies == 1 or found.bytes > available:
        what = f"the model's weights alone need {weights}"
    else:
        what = many.format(least + memory.size_text(needed), weights) + f" ({copies}x in all)"
    counted = (
        f" (a lower bound: kinit cannot size {found.stopped_at} and what follows it before "
        "building)"
        if found.stopped_at
        else ""
    )
    raise ResourceError(
        f"{where}{what}{counted} but this machine has {memory.size_text(available)} available; "
        f"pass {FLAG} to try anyway",
        needed,
        available,
    )


def _count(n: int) -> str:
    """1,234,567 below ten million, 3.0e10 above."""
    if n < 10_000_000:
        return f"{n:,}"
    mantissa, exponent = f"{n:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"
