"""The `model:` section's shape: Sequential, functional or one class, with its layers'
keys, names and references checked before anything is built (schema.py checks the rest)."""

from __future__ import annotations

from typing import Any

from kinit_cli.config.fields import model_name, shape, string
from kinit_cli.config.source import Config, KeyPath, kind_of
from kinit_cli.errors import Problems, did_you_mean

SPEC_KEYS = ("class_name", "config")
FUNCTIONAL_LAYER_KEYS = ("name", "class_name", "config", "inputs", "shares")
MODEL_KEYS = ("name", "input_shape", "inputs", "layers", "outputs", "class_name", "config")
INPUT_KEYS = ("name", "shape", "dtype")
# Keras builds a model by recursing through its layers, about one Python frame per layer
# (Sequential and Functional, Keras 3.15.1): 2,000 layers hit Python's recursion limit of
# 1,000 at layer 986. 500 leave room for the stack below and build, fit and save.
MAX_LAYERS = 500


def check_spec_keys(
    config: Config, path: KeyPath, value: dict[str, Any], problems: Problems
) -> None:
    """A `{class_name, config}` mapping: class_name is text, config a mapping, nothing else."""
    unknown_keys(config, path, value, SPEC_KEYS, problems)
    if "class_name" not in value:
        problems.append(config.problem(path, "missing 'class_name'"))
    elif not isinstance(value["class_name"], str):
        problems.append(
            config.problem(
                path + ("class_name",), f"expected text, got {kind_of(value['class_name'])}"
            )
        )
    if "config" in value and not isinstance(value["config"], dict | None):
        problems.append(
            config.problem(
                path + ("config",), f"expected a mapping, got {kind_of(value['config'])}"
            )
        )


def unknown_keys(
    config: Config,
    path: KeyPath,
    value: dict[str, Any],
    allowed: tuple[str, ...],
    problems: Problems,
) -> None:
    for key in value:
        if key not in allowed:
            hint = did_you_mean(key, allowed) or f" Allowed keys: {', '.join(allowed)}."
            problems.append(
                config.problem(path + (key,), f"unknown key '{key}'.{hint}", at_key=True)
            )


def check_model(config: Config, model: dict[str, Any], problems: Problems) -> None:
    path: KeyPath = ("model",)
    unknown_keys(config, path, model, MODEL_KEYS, problems)
    if "name" in model and (msg := model_name(model["name"])):
        problems.append(config.problem(path + ("name",), msg))
    functional = "inputs" in model
    whole = "class_name" in model
    if whole:
        # One class (a keras.Model subclass, say) is the whole model.
        for key in ("inputs", "layers", "outputs"):
            if key in model:
                problems.append(
                    config.problem(
                        path + (key,),
                        f"'{key}' does not go with 'class_name': a model given as one class "
                        "takes 'config' and 'input_shape' only",
                        at_key=True,
                    )
                )
        check_spec_keys(config, path, {k: model[k] for k in SPEC_KEYS if k in model}, problems)
        if "input_shape" not in model:
            problems.append(
                config.problem(path, "missing 'input_shape' (the shape the model is applied to)")
            )
        elif msg := shape(model["input_shape"]):
            problems.append(config.problem(path + ("input_shape",), msg))
        return
    if "config" in model:
        problems.append(
            config.problem(
                path + ("config",),
                "'config' belongs to a model given as one class (with 'class_name')",
                at_key=True,
            )
        )
    if functional and "input_shape" in model:
        problems.append(
            config.problem(
                path, "give either 'input_shape' (Sequential) or 'inputs' (functional), not both"
            )
        )
    if not functional and "input_shape" not in model:
        problems.append(
            config.problem(
                path,
                "missing 'input_shape' (Sequential model), 'inputs' (functional model) or "
                "'class_name' (a model class)",
            )
        )
    if "input_shape" in model and (msg := shape(model["input_shape"])):
        problems.append(config.problem(path + ("input_shape",), msg))
    layers = model.get("layers")
    if not isinstance(layers, list) or not layers:
        problems.append(
            config.problem(
                path + ("layers",) if "layers" in model else path,
                "expected a non-empty list of layers"
                if "layers" in model
                else "missing required key 'layers'",
            )
        )
        layers = []
    if len(layers) > MAX_LAYERS:
        problems.append(
            config.problem(
                path + ("layers",),
                f"{len(layers):,} layers, more than the {MAX_LAYERS} kinit builds: Keras builds "
                "a model by recursing through its layers, and deeper models exceed Python's "
                "recursion limit",
            )
        )
        return
    if functional:
        _functional(config, model, layers, problems)
    else:
        if "outputs" in model:
            problems.append(
                config.problem(
                    path + ("outputs",),
                    "'outputs' belongs to a functional "
                    "model (with 'inputs'); a Sequential model's output is "
                    "its last layer",
                    at_key=True,
                )
            )
        for i, layer in enumerate(layers):
            lpath = path + ("layers", i)
            if not isinstance(layer, dict):
                problems.append(
                    config.problem(
                        lpath, f"expected a {{class_name, config}} mapping, got {kind_of(layer)}"
                    )
                )
                continue
            if "inputs" in layer:
                problems.append(
                    config.problem(
                        lpath + ("inputs",),
                        "'inputs' needs the functional form "
                        "(model.inputs, named layers, model.outputs)",
                        at_key=True,
                    )
                )
                continue
            if "shares" in layer:
                # {shares: NAME} applies the layer NAME above once more, in sequence; NAME
                # is its config name or the one Keras gives it (dense, dense_1, ...).
                unknown_keys(config, lpath, layer, ("shares",), problems)
                if msg := string(layer["shares"]):
                    problems.append(config.problem(lpath + ("shares",), msg))
                elif i == 0:
                    problems.append(config.problem(lpath + ("shares",), "no layer above to share"))
                continue
            check_spec_keys(config, lpath, layer, problems)


