"""`init_from:` start some or all layers from the weights of a saved model or a run directory.

The model is built first, as always; then the chosen layers' variables are overwritten with
the source's values, variable by variable (matched by name, shapes checked), so only the
layers that received nothing keep what their initializers made.
"""

from __future__ import annotations

from typing import Any

from kinit_cli.config.source import Config, KeyPath
from kinit_cli.errors import Problems, did_you_mean
from kinit_cli.model.saved import Loaded
from kinit_cli.model.variables import digest

SECTION: KeyPath = ("init_from",)


def apply(built: Any, section: dict[str, Any], config: Config, loaded: Loaded) -> None:
    """Copy the weights of `loaded` (the source, read by model.sources) into `built` (a
    model.build.BuiltModel); ConfigError with every mismatch found."""
    label = loaded.file  # for a run directory, the file it read
    problems = Problems()
    pairs = _pairs(built.model, loaded.model, section, config, problems)
    frozen = section["freeze"]
    layers = [layer.name for layer in built.model.layers]
    for i, name in enumerate(frozen if isinstance(frozen, list) else []):
        if name not in layers:
            problems.append(
                config.problem(
                    SECTION + ("freeze", i),
                    f"this model has no layer '{name}' to freeze.{did_you_mean(name, layers)}",
                )
            )
    copies = []
    for target, origin, where in pairs:
        copies += _variables(
            _own(built.weights, target.name),
            _own(loaded.weights, origin.name),
            (target.name, origin.name),
            label,
            loaded.array,
            lambda message, where=where: config.problem(where, message),
            problems,
        )
    problems.raise_any()
    provenance = {}
    for variable, value, where in copies:
        variable.assign(value)
        provenance[id(variable)] = (where, digest(value))
    names = {t.name for t, _, _ in pairs} if frozen is True else set(frozen or ())
    for layer in built.model.layers:
        if layer.name in names:
            layer.trainable = False
    for info in built.weights:
        info.loaded_from, info.loaded_sha256 = provenance.get(id(info.variable), (None, None))
        info.trainable = bool(info.variable.trainable)


def _pairs(
    model: Any, source: Any, section: dict[str, Any], config: Config, problems: Problems
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


def _own(weights: list[Any], layer: str) -> dict[str, Any]:
    """A layer's variables by their path within it (`kernel`, `hidden/bias`, `variable_1`):
    kinit's paths, which do not depend on what else the process built."""
    prefix = f"{layer}/"
    return {w.path.removeprefix(prefix): w.variable for w in weights if w.path.startswith(prefix)}


def _variables(
    targets: dict[str, Any],
    origins: dict[str, Any],
    names: tuple[str, str],
    label: str,
    value: Any,
    problem: Any,
    problems: Problems,
) -> list[tuple[Any, Any, str]]:
    target_layer, origin_layer = names
    out = []
    for local, variable in targets.items():
        other = origins.get(local)
        name = f"{target_layer}/{local}"
        if other is None:
            problems.append(
                problem(
                    f"{name}: the source layer '{origin_layer}' has no variable '{local}' "
                    f"(it has: {', '.join(origins) or 'none'})"
                )
            )
        elif tuple(other.shape) != tuple(variable.shape):
            problems.append(
                problem(
                    f"{name} has shape {tuple(variable.shape)} "
                    f"here but {tuple(other.shape)} in {label}:{origin_layer}/{local}"
                )
            )
        else:
            out.append((variable, value(other), f"{label}:{origin_layer}/{local}"))
    return out
