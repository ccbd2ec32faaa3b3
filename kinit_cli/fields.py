"""The value checks a config schema is written with: each takes a value and returns what is
wrong with it (one sentence), or None."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kinit_cli.config import kind_of
from kinit_cli.distribute import is_address
from kinit_cli.errors import did_you_mean

Check = Callable[[Any], str | None]
REQUIRED = object()  # a Field default: the key must be given


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


def string(v: Any) -> str | None:
    return None if isinstance(v, str) else f"expected text, got {kind_of(v)}"


def optional_string(v: Any) -> str | None:
    return None if v is None else string(v)


def boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else f"expected true or false, got {kind_of(v)}"


def integer(
    minimum: int | None = None, optional: bool = False, maximum: int | None = None
) -> Check:
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

    return check


# A run name is a folder name (runs/<name>-<timestamp>) and, with '-' and '.' made '_', the
# Keras model's name, which TensorFlow's root name scope takes only as ASCII starting with a
# letter or digit (`^[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*$`; `_x` and `é` fail in fit, Keras 3.15).
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
RUN_NAME_LENGTH = 100  # with "-YYYYmmdd-HHMMSS", well inside a file name's 255 bytes


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


def fraction(v: Any) -> str | None:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 1
    return None if ok else f"expected a number from 0 up to (not including) 1, got {kind_of(v)}"


def choice(*options: str) -> Check:
    def check(v: Any) -> str | None:
        if v in options:
            return None
        hint = did_you_mean(str(v), options) if isinstance(v, str) else ""
        return f"expected one of {', '.join(options)}, got {kind_of(v)}.{hint}"

    return check


def optional_boolean(v: Any) -> str | None:
    return None if v is None else boolean(v)


def name_map(v: Any) -> str | None:
    if isinstance(v, dict) and all(isinstance(x, str) for x in v.values()):
        return None
    return f"expected a mapping of layer names to layer names, got {kind_of(v)}"


def number(minimum: float) -> Check:
    def check(v: Any) -> str | None:
        if not isinstance(v, int | float) or isinstance(v, bool):
            return f"expected a number, got {kind_of(v)}"
        return None if v >= minimum else f"expected a number >= {minimum}, got {v}"

    return check


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


def string_list(v: Any) -> str | None:
    if not isinstance(v, list) or not all(isinstance(i, str) for i in v):
        return f"expected a list of text items, got {kind_of(v)}"
    return None


def shape(v: Any) -> str | None:
    ok = isinstance(v, list) and all(i is None or (_is_int(i) and i > 0) for i in v)
    return None if ok else f"expected a shape (a list of positive integers), got {kind_of(v)}"


def spec(v: Any) -> str | None:
    """A name (`adam`) or a Keras-style `{class_name, config}` mapping."""
    if isinstance(v, str):
        return None
    if isinstance(v, dict):
        return None  # keys are checked by check_spec_keys, with their own paths
    return f"expected a name or a {{class_name, config}} mapping, got {kind_of(v)}"


def spec_list(v: Any) -> str | None:
    return None if isinstance(v, list) else f"expected a list, got {kind_of(v)}"
