"""`kinit export-config MODEL.keras`: a saved model's architecture and compile settings as
the kinit config that builds it again.

It reads the file's config.json alone (Keras's own serialized form of the model), so no
layer is built and no plugin is needed to write the YAML; `kinit validate` on the result
needs the plugins the model's classes come from, as training it would. An argument equal
to its class's default is left out, as a person writing the config would leave it out, and
a float32 value is written as its shortest form (0.001, not 0.0010000000474974513).
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kinit_cli.config.source import dump
from kinit_cli.errors import UsageError
from kinit_cli.model.build import snake_case
from kinit_cli.model.saved import check_archive, read_config
from kinit_cli.registry.registration import KINDS
from kinit_cli.registry.signatures import parameters
from kinit_cli.runtime.imports import keras
from kinit_cli.storage import rundir

# Keras's compile_config keys that have a `compile:` counterpart in a kinit config, and
# the Keras module each one's classes come from.
COMPILE_KEYS = {"optimizer": "optimizers", "loss": "losses", "metrics": "metrics"}
# A layer argument's Keras module, by the end of its name.
NESTED = {
    "_initializer": "initializers",
    "_regularizer": "regularizers",
    "_constraint": "constraints",
}


def export(path: Path) -> dict[str, Any]:
    """The kinit config (name, model, compile) that rebuilds the model saved at `path`."""
    return _config(path, _saved(path))


def document(path: Path) -> str:
    """export-config's YAML for the model saved at `path`: the config, with a header naming
    the classes a plugin must define (config.json read once)."""
    saved = _saved(path)
    return text(_config(path, saved), path, own_classes(saved))


def _saved(path: Path) -> dict[str, Any]:
    """config.json of the saved model at `path`; UsageError for what is not one."""
    if path.is_dir() or path.suffix != ".keras":
        hint = (
            f"; a run directory has its config already: {path / 'config.yaml'}"
            if path.is_dir()
            else ""
        )
        raise UsageError(f"{path}: export-config reads a saved model (.keras){hint}")
    if not path.exists():
        raise UsageError(f"{path} does not exist")
    check_archive(path)
    return read_config(path)


def _config(path: Path, saved: dict[str, Any]) -> dict[str, Any]:
    if holders := python_code(saved):
        raise UsageError(
            f"{path} holds Python code a config cannot carry (a lambda, saved as compiled "
            f"bytecode) in {', '.join(holders)}; give that code a class of its own in a plugin "
            "(a Layer subclass) and write its entry by hand"
        )
    out: dict[str, Any] = {"name": saved.get("config", {}).get("name") or path.stem}
    if packages := plugins(saved):
        out["plugins"] = packages
    out["model"] = model_section(saved)
    section = compile_section(saved.get("compile_config"))
    if section:
        out["compile"] = section
    return out


def python_code(saved: dict[str, Any]) -> list[str]:
    """Where a serialized model holds a lambda's compiled bytecode (`__lambda__`, what Keras
    writes for a Lambda layer's lambda): the layers by name, and its compile settings."""
    config = saved.get("config")
    layers = config.get("layers") if isinstance(config, dict) else None
    out = [
        f"layer {_name_of(layer)!r}"
        for layer in (layers if isinstance(layers, list) else [saved])
        if _holds_lambda(layer)
    ]
    if _holds_lambda(saved.get("compile_config")):
        out.append("its compile settings")
    return out


def plugins(saved: dict[str, Any]) -> list[str]:
    """The libraries a serialized model's classes come from, to import as plugins: the
    top-level package of each class registered under that package's own name
    (`keras_hub>ViTBackbone` from keras_hub.src.models...) that is installed here. Found
    without importing them; a script's own package (`myscript>Linear`) is no library."""
    out: list[str] = []
    for node in _mappings(saved):
        package = _library(node)
        if package and package not in out and importlib.util.find_spec(package) is not None:
            out.append(package)
    return out


