"""The JSON Schema of each class a config can name (per kind, for `kinit schema`): the
spellings that resolve to it, and its `config` typed from its constructor's parameters.

One thing is inferred beyond the defaults: a parameter of a Keras built-in class that has
no default at all (Dense's `units`, Conv2D's `filters`, Dropout's `rate`) is typed from the
first words of its entry in the class's Google-style docstring `Args:` section ("units:
Positive integer, ...", "rate: Float between 0 and 1", "A Python float.") as an integer, a
number or text; anything less plain ("Integer or tuple of ...") stays untyped. Only where it
was verified (DOCSTRING_TYPED): tests/registry/test_json_schema.py checks that Keras's constructor
rejects every value such a type excludes (text, a fraction for an integer, a list, a
mapping), so the schema flags nothing validate accepts. Many constructors accept such values
(Resizing takes `height: "many"`, LSTM `units: 2.5`, the schedules text for their rates), so
their parameters, and every plugin's (a docstring promises nothing), are typed by their
defaults alone. Booleans pass these types: Python's bool is an int, and Keras takes
`units: true` as 1.
"""

from __future__ import annotations

import inspect
import re
from typing import TYPE_CHECKING, Any

from kinit_cli.errors import ResolveError
from kinit_cli.registry.registration import KINDS
from kinit_cli.registry.signatures import argument_docs, parameters, summary, takes_function
from kinit_cli.registry.specs import COMPILE_METRICS, argument_kind

if TYPE_CHECKING:
    from kinit_cli.registry.catalog import Entry, Registry
    from kinit_cli.registry.signatures import Parameter

_ANY = frozenset({"string", "number", "boolean", "array", "object", "null"})
_INFERRED = {
    "integer": "integer",
    "int": "integer",
    "float": "number",
    "string": "string",
    "str": "string",
}
# The first words of a docstring's Args entry that plainly name one type: "Positive
# integer, ...", "Float between 0 and 1", "A Python int. ...", "String, path of ...".
_PLAIN_TYPE = re.compile(
    r"(?:an? )?(?:python )?(?:positive )?(integer|int|float|string|str)"
    r"(?=\s*(?:[,.;]|between\b|$))",
    re.IGNORECASE,
)
# Keras 3.15's parameters whose docstring type its constructor enforces, checked by
# tests/registry/test_json_schema.py for every value the type excludes.
DOCSTRING_TYPED = frozenset(
    {
        "AlphaDropout.rate",
        "BackupAndRestore.backup_dir",
        "Conv1D.filters",
        "Conv2D.filters",
        "Conv3D.filters",
        "Dense.units",
        "Dropout.rate",
        "Embedding.input_dim",
        "Embedding.output_dim",
        "GaussianDropout.rate",
        "GaussianNoise.stddev",
        "GRU.units",
        "RepeatVector.n",
        "ReversibleEmbedding.input_dim",
        "ReversibleEmbedding.output_dim",
        "SimpleRNN.units",
        "SpatialDropout1D.rate",
        "SpatialDropout2D.rate",
        "SpatialDropout3D.rate",
    }
)


# `MODULE>Name` for a class of Keras's own code, as export-config writes it.
KERAS_MODULE_NAME = r"^keras(\.[A-Za-z_][A-Za-z0-9_]*)*>[A-Za-z_][A-Za-z0-9_]*$"


def kind_defs(registry: Registry, kind: str) -> dict[str, Any]:
    """`KIND` (a name or a mapping), `KIND.name`, `KIND.object` and `KIND.configs` (the
    config each class takes, chosen by its class_name)."""

    entries = registry.catalog(kind)
    spellings = {id(e): _spellings(e) for e in entries}
    owners: dict[str, int] = {}
    for e in entries:
        for name in {n.lower() for n in spellings[id(e)]}:
            owners[name] = owners.get(name, 0) + 1
    completions: list[str] = []
    accepted: list[str] = []
    branches = []
    for e in entries:
        mine = []
        for name in spellings[id(e)]:
            try:
                if registry.resolve(kind, name) is e:
                    mine.append(name)
            except ResolveError:  # claimed by two plugins: only package>Name reaches it
                continue
        completions += [n for n in mine if not n.lower().startswith("keras>")]
        accepted += mine
        if not mine:
            continue
        # A spelling another entry shares in some capitalisation picks this one only as
        # written; the others pick it in any capitalisation, as the registry does.
        pattern = _alternatives(mine, exact={n for n in mine if owners[n.lower()] > 1})
        branches.append(
            {
                "if": {
                    "properties": {"class_name": {"pattern": pattern}},
                    "required": ["class_name"],
                },
                "then": _config_then(e),
            }
        )
    if kind == "metric":
        completions += list(COMPILE_METRICS)
        accepted += list(COMPILE_METRICS)
    plural = KINDS[kind].plural
    return {
        kind: {"anyOf": [{"$ref": f"#/$defs/{kind}.name"}, {"$ref": f"#/$defs/{kind}.object"}]},
        f"{kind}.name": {
            "type": "string",
            "description": f"{kind} name (`kinit list-{plural}`), in any capitalisation",
            "anyOf": [
                {"enum": sorted(set(completions), key=lambda n: (n.lower(), n))},
                {"pattern": _alternatives(accepted, exact=set())},
                # A class of one of Keras's own modules (keras.src.applications.convnext>
                # LayerScale), which validate imports from there.
                {"pattern": KERAS_MODULE_NAME},
            ],
        },
        f"{kind}.object": {
            "type": "object",
            "description": f"{kind} as Keras serializes it: {{class_name, config}}",
            "properties": {
                "class_name": {"$ref": f"#/$defs/{kind}.name"},
                "config": {"type": ["object", "null"]},
            },
            "required": ["class_name"],
            "additionalProperties": False,
            "allOf": [{"$ref": f"#/$defs/{kind}.configs"}],
        },
        f"{kind}.configs": {"allOf": branches},
    }


