"""The `model:` section described once: its three forms (Sequential, functional, one class),
the keys each form and each of its list items takes, and for every key its check, its doc
and what is said when it is missing or given where it does not belong.

Validation (model_schema.py) and the JSON Schema for editors (registry/json_schema.py) are
both read from here, so a model key is added in one place. What refers across entries (a
layer's `inputs` naming one above it, `shares`, names used twice, a config's name against
its entry's) is not a value's check: model_schema.py says it in code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from kinit_cli.config.fields import (
    REQUIRED,
    Field,
    class_name_of,
    model_name,
    non_empty_list,
    optional_mapping,
    reference,
    references,
    shape,
    string,
    with_schema,
)
from kinit_cli.config.source import KeyPath, kind_of


@dataclass(frozen=True)
class Key(Field):
    """A key of a model mapping: a Field (`default` REQUIRED when it must be given), what
    is said when it is missing, or given in a form that does not take it, and, for a list
    of mappings, the forms of its items."""

    missing: str = ""  # the problem of a REQUIRED key left out; default: "missing required key"
    elsewhere: str = ""  # the problem of the key in a form that does not take it
    items: Forms | None = None

    def missing_text(self, key: str) -> str:
        return self.missing or f"missing required key '{key}'"

    def elsewhere_text(self, key: str) -> str:
        return self.elsewhere or f"'{key}' does not go with this form of model"


@dataclass(frozen=True)
class Form:
    """One form of a mapping: the keys it takes, the key that tells it from its siblings
    ('' for the form a mapping has when it holds no sibling's key), and what is said of a
    sibling's key given in it ('{key}' stands for the key; '' for that key's `elsewhere`)."""

    keys: dict[str, Key]
    tell: str = ""
    misplaced: str = ""
    # The kind whose class `class_name` names: its `config` is checked against that class.
    kind: str = ""
    # Keys of which the mapping needs at least one (a call's `inputs` or `args`).
    one_of: tuple[str, ...] = ()

    @property
    def required(self) -> list[str]:
        return [k for k, key in self.keys.items() if key.default is REQUIRED]

    def misplaced_text(self, key: str, rule: Key) -> str:
        return self.misplaced.format(key=key) if self.misplaced else rule.elsewhere_text(key)


@dataclass(frozen=True)
class Forms:
    """A mapping (or each item of a list of them) in one of several forms, told apart by
    their `tell` keys in order. `keys` holds every key any form takes, in the order an
    unknown key's message lists them; `expected` says what an item is, for a value that is
    no mapping; `first` is the form the first item must take, where it is not the first."""

    forms: tuple[Form, ...]
    expected: str
    keys: dict[str, Key] = field(default_factory=dict)
    first: Form | None = None

    def __post_init__(self) -> None:
        if not self.keys:  # every key of the forms, in the order they first appear
            keys = {k: v for form in self.forms for k, v in form.keys.items()}
            object.__setattr__(self, "keys", keys)

    @property
    def common(self) -> dict[str, Key]:
        """The keys every form takes, checked before the form is told."""
        return {k: v for k, v in self.keys.items() if all(k in f.keys for f in self.forms)}

    def form_of(self, mapping: dict[str, Any]) -> Form:
        """The form the mapping's keys tell: the first whose key it has, else the last."""
        return next((f for f in self.forms if f.tell and f.tell in mapping), self.forms[-1])


# Any number: kinit builds what Keras builds (runtime/recursion.py gives deep models room).
layer_list = non_empty_list("layers")


def spec(kind: str) -> Form:
    """`{class_name, config}` naming a class of `kind`: class_name text, config a mapping."""
    class_name = Key(class_name_of(kind), REQUIRED, missing="missing 'class_name'")
    return Form({"class_name": class_name, "config": CONFIG}, kind=kind)


SHARES = "apply this layer, defined above, once more"
CONFIG = Key(optional_mapping)

