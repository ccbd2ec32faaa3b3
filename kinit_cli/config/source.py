"""Config files: safe YAML with source positions, `--set` overrides, and the resolved config.

Every value remembers where it came from (file, line, column, or the `--set` that
replaced it), so any later stage (schema, name resolution, model building) can point
at the exact spot of a problem by its key path alone.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kinit_cli.errors import ConfigError, Problem, UsageError

KeyPath = tuple[str | int, ...]

SUFFIXES = (".yaml", ".yml")  # what a config file's name ends in

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"

# Limits that keep a hostile or broken file from taking unbounded memory, time or stack.
# The largest config in configs/ is under 2 KB; the environment variable raises the size cap.
MAX_BYTES = 10_000_000
MAX_BYTES_VARIABLE = "KINIT_MAX_CONFIG_BYTES"
# Lists and mappings inside each other: Keras's own configs nest under 10 levels; PyYAML's
# composer and the constructor below recurse per level, so 600 levels hit Python's recursion
# limit. Checked while composing, before either recursion gets that deep.
MAX_DEPTH = 100
# Values that aliases copy in (`*name` repeats everything under `&name`): a "billion laughs"
# file of nine levels of ten aliases each stands for 10^9 values in a few hundred bytes.
MAX_ALIAS_VALUES = 100_000


class _Refused(yaml.MarkedYAMLError):
    """Well-formed YAML that kinit will not build: too deep, or aliases that expand too far."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-3` as a float (YAML 1.2), as every Keras user writes it,
    and refuses documents nested deeper than MAX_DEPTH or whose aliases copy in more than
    MAX_ALIAS_VALUES values, before building them.

    Sizes are counted while composing, on the graph of nodes (where an alias is one
    reference), so counting an alias bomb costs no more than reading its text.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._open = 0  # lists and mappings being composed, around the current node
        self._copied = 0  # values that aliases copied in so far
        # Per node being composed: [values under it, its depth]; one entry per open level.
        self._counts: list[list[int]] = [[0, 0]]
        self._anchored: dict[int, tuple[int, int]] = {}  # id(anchored node) -> (values, depth)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            target = self.anchors.get(event.anchor)
            if target is not None:  # else PyYAML reports the undefined alias
                self._copy(event, target)
            return super().compose_node(parent, index)
        event = self.peek_event()
        collection = isinstance(event, yaml.CollectionStartEvent)
        if collection:
            self._open += 1
            if self._open > MAX_DEPTH:
                raise _Refused(
                    problem=f"lists and mappings nested more than {MAX_DEPTH} levels deep "
                    "(kinit's limit for a config)",
                    problem_mark=event.start_mark,
                )
        self._counts.append([0, 0])
        try:
            node = super().compose_node(parent, index)
        finally:
            inner, depth = self._counts.pop()
            if collection:
                self._open -= 1
        measure = (1 + inner, depth + collection)
        self._add(measure)
        if event.anchor is not None:
            self._anchored[id(node)] = measure
        return node

    def _copy(self, event: yaml.AliasEvent, target: yaml.Node) -> None:
        measure = self._anchored.get(id(target))
        if measure is None:  # its anchor is still open: the node would contain itself
            raise _Refused(
                problem=f"the alias *{event.anchor} is inside the value it refers to; a config "
                "cannot contain itself",
                problem_mark=event.start_mark,
            )
        self._copied += measure[0]
        if self._copied > MAX_ALIAS_VALUES:
            raise _Refused(
                problem=f"aliases copy in more than {MAX_ALIAS_VALUES:,} values by the alias "
                f"*{event.anchor} (kinit's limit for a config)",
                problem_mark=event.start_mark,
            )
        if self._open + measure[1] > MAX_DEPTH:
            raise _Refused(
                problem=f"the alias *{event.anchor} nests lists and mappings more than "
                f"{MAX_DEPTH} levels deep (kinit's limit for a config)",
                problem_mark=event.start_mark,
            )
        self._add(measure)

    def _add(self, measure: tuple[int, int]) -> None:
        parent = self._counts[-1]
        parent[0] += measure[0]
        parent[1] = max(parent[1], measure[1])


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def format_path(path: Iterable[str | int]) -> str:
    """('model', 'layers', 1, 'config') -> 'model.layers[1].config'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_path(text: str) -> KeyPath:
    """'model.layers[1].config' -> ('model', 'layers', 1, 'config'); ValueError if malformed."""
    parts: list[str | int] = []
    for chunk in text.split("."):
        m = re.fullmatch(r"([^\[\]]+)((?:\[\d+\])*)", chunk)
        if not m:
            raise ValueError(f"malformed key path {text!r}")
        parts.append(m.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return tuple(parts)


def parse_yaml_value(text: str) -> Any:
    """Parse one `--set` value as YAML (safe semantics, `1e-3` is a float)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


