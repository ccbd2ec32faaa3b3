"""`kinit export-config MODEL.keras`: a saved model's architecture and compile settings as
the kinit config that builds it again.

It reads the file's config.json alone (Keras's own serialized form of the model), so no
layer is built and no plugin is needed to write the YAML; `kinit validate` on the result
needs the plugins the model's classes come from, as training it would.
"""

from __future__ import annotations

import copy
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kinit_cli.config.source import dump
from kinit_cli.errors import UsageError
from kinit_cli.model.saved import check_archive
from kinit_cli.storage import rundir

# Keras's compile_config keys that have a `compile:` counterpart in a kinit config.
COMPILE_KEYS = ("optimizer", "loss", "metrics")


def export(path: Path) -> dict[str, Any]:
    """The kinit config (name, model, compile) that rebuilds the model saved at `path`."""
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
    with zipfile.ZipFile(path) as archive:
        saved = json.loads(archive.read("config.json"))
    out: dict[str, Any] = {"name": saved.get("config", {}).get("name") or path.stem}
    out["model"] = model_section(saved)
    section = compile_section(saved.get("compile_config"))
    if section:
        out["compile"] = section
    return out


def text(config: dict[str, Any], source: Path) -> str:
    """The config as a YAML file, with a first line that says where it came from."""
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
        raise UsageError(
            f"the saved model is a {class_name} that was never built, so its input shape is not "
            "in the file; a config needs it (model.input_shape)"
        )
    spec = {"class_name": saved.get("registered_name") or class_name, "config": _plain(config)}
    spec["config"].pop("name", None)
    spec["config"].pop("trainable", None)
    spec["config"].pop("dtype", None)
    return {**spec, "input_shape": list(build[1:])}


def compile_section(compiled: dict[str, Any] | None) -> dict[str, Any]:
    """The `compile:` keys a model's compile_config gives (optimizer, loss, metrics)."""
    if not compiled:
        return {}
    out = {}
    for key in COMPILE_KEYS:
        value = compiled.get(key)
        if value is None:
            continue
        if key == "metrics":
            value = [_plain(m) for m in _flat(value)]
            if value:
                out[key] = value
        else:
            out[key] = _plain(value)
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
            refs = [_node(*t["config"]["keras_history"][:2]) for t in _tensors(node["args"])]
            entry: dict[str, Any] = {"name": _node(layer["name"], n)}
            if n == 0:
                entry.update(_layer(layer))
                entry["config"].pop("name", None)
            else:
                entry["shares"] = layer["name"]
            entry["inputs"] = refs[0] if len(refs) == 1 else refs
            entries.append(entry)
    outputs = [_node(*o[:2]) for o in config["output_layers"]]
    return {
        "name": config["name"],
        "inputs": inputs,
        "layers": entries,
        "outputs": outputs[0] if len(outputs) == 1 else outputs,
    }


def _node(layer: str, node_index: int) -> str:
    """A layer applied a second time is a `shares:` entry of its own name."""
    return layer if node_index == 0 else f"{layer}_call{node_index}"


def _tensors(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            yield value
        else:
            for v in value.values():
                yield from _tensors(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _tensors(v)


def _layer(layer: dict[str, Any]) -> dict[str, Any]:
    return {
        "class_name": layer.get("registered_name") or layer["class_name"],
        "config": _plain(layer["config"]),
    }


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
            return {
                "class_name": value.get("registered_name") or value["class_name"],
                "config": _plain(value["config"]),
            }
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return copy.copy(value)
