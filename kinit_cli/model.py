"""Model spec -> built Keras model (Sequential or functional, shared layers), and back to a spec.

Weights are created while the model is built, before compile or fit, as Keras does when
the input shape is known. Every `add_weight` call made during the build is recorded, so
the report can say which initializer made each variable, including for custom layers.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kinit_cli.backend import keras
from kinit_cli.config import Config, KeyPath
from kinit_cli.errors import ConfigError, keras_message
from kinit_cli.registry import Registry
from kinit_cli.specs import FAILED, SpecBuilder


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

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


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

    @property
    def trainable_params(self) -> int:
        return sum(w.size for w in self.weights if w.trainable)

    @property
    def non_trainable_params(self) -> int:
        return sum(w.size for w in self.weights if not w.trainable)


def build(config: Config, resolved: dict[str, Any], registry: Registry) -> BuiltModel:
    """Build the model the config describes; raise ConfigError with every problem found."""
    spec = resolved["model"]
    builder = SpecBuilder(registry, config)
    name = spec.get("name") or _keras_name(resolved.get("name") or "model")
    with recording_weights() as records:
        if "inputs" in spec:
            model, calls, shapes = _functional(spec, builder, name)
        else:
            model, calls, shapes = _sequential(spec, builder, name)
    if builder.problems or model is None:
        raise ConfigError(builder.problems)
    built = BuiltModel(model, _layer_infos(model, calls, shapes), weight_infos(model, records))
    if resolved.get("init_from"):
        from kinit_cli import transfer

        transfer.apply(built, resolved["init_from"], config)
    return built


def _keras_name(text: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in text)


def _sequential(spec: dict[str, Any], builder: SpecBuilder, name: str):
    k = keras()
    layers = []
    taken: set[str] = set()
    last = len(spec["layers"]) - 1
    for i, layer_spec in enumerate(spec["layers"]):
        layer_spec = _named_layer(layer_spec, taken)
        if i == last:
            layer_spec = _float32_output(layer_spec)
        layers.append(builder.build("layer", layer_spec, ("model", "layers", i)))
    if builder.problems:
        return None, {}, {}
    model = k.Sequential(name=name)
    model.add(k.Input(shape=tuple(spec["input_shape"]), name="input_layer"))
    for i, layer in enumerate(layers):
        try:
            model.add(layer)
        except Exception as exc:
            builder.problem(("model", "layers", i), _call_failure(layer, exc))
            return None, {}, {}
    shapes = {layer.name: [tuple(layer.output.shape)] for layer in model.layers}
    return model, {}, shapes


def _named_layer(layer_spec: dict[str, Any], taken: set[str]) -> dict[str, Any]:
    """The spec with a layer name unique within this model (dense, dense_1, ...).

    Keras numbers unnamed layers across the whole process, so the second model built in
    one process would get dense_2 where the first got dense; weight paths must not depend
    on what was built before.
    """
    config = dict(layer_spec.get("config") or {})
    if not config.get("name"):
        base = _snake_case(str(layer_spec.get("class_name", "layer")).rpartition(">")[2])
        candidate, n = base, 0
        while candidate in taken:
            n += 1
            candidate = f"{base}_{n}"
        config["name"] = candidate
    taken.add(config["name"])
    return {**layer_spec, "config": config}


def _float32_output(layer_spec: dict[str, Any]) -> dict[str, Any]:
    """Under a mixed-precision policy an output layer computes in float32 (softmax and the
    loss lose too much in float16), unless its config names a dtype itself."""
    if not keras().mixed_precision.dtype_policy().name.startswith("mixed"):
        return layer_spec
    config = dict(layer_spec.get("config") or {})
    config.setdefault("dtype", "float32")
    return {**layer_spec, "config": config}


def _snake_case(name: str) -> str:
    """Keras's own rule: SimpleDense -> simple_dense, LSTM -> lstm, SimpleRNN -> simple_rnn."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _functional(spec: dict[str, Any], builder: SpecBuilder, name: str):
    k = keras()
    outputs = [spec["outputs"]] if isinstance(spec["outputs"], str) else spec["outputs"]
    tensors: dict[str, Any] = {}
    for item in spec["inputs"]:
        tensors[item["name"]] = k.Input(
            shape=tuple(item["shape"]), name=item["name"], dtype=item.get("dtype")
        )
    layers: dict[str, Any] = {}
    calls: dict[str, list[str]] = {}
    shapes: dict[str, list[tuple[int | None, ...]]] = {}
    for i, entry in enumerate(spec["layers"]):
        path: KeyPath = ("model", "layers", i)
        node = entry["name"]
        if "shares" in entry:
            layer = layers.get(entry["shares"])
        else:
            layer_spec = {
                "class_name": entry["class_name"],
                "config": {**(entry.get("config") or {}), "name": node},
            }
            if node in outputs:
                layer_spec = _float32_output(layer_spec)
            layer = builder.build("layer", layer_spec, path)
            layer = None if layer is FAILED else layer
            if layer is not None:
                layers[node] = layer
        names = [entry["inputs"]] if isinstance(entry["inputs"], str) else entry["inputs"]
        if layer is None or any(n not in tensors for n in names):
            continue  # already reported, here or upstream
        args = [tensors[n] for n in names]
        try:
            out = layer(args[0] if len(args) == 1 else args)
        except Exception as exc:
            builder.problem(path, _call_failure(layer, exc))
            continue
        tensors[node] = out
        calls.setdefault(layer.name, []).append(node)
        shapes.setdefault(layer.name, []).append(tuple(_first(out).shape))
    if builder.problems:
        return None, {}, {}
    inputs = [tensors[item["name"]] for item in spec["inputs"]]
    model = k.Model(
        inputs=inputs[0] if len(inputs) == 1 else inputs,
        outputs=tensors[outputs[0]] if len(outputs) == 1 else [tensors[o] for o in outputs],
        name=name,
    )
    for item in spec["inputs"]:
        shapes[item["name"]] = [tuple(tensors[item["name"]].shape)]
    return model, calls, shapes


