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

from kinit_cli import portability
from kinit_cli.backend import keras, tensorflow
from kinit_cli.config import Config, KeyPath
from kinit_cli.errors import ConfigError, did_you_mean, keras2_hint, keras_message, raised_in
from kinit_cli.registry import Registry, source_file
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
    # Classes Keras alone cannot save and reload (portability.Unsaveable).
    unsaveable: list[Any] = field(default_factory=list)

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
    sites: dict[int, KeyPath] = {}  # id(top-level layer) -> the config entry that made it
    with fresh_names(), recording_weights() as records:
        if "inputs" in spec:
            model, calls, shapes = _functional(spec, builder, name, sites)
        elif "class_name" in spec:
            model, calls, shapes = _whole(spec, builder, name, sites)
        else:
            model, calls, shapes = _sequential(spec, builder, name, sites)
    if model is not None:
        for layer, attributes in untracked_weights(model):
            builder.problem(sites.get(id(layer), ("model",)), _untracked_message(layer, attributes))
    if builder.problems or model is None:
        raise ConfigError(builder.problems)
    built = BuiltModel(
        model,
        _layer_infos(model, calls, shapes),
        weight_infos(model, records),
        portability.check(model, records),
    )
    if resolved.get("init_from"):
        from kinit_cli import transfer

        transfer.apply(built, resolved["init_from"], config)
    return built


@contextmanager
def fresh_names() -> Iterator[None]:
    """Number unnamed layers and variables from scratch inside the block.

    Keras numbers them process-wide (`dense_2`, `variable_3` where the first model built in
    a process got `dense`, `variable`), so without this the same config would name its
    layers differently depending on what was built before it. Keras's own counter is put
    back afterwards.
    """
    import collections

    from keras.src.backend.common import global_state  # private: checked on Keras 3.15

    saved = global_state.get_global_attribute("object_name_uids")
    global_state.set_global_attribute("object_name_uids", collections.defaultdict(int))
    try:
        yield
    finally:
        global_state.set_global_attribute("object_name_uids", saved)


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
        if not named[i] and layer.name in taken:
            layer.name = _free_name(layer.name, taken)  # a later entry took Keras's choice
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
        model = k.Sequential(name=name)
        model.add(inputs)
        for i, layer in enumerate(layers):
            try:
                model.add(layer)
            except Exception as exc:
                builder.problem(("model", "layers", i), _call_failure(layer, exc))
                return None, {}, {}
        return model, {}, {layer.name: [tuple(layer.output.shape)] for layer in model.layers}
    # A layer applied twice in sequence: Keras's Sequential holds each layer once, so the
    # same chain is built as a functional model.
    x = inputs
    calls: dict[str, list[str]] = {}
    shapes: dict[str, list[tuple[int | None, ...]]] = {"input_layer": [tuple(inputs.shape)]}
    for i, layer in enumerate(layers):
        try:
            x = layer(x)
        except Exception as exc:
            builder.problem(("model", "layers", i), _call_failure(layer, exc))
            return None, {}, {}
        calls.setdefault(layer.name, []).append(f"layers[{i}]")
        shapes.setdefault(layer.name, []).append(tuple(_first(x).shape))
    return k.Model(inputs, x, name=name), calls, shapes


def _free_name(base: str, taken: set[str]) -> str:
    stem = re.sub(r"_\d+$", "", base)
    n = 1
    while f"{stem}_{n}" in taken:
        n += 1
    return f"{stem}_{n}"


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
    is the whole model, applied to an input of `input_shape`."""
    k = keras()
    layer = builder.build(
        "layer", {"class_name": spec["class_name"], "config": spec.get("config")}, ("model",)
    )
    if layer is FAILED:
        return None, {}, {}
    sites[id(layer)] = ("model",)
    _float32_output(layer, spec)
    inputs = k.Input(shape=tuple(spec["input_shape"]), name="input_layer")
    try:
        outputs = layer(inputs)
    except Exception as exc:
        builder.problem(("model",), _call_failure(layer, exc))
        return None, {}, {}
    model = k.Model(inputs, outputs, name=name)
    shapes = {"input_layer": [tuple(inputs.shape)], layer.name: [tuple(_first(outputs).shape)]}
    return model, {}, shapes


def _functional(spec: dict[str, Any], builder: SpecBuilder, name: str, sites: dict[int, KeyPath]):
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
            spec_only = {"class_name": entry["class_name"], "config": entry.get("config")}
            layer = builder.build("layer", spec_only, path)
            layer = None if layer is FAILED else layer
            if layer is not None:
                # The entry's name names the layer: set on it, since a constructor written
                # without **kwargs takes no `name`.
                layer.name = node
                if node in outputs:
                    _float32_output(layer, entry)
                layers[node] = layer
                sites[id(layer)] = path
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
    """'applying X failed: ...' with the line of the layer's own code that raised, and the
    Keras 3 spelling when the code calls a Keras 2 API."""
    message = keras_message(exc)
    hint = keras2_hint(exc)
    if hint:
        message = message.rstrip(".") + "."
    where = raised_in(exc, source_file(type(layer)))
    return (
        f"applying {type(layer).__name__} '{layer.name}' failed{where}: {message}{keras2_hint(exc)}"
    )


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
    import inspect

    k = keras()
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
    import inspect

    cls = type(obj)
    if (cls.__module__ or "").split(".")[0] in ("keras", "tensorflow"):
        return {}
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return {}
    out = {}
    for p in params:
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
    tracked = list(getattr(layer, "_layers", []) or [])  # private: Keras 3.15's tracker list
    if not tracked:
        return []
    layer_cls = keras().layers.Layer
    held: dict[int, str] = {}
    for attr, value in vars(layer).items():
        if attr.startswith("_"):
            continue
        if isinstance(value, layer_cls):
            held.setdefault(id(value), attr)
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                if isinstance(item, layer_cls):
                    held.setdefault(id(item), f"{attr}.{i}")
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, layer_cls):
                    held.setdefault(id(item), f"{attr}.{key}")
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
    import numpy as np

    tf = tensorflow()
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
                    if isinstance(item, tf.Variable) and not isinstance(item, k.Variable):
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


def _untracked_message(layer: Any, attributes: list[str]) -> str:
    from kinit_cli.registry import where_defined

    names = ", ".join(attributes)
    return (
        f"{type(layer).__name__} '{layer.name}' ({where_defined(type(layer))}) keeps weights "
        f"Keras 3 does not track: {names}. They would be neither trained nor saved. Make "
        "each with self.add_weight(shape=..., initializer=..., trainable=True) in build() "
        "or __init__ instead."
    )


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
    paths = variable_paths(model)
    infos, seen = [], set()
    for v in model.weights:
        if id(v) in seen:
            continue
        seen.add(id(v))
        if records is not None and id(v) in records:
            init = describe_initializer(records[id(v)][1])
        else:
            init = _attribute_initializer(owners.get(id(v)), v.name)
        path = paths.get(id(v)) or v.path.removeprefix(f"{model.name}/")
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