def _library(serialized: dict[str, Any]) -> str | None:
    """The package a serialized class is registered under, where its module is in it."""
    registered, module = serialized.get("registered_name"), serialized.get("module")
    if not isinstance(registered, str) or ">" not in registered or not isinstance(module, str):
        return None
    package = registered.partition(">")[0]
    top = module.split(".")[0]
    return package if package == top and top not in ("keras", "builtins") else None


def _mappings(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping in `node`, walked without recursion."""
    stack = [node]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack += node.values()
        elif isinstance(node, list):
            stack += node


def _name_of(layer: Any) -> str:
    config = layer.get("config") if isinstance(layer, dict) else None
    return str(config.get("name") if isinstance(config, dict) else layer)


def _holds_lambda(node: Any) -> bool:
    """Whether `node` holds `{class_name: __lambda__}` anywhere."""
    return any(m.get("class_name") == "__lambda__" for m in _mappings(node))


def own_classes(saved: dict[str, Any]) -> dict[str, str]:
    """The classes of a serialized model that neither Keras nor an installed library
    defines (class -> the module the saving script defined it in): what `plugins:` must
    load."""
    out: dict[str, str] = {}
    libraries = plugins(saved)
    for node in _mappings(saved):
        module, name = node.get("module"), node.get("class_name")
        if not isinstance(module, str) or not isinstance(name, str):
            continue
        top = module.split(".")[0]
        if top not in ("keras", "builtins") and top not in libraries:
            out.setdefault(_class_name(node), module)
    return out


def text(config: dict[str, Any], source: Path, own: dict[str, str] | None = None) -> str:
    """The config as a YAML file, with a first line that says where it came from; `own`
    (own_classes) names the classes a plugin must define, and their modules."""
    if own:
        named = ", ".join(f"{name} (module {module})" for name, module in own.items())
        return (
            f"# Written by kinit export-config from {source}. Not Keras's: {named}; add the\n"
            "# file that defines them under plugins: (or load it with --plugin), and data:\n"
            "# for what to train it on.\n" + dump(config)
        )
    if config.get("plugins"):
        return (
            f"# Written by kinit export-config from {source}. Its plugins: are the libraries\n"
            "# its classes come from; add data: for what to train it on.\n" + dump(config)
        )
    return (
        f"# Written by kinit export-config from {source}. Add plugins: for the classes it\n"
        "# names that are not Keras's, and data: for what to train it on.\n" + dump(config)
    )


def write(path: Path, content: str, overwrite: bool = False) -> None:
    """Write the YAML in one step; an existing file only with `overwrite`."""
    if path.exists() and not overwrite:
        raise UsageError(f"{path} already exists; give another --output, or add --overwrite")
    if not path.parent.is_dir():
        raise UsageError(f"--output {path}: the folder {path.parent} does not exist")
    rundir.write_text(path, content)


def model_section(saved: dict[str, Any]) -> dict[str, Any]:
    """The `model:` section for a model in Keras's serialized form (config.json, or
    keras.saving.serialize_keras_object(model)): Sequential, functional, or one class."""
    class_name = saved.get("class_name")
    config = saved.get("config") or {}
    if class_name == "Sequential":
        return _sequential(config)
    if class_name in ("Functional", "Model") and "layers" in config:
        return _functional(config)
    build = (saved.get("build_config") or {}).get("input_shape")
    if not isinstance(build, list | tuple) or not build:
        # A model class that builds itself in __init__ (a library's backbone) needs no input
        # shape; for one that does not, validate asks for it.
        return _layer(saved, named=False)
    return {**_layer(saved, named=False), "input_shape": list(build[1:])}


def compile_section(compiled: dict[str, Any] | None) -> dict[str, Any]:
    """The `compile:` keys a model's compile_config gives (optimizer, loss, metrics)."""
    if not compiled:
        return {}
    out: dict[str, Any] = {}
    for key, module in COMPILE_KEYS.items():
        value = compiled.get(key)
        if value is None:
            continue
        if key == "metrics":
            value = [_lean(_plain(m), module) for m in _flat(value)]
            if value:
                out[key] = value
        else:
            out[key] = _lean(_plain(value), module)
    return out