def _first(out: Any) -> Any:
    return out[0] if isinstance(out, list | tuple) else out


def _call_failure(layer: Any, exc: Exception) -> str:
    message = keras_message(exc)
    return f"applying {type(layer).__name__} '{layer.name}' failed: {message}"


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
    """`{class_name, config}` of an initializer given as a name, an object or a function."""
    k = keras()
    if isinstance(initializer, str):
        try:
            initializer = k.initializers.get(initializer)
        except ValueError:
            return {"class_name": initializer, "config": {}}
    if isinstance(initializer, k.initializers.Initializer):
        name = k.saving.get_registered_name(type(initializer))
        config = {key: v for key, v in initializer.get_config().items() if v is not None}
        if isinstance(initializer, k.initializers.Identity) and "gain" not in config:
            # Keras's Identity.get_config() leaves its gain out; the theory check needs it.
            config["gain"] = float(initializer.gain)
        return {"class_name": name, "config": config}
    if callable(initializer):
        return {"class_name": k.saving.get_registered_name(initializer), "config": {}}
    return None  # an initial value (array) rather than an initializer


def weight_infos(model: Any, records: dict[int, tuple[Any, Any]] | None = None) -> list[WeightInfo]:
    """Every variable of `model` once, with its layers and the initializer that made it.

    `records` (from recording_weights) are exact; without them (a model loaded from a
    file) the owning layer's `<name>_initializer` attribute is used, Keras's convention.
    """
    users: dict[int, list[str]] = {}
    owners: dict[int, Any] = {}
    for layer in model.layers:
        for v in layer.weights:
            names = users.setdefault(id(v), [])
            owners.setdefault(id(v), layer)
            if layer.name not in names:
                names.append(layer.name)
    infos, seen = [], set()
    for v in model.weights:
        if id(v) in seen:
            continue
        seen.add(id(v))
        if records is not None and id(v) in records:
            init = describe_initializer(records[id(v)][1])
        else:
            init = _attribute_initializer(owners.get(id(v)), v.name)
        path = v.path.removeprefix(f"{model.name}/")
        infos.append(
            WeightInfo(
                path, tuple(v.shape), str(v.dtype), bool(v.trainable), init, users.get(id(v), []), v
            )
        )
    return infos


def _attribute_initializer(layer: Any, name: str) -> dict[str, Any] | None:
    """`kernel` -> layer.kernel_initializer; `recurrent_kernel` -> recurrent_initializer."""
    for attr in (f"{name}_initializer", f"{name.removesuffix('_kernel')}_initializer"):
        initializer = getattr(layer, attr, None)
        if initializer is not None:
            return describe_initializer(initializer)
    return None


def _layer_infos(
    model: Any, calls: dict[str, list[str]], shapes: dict[str, list[tuple[int | None, ...]]]
) -> list[LayerInfo]:
    out = []
    for layer in model.layers:
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


# --------------------------------------------------------------------------- model -> spec


def to_spec(model: Any) -> dict[str, Any]:
    """The kinit `model:` section that rebuilds `model`'s architecture (from its get_config)."""
    k = keras()
    config = model.get_config()
    if isinstance(model, k.Sequential):
        layers = config["layers"]
        first = layers[0]
        if first["class_name"] != "InputLayer":
            raise ValueError("a Sequential model without an Input cannot be written as a spec")
        return {
            "name": config["name"],
            "input_shape": list(first["config"]["batch_shape"][1:]),
            "layers": [_plain_spec(layer) for layer in layers[1:]],
        }
    inputs = []
    entries = []
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            inputs.append(
                {
                    "name": layer["name"],
                    "shape": list(layer["config"]["batch_shape"][1:]),
                    "dtype": layer["config"].get("dtype", "float32"),
                }
            )
            continue
        for n, node in enumerate(layer["inbound_nodes"]):
            refs = [
                _node_name(*t["config"]["keras_history"][:2]) for t in _keras_tensors(node["args"])
            ]
            entry: dict[str, Any] = {"name": _node_name(layer["name"], n)}
            if n == 0:
                cfg = _plain(layer["config"])
                cfg.pop("name", None)
                entry.update(
                    class_name=layer.get("registered_name") or layer["class_name"], config=cfg
                )
            else:
                entry["shares"] = layer["name"]
            entry["inputs"] = refs[0] if len(refs) == 1 else refs
            entries.append(entry)
    outputs = [_node_name(*o[:2]) for o in config["output_layers"]]
    return {
        "name": config["name"],
        "inputs": inputs,
        "layers": entries,
        "outputs": outputs[0] if len(outputs) == 1 else outputs,
    }


def _node_name(layer: str, node_index: int) -> str:
    return layer if node_index == 0 else f"{layer}_call{node_index}"


def _keras_tensors(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            yield value
        else:
            for v in value.values():
                yield from _keras_tensors(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _keras_tensors(v)


def _plain_spec(layer: dict[str, Any]) -> dict[str, Any]:
    return {
        "class_name": layer.get("registered_name") or layer["class_name"],
        "config": _plain(layer["config"]),
    }


def _plain(value: Any) -> Any:
    """Keras's serialized form -> kinit YAML: only `{class_name, config}`, dtypes by name."""
    if isinstance(value, dict):
        if "class_name" in value and "config" in value and "module" in value:
            if value["class_name"] == "DTypePolicy":
                return value["config"]["name"]
            return {
                "class_name": value.get("registered_name") or value["class_name"],
                "config": _plain(value["config"]),
            }
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return copy.copy(value)
