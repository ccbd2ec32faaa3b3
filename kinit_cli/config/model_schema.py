"""The `model:` section's checks, read from its one description (model_fields.py): each
key's value where it is given, what is missing or misplaced, and in code what refers across
layers (a layer's inputs, `shares`, outputs, names used twice), which no key's check can
say. Problems are added in the order a reader meets them, form by form."""

from __future__ import annotations

from typing import Any

from kinit_cli.config.fields import REQUIRED
from kinit_cli.config.model_fields import (
    CALL_KEYS,
    FUNCTIONAL,
    FUNCTIONAL_ENTRIES,
    FUNCTIONAL_SHARED,
    INPUTS,
    MODEL,
    SEQUENTIAL,
    SEQUENTIAL_ENTRIES,
    WHOLE,
    Form,
    Forms,
    Key,
    call_references,
    reference_parts,
    spec,
)
from kinit_cli.config.source import Config, KeyPath, kind_of
from kinit_cli.errors import Problems, did_you_mean

__all__ = ["MODEL_KEYS", "check_model", "check_spec_keys", "unknown_keys"]

MODEL_KEYS = tuple(MODEL.keys)  # for readers; the checks read MODEL itself
PATH: KeyPath = ("model",)
_SPEC = spec("layer")  # the checks of a {class_name, config} are the same for every kind


def check_spec_keys(
    config: Config, path: KeyPath, value: dict[str, Any], problems: Problems
) -> None:
    """A `{class_name, config}` mapping: class_name is text, config a mapping, nothing else."""
    _closed(config, path, value, _SPEC, problems)


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
    """`model:` in the form its keys tell (model_fields.MODEL: class_name, then inputs,
    else Sequential), everything wrong added to `problems`. The forms are split as
    model/build.py builds them (_whole, _functional, _sequential)."""
    unknown_keys(config, PATH, model, tuple(MODEL.keys), problems)
    _values(config, PATH, model, MODEL.common, problems)
    form = MODEL.form_of(model)
    if form is WHOLE:
        _whole(config, model, problems)
        return
    # 'config' without 'class_name', which would have told the whole-model form.
    _misplaced(config, PATH, model, form, _only(WHOLE, MODEL), problems)
    if form is FUNCTIONAL:
        _sequential_keys(config, model, problems)
    _values(config, PATH, model, _plain(form), problems)
    layers = model.get("layers")
    _value(config, PATH, model, "layers", form.keys["layers"], problems)
    if not isinstance(layers, list):
        layers = []
    if form is FUNCTIONAL:
        _functional(config, model, layers, problems)
    else:
        _sequential(config, model, layers, problems)


def _whole(config: Config, model: dict[str, Any], problems: Problems) -> None:
    """One class (a keras.Model subclass, say) is the whole model: no layers of its own."""
    _misplaced(config, PATH, model, WHOLE, MODEL.keys, problems)
    _values(config, PATH, model, _plain(WHOLE), problems)


def _sequential_keys(config: Config, model: dict[str, Any], problems: Problems) -> None:
    """A Sequential model's keys in a functional one ('input_shape' with 'inputs'): said of
    the model, which holds both, and their values checked all the same."""
    for key, rule in SEQUENTIAL.keys.items():
        if key in model and key not in FUNCTIONAL.keys:
            problems.append(config.problem(PATH, rule.elsewhere_text(key)))
            _value(config, PATH, model, key, rule, problems)


def _sequential(
    config: Config, model: dict[str, Any], layers: list[Any], problems: Problems
) -> None:
    """Layers applied in order; `{shares: NAME}` applies the layer NAME above once more
    (its config name or the one Keras gives it: dense, dense_1, ...)."""
    _misplaced(config, PATH, model, SEQUENTIAL, FUNCTIONAL.keys, problems)
    entries = SEQUENTIAL_ENTRIES
    for i, layer in enumerate(layers):
        lpath = PATH + ("layers", i)
        if not _is_mapping(config, lpath, layer, entries, problems):
            continue
        if "inputs" in layer:
            text = FUNCTIONAL_ENTRIES.keys["inputs"].elsewhere
            problems.append(config.problem(lpath + ("inputs",), text, at_key=True))
            continue
        form = entries.form_of(layer)
        if _closed(config, lpath, layer, form, problems) and i == 0 and form is not entries.first:
            problems.append(config.problem(lpath + (form.tell,), "no layer above to share"))


