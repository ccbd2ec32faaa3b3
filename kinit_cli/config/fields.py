"""The value checks a config schema is written with: each takes a value and returns what is
wrong with it (one sentence), or None.

Each check also carries its JSON Schema fragment (`json_schema`), so that the schema
`kinit schema` writes for editors is derived from the very checks `validate` runs: a
fragment says what the check accepts, never more strictly (an editor must not flag a value
kinit takes), and where JSON Schema cannot say it all (a worker index within the list's
length) it says less.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kinit_cli.config.source import kind_of
from kinit_cli.errors import did_you_mean

Check = Callable[[Any], str | None]
REQUIRED = object()  # a Field default: the key must be given
NULL = {"type": "null"}


def is_address(v: Any) -> bool:
    """A worker address as TF_CONFIG gives it: host:port."""
    return isinstance(v, str) and re.fullmatch(r"[^\s:]+:\d{1,5}", v) is not None


def with_schema(fragment: dict[str, Any]) -> Callable[[Check], Check]:
    """Attach the JSON Schema fragment of what `check` accepts (decorator)."""

    def attach(check: Check) -> Check:
        check.json_schema = fragment  # type: ignore[attr-defined]
        return check

    return attach


def json_schema(check: Check) -> dict[str, Any]:
    """The JSON Schema fragment a check carries; {} (anything) for one that carries none."""
    return getattr(check, "json_schema", {})


def optional(check: Check) -> Check:
    """`check`, letting None (an empty YAML value) through."""
    return with_schema({"anyOf": [NULL, json_schema(check)]})(
        lambda v: None if v is None else check(v)
    )


def either(first: Check, second: Check) -> Check:
    """A value either check accepts; the second's message when neither does."""
    return with_schema({"anyOf": [json_schema(first), json_schema(second)]})(
        lambda v: None if first(v) is None else second(v)
    )


@dataclass(frozen=True)
class Field:
    """One key of a section: how to check its value, and its default (or required)."""

    check: Check
    default: Any = None
    doc: str = ""
    # Text is expected: a value YAML read as a number, date or boolean gets a "quote it" hint.
    text: bool = False


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@with_schema({"type": "string"})
def string(v: Any) -> str | None:
    return None if isinstance(v, str) else f"expected text, got {kind_of(v)}"


@with_schema({"type": ["string", "null"]})
def optional_string(v: Any) -> str | None:
    return None if v is None else string(v)


@with_schema({"type": "boolean"})
def boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else f"expected true or false, got {kind_of(v)}"


# TensorFlow counts steps, batches and epochs in 32-bit integers: a larger count wraps (a
# steps_per_execution of 2**31 trained no step, Keras 3.15) or fails inside tf.data.
INT32_MAX = 2**31 - 1


def integer(
    minimum: int | None = None, optional: bool = False, maximum: int | None = INT32_MAX
) -> Check:
    """An integer within [minimum, maximum]; a count TensorFlow takes unless told otherwise."""

    def check(v: Any) -> str | None:
        if optional and v is None:
            return None
        if not _is_int(v):
            return f"expected an integer, got {kind_of(v)}"
        if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
            if maximum is None:
                return f"expected an integer >= {minimum}, got {v}"
            if minimum is None:
                return f"expected an integer <= {maximum}, got {v}"
            return f"expected an integer from {minimum} to {maximum}, got {v}"
        return None

    fragment: dict[str, Any] = {"type": ["integer", "null"] if optional else "integer"}
    if minimum is not None:
        fragment["minimum"] = minimum
    if maximum is not None:
        fragment["maximum"] = maximum
    return with_schema(fragment)(check)


# A run name is a folder name (runs/<name>-<timestamp>) and, with '-' and '.' made '_', the
# Keras model's name, which TensorFlow's root name scope takes only as ASCII starting with a
# letter or digit (`^[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*$`; `_x` and `é` fail in fit, Keras 3.15).
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
RUN_NAME_LENGTH = 100  # with "-YYYYmmdd-HHMMSS", well inside a file name's 255 bytes


