"""Runs the inference tests share, each trained once per test process (1 epoch, in-process;
the tutorial's plugin module can be imported once only), and the labelled data they are
evaluated on."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kinit_cli.cli import cli
from tests.conftest import ROOT, forget, train

# The subclassing guide's layers, which Keras cannot reload: the run keeps weights only.
WEIGHTS_ONLY = """\
seed: 3
plugins: [subclassing_guide.py]
model:
  input_shape: [64]
  layers:
    - {class_name: Linear, config: {units: 32, input_dim: 64}}
    - {class_name: MyLayer, config: {output_dim: 16}}
    - {class_name: Dense, config: {units: 10, activation: softmax}}
compile: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}
train: {epochs: 1, batch_size: 64}
"""


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """configs/digits.yaml trained for one epoch: a run with model.keras."""
    run = tmp_path_factory.mktemp("digits") / "run"
    result = train(CliRunner(), "-q", "-o", str(run), "--set", "train.epochs=1")
    assert result.exit_code == 0, result.output
    return run


@pytest.fixture(scope="session")
def weights_only_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tutorial model trained for one epoch on digits: a run with model.weights.h5 only."""
    folder = tmp_path_factory.mktemp("tutorial")
    shutil.copy(ROOT / "tests" / "tutorials" / "subclassing_guide.py", folder)
    config = folder / "model.yaml"
    config.write_text(WEIGHTS_ONLY)
    run = folder / "run"
    before = set(sys.modules)
    result = CliRunner().invoke(cli, ["train", str(config), "-q", "-o", str(run)])
    # Made before any test's forget_plugins looks: its plugin is unloaded here, so no later
    # test in this process sees the tutorial's classes registered.
    forget(
        {
            name
            for name in set(sys.modules) - before
            if str(getattr(sys.modules[name], "__file__", None) or "").startswith(str(folder))
        }
    )
    assert result.exit_code == 0, result.output
    assert (run / "model.weights.h5").exists() and not (run / "model.keras").exists()
    return run


def digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `n` bundled digits as the model takes them (8x8, 0..1 float32) and their
    labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images[:n] / 16).astype(np.float32), data.target[:n].astype(np.int64)


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    """120 digits with their labels, as an .npz (x, y), as the source holds them (0..16)."""
    x, y = digits(120)
    path = tmp_path / "labelled.npz"
    np.savez(path, x=x * 16, y=y)
    return path