SEQUENTIAL_CLASS = spec("layer")
SEQUENTIAL_ENTRIES = Forms(
    (Form({"shares": Key(string, REQUIRED, SHARES)}, tell="shares"), SEQUENTIAL_CLASS),
    expected="a {class_name, config} mapping",
    first=SEQUENTIAL_CLASS,  # {shares: NAME} needs a layer above it
)

ENTRY_NAME = Key(reference, REQUIRED, "the name later entries and outputs use")
# What an entry's layer is applied to: its call's arguments.
CALL_KEYS = ("inputs", "args", "kwargs")
# `NAME[i]`: the i-th output of an entry with several (Keras's flattened index).
_INDEXED = re.compile(r"(.+)\[(\d+)\]")


def reference_parts(text: str) -> tuple[str, int | None]:
    """`NAME` -> (NAME, None), `NAME[i]` -> (NAME, i)."""
    m = _INDEXED.fullmatch(text)
    return (m.group(1), int(m.group(2))) if m else (text, None)


def is_ref(value: Any) -> bool:
    """Whether an argument is a tensor, `{ref: NAME}`, rather than a constant."""
    return isinstance(value, dict) and len(value) == 1 and "ref" in value


def call_references(entry: dict[str, Any]) -> Iterator[tuple[KeyPath, Any]]:
    """Each reference of an entry's call with its path in the entry: the names of `inputs`
    (at any depth), and the `{ref: NAME}` of `args` and `kwargs` (the NAME as given)."""
    stack: list[tuple[KeyPath, Any, bool]] = [
        ((key,), entry[key], key == "inputs") for key in reversed(CALL_KEYS) if key in entry
    ]
    while stack:
        path, value, names = stack.pop()
        if names and isinstance(value, str):
            yield path, value
        elif not names and is_ref(value):
            yield path + ("ref",), value["ref"]
        elif isinstance(value, dict):
            stack += [(path + (k,), v, names) for k, v in reversed(value.items())]
        elif isinstance(value, list):
            stack += [(path + (i,), v, names) for i, v in reversed(list(enumerate(value)))]


@with_schema(
    {
        "anyOf": [
            {"type": "string"},
            {"type": "array", "minItems": 1},
            {"type": "object", "minProperties": 1},
        ]
    }
)
def call_inputs(v: Any) -> str | None:
    """A name, or a non-empty list or mapping of them, nested as the layer takes them."""
    stack = [v]
    while stack:
        item = stack.pop()
        if isinstance(item, list | dict) and item:
            stack += item.values() if isinstance(item, dict) else item
        elif not isinstance(item, str):
            return f"expected a name, or a list or mapping of names, got {kind_of(v)}"
    return None


@with_schema({"type": "array"})
def call_args(v: Any) -> str | None:
    if isinstance(v, list):
        return None
    return f"expected a list of arguments ({{ref: NAME}} for a tensor), got {kind_of(v)}"


@with_schema({"type": "object"})
def call_kwargs(v: Any) -> str | None:
    if isinstance(v, dict):
        return None
    return f"expected a mapping of keyword arguments ({{ref: NAME}} for a tensor), got {kind_of(v)}"