def _sequential(config: dict[str, Any]) -> dict[str, Any]:
    layers = config["layers"]
    if not layers or layers[0]["class_name"] != "InputLayer":
        raise UsageError(
            "the saved Sequential model has no Input, so its input shape is not in the file; "
            "a config needs it (model.input_shape)"
        )
    return {
        "name": config["name"],
        "input_shape": list(layers[0]["config"]["batch_shape"][1:]),
        "layers": [_layer(layer) for layer in layers[1:]],
    }


def _functional(config: dict[str, Any]) -> dict[str, Any]:
    inputs, entries = [], []
    several = _several_outputs(config)
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            inputs.append(
                {
                    "name": layer["name"],
                    "shape": list(layer["config"]["batch_shape"][1:]),
                    "dtype": _plain(layer["config"].get("dtype", "float32")),
                }
            )
            continue
        for n, node in enumerate(layer["inbound_nodes"]):
            entry: dict[str, Any] = {"name": _node(layer["name"], n)}
            if n == 0:
                entry.update(_layer(layer, named=False))  # the entry's name names it
            else:
                entry["shares"] = layer["name"]
            entry.update(_call(node, several))
            entries.append(entry)
    outputs = [_ref(o, several) for o in _tensor_refs(config["output_layers"])]
    return {
        "name": config["name"],
        "inputs": inputs,
        "layers": entries,
        "outputs": outputs[0] if len(outputs) == 1 else outputs,
    }


def _call(node: dict[str, Any], several: set[str]) -> dict[str, Any]:
    """A node's arguments as an entry's `inputs` (its first argument, where that is a
    structure of tensors), `args` (the other positional ones) and `kwargs`."""
    args = list(node.get("args") or [])
    # Keras records `mask=None` for every layer that supports masking: the default.
    kwargs = {k: v for k, v in (node.get("kwargs") or {}).items() if (k, v) != ("mask", None)}
    out: dict[str, Any] = {}
    if args and _only_tensors(args[0]):
        out["inputs"] = _argument(args.pop(0), several, bare=True)
    if args:
        out["args"] = _argument(args, several)
    if kwargs:
        out["kwargs"] = _argument(kwargs, several)
    return out


def _only_tensors(value: Any) -> bool:
    """Whether `value` is a tensor, or a non-empty list or mapping of only tensors."""
    if _is_tensor(value):
        return True
    if isinstance(value, dict) and "class_name" not in value:
        return bool(value) and all(_only_tensors(v) for v in value.values())
    return isinstance(value, list) and bool(value) and all(_only_tensors(v) for v in value)


def _argument(value: Any, several: set[str], bare: bool = False) -> Any:
    """A call argument, each tensor as its reference (`{ref: NAME}`, or NAME where `bare`)
    and each constant as YAML holds it (a tuple or array as a list)."""
    if _is_tensor(value):
        ref = _ref(value["config"]["keras_history"], several)
        return ref if bare else {"ref": ref}
    if isinstance(value, dict):
        if value.get("class_name") in ("__tuple__", "__numpy__", "__tensor__"):
            return _argument(value["config"]["value"], several, bare)
        if {"class_name", "config", "module"} <= set(value):
            return _plain(value)
        return {k: _argument(v, several, bare) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_argument(v, several, bare) for v in value]
    return copy.copy(value)


def _several_outputs(config: dict[str, Any]) -> set[str]:
    """The entries whose outputs past the first are used: referenced as NAME[i] throughout,
    their first output too (NAME[0])."""
    histories = [t["config"]["keras_history"] for t in _tensors(_nodes(config))]
    histories += _tensor_refs(config["output_layers"])
    return {_node(*h[:2]) for h in histories if h[2]}


def _nodes(config: dict[str, Any]) -> list[Any]:
    return [node for layer in config["layers"] for node in layer.get("inbound_nodes") or []]


def _ref(history: list[Any], several: set[str]) -> str:
    """A tensor's reference: its entry's name, `NAME[i]` for the i-th of several outputs."""
    name = _node(*history[:2])
    return f"{name}[{history[2]}]" if name in several else name


def _tensor_refs(value: list[Any]) -> list[list[Any]]:
    """Keras keeps one output as [name, node, tensor] and several as a list of those."""
    return [value] if value and isinstance(value[0], str) else list(value)


