"""A sweep's grid and seeds, from the command line: `--grid KEY=[V1, V2]` axes whose
Cartesian product gives the combinations, and `--seeds N` or `--seeds 1,7,9`."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from kinit_cli.config import source as config_mod
from kinit_cli.errors import UsageError

# NumPy's seeds are unsigned 32-bit integers, as `kinit train --seed` takes them.
MAX_SEED = 2**32 - 1
# A trial folder's name keeps this much of its settings' values, to stay readable.
LABEL_CHARS = 40


@dataclass(frozen=True)
class Axis:
    """One --grid: a config key and the values it takes in turn."""

    key: str  # as config.source.format_path writes it: model.layers[0].config.units
    values: tuple[Any, ...]

    def document(self) -> dict[str, Any]:
        return {"key": self.key, "values": list(self.values)}


@dataclass(frozen=True)
class Combination:
    """One point of the grid: a value for each axis, in the axes' order."""

    index: int
    settings: tuple[tuple[str, Any], ...]

    @property
    def overrides(self) -> tuple[str, ...]:
        """The assignments `kinit train --set` would take, a value's YAML as JSON (which
        YAML reads back the same)."""
        return tuple(f"{key}={json.dumps(value)}" for key, value in self.settings)

    @property
    def label(self) -> str:
        """Its settings' values, short, as a file name may hold them."""
        text = "-".join(_short(value) for _, value in self.settings) or "config"
        return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:LABEL_CHARS].strip("_-.") or "value"

    def describe(self) -> str:
        """key=value, ... as a message names the combination."""
        return ", ".join(f"{key}={json.dumps(value)}" for key, value in self.settings)


def parse_axis(text: str) -> Axis:
    """`KEY=[V1, V2, ...]`, the values a YAML list."""
    key, sep, values = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"--grid {text}: expected KEY=[VALUE, ...] (a YAML list of values)")
    try:
        path = config_mod.parse_path(key.strip())
        parsed = config_mod.parse_yaml_value(values)
    except (ValueError, yaml.YAMLError) as exc:
        raise UsageError(f"--grid {text}: {str(exc).splitlines()[0]}") from None
    if not isinstance(parsed, list) or not parsed:
        raise UsageError(
            f"--grid {text}: the values must be a YAML list with at least one value, e.g. "
            f"{key.strip()}=[glorot_uniform, he_normal]"
        )
    seen: list[Any] = []
    for value in parsed:
        if value in seen:
            raise UsageError(f"--grid {text}: {json.dumps(value)} is listed twice")
        seen.append(value)
    return Axis(config_mod.format_path(path), tuple(parsed))


def parse_axes(texts: Sequence[str]) -> tuple[Axis, ...]:
    axes = tuple(parse_axis(t) for t in texts)
    keys = [a.key for a in axes]
    for key in keys:
        if keys.count(key) > 1:
            raise UsageError(f"--grid {key} is given twice: list all its values in one --grid")
    return axes


def parse_seeds(text: str) -> tuple[int, ...]:
    """`N` for the seeds 1 to N, or a comma-separated list of seeds."""
    parts = [p.strip() for p in text.split(",")]
    if not all(re.fullmatch(r"\d+", p) for p in parts):
        raise UsageError(f"--seeds {text}: expected a count (5: seeds 1 to 5) or seeds (1,7,9)")
    numbers = [int(p) for p in parts]
    if len(numbers) == 1:
        if numbers[0] < 1:
            raise UsageError("--seeds 0: a sweep needs at least one seed (--seeds 1 or more)")
        if numbers[0] > MAX_SEED:
            raise UsageError(f"--seeds {text}: at most {MAX_SEED} seeds")
        return tuple(range(1, numbers[0] + 1))
    if max(numbers) > MAX_SEED:
        raise UsageError(f"--seeds {text}: a seed is at most {MAX_SEED}")
    if len(set(numbers)) < len(numbers):
        raise UsageError(f"--seeds {text}: a seed is listed twice")
    return tuple(numbers)


def combinations(axes: Sequence[Axis]) -> list[Combination]:
    """The grid's points, the first axis slowest; one point, with no setting, for no axis."""
    keys = [a.key for a in axes]
    product = itertools.product(*(a.values for a in axes))
    return [
        Combination(i, tuple(zip(keys, values, strict=True))) for i, values in enumerate(product)
    ]


def _short(value: Any) -> str:
    if isinstance(value, dict):
        name = value.get("class_name")
        return str(name) if isinstance(name, str) else "mapping"
    if isinstance(value, list):
        return "x".join(_short(v) for v in value) or "empty"
    return str(value).lower() if isinstance(value, bool) else str(value)