def _functional(
    config: Config, model: dict[str, Any], layers: list[Any], problems: Problems
) -> None:
    path: KeyPath = ("model",)
    known: dict[str, str] = {}  # node name -> 'input' | 'layer' | 'call'
    inputs = model["inputs"]
    if not isinstance(inputs, list) or not inputs:
        problems.append(
            config.problem(path + ("inputs",), "expected a non-empty list of {name, shape} inputs")
        )
        inputs = []
    for i, item in enumerate(inputs):
        ipath = path + ("inputs", i)
        if not isinstance(item, dict):
            problems.append(
                config.problem(ipath, f"expected a {{name, shape}} mapping, got {kind_of(item)}")
            )
            continue
        unknown_keys(config, ipath, item, INPUT_KEYS, problems)
        for key, check in (("name", string), ("shape", shape)):
            if key not in item:
                problems.append(config.problem(ipath, f"missing required key '{key}'"))
            elif msg := check(item[key]):
                problems.append(config.problem(ipath + (key,), msg))
        if "dtype" in item and (msg := string(item["dtype"])):
            problems.append(config.problem(ipath + ("dtype",), msg))
        _define(config, known, item.get("name"), "input", ipath, problems)
    for i, layer in enumerate(layers):
        lpath = path + ("layers", i)
        if not isinstance(layer, dict):
            problems.append(
                config.problem(
                    lpath,
                    f"expected a mapping with name, class_name, config "
                    f"and inputs, got {kind_of(layer)}",
                )
            )
            continue
        unknown_keys(config, lpath, layer, FUNCTIONAL_LAYER_KEYS, problems)
        if "shares" in layer:
            for key in ("class_name", "config"):
                if key in layer:
                    problems.append(
                        config.problem(
                            lpath + (key,),
                            f"a layer entry with 'shares' "
                            f"reuses another layer and takes no '{key}'",
                            at_key=True,
                        )
                    )
            target = layer["shares"]
            if not isinstance(target, str) or known.get(target) != "layer":
                layer_names = [n for n, k in known.items() if k == "layer"]
                hint = did_you_mean(str(target), layer_names) or (
                    f" Layers defined above: {', '.join(layer_names) or 'none'}."
                )
                problems.append(
                    config.problem(
                        lpath + ("shares",), f"'{target}' is not a layer defined above.{hint}"
                    )
                )
        else:
            sub = {k: v for k, v in layer.items() if k in SPEC_KEYS}
            if "class_name" not in layer:
                problems.append(
                    config.problem(
                        lpath, "missing 'class_name' (or 'shares' to reuse a layer defined above)"
                    )
                )
            else:
                check_spec_keys(config, lpath, sub, problems)
            cfg_name = (
                (layer.get("config") or {}).get("name")
                if isinstance(layer.get("config"), dict)
                else None
            )
            if cfg_name is not None and cfg_name != layer.get("name"):
                problems.append(
                    config.problem(
                        lpath + ("config", "name"),
                        f"differs from the entry's name '{layer.get('name')}'; give the name once",
                    )
                )
        if "name" not in layer:
            problems.append(config.problem(lpath, "missing required key 'name'"))
        if "inputs" not in layer:
            problems.append(config.problem(lpath, "missing required key 'inputs'"))
        else:
            _references(config, known, layer["inputs"], lpath + ("inputs",), problems)
        _define(
            config,
            known,
            layer.get("name"),
            "call" if "shares" in layer else "layer",
            lpath,
            problems,
        )
    if "outputs" not in model:
        problems.append(
            config.problem(
                path, "missing required key 'outputs' (the functional model's output layer names)"
            )
        )
    else:
        _references(config, known, model["outputs"], path + ("outputs",), problems)