ENTRY_INPUTS = Key(
    call_inputs,
    doc="what the layer is applied to: a name (NAME[i] for the i-th of several outputs), "
    "or a list or mapping of them, passed as its first argument",
    missing="missing 'inputs' (what the layer is applied to), or 'args'",
    elsewhere="'inputs' needs the functional form (model.inputs, named layers, model.outputs)",
)
ENTRY_ARGS = Key(
    call_args,
    doc="further positional arguments (all of them, without 'inputs'): {ref: NAME} for a "
    "tensor, any other value a constant",
)
ENTRY_KWARGS = Key(
    call_kwargs, doc="keyword arguments: {ref: NAME} for a tensor, any other value a constant"
)
CALL = {"inputs": ENTRY_INPUTS, "args": ENTRY_ARGS, "kwargs": ENTRY_KWARGS}
FUNCTIONAL_CLASS = Form(
    {
        "name": ENTRY_NAME,
        "class_name": replace(
            SEQUENTIAL_CLASS.keys["class_name"],
            missing="missing 'class_name' (or 'shares' to reuse a layer defined above)",
        ),
        "config": CONFIG,
        **CALL,
    },
    kind="layer",
    one_of=CALL_KEYS,
)
FUNCTIONAL_SHARED = Form(
    {"name": ENTRY_NAME, **CALL, "shares": Key(reference, REQUIRED, SHARES)},
    tell="shares",
    misplaced="a layer entry with 'shares' reuses another layer and takes no '{key}'",
    one_of=CALL_KEYS,
)
FUNCTIONAL_ENTRIES = Forms(
    (FUNCTIONAL_SHARED, FUNCTIONAL_CLASS),
    expected="a mapping with name, class_name, config and inputs",
    keys={**FUNCTIONAL_CLASS.keys, **FUNCTIONAL_SHARED.keys},
)
INPUTS = Forms(
    (Form({"name": Key(string, REQUIRED), "shape": Key(shape, REQUIRED), "dtype": Key(string)}),),
    expected="a {name, shape} mapping",
)

# Every key of `model:`, in the order an unknown key's message lists them; each form below
# takes some, as they are here or made required.
KEYS = {
    "name": Key(model_name, doc="the Keras model's name"),
    "input_shape": Key(
        shape,
        doc="the shape of one example, without the batch dimension",
        elsewhere="give either 'input_shape' (Sequential) or 'inputs' (functional), not both",
    ),
    "inputs": Key(
        non_empty_list("{name, shape} inputs"), doc="the functional model's inputs", items=INPUTS
    ),
    "layers": Key(layer_list, doc="the layers"),
    "outputs": Key(
        references,
        doc="the names of the output layers",
        elsewhere="'outputs' belongs to a functional model (with 'inputs'); a Sequential "
        "model's output is its last layer",
    ),
    "class_name": Key(class_name_of("layer")),
    "config": replace(
        CONFIG, elsewhere="'config' belongs to a model given as one class (with 'class_name')"
    ),
}


def _required(key: str, missing: str = "", **changes: Any) -> Key:
    return replace(KEYS[key], default=REQUIRED, missing=missing, **changes)


WHOLE = Form(
    {
        "name": KEYS["name"],
        "class_name": _required("class_name"),
        "config": KEYS["config"],
        "input_shape": replace(
            KEYS["input_shape"],
            doc="the shape of one example, without the batch dimension: the class is applied "
            "to an input of it; left out for a model class that builds itself when it is made "
            "(a functional keras.Model subclass, such as a model library's backbone)",
        ),
    },
    tell="class_name",
    misplaced="'{key}' does not go with 'class_name': a model given as one class takes "
    "'config' and 'input_shape' only",
    kind="layer",
)
FUNCTIONAL = Form(
    {
        "name": KEYS["name"],
        "inputs": _required("inputs"),
        "layers": _required(
            "layers",
            doc="named layers, each applied to the inputs or layers above it",
            items=FUNCTIONAL_ENTRIES,
        ),
        "outputs": _required(
            "outputs", "missing required key 'outputs' (the functional model's output layer names)"
        ),
    },
    tell="inputs",
)
SEQUENTIAL = Form(
    {
        "name": KEYS["name"],
        "input_shape": _required(
            "input_shape",
            "missing 'input_shape' (Sequential model), 'inputs' (functional model) or "
            "'class_name' (a model class)",
        ),
        "layers": _required(
            "layers",
            doc="the layers, in order: {class_name, config}, or {shares: NAME}",
            items=SEQUENTIAL_ENTRIES,
        ),
    },
)
# The form is told by its keys: class_name first, then inputs.
MODEL = Forms((WHOLE, FUNCTIONAL, SEQUENTIAL), expected="a mapping", keys=KEYS)
