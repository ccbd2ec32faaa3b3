"""Model spec -> built Keras model (Sequential, functional, or one class).

Weights are created while the model is built, before compile or fit, as Keras does when
the input shape is known; variables.py records what made each one. Constructors get only
the arguments the YAML holds: names and the output dtype are set on the layer afterwards.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kinit_cli.config.model_fields import is_ref, reference_parts
from kinit_cli.config.settings import Settings
from kinit_cli.config.source import Config, KeyPath
from kinit_cli.errors import ConfigError, did_you_mean, explained, keras_message, raised_in
from kinit_cli.model import footprint, portability
from kinit_cli.model.variables import (
    WeightInfo,
    recording_weights,
    untracked_message,
    untracked_weights,
    weight_infos,
)
from kinit_cli.registry import tf_ops
from kinit_cli.registry.catalog import Registry
from kinit_cli.registry.registration import source_file, user_class
from kinit_cli.registry.specs import FAILED, SpecBuilder
from kinit_cli.runtime import compat, imports
from kinit_cli.runtime.imports import keras
from kinit_cli.runtime.recursion import mappings_in, room_for


@dataclass
class LayerInfo:
    """One layer: its class, where it is applied and what it outputs."""

    name: str
    class_name: str
    calls: list[str]  # node names where the layer is applied (functional form)
    output_shapes: list[tuple[int | None, ...]]
    params: int


@dataclass
class BuiltModel:
    model: Any
    layers: list[LayerInfo]
    weights: list[WeightInfo]
    # Classes Keras alone cannot save and reload (portability.Unsaveable).
    unsaveable: list[Any] = field(default_factory=list)

    @property
    def trainable_params(self) -> int:
        return sum(w.size for w in self.weights if w.trainable)

    @property
    def non_trainable_params(self) -> int:
        return sum(w.size for w in self.weights if not w.trainable)


def build(
    config: Config, settings: Settings, registry: Registry, training: bool = False
) -> BuiltModel:
    """Build the model the config describes; raise ConfigError with every problem found.
    `training`: the memory check counts what training keeps per weight too. init_from is
    applied by model.sources, which reads its source."""
    # Before allocating what cannot fit.
    footprint.check(
        settings.model, optimizer=settings.compile.optimizer, training=training, registry=registry
    )
    spec = settings.model
    builder = SpecBuilder(registry, config)
    name = spec.get("name") or _keras_name(settings.name or "model")
    sites: dict[int, KeyPath] = {}  # id(top-level layer) -> the config entry that made it
    with (
        room_for(mappings_in(spec)),
        compat.fresh_object_names(),
        recording_weights() as records,
        _keras_warnings(),
    ):
        if "inputs" in spec:
            model, calls, shapes = _functional(spec, builder, name, sites)
        elif "class_name" in spec:
            model, calls, shapes = _whole(spec, builder, name, sites)
        else:
            model, calls, shapes = _sequential(spec, builder, name, sites)
    if model is not None:
        _trace_calls(model, builder, sites)
        for layer, attributes in untracked_weights(model):
            builder.problem(sites.get(id(layer), ("model",)), untracked_message(layer, attributes))
    if builder.problems or model is None:
        raise ConfigError(builder.problems)
    return BuiltModel(
        model,
        _layer_infos(model, calls, shapes, inputs="inputs" in spec),
        weight_infos(model, records),
        portability.check(model, records),
    )


@contextmanager
def _keras_warnings() -> Iterator[None]:
    """Keras's build-time UserWarnings ('looks like it has unbuilt state', 'build() was
    called on layer ... does not have a build() method') point tutorial code that builds
    fine, or fails for another reason, at a red herring: shown with --debug only."""
    import warnings

    with warnings.catch_warnings():
        if not imports.native_logs():
            # By category, not module: Keras attributes them to the caller's frame (stacklevel).
            warnings.simplefilter("ignore", category=UserWarning)
        yield


def _keras_name(text: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in text)


def _sequential(spec: dict[str, Any], builder: SpecBuilder, name: str, sites: dict[int, KeyPath]):
    """Layers in sequence; an entry `{shares: NAME}` applies the layer NAME above once more."""
    k = keras()
    layers: list[Any] = []
    by_name: dict[str, Any] = {}
    last = len(spec["layers"]) - 1
    named = [bool((entry.get("config") or {}).get("name")) for entry in spec["layers"]]
    taken = {entry["config"]["name"] for entry, n in zip(spec["layers"], named, strict=True) if n}
    for i, entry in enumerate(spec["layers"]):
        path: KeyPath = ("model", "layers", i)
        if "shares" in entry:
            layer = by_name.get(entry["shares"])
            if layer is None:
                hint = did_you_mean(entry["shares"], list(by_name))
                builder.problem(
                    path + ("shares",),
                    f"'{entry['shares']}' is not a layer defined above.{hint} "
                    f"Layers above: {', '.join(by_name) or 'none'}.",
                )
            layers.append(layer)
            continue
        layer = builder.build("layer", entry, path)
        if layer is FAILED:
            layers.append(None)
            continue
        if not named[i]:
            # Keras's own counter also counts the sub-layers a class makes in __init__
            # (a block of two Dense makes the next top-level Dense `dense_2`): number
            # top-level layers within the model instead, as a user reads the list.
            layer.name = _local_name(type(layer).__name__, taken)
        taken.add(layer.name)
        if i == last:
            _float32_output(layer, entry)
        by_name[layer.name] = layer
        sites[id(layer)] = path
        layers.append(layer)
    if builder.problems:
        return None, {}, {}
    inputs = k.Input(shape=tuple(spec["input_shape"]), name="input_layer")
    if not any("shares" in entry for entry in spec["layers"]):
        model = _linear(k, name, inputs, layers, builder)
        if model is None:
            return None, {}, {}
        return model, {}, {layer.name: [tuple(layer.output.shape)] for layer in model.layers}
    # A layer applied twice in sequence: Keras's Sequential holds each layer once, so the
    # same chain is built as a functional model.
    x = inputs
    calls: dict[str, list[str]] = {}
    shapes: dict[str, list[tuple[int | None, ...]]] = {}
    for i, layer in enumerate(layers):
        try:
            x = layer(x)
        except Exception as exc:
            builder.problem(("model", "layers", i), _call_failure(layer, exc))
            return None, {}, {}
        calls.setdefault(layer.name, []).append(f"layers[{i}]")
        shapes.setdefault(layer.name, []).append(tuple(_first(x).shape))
    return k.Model(inputs, x, name=name), calls, shapes


def _linear(k: Any, name: str, inputs: Any, layers: list[Any], builder: SpecBuilder) -> Any:
    """The Sequential model of `layers`, built once when all are in (as
    `keras.Sequential([...])` builds): adding them one by one rebuilds the whole chain at
    every step, which took 30 s for 400 layers. None, with the problem at the layer that
    failed, when one does."""
    model = k.Sequential(name=name)
    model.add(inputs, rebuild=False)
    for i, layer in enumerate(layers):
        try:
            model.add(layer, rebuild=False)
        except Exception as exc:
            builder.problem(("model", "layers", i), _call_failure(layer, exc))
            return None
    try:
        model.build((None, *inputs.shape[1:]))
    except Exception as exc:
        i = _failed_layer(exc, layers)
        if i is None:
            return _one_by_one(k, name, inputs, layers, builder)
        builder.problem(("model", "layers", i), _call_failure(layers[i], exc))
        return None
    return model


def _failed_layer(exc: BaseException, layers: list[Any]) -> int | None:
    """Which of `layers` raised `exc` while the model was built: the outermost frame of its
    traceback that runs one of them (their own call(), or Keras's on their behalf)."""
    index = {id(layer): i for i, layer in enumerate(layers)}
    tb = exc.__traceback__
    while tb is not None:
        me = tb.tb_frame.f_locals.get("self")
        if me is not None and id(me) in index:
            return index[id(me)]
        tb = tb.tb_next
    return None


def _one_by_one(k: Any, name: str, inputs: Any, layers: list[Any], builder: SpecBuilder) -> None:
    """Find the layer that fails by adding the layers in turn (quadratic, but only where a
    build failed and its traceback does not say which layer raised)."""
    model = k.Sequential(name=name)
    model.add(inputs)
    for i, layer in enumerate(layers):
        try:
            model.add(layer)
        except Exception as exc:
            builder.problem(("model", "layers", i), _call_failure(layer, exc))
            return None
    builder.problem(("model", "layers"), "the model could not be built")
    return None


def _local_name(class_name: str, taken: set[str]) -> str:
    """`simple_dense`, then `simple_dense_1`, ...: the first name of the class not taken."""
    base = snake_case(class_name)
    candidate, n = base, 0
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}"
    return candidate


