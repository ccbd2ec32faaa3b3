"""Which runs belong together: the settings that tell them apart, seeds aside, and how a
group of them is named in a table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import yaml

from kinit_cli.config import source as config_mod
from kinit_cli.results.records import RunRecord

# Config keys that never make runs differ in kind: seeds are what a group repeats over, a
# name only tells runs apart, and weight_history records without changing a weight (a
# sweep turns it on for its trials, which still group with the same runs trained without).
ASIDE = (("seed",), ("name",), ("train", "weight_history"))

_MISSING = object()  # a key a config does not have (distinct from a null value)


def settings_of(records: Sequence[RunRecord]) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    """(the keys, each record's settings). One sweep's trials go by their grid settings;
    any other runs by the config keys in which they differ."""
    one_sweep = len({r.run_dir.parent for r in records}) == 1
    if records and one_sweep and all(r.settings is not None for r in records):
        keys: list[str] = []
        for r in records:
            keys += [k for k in r.settings or {} if k not in keys]
        return tuple(keys), [{k: (r.settings or {}).get(k) for k in keys} for r in records]
    paths = differing([r.config for r in records if r.config])
    keys = [config_mod.format_path(p) for p in paths]
    settings = [
        {key: _at(r.config, path) for key, path in zip(keys, paths, strict=True)} for r in records
    ]
    return tuple(keys), settings


def differing(configs: Sequence[dict[str, Any]]) -> list[tuple[str | int, ...]]:
    """The key paths at which the configs differ, ASIDE's keys aside: as deep as every
    config has a mapping (or a list of one length) there, no deeper, so a string against
    an initializer's dict is one key, not its leaves."""
    return _differing([_without(c, ASIDE) for c in configs], ())


def _without(config: dict[str, Any], paths: Sequence[tuple[str, ...]]) -> dict[str, Any]:
    """A copy of the config without the values at `paths` (the config itself unchanged)."""
    out = dict(config)
    for path in paths:
        node = out
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                break
            node[part] = node = dict(node[part])
        else:
            node.pop(path[-1], None)
    return out


def _differing(values: Sequence[Any], path: tuple[str | int, ...]) -> list[tuple[str | int, ...]]:
    if len({_canonical(v) for v in values}) <= 1:
        return []
    if all(isinstance(v, dict) for v in values):
        keys: list[str] = []
        for v in values:
            keys += [k for k in v if k not in keys]
        columns = [((*path, k), [v.get(k, _MISSING) for v in values]) for k in keys]
        return [p for at, column in columns for p in _differing(column, at)]
    if all(isinstance(v, list) for v in values) and len({len(v) for v in values}) == 1:
        columns = [((*path, i), [v[i] for v in values]) for i in range(len(values[0]))]
        return [p for at, column in columns for p in _differing(column, at)]
    return [path]


def _at(config: dict[str, Any], path: tuple[str | int, ...]) -> Any:
    """The value at `path`; None where the config has none."""
    value: Any = config
    for part in path:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _canonical(value: Any) -> str:
    """One text per value, equal for equal values (mappings in any order)."""
    if value is _MISSING:
        return "\0missing"
    return json.dumps(value, sort_keys=True, default=repr)


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return _canonical(a) == _canonical(b)


def flow(value: Any) -> str:
    """A value as YAML flow text, as one writes it after --set or --grid: he_normal,
    {class_name: RandomNormal, config: {stddev: 0.05}}."""
    text = yaml.safe_dump(value, default_flow_style=True, width=float("inf"), sort_keys=False)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def short_keys(keys: Sequence[str]) -> dict[str, str]:
    """Each key by its shortest tail that no other key shares and that does not start at a
    list index: model.layers[0].config.kernel_initializer -> kernel_initializer."""
    paths = {key: _parsed(key) for key in keys}
    out = {}
    for key, path in paths.items():
        for start in range(len(path) - 1, -1, -1):
            tail = path[start:]
            if isinstance(tail[0], int):
                continue
            if all(other[-len(tail) :] != tail for k, other in paths.items() if k != key):
                out[key] = config_mod.format_path(tail)
                break
        else:
            out[key] = key
    return out


def _parsed(key: str) -> tuple[str | int, ...]:
    try:
        return config_mod.parse_path(key)
    except ValueError:  # not a key path kinit writes: taken whole
        return (key,)


def label(settings: dict[str, Any]) -> str:
    """'kernel_initializer=he_normal, learning_rate=0.01': a group named by its settings."""
    short = short_keys(list(settings))
    return ", ".join(f"{short[k]}={flow(v)}" for k, v in settings.items())
