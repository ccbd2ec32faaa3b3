"""Config files: safe YAML with source positions, `--set` overrides, and the resolved config.

Every value remembers where it came from (file, line, column, or the `--set` that
replaced it), so any later stage (schema, name resolution, model building) can point
at the exact spot of a problem by its key path alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kinit_cli.errors import ConfigError, Problem

KeyPath = tuple[str | int, ...]

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-3` as a float (YAML 1.2), as every Keras user writes it."""


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

    @property
    def base_dir(self) -> Path:
        """Folder that relative paths in the config (plugins, data) are resolved against."""
        return Path(self.file).resolve().parent if self.file else Path.cwd()

    def problem(self, path: KeyPath, message: str, at_key: bool = False) -> Problem:
        """A Problem at `path`, located at its value (or at its key, for unknown keys)."""
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
    path = Path(path)
    name = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([Problem("config file not found", file=name)]) from None
    except IsADirectoryError:
        raise ConfigError([Problem("expected a YAML file, got a directory", file=name)]) from None
    except OSError as exc:
        raise ConfigError([Problem(f"cannot read the file: {exc.strerror}", file=name)]) from None
    config = loads(_decode(raw, name), name)
    apply_overrides(config, overrides)
    return config


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
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = ": ".join(p for p in (exc.context, exc.problem) if p)
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise ConfigError([Problem(f"invalid YAML: {message}", "", file, line, col)]) from None
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


def apply_overrides(config: Config, overrides: Iterable[str]) -> None:
    """Apply `key.path=value` assignments in order; values are parsed as YAML."""
    problems = []
    for text in overrides:
        origin = f"--set {text}"
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
        config.overrides[path] = origin
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
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def dump(data: dict[str, Any]) -> str:
    """The config as YAML, keys in the order they were written."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


def _decode(raw: bytes, file: str) -> str:
    if b"\x00" in raw[:8192]:
        raise ConfigError([Problem("not a text file (it contains binary data)", file=file)])
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
        loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key).lower() if isinstance(key, bool) else str(key)
            if key in out:
                raise yaml.MarkedYAMLError(
                    problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark
                )
            mark = key_node.start_mark
            config.key_marks[path + (key,)] = (mark.line + 1, mark.column + 1)
            out[key] = _construct(loader, value_node, path + (key,), config)
        return out
    if isinstance(node, yaml.SequenceNode):
        _require_tag(node, _SEQ_TAG)
        return [_construct(loader, item, path + (i,), config) for i, item in enumerate(node.value)]
    if node.tag not in loader.yaml_constructors or node.tag in (_MAP_TAG, _SEQ_TAG):
        _refuse_tag(node)
    return loader.construct_object(node, deep=True)


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
