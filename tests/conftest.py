"""Shared fixtures: real config and plugin files written into tmp_path, and plugin clean-up."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from kinit_cli.cli import cli

# The variables of configs/digits.yaml's model, in order.
DIGITS_PATHS = [
    "dense/kernel",
    "dense/bias",
    "dense_1/kernel",
    "dense_1/bias",
    "dense_2/kernel",
    "dense_2/bias",
]

# What a completed run directory holds.
RUN_FILES = [
    ".kinit-run",
    "backup",
    "config.yaml",
    "history.csv",
    "history.png",  # with matplotlib (kinit[plot], in the dev extra)
    "metrics.json",
    "model.keras",
    "preprocessing.json",
    "weights-final.json",
    "weights-init.json",
]

ROOT = Path(__file__).resolve().parent.parent  # the repository
DIGITS = str(ROOT / "configs" / "digits.yaml")
KINIT = Path(sys.executable).parent / "kinit"  # the installed command

MNIST_LIKE = """\
name: tiny
model:
  input_shape: [8]
  layers:
    - class_name: SimpleDense
      config:
        units: 4
        activation: relu
        kernel_initializer: {class_name: ExampleRandomNormal, config: {mean: 0.0, stddev: 0.05}}
    - {class_name: Dense, config: {units: 3, activation: softmax}}
compile:
  optimizer: {class_name: rmsprop, config: {learning_rate: 0.001}}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
"""


# Address space for a kinit subprocess that reads a hostile file: TensorFlow's import maps
# 1.9 GB and training a tiny model needs under 4.1 GB (measured); 5 GiB leaves room, and a
# reader that believes a file's declared size fails on it instead of exhausting the machine.
KINIT_ADDRESS_SPACE = 5 << 30


def kinit_limited(
    *args: str, cwd: Path, limit: int = KINIT_ADDRESS_SPACE, timeout: float = 300
) -> subprocess.CompletedProcess:
    """`kinit ARGS` in a subprocess under an address-space limit (RLIMIT_AS) and a timeout."""

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "1000"}
    return subprocess.run(
        [sys.executable, "-m", "kinit_cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
        preexec_fn=limit_memory,
    )


def kinit_env(columns: int = 200) -> dict[str, str]:
    """The environment of a kinit subprocess: a fixed width, and the backend its config or
    --backend chooses (not the one the shell running the tests may name)."""
    env = {**os.environ, "COLUMNS": str(columns)}
    env.pop("KERAS_BACKEND", None)
    return env


def kinit(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`kinit ARGS` in a process of its own, as a user runs it."""
    return subprocess.run(
        [str(KINIT), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=kinit_env(),
        timeout=timeout,
    )


def train(runner: CliRunner, *args: str):
    """`kinit train configs/digits.yaml ARGS`, in-process."""
    return runner.invoke(cli, ["train", DIGITS, *args])


# Variables of the shell running the tests that would change what kinit prints (its width,
# colour) or the backend it takes: a test that needs one sets it itself.
SHELL_VARIABLES = ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "KERAS_BACKEND")


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees the same environment, whatever the shell running the tests sets."""
    for name in SHELL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """write(name, text) -> path of a dedented file in tmp_path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    return _write


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


# The repository's plugin files the tests load (kinit's own plugin pack stays loaded).
PLUGIN_FOLDERS = (str(ROOT / "configs") + os.sep, str(ROOT / "tests" / "tutorials") + os.sep)


@pytest.fixture(autouse=True)
def forget_plugins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Unload the plugin modules a test wrote or loaded from the repository's examples, and
    unregister what they registered (so no test sees another's, in whatever order they run)."""
    before = set(sys.modules)
    yield
    bases = (str(tmp_path_factory.getbasetemp()), *PLUGIN_FOLDERS)
    forget(
        {
            name
            for name in set(sys.modules) - before
            if str(getattr(sys.modules[name], "__file__", None) or "").startswith(bases)
        }
    )


def forget(written: set[str]) -> None:
    """Unload the plugin modules `written` and unregister what they registered (for a
    fixture that loads plugins before forget_plugins looks)."""
    if "keras" in sys.modules:
        from kinit_cli.registry import registration

        custom = sys.modules["keras"].saving.get_custom_objects()
        for key, obj in list(custom.items()):
            if getattr(obj, "__module__", None) in written:
                del custom[key]
                registration.DECLARED_KINDS.pop(key, None)
    for name in written:
        del sys.modules[name]
