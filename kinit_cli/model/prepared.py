"""What a config becomes on its way to a model: Checked (read once and checked against the
schema) and Prepared (its plugins loaded, every name resolved, its model built). Made by
model.sources; here, apart, so that what holds them (a read target) can name them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kinit_cli.config import source as config_mod
from kinit_cli.config.model_schema import unused, unused_text
from kinit_cli.config.settings import Settings
from kinit_cli.model.build import BuiltModel
from kinit_cli.registry.catalog import Registry
from kinit_cli.registry.plugins import LoadedPlugin, entry_point_notes


@dataclass(frozen=True)
class Checked:
    """A config file read once and checked against the schema, before TensorFlow loads."""

    config: config_mod.Config
    settings: Settings

    def with_seed(self, seed: int) -> Checked:
        """The same config with `seed:` set (--seed, or the seed a run drew for itself)."""
        return replace(self, settings=replace(self.settings, seed=seed))


@dataclass(frozen=True)
class Prepared:
    """A checked config with its plugins loaded, every name resolved and its model built."""

    config: config_mod.Config
    settings: Settings
    registry: Registry
    plugins: list[LoadedPlugin]
    compile_args: dict[str, Any]
    built: BuiltModel

    def verdict(self, path: str | Path) -> str:
        """validate's first line: the config is valid on its backend (a plugin can be valid
        on one and not another), with the user's plugins it loaded."""
        user = [p.spec for p in self.plugins if not p.spec.startswith("kinit_cli.")]
        return f"{path}: valid on backend {self.settings.backend}" + (
            f"; plugins loaded: {', '.join(user)}" if user else ""
        )

    def notes(self) -> list[str]:
        """What works but deserves a word: shadowed built-ins, classes Keras cannot reload."""
        out = [
            f"'{user}' from a plugin shadows kinit's built-in example '{builtin}' "
            f"(still reachable as '{builtin}')"
            for builtin, user in self.registry.shadowed.items()
        ]
        for item in self.built.unsaveable:
            out.append(
                f"{item.message()} kinit keeps the run usable anyway: it writes the weights to "
                "model.weights.h5 instead of model.keras, and inspect-weights RUN, predict, "
                "evaluate, --resume and init_from rebuild the model from the run's config.yaml "
                "(importing its plugins with --trust-plugins, or --plugin FILE)."
            )
        if left := unused(self.settings.model):
            them = "it" if len(left) == 1 else "them"
            out.append(
                f"model: {unused_text(left)}: Keras leaves {them} out of the model, untrained"
            )
        return out + entry_point_notes()