def _functional(
    config: Config, model: dict[str, Any], layers: list[Any], problems: Problems
) -> None:
    """Named inputs, then named layers each applied to inputs or layers above it, then the
    outputs: every name refers to one defined above."""
    known: dict[str, str] = {}  # node name -> 'input' | 'layer' | 'call'
    inputs = model["inputs"]
    if not _value(config, PATH, model, "inputs", FUNCTIONAL.keys["inputs"], problems):
        inputs = []
    for i, item in enumerate(inputs):
        ipath = PATH + ("inputs", i)
        if _is_mapping(config, ipath, item, INPUTS, problems):
            _closed(config, ipath, item, INPUTS.forms[0], problems)
            _define(config, known, item.get("name"), "input", ipath, problems)
    for i, layer in enumerate(layers):
        lpath = PATH + ("layers", i)
        if _is_mapping(config, lpath, layer, FUNCTIONAL_ENTRIES, problems):
            _entry(config, known, layer, lpath, problems)
    outputs = FUNCTIONAL.keys["outputs"]
    if _value(config, PATH, model, "outputs", outputs, problems):
        _references(config, known, model["outputs"], PATH + ("outputs",), problems)


def _entry(
    config: Config, known: dict[str, str], layer: dict[str, Any], lpath: KeyPath, problems: Problems
) -> None:
    """One functional layer entry: a new layer, or `shares` applying one above again."""
    unknown_keys(config, lpath, layer, tuple(FUNCTIONAL_ENTRIES.keys), problems)
    form = FUNCTIONAL_ENTRIES.form_of(layer)
    if form is FUNCTIONAL_SHARED:
        _misplaced(config, lpath, layer, form, FUNCTIONAL_ENTRIES.keys, problems)
        _shares(config, known, layer["shares"], lpath + ("shares",), problems)
    else:
        _value(config, lpath, layer, "class_name", form.keys["class_name"], problems)
        if "class_name" in layer:  # a config is read against its class
            _value(config, lpath, layer, "config", form.keys["config"], problems)
        _config_name(config, layer, lpath, problems)
    _value(config, lpath, layer, "name", form.keys["name"], problems)
    _call(config, known, layer, form, lpath, problems)
    _define(config, known, layer.get("name"), "call" if form.tell else "layer", lpath, problems)


def _call(
    config: Config,
    known: dict[str, str],
    layer: dict[str, Any],
    form: Form,
    lpath: KeyPath,
    problems: Problems,
) -> None:
    """What the entry's layer is applied to (`inputs`, `args`, `kwargs`): at least one of
    them, and each reference in them to an input or entry above."""
    if not any(key in layer for key in form.one_of):
        problems.append(config.problem(lpath, form.keys[form.one_of[0]].missing_text("")))
        return
    if not _values(config, lpath, layer, {k: form.keys[k] for k in CALL_KEYS}, problems):
        return
    for where, name in call_references(layer):
        if isinstance(name, str):
            _reference(config, known, name, lpath + where, problems)
        else:
            problems.append(
                config.problem(lpath + where, f"expected the name of a tensor, got {kind_of(name)}")
            )


def _shares(
    config: Config, known: dict[str, str], target: Any, path: KeyPath, problems: Problems
) -> None:
    """`shares` names a layer defined above (not an input, nor another entry's call)."""
    if not isinstance(target, str) or known.get(target) != "layer":
        layer_names = [n for n, k in known.items() if k == "layer"]
        hint = did_you_mean(str(target), layer_names) or (
            f" Layers defined above: {', '.join(layer_names) or 'none'}."
        )
        problems.append(config.problem(path, f"'{target}' is not a layer defined above.{hint}"))


def _config_name(config: Config, layer: dict[str, Any], lpath: KeyPath, problems: Problems) -> None:
    """A layer named twice (the entry's name and its config's) must be named alike."""
    cfg = layer.get("config")
    cfg_name = (cfg or {}).get("name") if isinstance(cfg, dict) else None
    if cfg_name is not None and cfg_name != layer.get("name"):
        problems.append(
            config.problem(
                lpath + ("config", "name"),
                f"differs from the entry's name '{layer.get('name')}'; give the name once",
            )
        )


def _is_mapping(
    config: Config, path: KeyPath, value: Any, forms: Forms, problems: Problems
) -> bool:
    """Whether a list item is a mapping, as its forms need; what it is otherwise."""
    if isinstance(value, dict):
        return True
    problems.append(config.problem(path, f"expected {forms.expected}, got {kind_of(value)}"))
    return False