def snake_case(name: str) -> str:
    """Keras's own rule (keras.src.utils.naming.to_snake_case): SimpleDense -> simple_dense,
    LSTM -> lstm, SimpleRNN -> simple_rnn."""
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _float32_output(layer: Any, entry: dict[str, Any]) -> None:
    """Under a mixed-precision policy an output layer computes in float32 (softmax and the
    loss lose too much in float16), unless its config names a dtype itself. Set on the
    layer, not passed to its constructor, which may not take `dtype`."""
    if not keras().mixed_precision.dtype_policy().name.startswith("mixed"):
        return
    if "dtype" not in (entry.get("config") or {}):
        layer.dtype_policy = "float32"


def _whole(spec: dict[str, Any], builder: SpecBuilder, name: str, sites: dict[int, KeyPath]):
    """`model: {class_name, config, input_shape}`: one class (a keras.Model subclass, say)
    is the whole model, applied to an input of `input_shape`. Without input_shape the
    class must build itself (a library's functional backbone): what it makes is the model."""
    k = keras()
    layer = builder.build(
        "layer", {"class_name": spec["class_name"], "config": spec.get("config")}, ("model",)
    )
    if layer is FAILED:
        return None, {}, {}
    named = bool((spec.get("config") or {}).get("name"))
    if "input_shape" not in spec:
        if not named:
            layer.name = name
        return _built_itself(layer, builder)
    if not named:
        layer.name = _local_name(type(layer).__name__, set())
    sites[id(layer)] = ("model",)
    _float32_output(layer, spec)
    inputs = k.Input(shape=tuple(spec["input_shape"]), name="input_layer")
    try:
        outputs = layer(inputs)
    except Exception as exc:
        builder.problem(("model",), _call_failure(layer, exc))
        return None, {}, {}
    model = k.Model(inputs, outputs, name=name)
    return model, {}, {layer.name: [tuple(_first(outputs).shape)]}


