"""What a sweep is: the config's text, --set, the grid and the seeds (and where its code
comes from), written once to sweep.yaml so that `--resume` reruns exactly the same trials
even when the config file has changed since."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kinit_cli.config import source as config_mod
from kinit_cli.errors import ConfigError, RecordError, UsageError
from kinit_cli.runtime.versions import KINIT
from kinit_cli.storage import records, rundir, sweepdir
from kinit_cli.sweep.grid import Axis, Combination, combinations

WATCH_WEIGHTS = "train.weight_history=true"


@dataclass(frozen=True)
class Trial:
    """One run of the sweep: a combination of the grid and a seed, in its own folder."""

    name: str
    combination: Combination
    seed: int

    def entry(self, status: str = "pending", error: str | None = None) -> dict[str, Any]:
        """Its trials.json entry."""
        return {
            "name": self.name,
            "combination": self.combination.index,
            "settings": dict(self.combination.settings),
            "seed": self.seed,
            "status": status,
            "error": error,
        }


@dataclass(frozen=True)
class SweepSpec:
    """A sweep as sweep.yaml records it."""

    config_file: str  # absolute: where the config's relative paths are resolved from
    config_text: str  # what the trials run, read once
    overrides: tuple[str, ...]  # --set, applied before the grid's values
    axes: tuple[Axis, ...]
    seeds: tuple[int, ...]
    backend: str | None = None  # --backend
    device: str = "auto"
    plugins: tuple[str, ...] = ()  # --plugin, absolute
    trust_plugins: bool = False

    @property
    def combinations(self) -> list[Combination]:
        return combinations(self.axes)

    def trials(self) -> list[Trial]:
        """Every trial, combination by combination, each over the seeds in order."""
        combos = self.combinations
        width = len(str(len(combos)))
        return [
            Trial(f"{c.index + 1:0{width}d}-{c.label}-seed{seed}", c, seed)
            for c in combos
            for seed in self.seeds
        ]

    def config(self, combination: Combination | None = None) -> config_mod.Config:
        """The config a trial runs: the recorded text, --set, then the combination's values
        (a problem with one of those names its --grid)."""
        config = config_mod.loads(self.config_text, self.config_file)
        # Trials record their weights through training unless --set says otherwise.
        config_mod.apply_overrides(config, [WATCH_WEIGHTS])
        config_mod.apply_overrides(config, self.overrides)
        if combination is not None:
            config_mod.apply_overrides(config, combination.overrides, flag="--grid")
        return config

    def document(self) -> dict[str, Any]:
        return {
            "kinit": KINIT,
            "config_file": self.config_file,
            "config": self.config_text,
            "set": list(self.overrides),
            "grid": [a.document() for a in self.axes],
            "seeds": list(self.seeds),
            "backend": self.backend,
            "device": self.device,
            "plugins": list(self.plugins),
            "trust_plugins": self.trust_plugins,
        }


class _Dumper(yaml.SafeDumper):
    """YAML with the config's text as a block, so that sweep.yaml reads as the config did."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def write(spec: SweepSpec, sweep_dir: Path) -> None:
    header = "# kinit sweep: what reruns this sweep (kinit sweep --resume DIR)\n"
    text = yaml.dump(
        spec.document(), Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=100
    )
    rundir.write_text(sweep_dir / sweepdir.SWEEP, header + text)


def read(sweep_dir: Path) -> SweepSpec:
    """sweep.yaml read back as data; UsageError naming the file and what is wrong."""
    path = sweep_dir / sweepdir.SWEEP
    try:
        raw = records.read_bytes(path)
        doc = config_mod.loads(raw.decode("utf-8"), str(path)).data
    except FileNotFoundError:
        raise UsageError(
            f"{sweep_dir} is not a sweep directory (it has no {sweepdir.SWEEP}): --resume "
            "takes the folder `kinit sweep` wrote"
        ) from None
    except (RecordError, ConfigError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} cannot be read back: {str(exc).splitlines()[0]}") from None
    try:
        return _spec(doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{path} is not a sweep record kinit wrote ({exc})") from None


def _spec(doc: dict[str, Any]) -> SweepSpec:
    def strings(key: str) -> tuple[str, ...]:
        value = doc.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"`{key}` must be a list of text")
        return tuple(value)

    axes = []
    for entry in doc["grid"] or []:
        if not isinstance(entry["key"], str) or not isinstance(entry["values"], list):
            raise ValueError("each `grid` entry needs a key and a list of values")
        axes.append(Axis(entry["key"], tuple(entry["values"])))
    seeds = doc["seeds"]
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int for s in seeds):
        raise ValueError("`seeds` must be a list of whole numbers")
    for key in ("config_file", "config"):
        if not isinstance(doc[key], str):
            raise ValueError(f"`{key}` must be text")
    return SweepSpec(
        config_file=doc["config_file"],
        config_text=doc["config"],
        overrides=strings("set"),
        axes=tuple(axes),
        seeds=tuple(seeds),
        backend=doc.get("backend"),
        device=str(doc.get("device") or "auto"),
        plugins=strings("plugins"),
        trust_plugins=bool(doc.get("trust_plugins")),
    )
