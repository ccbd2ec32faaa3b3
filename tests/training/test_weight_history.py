"""train.weight_history: weight-history.csv against the weights saved each epoch, the same
trained weights as without it, --resume, activations-init.json, TensorBoard's histograms;
history.png for every run, and inspect-weights --plot's weight-history panels."""

from __future__ import annotations

import builtins
import csv
import json
import shutil
import struct
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from kinit_cli.cli import cli
from kinit_cli.output import plot
from kinit_cli.storage import rundir
from tests.conftest import DIGITS, DIGITS_PATHS
from tests.training.test_backends import kinit_loading

PNG = b"\x89PNG\r\n\x1a\n"
CALLBACKS = (
    'train.callbacks=[{class_name: ModelCheckpoint, config: {filepath: "w-{epoch}.weights.h5",'
    " save_weights_only: true}}, {class_name: TensorBoard, config: {log_dir: tb}}]"
)


def _train(out: Path, *args: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["train", DIGITS, "-q", "--output", str(out), "--set", "train.epochs=2", *args],
    )
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(with, without): digits for 2 epochs, the same seed and callbacks (weights saved each
    epoch, TensorBoard without histogram_freq), with and without train.weight_history; the
    second with a history.png hook that fails."""
    base = tmp_path_factory.mktemp("weight-history")
    _train(base / "with", "--set", CALLBACKS, "--set", "train.weight_history=true")

    def broken(rows: list, path: Path) -> None:
        raise RuntimeError("no figure today")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plot, "history_figure", broken)
        _train(base / "without", "--set", CALLBACKS)
    return base / "with", base / "without"


def _by_epoch(run: Path) -> dict[int, dict[str, dict[str, float]]]:
    out: dict[int, dict[str, dict[str, float]]] = {}
    for row in rundir.read_weight_history(run):
        out.setdefault(row["epoch"], {})[row["path"]] = row
    return out


def _saved(run: Path, weights_file: str) -> dict[str, np.ndarray]:
    model = keras.saving.load_model(run / "model.keras")
    model.load_weights(run / weights_file)
    return {v.path: np.asarray(v.numpy(), np.float64) for v in model.weights}


def _initial(run: Path) -> dict[str, np.ndarray]:
    """The run's initial values: its config's model, built with its seed (checked against
    the SHA-256 weights-init.json holds)."""
    result = CliRunner().invoke(
        cli, ["inspect-weights", str(run / "config.yaml"), "--values", "*", "--json"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    recorded = rundir.initial_weights(run)
    assert {v["path"]: v["sha256"] for v in document["variables"]} == {
        p: v["sha256"] for p, v in recorded.items()
    }
    return {p: np.asarray(v, np.float64) for p, v in document["values"].items()}


@pytest.mark.slow
def test_rows_equal_the_weights_saved_at_each_epoch(runs):
    run, _ = runs
    with (run / rundir.WEIGHT_HISTORY).open() as f:
        assert next(csv.reader(f)) == list(rundir.WEIGHT_HISTORY_COLUMNS)
    history = _by_epoch(run)
    assert sorted(history) == [0, 1, 2]
    assert all(list(history[e]) == DIGITS_PATHS for e in history)
    initial = _initial(run)
    for epoch in (1, 2):
        saved = _saved(run, f"w-{epoch}.weights.h5")
        for path in DIGITS_PATHS:
            w, w0, row = saved[path], initial[path], history[epoch][path]
            assert row["mean"] == pytest.approx(w.mean(), rel=1e-5, abs=1e-9)
            assert row["std"] == pytest.approx(w.std(), rel=1e-5)
            assert row["l2"] == pytest.approx(np.linalg.norm(w), rel=1e-5)
            if np.linalg.norm(w0) > 0:
                expected = np.linalg.norm(w - w0) / np.linalg.norm(w0)
                assert row["relative_change"] == pytest.approx(expected, rel=1e-5)
            else:  # a bias that started at zero: no relative change to speak of
                assert np.isnan(row["relative_change"])
    # Epoch 0 is what weights-init.json recorded, the last epoch weights-final.json.
    for epoch, record in ((0, rundir.initial_weights(run)), (2, rundir.final_weights(run))):
        for path in DIGITS_PATHS:
            row = history[epoch][path]
            assert (row["mean"], row["std"], row["l2"]) == tuple(
                record[path][k] for k in ("mean", "std", "l2")
            )
    assert history[0]["dense/kernel"]["relative_change"] == 0.0
    assert 0 < history[1]["dense/kernel"]["relative_change"]
    assert history[1]["dense/kernel"]["relative_change"] < 1


@pytest.mark.slow
def test_recording_changes_no_trained_weight(runs):
    with_history, without = runs
    for name in ("weights-final.json", "history.csv"):
        assert (with_history / name).read_bytes() == (without / name).read_bytes()
    for epoch in (1, 2):
        a = _saved(with_history, f"w-{epoch}.weights.h5")
        b = _saved(without, f"w-{epoch}.weights.h5")
        assert all(np.array_equal(a[p], b[p]) for p in DIGITS_PATHS)
    assert not (without / rundir.WEIGHT_HISTORY).exists()
    assert not (without / rundir.ACTIVATIONS).exists()


@pytest.mark.slow
def test_activations_at_initialisation(runs):
    run, _ = runs
    record = rundir.read_activations(run)
    assert record["input"] == "first training batch" and record["batch_size"] == 32
    layers = record["layers"]
    assert [(x["name"], x["class_name"]) for x in layers] == [
        ("dense", "Dense"),
        ("dense_1", "Dense"),
        ("dense_2", "Dense"),
    ]
    assert all(x["std"] > 0 for x in layers)
    assert all(x["mean"] > 0 for x in layers[:2])  # ReLU outputs
    # Softmax over 10 classes: each example's outputs sum to 1, so their mean is 1/10.
    assert layers[2]["mean"] == pytest.approx(0.1, rel=1e-6)


@pytest.mark.slow
def test_tensorboard_gets_weight_histograms(runs):
    def tags(run: Path) -> bytes:
        (events,) = (run / "tb" / "train").glob("events.out.tfevents.*")
        return events.read_bytes()

    with_history, without = runs
    for path in DIGITS_PATHS:
        assert f"digits_mlp/{path}/histogram".encode() in tags(with_history)
    assert b"/histogram" not in tags(without)  # histogram_freq 0, as configured
    # The run's config keeps what the user wrote.
    assert "histogram_freq" not in (with_history / "config.yaml").read_text()


@pytest.mark.slow
def test_history_png_with_every_run_and_a_failing_figure_fails_none(runs):
    with_history, without = runs
    png = (with_history / rundir.HISTORY_PLOT).read_bytes()
    assert png.startswith(PNG)
    assert json.loads((without / "metrics.json").read_text())["status"] == "completed"
    assert not (without / rundir.HISTORY_PLOT).exists()


@pytest.mark.slow
def test_resume_keeps_the_earlier_rows(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs[0], run)
    before = (run / rundir.WEIGHT_HISTORY).read_text()
    activations = (run / rundir.ACTIVATIONS).read_bytes()
    # Rows of an epoch the backup does not hold (a crash after they were written), and a
    # line a crash cut short: --resume drops both.
    with (run / rundir.WEIGHT_HISTORY).open("a") as f:
        f.write("3,dense/kernel,9.0,9.0,9.0,9.0\n3,dense/bi")
    result = CliRunner().invoke(
        cli, ["train", "--resume", str(run), "-q", "--set", "train.epochs=3"]
    )
    assert result.exit_code == 0, result.output
    after = (run / rundir.WEIGHT_HISTORY).read_text()
    assert after.startswith(before)
    added = after[len(before) :].splitlines()
    assert [line.split(",")[:2] for line in added] == [["3", p] for p in DIGITS_PATHS]
    final = rundir.final_weights(run)
    last = _by_epoch(run)[3]
    assert all(last[p]["l2"] == final[p]["l2"] for p in DIGITS_PATHS)
    assert (run / rundir.ACTIVATIONS).read_bytes() == activations


@pytest.mark.slow
def test_inspect_plot_gains_the_weight_history_panels(runs, tmp_path):
    def height(run: Path, name: str) -> int:
        out = tmp_path / name
        result = CliRunner().invoke(cli, ["inspect-weights", str(run), "--plot", str(out)])
        assert result.exit_code == 0, result.output
        data = out.read_bytes()
        assert data.startswith(PNG)
        return struct.unpack(">I", data[20:24])[0]  # the IHDR chunk's height

    with_history, without = runs
    # Six histograms fill two rows of three; the two weight-history panels make a third.
    assert height(with_history, "with.png") == pytest.approx(1.5 * height(without, "without.png"))


@pytest.mark.slow
def test_weight_history_on_jax(tmp_path):
    out = tmp_path / "jax"
    done, loaded = kinit_loading(
        "train", DIGITS, "--backend", "jax", "-q", "--output", str(out),
        "--set", "train.epochs=1", "--set", "train.weight_history=true",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "tensorflow" not in loaded
    history = _by_epoch(out)
    assert sorted(history) == [0, 1] and list(history[1]) == DIGITS_PATHS
    for epoch, record in ((0, rundir.initial_weights(out)), (1, rundir.final_weights(out))):
        for path in DIGITS_PATHS:
            row = history[epoch][path]
            assert (row["mean"], row["std"], row["l2"]) == tuple(
                record[path][k] for k in ("mean", "std", "l2")
            )
    layers = rundir.read_activations(out)["layers"]
    assert [x["name"] for x in layers] == ["dense", "dense_1", "dense_2"]
    assert layers[2]["mean"] == pytest.approx(0.1, rel=1e-6)
    assert (out / rundir.HISTORY_PLOT).read_bytes().startswith(PNG)


ROWS = [
    {"epoch": 0, "accuracy": 0.6, "loss": 1.3, "val_accuracy": 0.8, "val_loss": 0.7},
    {"epoch": 1, "accuracy": 0.9, "loss": 0.4, "val_accuracy": 0.9, "val_loss": 0.35},
]


def test_history_figure_draws_the_curves(tmp_path):
    path = tmp_path / "history.png"
    plot.history_figure(ROWS, path)
    data = path.read_bytes()
    assert data.startswith(PNG)
    # Two panels side by side (loss, accuracy): 8.8 x 3.2 inches at 100 dpi.
    assert struct.unpack(">II", data[16:24]) == (880, 320)


def test_history_figure_without_matplotlib_draws_nothing(tmp_path, monkeypatch):
    real = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    for name in [m for m in sys.modules if m.startswith("matplotlib")]:
        monkeypatch.delitem(sys.modules, name)
    plot.history_figure(ROWS, tmp_path / "history.png")
    assert list(tmp_path.iterdir()) == []


def test_weight_series_orders_each_variable_by_epoch():
    rows = [
        {"epoch": 1, "path": "k", "mean": 0.1, "std": 0.5, "l2": 3.0, "relative_change": 0.2},
        {"epoch": 0, "path": "k", "mean": 0.0, "std": 0.4, "l2": 2.0, "relative_change": 0.0},
        {"epoch": 0, "path": "j", "mean": 0.0, "std": 0.1, "l2": 1.0, "relative_change": 0.0},
    ]
    series = plot.weight_series(rows)
    assert list(series) == ["k", "j"]
    assert series["k"] == {
        "epoch": [0.0, 1.0],
        "mean": [0.0, 0.1],
        "std": [0.4, 0.5],
        "l2": [2.0, 3.0],
        "relative_change": [0.0, 0.2],
    }


def test_layer_outputs_of_a_subclassed_model_is_none():
    from kinit_cli.weights.propagation import layer_outputs

    class Net(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            return self.dense(x)

    x = np.ones((2, 4), np.float32)
    net = Net()
    net(x)
    assert layer_outputs(net, x) is None
    # A functional model: one entry per layer, the values as Keras computes them.
    inputs = keras.Input((4,))
    dense = keras.layers.Dense(3, kernel_initializer="ones", bias_initializer="zeros")
    model = keras.Model(inputs, keras.layers.ReLU()(dense(inputs)))
    x = np.array([[1, 2, 3, 4], [-1, -2, -3, -4]], np.float32)
    assert layer_outputs(model, x) == [
        {"name": dense.name, "class_name": "Dense", "mean": 0.0, "std": 10.0},
        {"name": model.layers[2].name, "class_name": "ReLU", "mean": 5.0, "std": 5.0},
    ]