@with_schema(
    {
        "type": ["string", "null"],
        "pattern": f"^(?:{RUN_NAME.pattern})$",
        "maxLength": RUN_NAME_LENGTH,
    }
)
def run_name(v: Any) -> str | None:
    """A name that is safe as a folder name and as a Keras model name."""
    if v is None:
        return None
    if not isinstance(v, str):
        return string(v)
    if RUN_NAME.fullmatch(v) and len(v) <= RUN_NAME_LENGTH:
        return None
    return (
        f"expected a name matching {RUN_NAME.pattern} (ASCII letters, digits, '_', '.' and '-', "
        f"a letter or digit first, at most {RUN_NAME_LENGTH} characters), as it names the run "
        f"directory and the Keras model; got {v!r}"
    )


# What TensorFlow takes as a root name scope, which a Keras model's name becomes in fit.
MODEL_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*")


@with_schema({"type": "string", "pattern": f"^(?:{MODEL_NAME.pattern})$"})
def model_name(v: Any) -> str | None:
    """A name Keras can train a model under (fit fails on any other, after the run began)."""
    if not isinstance(v, str):
        return string(v)
    if MODEL_NAME.fullmatch(v):
        return None
    return (
        "expected a model name of ASCII letters, digits and . _ - / > (a letter, digit or '.' "
        f"first: TensorFlow's rule for the name scope a Keras model trains in); got {v!r}"
    )


@with_schema({"type": "number", "minimum": 0, "exclusiveMaximum": 1})
def fraction(v: Any) -> str | None:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 1
    return None if ok else f"expected a number from 0 up to (not including) 1, got {kind_of(v)}"


def choice(*options: str) -> Check:
    def check(v: Any) -> str | None:
        if v in options:
            return None
        hint = did_you_mean(str(v), options) if isinstance(v, str) else ""
        return f"expected one of {', '.join(options)}, got {kind_of(v)}.{hint}"

    return with_schema({"enum": list(options)})(check)


@with_schema({"type": ["boolean", "null"]})
def optional_boolean(v: Any) -> str | None:
    return None if v is None else boolean(v)


@with_schema({"type": "object", "additionalProperties": {"type": "string"}})
def name_map(v: Any) -> str | None:
    if isinstance(v, dict) and all(isinstance(x, str) for x in v.values()):
        return None
    return f"expected a mapping of layer names to layer names, got {kind_of(v)}"


def number(minimum: float, maximum: float = INT32_MAX) -> Check:
    """A finite number within [minimum, maximum] (.inf and .nan are neither)."""

    def check(v: Any) -> str | None:
        if not isinstance(v, int | float) or isinstance(v, bool):
            return f"expected a number, got {kind_of(v)}"
        if minimum <= v <= maximum:
            return None
        return f"expected a number from {minimum} to {maximum}, got {v}"

    return with_schema({"type": "number", "minimum": minimum, "maximum": maximum})(check)


@with_schema(
    {
        "type": ["object", "null"],
        "properties": {
            "workers": {
                "type": "array",
                "minItems": 1,
                # is_address's rule, as an ECMA-262 pattern.
                "items": {"type": "string", "pattern": "^[^\\s:]+:[0-9]{1,5}$"},
            },
            # Below the number of workers too, which JSON Schema cannot say.
            "index": {"type": "integer", "minimum": 0},
        },
        "required": ["workers", "index"],
        "additionalProperties": False,
    }
)
def cluster(v: Any) -> str | None:
    """`{workers: [host:port, ...], index: N}`: the TF_CONFIG of one worker, in YAML."""
    if v is None:
        return None
    if not isinstance(v, dict) or set(v) != {"workers", "index"}:
        return "expected {workers: [host:port, ...], index: N} (this process's worker index)"
    if not isinstance(v["workers"], list) or not v["workers"]:
        return "workers: expected a non-empty list of host:port addresses"
    for address in v["workers"]:
        if not is_address(address):
            return f"workers: {address!r} is not a host:port address"
    index = v["index"]
    if not _is_int(index) or not 0 <= index < len(v["workers"]):
        return (
            f"index: expected an integer from 0 to {len(v['workers']) - 1} (one per worker), "
            f"got {index!r}"
        )
    return None