@dataclass
class Config:
    """A config as plain data plus where each value was written."""

    data: dict[str, Any]
    file: str | None = None
    marks: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    overrides: dict[KeyPath, str] = field(default_factory=dict)
    # The text of each value YAML read as something other than text (12345, 2024-01-01,
    # 007, yes), so that a message can show what to quote.
    written: dict[KeyPath, str] = field(default_factory=dict)
    # The working directory when the config was read: a plugin that changes it later does
    # not move what the config's relative paths name.
    cwd: Path = field(default_factory=Path.cwd, repr=False, compare=False)

    @property
    def base_dir(self) -> Path:
        """Folder that relative paths in the config (plugins, data) are resolved against."""
        return (self.cwd / self.file).resolve().parent if self.file else self.cwd

    def problem(self, path: KeyPath, message: str, at_key: bool = False) -> Problem:
        """A Problem at `path`, located at its value (or at its key, for unknown keys); at
        the override that made the key where the file never wrote it (a misspelled --set)."""
        if path not in self.marks and path not in self.key_marks:
            for made, origin in self.overrides.items():
                if made[: len(path)] == path:
                    return Problem(message, format_path(path), file=origin)
        for end in range(len(path), 0 if path else -1, -1):
            prefix = path[:end]
            if prefix in self.overrides:
                return Problem(message, format_path(path), file=self.overrides[prefix])
            marks = self.key_marks if at_key and end == len(path) else self.marks
            if prefix in marks:
                line, col = marks[prefix]
                return Problem(message, format_path(path), self.file, line, col)
        return Problem(message, format_path(path), self.file)

    def get(self, path: KeyPath, default: Any = None) -> Any:
        node: Any = self.data
        for part in path:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return default
        return node