def _define(
    config: Config,
    known: dict[str, str],
    name: Any,
    kind: str,
    path: KeyPath,
    problems: Problems,
) -> None:
    if not isinstance(name, str):
        return
    if name in known:
        problems.append(
            config.problem(
                path + ("name",),
                f"the name '{name}' is used twice; "
                "names must be unique (use 'shares' to apply a layer again)",
            )
        )
    known[name] = kind


def _references(
    config: Config, known: dict[str, str], value: Any, path: KeyPath, problems: Problems
) -> None:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        problems.append(
            config.problem(path, f"expected a name or a list of names, got {kind_of(value)}")
        )
        return
    for i, name in enumerate(names):
        if name not in known:
            hint = did_you_mean(name, list(known)) or (
                f" Defined above: {', '.join(known) or 'nothing'}."
            )
            where = path if isinstance(value, str) else path + (i,)
            problems.append(
                config.problem(where, f"'{name}' is not an input or layer defined above.{hint}")
            )


def layer_names(model: Any) -> list[tuple[KeyPath, str]]:
    """Each layer name the config gives, at its key: a functional entry's `name`, a
    Sequential layer's `config.name` (an entry with `shares` names no new layer)."""
    layers = model.get("layers") if isinstance(model, dict) else None
    if not isinstance(layers, list):
        return []
    found: list[tuple[KeyPath, str]] = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict) or "shares" in layer:
            continue
        path: KeyPath = ("model", "layers", i)
        if "inputs" in model:
            name, path = layer.get("name"), path + ("name",)
        else:
            cfg = layer.get("config")
            name, path = (
                (cfg or {}).get("name") if isinstance(cfg, dict) else None,
                path
                + (
                    "config",
                    "name",
                ),
            )
        if isinstance(name, str):
            found.append((path, name))
    return found


def unused(model: Any) -> list[str]:
    """The inputs and layer entries of a functional model that lead to none of its outputs:
    Keras leaves them out of the model without a word, so their layers are never trained."""
    if not isinstance(model, dict) or "inputs" not in model:
        return []
    outputs = model.get("outputs")
    reached = set([outputs] if isinstance(outputs, str) else outputs or [])
    shared: set[str] = set()  # layers applied again by a reached `shares` entry
    entries = [e for e in model.get("layers") or [] if isinstance(e, dict)]
    for entry in reversed(entries):
        if entry.get("name") in reached:
            names = entry.get("inputs")
            reached.update([names] if isinstance(names, str) else names or [])
            if isinstance(entry.get("shares"), str):
                shared.add(entry["shares"])
    defined = [i.get("name") for i in model.get("inputs") or [] if isinstance(i, dict)]
    defined += [e.get("name") for e in entries]
    return [n for n in defined if isinstance(n, str) and n not in reached | shared]


def unused_text(names: list[str]) -> str:
    """ "'d', 'e' lead to none of the model's outputs", of what unused() found."""
    verb = "leads" if len(names) == 1 else "lead"
    return f"{', '.join(repr(n) for n in names)} {verb} to none of the model's outputs"