def _built_itself(model: Any, builder: SpecBuilder):
    """The model a class made whole in its constructor (its inputs and outputs known), or
    the problem that asks for the input shape of one that did not."""
    if isinstance(model, keras().Model) and model.built and _has_inputs(model):
        shapes = {
            layer.name: [tuple(_first(layer.output).shape)]
            for layer in model.layers
            if _has_output(layer)
        }
        return model, {}, shapes
    builder.problem(
        ("model",),
        f"missing 'input_shape': {type(model).__name__} does not build itself when it is "
        "made (it is not a functional model of its own inputs), so the config needs the "
        "shape it is applied to (model.input_shape)",
        at_key=True,
    )
    return None, {}, {}


def _has_inputs(model: Any) -> bool:
    try:
        return bool(model.inputs)
    except (AttributeError, ValueError):
        return False


def _has_output(layer: Any) -> bool:
    try:
        layer.output  # noqa: B018 - Keras raises for a layer applied at several places
    except (AttributeError, ValueError):
        return False
    return True


def _functional(spec: dict[str, Any], builder: SpecBuilder, name: str, sites: dict[int, KeyPath]):
    k = keras()
    outputs = [spec["outputs"]] if isinstance(spec["outputs"], str) else spec["outputs"]
    tensors: dict[str, Any] = {}
    for item in spec["inputs"]:
        tensors[item["name"]] = k.Input(
            shape=tuple(item["shape"]), name=item["name"], dtype=item.get("dtype")
        )
    output_names = {reference_parts(o)[0] for o in outputs}
    layers: dict[str, Any] = {}
    calls: dict[str, list[str]] = {}
    shapes: dict[str, list[tuple[int | None, ...]]] = {}
    for i, entry in enumerate(spec["layers"]):
        path: KeyPath = ("model", "layers", i)
        node = entry["name"]
        if "shares" in entry:
            layer = layers.get(entry["shares"])
        else:
            spec_only = {"class_name": entry["class_name"], "config": entry.get("config")}
            layer = builder.build("layer", spec_only, path)
            layer = None if layer is FAILED else layer
            if layer is not None:
                # The entry's name names the layer: set on it, since a constructor written
                # without **kwargs takes no `name`.
                layer.name = node
                if node in output_names:
                    _float32_output(layer, entry)
                layers[node] = layer
                sites[id(layer)] = path
        arguments = _arguments(entry, tensors, builder, path)
        if layer is None or arguments is None:
            continue  # already reported, here or upstream
        try:
            out = layer(*arguments[0], **arguments[1])
        except Exception as exc:
            builder.problem(path, _call_failure(layer, exc))
            continue
        tensors[node] = out
        calls.setdefault(layer.name, []).append(node)
        shapes.setdefault(layer.name, []).append(tuple(_first(out).shape))
    outs = _outputs(spec["outputs"], tensors, builder)
    if builder.problems or not outs:
        return None, {}, {}
    inputs = [tensors[item["name"]] for item in spec["inputs"]]
    model = k.Model(
        inputs=inputs[0] if len(inputs) == 1 else inputs,
        outputs=outs[0] if len(outs) == 1 else outs,
        name=name,
    )
    for item in spec["inputs"]:
        shapes[item["name"]] = [tuple(tensors[item["name"]].shape)]
    return model, calls, shapes


