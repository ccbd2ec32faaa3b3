"""Reading back the files kinit wrote: each checked against the shape kinit writes it in.

A run directory may come from someone else, or have been cut short by a full disk: a file
kinit reads back is data like any other. Every reader goes through read_json() (or
read_csv()), which refuses a file that is not a regular file, is larger than any kinit
writes, or does not have the shape described here, with one RecordError naming the file
and the first thing wrong; the caller decides what that costs (a refusal, or a note and
less to show).
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kinit_cli.errors import RecordError

# A check returns what is wrong with a value (None when nothing), given where it is.
Check = Callable[[Any, str], "str | None"]

# The largest side file kinit writes is a few megabytes (a history of many epochs, the
# statistics of thousands of variables); a bigger one is not kinit's.
MAX_BYTES = 256 * 1024 * 1024


def _where(where: str) -> str:
    return f"`{where}`" if where else "the file"


def count(value: Any, where: str) -> str | None:
    """A whole number of 0 or more (an epoch, a process id)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return f"{_where(where)} must be a whole number of 0 or more; it is {value!r}"
    return None


def text(value: Any, where: str) -> str | None:
    if not isinstance(value, str):
        return f"{_where(where)} must be text; it is {value!r}"
    return None


def boolean(value: Any, where: str) -> str | None:
    if not isinstance(value, bool):
        return f"{_where(where)} must be true or false; it is {value!r}"
    return None


def number(value: Any, where: str) -> str | None:
    """A number, or null (strictjson writes a non-finite one so)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        return f"{_where(where)} must be a number; it is {value!r}"
    return None


def anything(value: Any, where: str) -> str | None:
    return None


def file_name(value: Any, where: str) -> str | None:
    """A plain name inside the folder the file sits in: never a path out of it."""
    wrong = text(value, where)
    if wrong is None and (value in ("", ".", "..") or "/" in value or "\\" in value):
        wrong = f"{_where(where)} must name a file beside it; it is {value!r}"
    return wrong


def list_of(item: Check) -> Check:
    def check(value: Any, where: str) -> str | None:
        if not isinstance(value, list):
            return f"{_where(where)} must be a list; it is {_short(value)}"
        return next(
            (wrong for i, v in enumerate(value) if (wrong := item(v, f"{where}[{i}]"))), None
        )

    return check


def mapping(required: dict[str, Check], optional: dict[str, Check] | None = None) -> Check:
    """A mapping with the `required` keys and perhaps the `optional` ones (others are let
    pass: a newer kinit may write more)."""

    def check(value: Any, where: str) -> str | None:
        if not isinstance(value, dict):
            return f"{_where(where)} must be a mapping; it is {_short(value)}"
        missing = [key for key in required if key not in value]
        if missing:
            inside = f" in `{where}`" if where else ""
            return f"`{missing[0]}` is missing{inside}"
        checks = {**(optional or {}), **required}
        for key, item in checks.items():
            if key in value and (wrong := item(value[key], f"{where}.{key}" if where else key)):
                return wrong
        return None

    return check


def values_of(item: Check) -> Check:
    """A mapping whose every value passes `item` (test metrics by name, versions)."""

    def check(value: Any, where: str) -> str | None:
        if not isinstance(value, dict):
            return f"{_where(where)} must be a mapping; it is {_short(value)}"
        return next((wrong for k, v in value.items() if (wrong := item(v, f"{where}.{k}"))), None)

    return check


def nullable(item: Check) -> Check:
    return lambda value, where: None if value is None else item(value, where)


def _short(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def read_bytes(path: Path) -> bytes:
    """The file's bytes; RecordError for what is not a regular file of a size kinit writes.
    FileNotFoundError passes through: a missing file is for the caller to judge."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise RecordError(path, os.strerror(exc.errno or 0).lower()) from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise RecordError(path, "it is not a regular file")
        if info.st_size > MAX_BYTES:
            raise RecordError(path, f"it holds {info.st_size} bytes, more than kinit writes")
        return f.read(MAX_BYTES + 1)


def read_json(path: Path, shape: Check) -> Any:
    """The JSON document in `path`, checked against `shape`."""
    raw = read_bytes(path)
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RecordError(path, f"it is not JSON ({_first_line(exc)})") from None
    except RecursionError:
        raise RecordError(path, "it is not JSON kinit writes (nested too deep)") from None
    wrong = shape(value, "")
    if wrong:
        raise RecordError(path, wrong)
    return value


def read_csv(path: Path, row: Check) -> list[dict[str, str]]:
    """The rows of a CSV file with a header line, each checked against `row`."""
    raw = read_bytes(path)
    try:
        rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RecordError(path, f"it is not CSV ({_first_line(exc)})") from None
    for i, values in enumerate(rows, start=2):
        wrong = row(values, f"line {i}")
        if wrong:
            raise RecordError(path, wrong)
    return rows


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