def load(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Read a config file and apply `--set key.path=value` overrides; raise ConfigError."""
    config = loads(read_text(path), str(path))
    apply_overrides(config, overrides)
    return config


def read_text(path: str | Path) -> str:
    """A config file's text, read within kinit's size limit; ConfigError naming the file."""
    path = Path(path)
    name = str(path)
    limit = max_bytes()
    try:
        with path.open("rb") as f:
            raw = f.read(limit + 1)  # never more: the path may be /dev/zero or a huge file
    except FileNotFoundError:
        raise ConfigError([Problem("config file not found", file=name)]) from None
    except IsADirectoryError:
        raise ConfigError([Problem("expected a YAML file, got a directory", file=name)]) from None
    except OSError as exc:
        raise ConfigError([Problem(f"cannot read the file: {exc.strerror}", file=name)]) from None
    if b"\x00" in raw[:8192]:
        raise ConfigError([Problem("not a text file (it contains binary data)", file=name)])
    if len(raw) > limit:
        raise ConfigError(
            [
                Problem(
                    f"the file is larger than {limit:,} bytes, kinit's limit for a config "
                    f"(set {MAX_BYTES_VARIABLE} to raise it)",
                    file=name,
                )
            ]
        )
    return _decode(raw, name)


def max_bytes() -> int:
    """The size limit for a config file: MAX_BYTES, or the environment variable's value."""
    text = os.environ.get(MAX_BYTES_VARIABLE)
    if text is None:
        return MAX_BYTES
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if limit < 1:
        raise UsageError(
            f"{MAX_BYTES_VARIABLE} must be a positive number of bytes. "
            f"Received: {MAX_BYTES_VARIABLE}={text!r}"
        )
    return limit


def loads(text: str, file: str | None = None) -> Config:
    """Parse YAML text into a Config, refusing any tag that would construct a Python object."""
    loader = _Loader(text)
    config = Config(data={}, file=file)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError(
                [
                    Problem(
                        "the file is empty; a config needs at least a 'model:' section", file=file
                    )
                ]
            )
        data = _construct(loader, node, (), config)
    except yaml.MarkedYAMLError as exc:  # _Refused too: a limit, said in kinit's words
        mark = exc.problem_mark or exc.context_mark
        message = ": ".join(p for p in (exc.context, exc.problem) if p)
        if not isinstance(exc, _Refused):
            message = f"invalid YAML: {message}"
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise ConfigError([Problem(message, "", file, line, col)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(f"invalid YAML: {exc}", file=file)]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(
            [
                config.problem(
                    (),
                    f"expected a mapping of sections (model:, compile:, ...), got {kind_of(data)}",
                )
            ]
        )
    config.data = data
    return config


def apply_overrides(config: Config, overrides: Iterable[str], flag: str = "--set") -> None:
    """Apply `key.path=value` assignments in order; values are parsed as YAML. `flag`: the
    option they came from, which a problem's location names (--set, or a sweep's --grid)."""
    problems = []
    for text in overrides:
        origin = f"{flag} {text}"
        key, sep, value = text.partition("=")
        try:
            if not sep or not key.strip():
                raise ValueError("expected KEY.PATH=VALUE")
            path = parse_path(key.strip())
            parsed = parse_yaml_value(value)
            _assign(config.data, path, parsed)
        except (ValueError, yaml.YAMLError) as exc:
            problems.append(Problem(str(exc).splitlines()[0], file=origin))
            continue
        # What the file (or an earlier --set) had at or under `path` is gone: its positions
        # must not be found before this override when a problem is located.
        for table in (config.marks, config.key_marks, config.overrides, config.written):
            for stale in [p for p in table if p[: len(path)] == path]:
                del table[stale]
        config.overrides[path] = origin
        if not isinstance(parsed, str | dict | list):
            config.written[path] = value.strip()
    if problems:
        raise ConfigError(problems)


def kind_of(value: Any) -> str:
    """How a YAML user would name the type of a value: 'a list', 'a number', 'the text 'abc''."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"{value!r}"
    if isinstance(value, datetime.datetime):
        return f"the timestamp {value}"
    if isinstance(value, datetime.date):
        return f"the date {value.isoformat()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def dump(data: dict[str, Any]) -> str:
    """The config as YAML, keys in the order they were written."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


def _decode(raw: bytes, file: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [Problem(f"not a UTF-8 text file (byte 0x{raw[exc.start]:02x})", "", file, line)]
        ) from None


def _construct(loader: _Loader, node: yaml.Node, path: KeyPath, config: Config) -> Any:
    config.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        _require_tag(node, _MAP_TAG)
        written = {id(key_node) for key_node, _ in node.value}
        loader.flatten_mapping(node)  # `<<: *base` puts base's pairs first
        out: dict[str, Any] = {}
        kept: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        merged: set[str] = set()  # keys whose value a merge brought: a later pair replaces it
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key).lower() if isinstance(key, bool) else str(key)
            if key in out and key not in merged:
                raise yaml.MarkedYAMLError(
                    problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark
                )
            if id(key_node) in written:
                merged.discard(key)
            else:
                merged.add(key)
            mark = key_node.start_mark
            config.key_marks[path + (key,)] = (mark.line + 1, mark.column + 1)
            out[key] = _construct(loader, value_node, path + (key,), config)
            kept[key] = (key_node, value_node)
        # Merged once: an alias of this mapping elsewhere sees the pairs that won.
        node.value = list(kept.values())
        return out
    if isinstance(node, yaml.SequenceNode):
        _require_tag(node, _SEQ_TAG)
        return [_construct(loader, item, path + (i,), config) for i, item in enumerate(node.value)]
    if node.tag not in loader.yaml_constructors or node.tag in (_MAP_TAG, _SEQ_TAG):
        _refuse_tag(node)
    value = loader.construct_object(node, deep=True)
    if not isinstance(value, str):
        config.written[path] = node.value
    return value


def _require_tag(node: yaml.Node, tag: str) -> None:
    if node.tag != tag:
        _refuse_tag(node)


def _refuse_tag(node: yaml.Node) -> None:
    shown = node.tag.replace("tag:yaml.org,2002:", "!!")
    raise yaml.MarkedYAMLError(
        problem=f"the tag {shown} is not allowed: kinit reads plain YAML only and never "
        "constructs Python objects from a config",
        problem_mark=node.start_mark,
    )


def _assign(data: dict[str, Any], path: KeyPath, value: Any) -> None:
    node: Any = data
    for i, part in enumerate(path[:-1]):
        nxt = path[i + 1]
        if isinstance(node, dict) and isinstance(part, str):
            if node.get(part) is None:
                node[part] = [] if isinstance(nxt, int) else {}
            elif not isinstance(node[part], dict | list):
                raise ValueError(
                    f"{format_path(path[: i + 1])} is {kind_of(node[part])}, not a mapping"
                )
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            raise ValueError(f"{format_path(path[: i + 1])} does not exist")
    last = path[-1]
    if isinstance(node, dict) and isinstance(last, str):
        node[last] = value
    elif isinstance(node, list) and isinstance(last, int) and last <= len(node):
        if last == len(node):
            node.append(value)
        else:
            node[last] = value
    else:
        raise ValueError(f"{format_path(path)} does not exist")