def _spellings(entry: Entry) -> list[str]:
    """The names that may reach an entry: its own, its aliases and its package>Name."""
    names = list(entry.names())
    if entry.key:
        names.append(entry.key)
    else:
        names += [f"keras>{n}" for n in entry.names()]
    return names


def _alternatives(names: list[str], exact: set[str]) -> str:
    """An ECMA-262 pattern matching exactly these names, those outside `exact` in any
    capitalisation (JSON Schema has no case-insensitive flag)."""

    def char(c: str, fold: bool) -> str:
        if fold and c.lower() != c.upper():
            return f"[{c.lower()}{c.upper()}]"
        return c if c.isalnum() or c in "_>-" else "\\" + c

    parts = sorted({"".join(char(c, n not in exact) for c in n) for n in names})
    return f"^(?:{'|'.join(parts)})$"


def _config_then(entry: Entry) -> dict[str, Any]:
    """What `config` may hold once class_name has picked `entry`."""

    obj = entry.obj
    about = f"{entry.name}: {summary(obj)}".rstrip(": ")
    factory = getattr(obj, "factory", None) if inspect.isclass(obj) else None
    if factory is not None or not inspect.isclass(obj):
        # A function (or a factory function) is named, never configured.
        return {
            "properties": {
                "config": {"type": ["object", "null"], "maxProperties": 0, "description": about}
            }
        }
    params, open_kwargs = parameters(obj)
    docs = argument_docs(obj)
    config: dict[str, Any] = {
        "type": ["object", "null"],
        "description": about,
        "properties": {p.name: parameter(entry, p, docs.get(p.name, "")) for p in params},
    }
    if not open_kwargs:
        config["additionalProperties"] = False
    missing = [p.name for p in params if p.required]
    if not missing:
        return {"properties": {"config": config}}
    config["type"] = "object"
    config["required"] = missing
    return {"properties": {"config": config}, "required": ["config"]}


def parameter(entry: Entry, param: Parameter, doc: str = "") -> dict[str, Any]:
    """The schema of one constructor argument: as the argument checks type it (specs.py)."""

    if takes_function(param, doc, callback=entry.kind == "callback"):
        # A Python function only, which no config value is (specs._not_a_function).
        return {"type": "null", **({"description": doc} if doc else {})}
    types = _default_types(param.default)
    inferred = (
        entry.builtin
        and param.required
        and f"{entry.name}.{param.name}" in DOCSTRING_TYPED
        and infer_type(doc)
    )
    if inferred:
        types = frozenset({inferred, "null"} | ({"boolean"} if inferred != "string" else set()))
    by_name = argument_kind(param.name, "")  # a text value names an object of this kind
    by_mapping = argument_kind(param.name, {})  # a mapping specifies one
    branches: list[dict[str, Any]] = []
    if by_name:
        branches.append({"$ref": f"#/$defs/{by_name}.name"})
        types -= {"string"}
    if by_mapping:
        branches.append({"$ref": f"#/$defs/{by_mapping}.object"})
        types -= {"object"}
    out: dict[str, Any] = {}
    if branches:
        out["anyOf"] = branches + ([{"type": sorted(types)}] if types else [])
    elif types != _ANY:
        out["type"] = sorted(types)
    if doc:
        out["description"] = doc
    if not param.required and param.default is not None and _plain(param.default):
        out["default"] = list(param.default) if isinstance(param.default, tuple) else param.default
    return out


def _default_types(default: Any) -> frozenset[str]:
    """The JSON types specs._mismatch lets through for a parameter with this default."""
    if default is None or default is inspect.Parameter.empty:
        return _ANY
    if isinstance(default, bool):
        return frozenset({"boolean", "null"})
    if isinstance(default, int | float):
        return frozenset({"number", "array", "null"})  # axis-like ones take lists
    if isinstance(default, str):
        return frozenset({"string", "object", "null"})
    return _ANY


def infer_type(doc: str) -> str | None:
    """'integer', 'number' or 'string' when a docstring's Args entry opens with that one
    type ("Positive integer, dimensionality of ..."); None otherwise."""
    match = _PLAIN_TYPE.match(doc)
    return _INFERRED[match.group(1).lower()] if match else None


def _plain(value: Any) -> bool:
    if isinstance(value, tuple | list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, bool | int | float | str)
