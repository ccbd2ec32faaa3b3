"""A kinit config checked against its shape (config/settings.py describes the sections, their
keys, types and defaults; config/model_schema.py the model), before TensorFlow loads.

Names inside `{class_name, config}` specs are resolved later (registry and specs); here
only the structure is checked, so a config with a typo fails in milliseconds.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from kinit_cli.config.fields import REQUIRED, RUN_NAME_LENGTH, spec
from kinit_cli.config.model_schema import (
    check_model,
    check_spec_keys,
    unknown_keys,
)
from kinit_cli.config.settings import Settings, sections
from kinit_cli.config.source import Config, KeyPath, kind_of
from kinit_cli.errors import Problems

# Derived from the one description of the sections (config/settings.py).
SCHEMA: dict[str, Any] = Settings.schema()

# What each section is for (the schema's descriptions; the keys carry their own).
SECTION_DOCS = {name: f.metadata["doc"] for name, f in sections().items()}

# Sections that stay absent from the resolved config unless the file has them.
OPTIONAL_SECTIONS = tuple(name for name, f in sections().items() if f.metadata["optional"])


def validate(config: Config) -> dict[str, Any]:
    """Check the whole config; return the data with defaults filled, or raise every problem."""
    resolved, problems = check(config)
    problems.raise_any()
    return resolved


def settings(config: Config) -> Settings:
    """Check the whole config; return it as typed, frozen settings, or raise every problem."""
    return Settings.from_document(validate(config))


def check(config: Config) -> tuple[dict[str, Any], Problems]:
    """The data with defaults filled, and every structural problem found."""
    problems = Problems()
    resolved = _section(config, SCHEMA, (), config.data, problems)
    if isinstance(config.data.get("model"), dict):
        check_model(config, config.data["model"], problems)
    for key in ("optimizer", "loss"):
        value = config.get(("compile", key))
        if isinstance(value, dict):
            check_spec_keys(config, ("compile", key), value, problems)
    metrics = config.get(("compile", "metrics"))
    if isinstance(metrics, list):
        for i, m in enumerate(metrics):
            path = ("compile", "metrics", i)
            if isinstance(m, dict):
                check_spec_keys(config, path, m, problems)
            elif (msg := spec(m)) is not None:
                problems.append(config.problem(path, msg))
    if resolved.get("name") is None and config.file:
        resolved.update(name=_default_name(config.file))
    return resolved, problems


def _section(
    config: Config, schema: dict[str, Any], path: KeyPath, value: Any, problems: Problems
) -> dict[str, Any]:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        problems.append(config.problem(path, f"expected a mapping, got {kind_of(value)}"))
        return {}
    unknown_keys(config, path, value, tuple(schema), problems)
    out: dict[str, Any] = {}
    for key, rule in schema.items():
        if isinstance(rule, dict):
            if key in value or (path == () and key not in OPTIONAL_SECTIONS):
                out[key] = _section(config, rule, path + (key,), value.get(key), problems)
            continue
        if key not in value:
            if rule.default is REQUIRED:
                problems.append(config.problem(path, f"missing required key '{key}'"))
            else:
                out[key] = copy.deepcopy(rule.default)
            continue
        message = rule.check(value[key])
        if message:
            written = config.written.get(path + (key,))
            if rule.text and written is not None:
                message += f' (quote it: {key}: "{written}")'
            problems.append(config.problem(path + (key,), message))
        out[key] = value[key]
    return out


def _default_name(file: str) -> str:
    """The config file's name as a run name."""
    return safe_name(Path(file).stem)


def safe_name(text: str) -> str:
    """`text` as a run name `run_name` accepts: what it refuses made '_' or dropped."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", text).lstrip("_.-")
    return name[:RUN_NAME_LENGTH] or "run"
