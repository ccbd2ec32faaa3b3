"""A sweep the tests share: configs/digits.yaml for one epoch, Keras's glorot_uniform
against an initializer written as a tutorial writes one (tf.random.normal, no get_config,
no decorator), over two seeds, in two worker processes."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from kinit_cli.cli import cli
from tests.conftest import DIGITS

KEY = "model.layers[0].config.kernel_initializer"

SCALED_NORMAL = """\
import tensorflow as tf
from tensorflow import keras


class ScaledNormal(keras.initializers.Initializer):
    def __init__(self, scale=1.0):
        self.scale = scale

    def __call__(self, shape, dtype=None):
        fan_in = shape[0]
        return tf.random.normal(shape, stddev=self.scale / fan_in**0.5, dtype=dtype)
"""

GRID = f"{KEY}=[glorot_uniform, {{class_name: ScaledNormal, config: {{scale: 2.0}}}}]"


def sweep(*args: str) -> tuple[int, str, str]:
    """`kinit sweep ARGS` in-process: exit code, stdout, stderr."""
    result = CliRunner().invoke(cli, ["sweep", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="session")
def plugin_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plugin") / "scaled_normal.py"
    path.write_text(textwrap.dedent(SCALED_NORMAL))
    return path


@pytest.fixture(scope="session")
def digits_sweep(tmp_path_factory: pytest.TempPathFactory, plugin_file: Path) -> dict:
    """The sweep's folder and its --json document."""
    folder = tmp_path_factory.mktemp("sweep") / "sweep"
    code, out, err = sweep(
        DIGITS,
        "--set",
        "train.epochs=1",
        "--plugin",
        str(plugin_file),
        "--grid",
        GRID,
        "--seeds",
        "2",
        "--jobs",
        "2",
        "-o",
        str(folder),
        "--json",
    )
    assert code == 0, err
    return {"dir": folder, "document": json.loads(out)}
