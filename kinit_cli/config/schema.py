"""The shape of a kinit config: sections, keys, types and defaults; checked before TensorFlow loads.

Names inside `{class_name, config}` specs are resolved later (registry and specs); here
only the structure is checked, so a config with a typo fails in milliseconds.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from kinit_cli.config.choices import BACKENDS, STRATEGIES
from kinit_cli.config.fields import (
    REQUIRED,
    RUN_NAME_LENGTH,
    Field,
    boolean,
    choice,
    cluster,
    either,
    fraction,
    integer,
    mapping,
    name_map,
    number,
    optional,
    optional_boolean,
    optional_string,
    run_name,
    spec,
    spec_list_of,
    spec_of,
    string,
    string_list,
)
from kinit_cli.config.model_schema import (
    check_model,
    check_spec_keys,
    unknown_keys,
)
from kinit_cli.config.source import Config, KeyPath, kind_of
from kinit_cli.errors import Problems

SCHEMA: dict[str, Any] = {
    "name": Field(run_name, doc="run name; defaults to the config file's name", text=True),
    # NumPy's seeds are unsigned 32-bit integers.
    "seed": Field(
        integer(0, optional=True, maximum=2**32 - 1), doc="seeds Python, NumPy and Keras"
    ),
    "backend": Field(
        optional(choice(*BACKENDS)),
        doc="Keras backend: tensorflow, jax or torch; default: --backend, KERAS_BACKEND, "
        "then tensorflow",
        text=True,
    ),
    "deterministic": Field(boolean, False, "deterministic ops (TensorFlow's op determinism)"),
    "plugins": Field(string_list, [], "modules or .py files (relative to the config's folder)"),
    "data": {
        "name": Field(
            optional_string, "digits", "digits, mnist, fashion_mnist or cifar10", text=True
        ),
        "path": Field(
            optional_string, doc="a folder of IDX files or an .npz (overrides name)", text=True
        ),
        "normalize": Field(boolean, True, "scale pixel values to [0, 1]"),
        "flatten": Field(optional_boolean, doc="flatten images; default: follow the model input"),
        "validation_split": Field(fraction, 0.0, "fraction of training data held out"),
        "limit": Field(integer(1, optional=True), doc="use at most this many examples per split"),
        "shuffle": Field(boolean, True, "shuffle training data each epoch with the run's seed"),
    },
    "model": Field(
        mapping,
        REQUIRED,
        "the model: Sequential (input_shape + layers), functional, or one class "
        "(class_name + config + input_shape)",
    ),
    "compile": {
        "optimizer": Field(
            spec_of("optimizer"), "rmsprop", "optimizer name or {class_name, config}"
        ),
        "loss": Field(optional(spec_of("loss")), None, "loss name or spec"),
        "metrics": Field(spec_list_of("metric"), [], "list of metric names or specs"),
    },
    "train": {
        "epochs": Field(integer(1), 1, "passes over the training data"),
        "batch_size": Field(
            integer(1), 32, "examples per training step (the global batch under a strategy)"
        ),
        "steps_per_execution": Field(
            integer(1, optional=True),
            doc="training steps per compiled call; default: the backend's (BENCHMARKS.md)",
        ),
        "jit_compile": Field(
            optional_boolean, doc="compile the training step with XLA; default: the backend's"
        ),
        "precision": Field(
            choice("float32", "mixed_float16", "mixed_bfloat16"),
            "float32",
            "Keras dtype policy; the model's outputs stay float32",
        ),
        "callbacks": Field(
            spec_list_of("callback"), [], "Keras callbacks as names or {class_name, config}"
        ),
        "allow_no_trainable_weights": Field(
            boolean,
            False,
            "train a model with no trainable weights (refused by default: training would "
            "change nothing)",
        ),
    },
    "distribute": {
        "strategy": Field(
            choice(*STRATEGIES),
            "default",
            "one device; tf.distribute's mirrored over local (or the listed) devices or a "
            "cluster; or JAX's data_parallel",
        ),
        "devices": Field(
            optional(string_list),
            None,
            "devices for mirrored (cpu:0, cpu:1 split the CPU into logical devices)",
        ),
        "cluster": Field(
            cluster,
            None,
            "multi_worker_mirrored without TF_CONFIG: {workers: [host:port, ...], index: N}",
        ),
        "timeout": Field(
            number(1), 120, "seconds to wait for peer workers (cluster start, each collective)"
        ),
    },
    "init_from": {
        "source": Field(
            string, REQUIRED, "a run directory or a .keras model to take weights from", text=True
        ),
        "layers": Field(
            optional(string_list),
            None,
            "layers to load (default: every layer the source has by the same name)",
        ),
        "map": Field(name_map, {}, "target layer -> source layer, where the names differ"),
        "freeze": Field(
            either(boolean, string_list),
            False,
            "true, or a list of layers: make loaded layers non-trainable",
        ),
    },
}

# What each section is for (the schema's descriptions; the keys carry their own).
SECTION_DOCS = {
    "data": "the data set and its options",
    "compile": "the arguments of model.compile",
    "train": "the arguments of model.fit, and the dtype policy",
    "distribute": "one device, mirrored over local devices, a cluster, or JAX data parallel",
    "init_from": "start layers from the weights of a run directory or a .keras model",
}

# Sections that stay absent from the resolved config unless the file has them.
OPTIONAL_SECTIONS = ("init_from",)


def validate(config: Config) -> dict[str, Any]:
    """Check the whole config; return the data with defaults filled, or raise every problem."""
    resolved, problems = check(config)
    problems.raise_any()
    return resolved


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
        resolved["name"] = _default_name(config.file)
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
