"""`init_from:` start some or all layers from the weights of a saved model or a run directory.

The model is built first, as always; then the chosen layers' variables are overwritten with
the source's values, variable by variable (matched by name, shapes checked), so only the
layers that received nothing keep what their initializers made. A source may be a config
whose own init_from names another: a chain that comes back to itself is refused from the
YAML alone (cycle()).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kinit_cli.config.settings import InitFrom
from kinit_cli.config.source import SUFFIXES, Config, KeyPath, load
from kinit_cli.errors import KinitError, Problem, Problems, did_you_mean
from kinit_cli.model.saved import Loaded
from kinit_cli.model.variables import digest

SECTION: KeyPath = ("init_from",)
# Configs on one init_from chain, the first included: each builds its model in turn (seconds
# each), so a longer chain is refused from the YAML before any is built.
MAX_CHAIN = 16


def source_path(text: str, base_dir: Path) -> Path:
    """An init_from source as written, relative ones against their config's folder."""
    source = Path(text).expanduser()
    return source if source.is_absolute() else base_dir / source


def cycle(config: Config, section: InitFrom | None) -> list[Problem]:
    """A chain of config sources that comes back to a config on it (a.yaml -> b.yaml ->
    a.yaml) would be built forever, and one of more than MAX_CHAIN configs for minutes:
    both found from the YAML alone, before Keras loads."""
    if section is None or config.file is None:
        return []
    chain = [Path(config.file).resolve()]
    source = source_path(section.source, config.base_dir)
    while source.suffix in SUFFIXES and source.is_file():
        chain.append(source.resolve())
        if chain[-1] in chain[:-1]:
            shown = " -> ".join(_shown(p, config.base_dir) for p in chain)
            message = (
                f"init_from goes round in a circle: {shown}; each config starts from the "
                "next one's weights, so none can be built"
            )
            return [config.problem((*SECTION, "source"), message)]
        if len(chain) > MAX_CHAIN:
            message = (
                f"init_from chains more than {MAX_CHAIN} configs, starting at "
                f"{_shown(chain[0], config.base_dir)} (each builds its model in turn); start "
                "from a trained run directory or a .keras file instead of a config"
            )
            return [config.problem((*SECTION, "source"), message)]
        try:
            inner = load(source).data.get("init_from")
        except KinitError:
            return []  # reading it as a source reports that
        if not isinstance(inner, dict) or not isinstance(inner.get("source"), str):
            return []
        source = source_path(inner["source"], source.resolve().parent)
    return []


def _shown(path: Path, base_dir: Path) -> str:
    """A path as the user reads it: relative to the config's folder when inside it."""
    try:
        return str(path.relative_to(base_dir.resolve()))
    except ValueError:
        return str(path)


def apply(built: Any, section: InitFrom, config: Config, loaded: Loaded) -> None:
    """Copy the weights of `loaded` (the source, read by model.sources) into `built` (a
    model.build.BuiltModel); ConfigError with every mismatch found."""
    label = loaded.file  # for a run directory, the file it read
    problems = Problems()
    pairs = _pairs(built.model, loaded.model, section, config, problems)
    frozen = section.freeze
    layers = [layer.name for layer in built.model.layers]
    for i, name in enumerate(frozen if isinstance(frozen, tuple) else ()):
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
    model: Any, source: Any, section: InitFrom, config: Config, problems: Problems
) -> list[tuple[Any, Any, KeyPath]]:
    """(target layer, source layer, the config key that asked for it) per layer to load."""
    targets = {layer.name: layer for layer in model.layers if layer.weights}
    origins = {layer.name: layer for layer in source.layers if layer.weights}
    mapping: dict[str, str] = dict(section.map)

    def missing(name: str) -> str:
        return f"this model has no layer '{name}' with weights.{did_you_mean(name, list(targets))}"

    for name in mapping:
        if name not in targets:
            problems.append(config.problem(SECTION + ("map", name), missing(name), at_key=True))
    chosen = section.layers
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