@with_schema({"type": "array", "items": {"type": "string"}})
def string_list(v: Any) -> str | None:
    if not isinstance(v, list) or not all(isinstance(i, str) for i in v):
        return f"expected a list of text items, got {kind_of(v)}"
    return None


@with_schema({"type": "array", "items": {"type": ["integer", "null"], "minimum": 1}})
def shape(v: Any) -> str | None:
    ok = isinstance(v, list) and all(i is None or (_is_int(i) and i > 0) for i in v)
    return None if ok else f"expected a shape (a list of positive integers), got {kind_of(v)}"


@with_schema({"anyOf": [{"type": "string"}, {"type": "object"}]})
def spec(v: Any) -> str | None:
    """A name (`adam`) or a Keras-style `{class_name, config}` mapping."""
    if isinstance(v, str):
        return None
    if isinstance(v, dict):
        return None  # keys are checked by check_spec_keys, with their own paths
    return f"expected a name or a {{class_name, config}} mapping, got {kind_of(v)}"


@with_schema({"type": "object"})
def mapping(v: Any) -> str | None:
    return None if isinstance(v, dict) else f"expected a mapping, got {kind_of(v)}"


@with_schema({"type": "array"})
def spec_list(v: Any) -> str | None:
    return None if isinstance(v, list) else f"expected a list, got {kind_of(v)}"


def spec_of(kind: str) -> Check:
    """`spec`, for a name or `{class_name, config}` of one kind (resolved later, by name):
    its fragment refers to that kind's definition, which the schema document holds."""
    return with_schema({"$ref": f"#/$defs/{kind}"})(lambda v: spec(v))


def spec_list_of(kind: str) -> Check:
    """`spec_list`, of one kind (the items are checked where they are resolved)."""
    return with_schema({"type": "array", "items": {"$ref": f"#/$defs/{kind}"}})(
        lambda v: spec_list(v)
    )


@with_schema(
    {
        "type": ["array", "null"],
        "items": {"type": "integer", "minimum": 1, "maximum": 65535},
        "minItems": 2,
        "maxItems": 2,
    }
)
def image_size(v: Any) -> str | None:
    """`[height, width]` in pixels, or null (the images' own size)."""
    if v is None:
        return None
    ok = isinstance(v, list) and len(v) == 2 and all(_is_int(i) and 1 <= i <= 65535 for i in v)
    return (
        None if ok else f"expected [height, width] (two integers from 1 to 65535), got {kind_of(v)}"
    )


@with_schema({"type": ["array", "null"], "items": {"type": "string"}, "minItems": 1})
def optional_string_list(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, list) and v and all(isinstance(i, str) for i in v):
        return None
    return f"expected a non-empty list of column names, got {kind_of(v)}"


@with_schema({"type": ["object", "null"]})
def optional_mapping(v: Any) -> str | None:
    return None if v is None else mapping(v)


def non_empty_list(what: str) -> Check:
    """A list of at least one item (each checked where it is walked)."""
    return with_schema({"type": "array", "minItems": 1})(
        lambda v: None if isinstance(v, list) and v else f"expected a non-empty list of {what}"
    )


def class_name_of(kind: str) -> Check:
    """The text naming a class of one kind (resolved later, by name): its fragment refers to
    that kind's names, which the schema document holds."""
    return with_schema({"$ref": f"#/$defs/{kind}.name"})(lambda v: string(v))


@with_schema({"type": "string"})
def reference(v: Any) -> str | None:
    """A name defined elsewhere in the config: checked where the names are known."""
    return None


@with_schema(
    {"anyOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": {"type": "string"}}]}
)
def references(v: Any) -> str | None:
    """A name, or a non-empty list of names, of things defined elsewhere in the config."""
    names = [v] if isinstance(v, str) else v
    if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
        return None
    return f"expected a name or a list of names, got {kind_of(v)}"
