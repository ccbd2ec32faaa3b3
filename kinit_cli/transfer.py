"""`init_from:` start some or all layers from the weights of a saved model or a run directory.

The model is built first, as always; then the chosen layers' variables are overwritten with
the source's values, variable by variable (matched by name, shapes checked), so only the
layers that received nothing keep what their initializers made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kinit_cli.config import Config, KeyPath
from kinit_cli.errors import ConfigError, Problem, did_you_mean

SECTION: KeyPath = ("init_from",)


def apply(built: Any, section: dict[str, Any], config: Config) -> None:
    """Copy the source's weights into `built` (a model.BuiltModel); ConfigError on a mismatch."""
    from kinit_cli import inspection

    source = Path(section["source"]).expanduser()
    if not source.is_absolute():
        source = config.base_dir / source
    if not source.exists():
        raise ConfigError([config.problem(SECTION + ("source",), f"{source} does not exist")])
    loaded = inspection.load(str(source))
    label = str(source / "model.keras") if source.is_dir() else str(source)
    problems: list[Problem] = []
    pairs = _pairs(built.model, loaded.model, section, config, problems)
    copies = []
    for target, origin, where in pairs:
        copies += _variables(target, origin, label, loaded.array, config.problem, where, problems)
    if problems:
        raise ConfigError(problems)
    provenance = {}
    for variable, value, where in copies:
        variable.assign(value)
        provenance[id(variable)] = where
    frozen = section["freeze"]
    names = {t.name for t, _, _ in pairs} if frozen is True else set(frozen or ())
    for layer in built.model.layers:
        if layer.name in names:
            layer.trainable = False
    for info in built.weights:
        info.loaded_from = provenance.get(id(info.variable))
        info.trainable = bool(info.variable.trainable)


def _pairs(
    model: Any, source: Any, section: dict[str, Any], config: Config, problems: list[Problem]
) -> list[tuple[Any, Any, KeyPath]]:
    """(target layer, source layer, the config key that asked for it) per layer to load."""
    targets = {layer.name: layer for layer in model.layers if layer.weights}
    origins = {layer.name: layer for layer in source.layers if layer.weights}
    mapping: dict[str, str] = dict(section["map"])

    def missing(name: str) -> str:
        return f"this model has no layer '{name}' with weights.{did_you_mean(name, list(targets))}"

    for name in mapping:
        if name not in targets:
            problems.append(config.problem(SECTION + ("map", name), missing(name), at_key=True))
    chosen = section["layers"]
    wanted: dict[str, KeyPath] = {}
    if chosen is None:
        wanted = {n: SECTION for n in targets if mapping.get(n, n) in origins}
    else:
        for i, name in enumerate(chosen):
            if name not in targets:
                problems.append(config.problem(SECTION + ("layers", i), missing(name)))
            else:
                wanted[name] = SECTION + ("layers", i)
    for name in mapping:
        if name in targets:
            wanted[name] = SECTION + ("map", name)
    pairs = []
    for name, where in wanted.items():
        origin = mapping.get(name, name)
        if origin not in origins:
            problems.append(
                config.problem(
                    where,
                    f"the source has no layer '{origin}' with "
                    f"weights.{did_you_mean(origin, list(origins))} Its layers: "
                    f"{', '.join(origins)}.",
                )
            )
            continue
        pairs.append((targets[name], origins[origin], where))
    if not pairs and not problems:
        problems.append(
            config.problem(
                SECTION,
                "no layer of this model matches a layer of the "
                "source by name; list them in init_from.layers or map "
                "them with init_from.map",
            )
        )
    return pairs


def _variables(
    target: Any,
    origin: Any,
    label: str,
    value: Any,
    problem: Any,
    where: KeyPath,
    problems: list[Problem],
) -> list[tuple[Any, Any, str]]:
    by_name = {v.name: v for v in origin.weights}
    out = []
    for variable in target.weights:
        other = by_name.get(variable.name)
        name = f"{target.name}/{variable.name}"
        if other is None:
            problems.append(
                problem(
                    where,
                    f"{name}: the source layer '{origin.name}' "
                    f"has no variable '{variable.name}' (it has: "
                    f"{', '.join(by_name)})",
                )
            )
        elif tuple(other.shape) != tuple(variable.shape):
            problems.append(
                problem(
                    where,
                    f"{name} has shape {tuple(variable.shape)} "
                    f"here but {tuple(other.shape)} in {label}:{origin.name}/{other.name}",
                )
            )
        else:
            out.append((variable, value(other), f"{label}:{origin.name}/{other.name}"))
    return out
