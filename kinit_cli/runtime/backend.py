"""The Keras backend a process runs on: TensorFlow, JAX or PyTorch, chosen once, before Keras
is imported (Keras reads KERAS_BACKEND on import and never again).

The choice, first that applies: `--backend`, the config's `backend:`, the KERAS_BACKEND
variable, then `tensorflow`, because plugins written the way tutorials write them call
`tf.*` ops. `~/.keras/keras.json` is not read: a config means the same on every machine.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from typing import Any

from kinit_cli.config.choices import BACKENDS
from kinit_cli.config.settings import Settings
from kinit_cli.errors import BackendError

DEFAULT = "tensorflow"
# How to install each backend (its package has its name), on the CPU and for a GPU.
INSTALL = {
    "tensorflow": "pip install tensorflow",
    "jax": "pip install 'kinit[jax]'",
    "torch": "pip install 'kinit[torch]'",
}
GPU_INSTALL = {
    "tensorflow": "pip install 'kinit[gpu]'",
    "jax": "pip install 'jax[cuda12]'",
    "torch": "a CUDA build of torch, from pytorch.org",
}

# train.steps_per_execution and train.jit_compile where a config leaves them out. Each
# keeps same-seed runs bit-identical (tests/training/test_backends.py); the figures they
# were chosen from are in BENCHMARKS.md ("The backends' defaults").
DEFAULTS: dict[str, dict[str, object]] = {
    "tensorflow": {"steps_per_execution": 8, "jit_compile": False},
    "jax": {"steps_per_execution": 8, "jit_compile": True},
    "torch": {"steps_per_execution": 1, "jit_compile": False},
}

# The layer names each backend cannot train, found only once training starts (fit's first
# step, Keras 3.15): TensorFlow opens a name scope per layer, and a scope nested in the
# model's takes only `^[A-Za-z0-9_.\\/>-]*$` (tensorflow/python/framework/ops.py,
# _VALID_SCOPE_NAME_REGEX); torch keeps a layer's variables in a ParameterDict, whose keys
# take no '.'. JAX takes any name.
LAYER_NAMES: dict[str, tuple[re.Pattern[str], str]] = {
    "tensorflow": (
        re.compile(r"[A-Za-z0-9_.\\/>-]*"),
        "ASCII letters, digits and _ . - > only (TensorFlow's rule for the name scope a "
        "layer runs in)",
    ),
    "torch": (re.compile(r"[^.]*"), "no '.' (torch's rule for the keys of a layer's weights)"),
}


def setting(settings: Settings, key: str) -> Any:
    """train.<key> as the config gives it, else the config's backend's default."""
    value = getattr(settings.train, key)
    return DEFAULTS[settings.backend][key] if value is None else value


def resolve(configured: str | None = None, requested: str | None = None) -> str:
    """The backend a command runs on, given the config's `backend:` (None when it has none)
    and the command's --backend (`requested`)."""
    name = requested or configured or os.environ.get("KERAS_BACKEND") or DEFAULT
    if name not in BACKENDS:
        source = "--backend" if requested else "the config" if configured else "KERAS_BACKEND"
        raise BackendError(f"{source} names backend {name!r}; kinit runs on {', '.join(BACKENDS)}")
    return name


def started() -> str | None:
    """The backend Keras was imported with in this process, or None before the import."""
    module = sys.modules.get("keras")
    if module is None or not hasattr(module, "backend"):
        return None
    return str(module.backend.backend())


def use(name: str) -> str:
    """Make `name` the backend Keras is imported with; BackendError when its package is not
    installed or Keras already runs on another one in this process."""
    running = started()
    if running is not None:
        if running != name:
            raise BackendError(
                f"backend {name} was asked for, but Keras already runs on {running} in this "
                "process (a backend is chosen once per process, before Keras is imported)"
            )
        return name
    if importlib.util.find_spec(name) is None:
        raise BackendError(
            f"backend {name} needs the {name} package, which is not installed: "
            f"{INSTALL[name]} (GPU: {GPU_INSTALL[name]})"
        )
    os.environ["KERAS_BACKEND"] = name
    return name


def current() -> str:
    """The backend Keras runs on, or will be imported with."""
    return started() or use(resolve())


def takes_layer_name(name: str, backend: str) -> bool:
    """Whether `backend` can train a layer called `name`."""
    rule = LAYER_NAMES.get(backend)
    return rule is None or rule[0].fullmatch(name) is not None


def layer_name_problem(name: str, backend: str) -> str | None:
    """Why `backend` cannot train a layer called `name` (and which backends can), or None."""
    if takes_layer_name(name, backend):
        return None
    others = [b for b in BACKENDS if takes_layer_name(name, b)]
    which = (
        f"backend {others[0]} takes"
        if len(others) == 1
        else f"backends {' and '.join(others)} take"
    )
    return (
        f"{name!r} is not a layer name backend {backend} can train: {LAYER_NAMES[backend][1]}; "
        f"rename it ({which} it as it is)"
    )