def _node(layer: str, node_index: int) -> str:
    """A layer applied a second time is a `shares:` entry of its own name."""
    return layer if node_index == 0 else f"{layer}_call{node_index}"


def _is_tensor(value: Any) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def _tensors(value: Any) -> Iterator[dict[str, Any]]:
    """Every serialized tensor in `value`, at any depth."""
    if _is_tensor(value):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _tensors(v)


def _layer(layer: dict[str, Any], named: bool = True) -> dict[str, Any]:
    """A serialized layer as a spec; `named`: its config keeps the layer's name. A Keras
    model used as a layer keeps the config Keras wrote, which its from_config reads."""
    if _keras_model(layer):  # its name too: Keras's from_config requires one
        return {"class_name": _class_name(layer), "config": _unshared(layer["config"])}
    spec = {"class_name": _class_name(layer), "config": _plain(layer.get("config") or {})}
    if not named:
        spec["config"].pop("name", None)
    for key, value in spec["config"].items():
        if isinstance(value, dict) and _module_of(key, "layers") != "layers":
            spec["config"][key] = _lean(value, _module_of(key, "layers"))
    return _lean(spec, "layers")


def _unshared(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of a nested model's config with its `shared_object_id`s (memory addresses of
    the saving process) numbered 1, 2, ... as the walk meets them: one that occurs once
    ties nothing together and goes; the others mark an object used twice, as before. The
    same model then exports to the same text."""
    config = copy.deepcopy(config)
    found = [node for node in _mappings(config) if "shared_object_id" in node]
    counts = Counter(node["shared_object_id"] for node in found)
    numbers: dict[Any, int] = {}
    for node in found:
        key = node.pop("shared_object_id")
        if counts[key] > 1:
            node["shared_object_id"] = numbers.setdefault(key, len(numbers) + 1)
    return config


def _keras_model(serialized: dict[str, Any]) -> bool:
    """Whether a serialized layer is Keras's own Sequential or functional model."""
    module = serialized.get("module")
    return (
        isinstance(module, str)
        and module.split(".")[0] == "keras"
        and serialized.get("class_name") in ("Sequential", "Functional", "Model")
    )


def _class_name(serialized: dict[str, Any]) -> str:
    """The name a config gives a class: the bare name of a class Keras's public modules
    hold (`Dense`); `MODULE>Name` for one of Keras's own modules that they do not
    (`keras.src.applications.convnext>LayerScale`, or the operation `keras.src.ops.numpy>Add`,
    which is not the layer Add); a library's registered key (`keras_hub>ViTBackbone`); or a
    registered class's name without the package the saving script registered it under
    (`demo>Linear` -> `Linear`), which kinit resolves in whatever plugin defines it."""
    name, module = serialized["class_name"], serialized.get("module")
    if isinstance(module, str) and module.split(".")[0] == "keras":
        return name if _public(module, name) else f"{module}>{name}"
    registered = serialized.get("registered_name")
    if _library(serialized):
        return registered
    return registered.rpartition(">")[2] if registered else name


def _public(module: str, name: str) -> bool:
    """Whether the class `module` defines as `name` is the one a Keras public module (layers,
    initializers, ...) holds by that name: what a bare name resolves to."""
    publics = [_attribute(keras(), kind.module) for kind in KINDS.values()]
    if module in {f"keras.{kind.module}" for kind in KINDS.values()}:
        return _attribute(keras(), f"{module[len('keras.') :]}.{name}") is not None
    try:
        own = getattr(importlib.import_module(module), name, None)
    except ImportError:
        return False
    return own is not None and any(getattr(p, name, None) is own for p in publics)