def _closed(
    config: Config, path: KeyPath, value: dict[str, Any], form: Form, problems: Problems
) -> bool:
    """A mapping of one form and no other key; whether every key it has is as it should be."""
    unknown_keys(config, path, value, tuple(form.keys), problems)
    return _values(config, path, value, form.keys, problems)


def _values(
    config: Config, path: KeyPath, value: dict[str, Any], keys: dict[str, Key], problems: Problems
) -> bool:
    """Each of `keys` given where required and passing its check: whether all are."""
    results = [_value(config, path, value, key, rule, problems) for key, rule in keys.items()]
    return all(results)


def _value(
    config: Config, path: KeyPath, value: dict[str, Any], key: str, rule: Key, problems: Problems
) -> bool:
    """Whether `key` is given and its value passes the rule's check (or it may be left out)."""
    if key not in value:
        if rule.default is REQUIRED:
            problems.append(config.problem(path, rule.missing_text(key)))
            return False
        return True
    if msg := rule.check(value[key]):
        problems.append(config.problem(path + (key,), msg))
        return False
    return True


def _plain(form: Form) -> dict[str, Key]:
    """A model form's own keys but those walked in code (their items refer to each other)."""
    walked = ("inputs", "layers", "outputs")
    return {k: v for k, v in form.keys.items() if k not in MODEL.common and k not in walked}


def _only(form: Form, forms: Forms) -> dict[str, Key]:
    """The keys only `form` takes of its siblings."""
    others = [f for f in forms.forms if f is not form]
    return {k: v for k, v in form.keys.items() if not any(k in f.keys for f in others)}


def _misplaced(
    config: Config,
    path: KeyPath,
    value: dict[str, Any],
    form: Form,
    keys: dict[str, Key],
    problems: Problems,
) -> None:
    """Each of `keys` the mapping has that `form` does not take: where it belongs instead."""
    for key, rule in keys.items():
        if key in value and key not in form.keys:
            text = form.misplaced_text(key, rule)
            problems.append(config.problem(path + (key,), text, at_key=True))


def _define(
    config: Config,
    known: dict[str, str],
    name: Any,
    kind: str,
    path: KeyPath,
    problems: Problems,
) -> None:
    """Record `name` as an input, a layer or a layer's call; a name given twice is a problem."""
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
    config: Config, known: dict[str, str], value: str | list[str], path: KeyPath, problems: Problems
) -> None:
    """Each name of `value` (one that fields.references took) defined above it."""
    if isinstance(value, str):
        _reference(config, known, value, path, problems)
        return
    for i, name in enumerate(value):
        _reference(config, known, name, path + (i,), problems)


def _reference(
    config: Config, known: dict[str, str], name: str, path: KeyPath, problems: Problems
) -> None:
    """`NAME` or `NAME[i]` names an input or entry defined above."""
    base = reference_parts(name)[0]
    if base not in known:
        hint = did_you_mean(base, list(known)) or (
            f" Defined above: {', '.join(known) or 'nothing'}."
        )
        problems.append(
            config.problem(path, f"'{name}' is not an input or layer defined above.{hint}")
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
            name = cfg.get("name") if isinstance(cfg, dict) else None
            path += ("config", "name")
        if isinstance(name, str):
            found.append((path, name))
    return found


def unused(model: Any) -> list[str]:
    """The inputs and layer entries of a functional model that lead to none of its outputs:
    Keras leaves them out of the model without a word, so their layers are never trained."""
    if not isinstance(model, dict) or "inputs" not in model:
        return []
    outputs = model.get("outputs")
    reached = _bases([outputs] if isinstance(outputs, str) else outputs or [])
    shared: set[str] = set()  # layers applied again by a reached `shares` entry
    entries = [e for e in model.get("layers") or [] if isinstance(e, dict)]
    for entry in reversed(entries):
        if entry.get("name") in reached:
            reached |= _bases(name for _, name in call_references(entry))
            if isinstance(entry.get("shares"), str):
                shared.add(entry["shares"])
    defined = [i.get("name") for i in model.get("inputs") or [] if isinstance(i, dict)]
    defined += [e.get("name") for e in entries]
    return [n for n in defined if isinstance(n, str) and n not in reached | shared]


def _bases(names: Any) -> set[str]:
    """The entries `NAME` and `NAME[i]` references name."""
    return {reference_parts(n)[0] for n in names if isinstance(n, str)}


def unused_text(names: list[str]) -> str:
    """ "'d', 'e' lead to none of the model's outputs", of what unused() found."""
    verb = "leads" if len(names) == 1 else "lead"
    return f"{', '.join(repr(n) for n in names)} {verb} to none of the model's outputs"
