"""From a config file to a built model: the steps every config-taking command shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kinit_cli.config import schema
from kinit_cli.config import source as config_mod
from kinit_cli.errors import ConfigError, Problem
from kinit_cli.registry.catalog import Registry
from kinit_cli.registry.plugins import entry_point_notes, load_plugins
from kinit_cli.storage import rundir


@dataclass
class Prepared:
    """A validated config with its plugins loaded and its model built."""

    config: config_mod.Config
    resolved: dict[str, Any]
    registry: Any
    plugins: list[Any]
    built: Any = None
    compile_args: dict[str, Any] = field(default_factory=dict)
    duplicates: list[Any] = field(default_factory=list)  # stats.Duplicate, once measured

    def notes(self) -> list[str]:
        """What works but deserves a word: shadowed built-ins, classes Keras cannot reload."""
        out = [
            f"'{user}' from a plugin shadows kinit's built-in example '{builtin}' "
            f"(still reachable as '{builtin}')"
            for builtin, user in self.registry.shadowed.items()
        ]
        for item in getattr(self.built, "unsaveable", []):
            out.append(
                f"{item.message()} kinit keeps the run usable anyway: it writes the weights to "
                "model.weights.h5 instead of model.keras, and inspect-weights RUN, --resume and "
                "init_from rebuild the model from the run's config.yaml."
            )
        out += [d.message() for d in self.duplicates]
        return out + entry_point_notes()


def prepare(
    path: str | Path, overrides: Sequence[str] = (), plugins: Sequence[str] = (), build: bool = True
) -> Prepared:
    """Load the config and its plugins, resolve every name, and build the model.

    Problems come in two rounds, each reported whole: first every structural one (YAML,
    unknown keys, types, ranges) from the schema alone, in milliseconds, since plugins
    import Keras and with it TensorFlow (seconds); then, for a config whose structure is
    sound, every name that does not resolve and every layer that cannot be built, across
    all sections at once.
    """
    config = config_mod.load(path, overrides)
    resolved, problems = schema.check(config)
    if not problems:
        problems = _callback_paths(config, resolved)
    if problems:
        raise ConfigError(problems)

    # Loading plugins imports Keras (and TensorFlow): only once the schema is satisfied.
    loaded = load_plugins(list(resolved["plugins"]), base_dir=config.base_dir)
    # --plugin paths are the user's, typed relative to where they stand.
    loaded += load_plugins(list(plugins), base_dir=Path.cwd(), entry_points=False)
    registry = Registry()
    prepared = Prepared(config, resolved, registry, loaded)
    try:
        prepared.compile_args = compile_arguments(config, resolved, registry)
    except ConfigError as exc:
        problems += exc.problems
    if build:
        from kinit_cli.model.build import build as build_model

        try:
            prepared.built = build_model(config, resolved, registry)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return prepared


def _callback_paths(config: config_mod.Config, resolved: dict[str, Any]) -> list[Problem]:
    """Callback files that would leave the run directory or take a name kinit writes there:
    known before the run directory exists (train checks absolute paths against it too)."""
    out = []
    for i, spec in enumerate(resolved["train"]["callbacks"]):
        for key, text in rundir.callback_paths(spec, None).problems:
            out.append(config.problem(("train", "callbacks", i, *key), text))
    return out


def compile_arguments(
    config: config_mod.Config, resolved: dict[str, Any], registry: Any
) -> dict[str, Any]:
    """`model.compile` keyword arguments from the `compile:` section; ConfigError if any fails."""
    from kinit_cli.registry.specs import FAILED, SpecBuilder

    builder = SpecBuilder(registry, config)
    section = resolved["compile"]
    args: dict[str, Any] = {
        "optimizer": builder.build("optimizer", section["optimizer"], ("compile", "optimizer"))
    }
    if section.get("loss") is not None:
        args["loss"] = builder.build("loss", section["loss"], ("compile", "loss"))
    args["metrics"] = [
        builder.build("metric", m, ("compile", "metrics", i))
        for i, m in enumerate(section["metrics"])
    ]
    if builder.problems or FAILED in args.values() or FAILED in args["metrics"]:
        raise ConfigError(builder.problems)
    return args