def _attribute(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
    return obj


def _keras_class(class_name: str, module: str) -> Any:
    """The Keras class a config's class name stands for (a bare name in keras.`module`, or
    `keras.MODULE>Name`), None for any other (a plugin's)."""
    package, _, name = class_name.rpartition(">")
    if not package:
        cls = getattr(getattr(keras(), module), name, None)
    elif package.split(".")[0] == "keras":
        try:
            cls = getattr(importlib.import_module(package), name, None)
        except ImportError:
            return None
    else:
        return None
    return cls if isinstance(cls, type) else None


def _lean(spec: Any, module: str) -> Any:
    """`spec` without the arguments its class would take by default anyway. Every class
    loses Keras's base-layer defaults (trainable, a float32 dtype), which Keras's own
    get_config adds for a class that has none and its constructor may not take; a class
    Keras does not know here (a plugin's) keeps the rest."""
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        return spec
    config = {
        k: v
        for k, v in spec["config"].items()
        if not (k == "trainable" and v is True) and not (k == "dtype" and v == "float32")
    }
    cls = _keras_class(spec["class_name"], module)
    if cls is not None:
        defaults = {p.name: p.default for p in parameters(cls)[0] if not p.required}
        config = {
            k: v
            for k, v in config.items()
            if not (k in defaults and _default(v, defaults[k], _module_of(k, module)))
            and not (k == "name" and module == "optimizers" and _numbered(v, cls))
        }
    if not config:
        # kernel_initializer: GlorotUniform, optimizer: Adam, where Keras makes that object
        # of the name; Constant (whose name Keras cannot make) and a layer stay a mapping.
        if module == "layers" or (cls is not None and not _made_by_name(module, cls)):
            return {"class_name": spec["class_name"]}
        return spec["class_name"]
    return {"class_name": spec["class_name"], "config": config}


def _made_by_name(module: str, cls: type) -> bool:
    """Whether `keras.<module>.get(NAME)` makes an object of `cls` from its bare name."""
    try:
        made = getattr(keras(), module).get(cls.__name__)
    except Exception:  # Keras's get raises what its lookup raises (KeyError for Constant)
        return False
    return made is cls or type(made) is cls


def _numbered(name: Any, cls: type) -> bool:
    """An optimizer name Keras made up: the class's, numbered in the process that saved it
    (rm_sprop_3 for the fourth RMSprop)."""
    base = re.escape(snake_case(cls.__name__))
    return isinstance(name, str) and re.fullmatch(rf"{base}(_\d+)?", name) is not None


def _module_of(argument: str, module: str) -> str:
    """The Keras module an argument's objects come from: kernel_initializer's are
    initializers; a layer's activation is an activation."""
    if argument == "activation":
        return "activations"
    return next((m for end, m in NESTED.items() if argument.endswith(end)), module)


def _default(value: Any, default: Any, module: str) -> bool:
    """Whether a serialized argument says what the class's default says: equal, equal in
    float32, or a spec of the object the default's name stands for ('glorot_uniform')."""
    if isinstance(value, float) and isinstance(default, float):
        return bool(np.float32(value) == np.float32(default))
    if isinstance(default, str) and isinstance(value, str | dict):
        name = value if isinstance(value, str) else value.get("class_name")
        try:
            made = getattr(keras(), module).get(default)
        except (ValueError, TypeError, AttributeError):
            return value == default
        return name in (default, type(made).__name__, getattr(made, "__name__", None))
    try:
        return bool(value == default)
    except Exception:  # an array-like default: not a plain argument
        return False


def _flat(value: Any) -> list[Any]:
    """compile_config's metrics: a list, or one list per output."""
    if isinstance(value, list | tuple):
        return [m for v in value for m in _flat(v)]
    if isinstance(value, dict) and "class_name" not in value:
        return [m for v in value.values() for m in _flat(v)]
    return [value]


def _plain(value: Any) -> Any:
    """Keras's serialized form -> kinit YAML: `{class_name, config}` only, dtype policies and
    built-in functions (a loss, an activation) by name."""
    if isinstance(value, dict):
        if "class_name" in value and "config" in value and "module" in value:
            if value["class_name"] == "DTypePolicy":
                return value["config"]["name"]
            if value["class_name"] == "function" and isinstance(value["config"], str):
                return value["config"]
            return {"class_name": _class_name(value), "config": _plain(value["config"])}
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value == float(np.float32(value)):
        return float(str(np.float32(value)))  # the float32 Keras kept, as it reads: 0.001
    return copy.copy(value)