def _outputs(outputs: str | list[str], tensors: dict[str, Any], builder: SpecBuilder) -> list[Any]:
    """The model's output tensors; [] where one failed above."""
    path: KeyPath = ("model", "outputs")
    names = [outputs] if isinstance(outputs, str) else outputs
    wheres = [path] if isinstance(outputs, str) else [path + (j,) for j in range(len(names))]
    try:
        return [_tensor(tensors, o, builder, at) for o, at in zip(names, wheres, strict=True)]
    except _Missing:
        return []


class _Missing(Exception):
    """A reference to what failed above (already said) or to an output not there."""


def _arguments(
    entry: dict[str, Any], tensors: dict[str, Any], builder: SpecBuilder, path: KeyPath
) -> tuple[list[Any], dict[str, Any]] | None:
    """The entry's call: `inputs` (its structure of names, each made its tensor) first, then
    `args`, and `kwargs`, each `{ref: NAME}` in them made its tensor; None where a reference
    cannot be made."""

    def made(value: Any, names: bool, where: KeyPath) -> Any:
        if names and isinstance(value, str):
            return _tensor(tensors, value, builder, where)
        if not names and is_ref(value):
            return _tensor(tensors, value["ref"], builder, where + ("ref",))
        if isinstance(value, dict):
            return {k: made(v, names, where + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [made(v, names, where + (j,)) for j, v in enumerate(value)]
        return value

    try:
        args = [made(entry["inputs"], True, path + ("inputs",))] if "inputs" in entry else []
        args += made(entry.get("args") or [], False, path + ("args",))
        kwargs = made(entry.get("kwargs") or {}, False, path + ("kwargs",))
    except _Missing:
        return None
    return args, kwargs


def _tensor(tensors: dict[str, Any], ref: str, builder: SpecBuilder, where: KeyPath) -> Any:
    """The tensor `NAME` or `NAME[i]` refers to: the entry's output, the i-th of several in
    Keras's flattened order; NAME alone is the first, as Keras's own references count.
    Raises _Missing where NAME failed above, or has no i-th output (said here)."""
    base, index = reference_parts(ref)
    if base not in tensors:
        raise _Missing(ref)
    flat = keras().tree.flatten(tensors[base])
    index = index or 0
    if index >= len(flat):
        count = f"{len(flat)} output{'s' if len(flat) != 1 else ''}"
        builder.problem(
            where, f"'{ref}': '{base}' has {count} ({base}[0] to {base}[{len(flat) - 1}])"
        )
        raise _Missing(ref)
    return flat[index]


def _trace_calls(model: Any, builder: SpecBuilder, sites: dict[int, KeyPath]) -> None:
    """Run each user layer's call() symbolically once, where Keras built it without.

    A layer with its own compute_output_shape (the Keras 2 docs' pattern) is built from
    that alone, so a broken call() (a Keras 2 `K.dot`) would first fail in the middle of
    training. Keras's compute_output_spec traces it in a scratch graph, changing no state.
    """
    for layer in model.layers:
        own = [k for k in type(layer).__mro__ if user_class(k)]
        if not own or not any("compute_output_shape" in vars(k) for k in own):
            continue
        arguments = compat.call_arguments(layer)
        if arguments is None:
            continue  # applied at several places: Keras built it there
        try:
            compat.compute_output_spec(layer.call, *arguments[0], **arguments[1])
        except Exception as exc:
            builder.problem(sites.get(id(layer), ("model",)), _call_failure(layer, exc))


def _first(out: Any) -> Any:
    """A call's first output tensor (of a list, tuple or mapping of them)."""
    return keras().tree.flatten(out)[0]


def _call_failure(layer: Any, exc: Exception) -> str:
    """'applying X failed: ...' with the line of the layer's own code that raised, and the
    Keras 3 spelling when the code calls a Keras 2 API."""
    message = keras_message(exc)
    # Keras wraps a failing call() in advice to implement compute_output_shape(), which
    # is beside the point when the call itself raised: keep what it raised.
    inner = re.search(
        r"(?:Could not automatically infer the output shape.*?Error encountered"
        r"|not able to trace the layer `call\(\)`.*?Exception encountered): (.*)",
        message,
    )
    if inner:
        message = inner.group(1)
        if message.startswith("''") and message.endswith("''"):  # Keras quotes it twice
            message = message[2:-2]
    cls = type(layer)
    where = raised_in(exc, source_file(cls)) if user_class(cls) else ""
    hint = tf_ops.unseen_ops_hint(sys.modules.get(cls.__module__)) if user_class(cls) else ""
    return f"applying {cls.__name__} '{layer.name}' failed{where}: {explained(exc, message)}{hint}"


def _layer_infos(
    model: Any,
    calls: dict[str, list[str]],
    shapes: dict[str, list[tuple[int | None, ...]]],
    inputs: bool,
) -> list[LayerInfo]:
    """One row per layer; input layers only where the config names them (functional form)."""
    input_layer = keras().layers.InputLayer
    out = []
    for layer in model.layers:
        if not inputs and isinstance(layer, input_layer):
            continue
        params = sum(_size(v.shape) for v in layer.weights)
        out.append(
            LayerInfo(
                layer.name,
                type(layer).__name__,
                calls.get(layer.name, []),
                shapes.get(layer.name, []),
                params,
            )
        )
    return out


def _size(shape: Any) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n
