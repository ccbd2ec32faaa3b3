"""Data and resource guards: non-finite data, strict JSON, labels against the model's
output, and the memory a model's weights need before it is built."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import yaml
from rich.console import Console

from kinit_cli.cli import cli
from kinit_cli.data import datasets as data
from kinit_cli.data import labels
from kinit_cli.errors import DataError, NonFiniteDataError, ResourceError
from kinit_cli.model import footprint
from kinit_cli.output import render
from kinit_cli.runtime import memory, switches
from kinit_cli.runtime.switches import Switches
from kinit_cli.storage import rundir, strictjson
from kinit_cli.weights import stats
from tests.conftest import DIGITS, MNIST_LIKE, ROOT, kinit_limited
from tests.data.test_data import section


def strict_loads(text: str) -> Any:
    """json.loads that fails the test on NaN, Infinity or -Infinity."""
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))


def write_npz(path: Path, **replace: np.ndarray) -> Path:
    """8-feature float32 examples (12 train, 4 test) with labels 0..2; `replace` swaps arrays."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.random((12, 8), dtype=np.float32),
        "y_train": np.arange(12) % 3,
        "x_test": rng.random((4, 8), dtype=np.float32),
        "y_test": np.arange(4) % 3,
        **replace,
    }
    np.savez(path, **arrays)
    return path


def load_npz(path: Path) -> data.Splits:
    return data.load(section(path=str(path)), (None,), 0, path.parent)


# --- non-finite data -------------------------------------------------------------------


def test_nan_pixels_are_rejected_with_where_they_are(tmp_path):
    x = np.random.default_rng(1).random((20, 6, 8), dtype=np.float32)
    x[12, 5, 7] = x[15, 0, 0] = np.nan
    x[19, 2, 3] = np.inf
    path = write_npz(
        tmp_path / "bad.npz",
        x_train=x,
        y_train=np.arange(20) % 3,
        x_test=np.zeros((4, 6, 8), np.float32),
    )
    with pytest.raises(NonFiniteDataError) as caught:
        load_npz(path)
    assert str(caught.value) == (
        f"NumPy archive {path}: x_train has 3 non-finite values (NaN or infinite), first at "
        "index (12, 5, 7). kinit trains only on finite data: replace those values or drop "
        "their examples."
    )
    assert caught.value.found == {"x_train": (3, (12, 5, 7))}
    assert caught.value.exit_code == 2 and isinstance(caught.value, DataError)


def test_every_array_with_non_finite_values_is_named_labels_too(tmp_path):
    path = write_npz(
        tmp_path / "inf.npz",
        x_test=np.full((4, 8), np.inf, np.float32),
        y_train=np.array([0, 1, 2, np.nan, 1, 2, 0, 1, 2, 0, 1, 2]),
    )
    with pytest.raises(NonFiniteDataError) as caught:
        load_npz(path)
    assert str(caught.value) == (
        f"NumPy archive {path}: y_train has 1 non-finite value (NaN or infinite), first at "
        "index 3; x_test has 32 non-finite values (NaN or infinite), first at index (0, 0). "
        "kinit trains only on finite data: replace those values or drop their examples."
    )


def test_integer_arrays_are_not_scanned():
    # uint8 pixels cannot be NaN: nothing is read, not even one isfinite() pass.
    class Unreadable(np.ndarray):
        def __getitem__(self, item):
            raise AssertionError("a uint8 array was read")

    pixels = np.zeros((3, 4), np.uint8).view(Unreadable)
    assert data.nonfinite(pixels) == (0, None)


def test_the_scan_goes_chunk_by_chunk_and_finds_the_same(monkeypatch):
    rng = np.random.default_rng(2)
    x = rng.random((50, 3, 7))
    bad = rng.random(x.shape) < 0.01
    x[bad] = np.nan
    x[40, 1, 6] = -np.inf
    bad[40, 1, 6] = True
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    monkeypatch.setattr(data, "_FINITE_CHUNK", 40)  # 1 example (21 values) per step
    seen = []
    isfinite = np.isfinite
    monkeypatch.setattr(np, "isfinite", lambda a, *r, **k: seen.append(a.size) or isfinite(a))
    assert data.nonfinite(x) == (int(bad.sum()), first)
    assert max(seen) == 21 and len(seen) == 50


def test_finite_float_data_loads(tmp_path):
    loaded = load_npz(write_npz(tmp_path / "ok.npz"))
    assert loaded.sizes == {"train": 12, "validation": 0, "test": 4}


def test_train_refuses_nan_data_before_the_run_directory(runner, write, tmp_path):
    x = np.random.default_rng(1).random((12, 8), dtype=np.float32)
    x[2, 3] = np.nan
    path = write_npz(tmp_path / "nan.npz", x_train=x)
    out = tmp_path / "run"
    result = runner.invoke(
        cli,
        ["train", str(write("c.yaml", MNIST_LIKE)), "--output", str(out), "-q"]
        + ["--set", f"data.path={path}"],
    )
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: NumPy archive {path}: x_train has 1 non-finite value (NaN or infinite), "
        "first at index (2, 3). kinit trains only on finite data: replace those values or "
        "drop their examples.\n"
    )
    assert not out.exists()


# --- strict JSON -----------------------------------------------------------------------


def test_non_finite_numbers_become_null():
    document = {
        "loss": math.nan,
        "values": [math.inf, -math.inf, 1.5, (2.0, np.float32("nan"))],
        "array": np.array([1.0, np.nan]),
        "count": np.int64(3),
        "name": "nan",
    }
    assert strictjson.finite(document) == {
        "loss": None,
        "values": [None, None, 1.5, [2.0, None]],
        "array": [1.0, None],
        "count": 3,
        "name": "nan",
    }


def _nan_model_report() -> list[stats.VariableStats]:
    from kinit_cli.model.variables import weight_infos

    # Named, not numbered by Keras's counter of the layers built before it in this process.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
    kernel, bias = model.layers[0].kernel, model.layers[0].bias
    kernel.assign(np.full((3, 2), np.nan, np.float32))
    bias.assign(np.array([np.inf, -np.inf], np.float32))
    return stats.report(weight_infos(model))


def test_weights_report_with_nan_weights_is_strict_json(tmp_path):
    path = tmp_path / "weights.json"
    rundir.write_json(path, stats.report_json(_nan_model_report()))
    document = strict_loads(path.read_text())
    kernel, bias = document["variables"]
    assert (kernel["path"], kernel["nonfinite"], kernel["size"]) == ("dense/kernel", 6, 6)
    assert [kernel[k] for k in ("mean", "std", "min", "max", "l2")] == [None] * 5
    assert (bias["nonfinite"], bias["mean"], bias["histogram"]) == (2, None, [])


def test_print_json_is_strict():
    out = Console(file=io.StringIO(), width=100, color_system=None)
    render.print_json({"metrics": {"loss": math.nan, "val_loss": math.inf}}, out)
    assert strict_loads(out.file.getvalue()) == {"metrics": {"loss": None, "val_loss": None}}


def test_write_json_refuses_what_slips_past_the_conversion(tmp_path, monkeypatch):
    monkeypatch.setattr(strictjson, "finite", lambda d: d)
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        rundir.write_json(tmp_path / "m.json", {"loss": math.nan})
    assert list(tmp_path.iterdir()) == []  # no half-written file left behind


# --- labels against the output ---------------------------------------------------------


def splits(y_train: np.ndarray, y_test: np.ndarray | None = None) -> data.Splits:
    y_test = y_train[:2] if y_test is None else y_test
    x = np.zeros((len(y_train), 4), np.float32)
    return data.Splits(
        "t", "test", x, y_train, None, None, x[: len(y_test)], y_test, int(y_train.max()) + 1
    )


def dense_model(units: int) -> Any:
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, name="head")], name="m")


DIGIT_LABELS = np.arange(20) % 10
TOO_FEW = (
    "the data has labels 0..9 (10 classes) but the last layer ('head') has 5 units; "
    "sparse_categorical_crossentropy takes class ids 0..4. Give the last layer one unit per "
    "class, or relabel the data to 0..4."
)


@pytest.mark.parametrize(
    "loss",
    [
        "sparse_categorical_crossentropy",
        "SparseCategoricalCrossentropy",
        "keras>SparseCategoricalCrossentropy",
        keras.losses.sparse_categorical_crossentropy,
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        # private: checked on Keras 3.15
        keras.src.losses.losses.LossFunctionWrapper(keras.losses.sparse_categorical_crossentropy),
    ],
    ids=["name", "class-name", "keras-key", "function", "instance", "wrapper"],
)
def test_labels_past_the_last_unit_are_refused(loss):
    with pytest.raises(DataError) as caught:
        labels.check_labels(splits(DIGIT_LABELS), dense_model(5), loss, ["accuracy"])
    assert str(caught.value) == TOO_FEW


def test_a_sparse_metric_speaks_when_the_loss_does_not():
    with pytest.raises(DataError) as caught:
        labels.check_labels(
            splits(DIGIT_LABELS), dense_model(5), "mse", [keras.metrics.SparseCategoricalAccuracy()]
        )
    assert str(caught.value) == TOO_FEW.replace(
        "sparse_categorical_crossentropy", "sparse_categorical_accuracy"
    )


def test_a_huge_label_from_an_npz_is_refused_before_training(tmp_path):
    y = np.arange(12) % 3
    y[7] = 1_000_000_000
    loaded = load_npz(write_npz(tmp_path / "big.npz", y_train=y))
    with pytest.raises(DataError) as caught:
        labels.check_labels(loaded, dense_model(10), "sparse_categorical_crossentropy")
    assert str(caught.value) == (
        "the data has labels 0..1000000000 (1000000001 classes) but the last layer ('head') "
        "has 10 units; sparse_categorical_crossentropy takes class ids 0..9. Give the last "
        "layer one unit per class, or relabel the data to 0..9."
    )


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (
            np.array([0, 1, -3, 2]),
            "the data has the label -3 (in y_train); sparse_categorical_crossentropy takes "
            "class ids 0..4",
        ),
        (
            np.array([0.0, 1.0, 2.5, 2.0]),
            "the data has the non-integer label 2.5 (in y_train); "
            "sparse_categorical_crossentropy takes class ids 0..4",
        ),
    ],
    ids=["negative", "non-integer"],
)
def test_labels_that_are_no_class_ids_are_refused(y, message):
    with pytest.raises(DataError) as caught:
        labels.check_labels(
            splits(y, np.array([0, 1])), dense_model(5), "sparse_categorical_crossentropy"
        )
    assert str(caught.value) == message


def test_every_label_problem_is_told_at_once():
    data = splits(np.array([0, 1, 12, 2]), np.array([0, -1]))
    with pytest.raises(DataError) as caught:
        labels.check_labels(data, dense_model(5), "sparse_categorical_crossentropy")
    assert str(caught.value) == (
        "the data has the label -1 (in y_test); the data has labels 0..12 (13 classes) but the "
        "last layer ('head') has 5 units; sparse_categorical_crossentropy takes class ids "
        "0..4. Give the last layer one unit per class, or relabel the data to 0..4."
    )


def test_labels_that_fit_and_ignore_class_pass():
    labels.check_labels(splits(DIGIT_LABELS), dense_model(10), "sparse_categorical_crossentropy")
    y = np.array([0, 1, 4, 255, 255, 3])  # 255: pixels a segmentation mask leaves out
    loss = keras.losses.SparseCategoricalCrossentropy(ignore_class=255)
    labels.check_labels(splits(y), dense_model(5), loss)


def my_loss(y_true: Any, y_pred: Any) -> Any:  # a plugin's loss: any labels it likes
    return keras.ops.mean(y_pred)


class MyCrossentropy(keras.losses.SparseCategoricalCrossentropy):
    """A subclass may take other labels: not checked either."""


@pytest.mark.parametrize(
    "loss", [my_loss, MyCrossentropy(), "mse", "plugins>SparseCategoricalCrossentropy", None]
)
def test_losses_without_a_known_contract_are_not_checked(loss):
    labels.check_labels(splits(DIGIT_LABELS), dense_model(5), loss, ["accuracy"])


def test_categorical_crossentropy_takes_one_hot_rows_as_wide_as_the_output():
    with pytest.raises(DataError) as caught:
        labels.check_labels(splits(DIGIT_LABELS), dense_model(10), "categorical_crossentropy")
    assert str(caught.value) == (
        "the data has class ids (y_train has shape (20,), one integer per example) but "
        "categorical_crossentropy takes one-hot labels as wide as the last layer ('head', 10 "
        "units); use sparse_categorical_crossentropy for class ids"
    )
    one_hot = np.eye(10)[DIGIT_LABELS]
    with pytest.raises(DataError) as caught:
        labels.check_labels(splits(one_hot), dense_model(5), keras.losses.CategoricalCrossentropy())
    assert str(caught.value) == (
        "the data has one-hot labels of width 10 (y_train has shape (20, 10)) but the last "
        "layer ('head') has 5 units; categorical_crossentropy needs one unit per label column"
    )
    labels.check_labels(splits(one_hot), dense_model(10), "categorical_crossentropy")


def test_train_refuses_labels_past_the_last_unit(runner, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(
        cli,
        ["train", DIGITS, "--output", str(out), "-q", "--set", "model.layers[2].config.units=5"],
    )
    assert result.exit_code == 2
    assert result.stderr == f"error: {TOO_FEW.replace('head', 'dense_2')}\n"
    assert not out.exists()


# --- memory ----------------------------------------------------------------------------


def model_config(layers: list[dict[str, Any]], input_shape: list[int], **compile_: Any) -> dict:
    return {
        "model": {"input_shape": input_shape, "layers": layers},
        "compile": {"optimizer": "adam", **compile_},
    }


HUGE = model_config([{"class_name": "Dense", "config": {"units": 30_000_000}}], [999])


def test_parameters_are_counted_from_the_specs():
    digits = yaml.safe_load(Path(DIGITS).read_text())
    assert footprint.estimate(digits["model"]) == footprint.Estimate(17226, 4)  # README's total
    cnn = yaml.safe_load((ROOT / "configs" / "fashion_mnist_cnn.yaml").read_text())
    assert footprint.estimate(cnn["model"]).parameters == 3_274_634  # keras count_params()


@pytest.mark.parametrize(
    ("layer", "input_shape"),
    [
        ({"class_name": "LSTM", "config": {"units": 7}}, (5, 3)),
        ({"class_name": "GRU", "config": {"units": 7, "reset_after": False}}, (5, 3)),
        ({"class_name": "SimpleRNN", "config": {"units": 7, "return_sequences": True}}, (5, 3)),
        ({"class_name": "BatchNormalization"}, (4, 4, 6)),
        ({"class_name": "LayerNormalization"}, (6,)),
        ({"class_name": "Embedding", "config": {"input_dim": 50, "output_dim": 8}}, (10,)),
        (
            {"class_name": "Conv1D", "config": {"filters": 4, "kernel_size": 3, "groups": 2}},
            (11, 6),
        ),
        (
            {
                "class_name": "conv3d",
                "config": {"filters": 4, "kernel_size": [2, 3, 1], "strides": 2},
            },
            (7, 8, 9, 2),
        ),
        ({"class_name": "MaxPooling2D", "config": {"pool_size": 3, "padding": "same"}}, (9, 10, 2)),
        ({"class_name": "SimpleDense", "config": {"units": 5}}, (3,)),
        ({"class_name": "Linear", "config": {"units": 5, "input_dim": 3}}, (3,)),
        ({"class_name": "Reshape", "config": {"target_shape": [-1, 2]}}, (6,)),
    ],
    ids=lambda v: v["class_name"] if isinstance(v, dict) else None,
)
def test_each_rule_matches_what_keras_builds(layer, input_shape):
    from kinit_cli.registry.catalog import Registry
    from kinit_cli.registry.plugins import load_plugins

    load_plugins([], base_dir=Path.cwd())
    registry = Registry()
    built = keras.Sequential(
        [
            keras.Input(input_shape),
            registry.resolve("layer", layer["class_name"]).obj(**layer.get("config", {})),
        ]
    )
    spec = {"input_shape": list(input_shape), "layers": [layer, {"class_name": "Flatten"}]}
    assert footprint.estimate(spec, registry) == footprint.Estimate(built.count_params(), 4)
    assert footprint._layer(layer, input_shape, registry)[1] == tuple(built.outputs[0].shape[1:])
    # The rules, the fallback where a layer cannot be built symbolically, agree with Keras too.
    assert footprint._by_rule(layer, input_shape, registry) == (
        built.count_params(),
        tuple(built.outputs[0].shape[1:]),
    )


SIZED_PLUGINS = """\
import keras


class Gate(keras.layers.Layer):
    def __init__(self, width):
        super().__init__()
        self.width = width

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.width))
        self.g = self.add_weight(shape=(self.width,), trainable=False)

    def call(self, x):
        return keras.ops.matmul(x, self.w) * self.g


class Valued(keras.layers.Layer):
    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], 2))
        self.scale = float(keras.ops.convert_to_numpy(self.w).sum())  # reads a value

    def call(self, x):
        return keras.ops.matmul(x, self.w)
"""


def plugin_registry(write) -> Any:
    from kinit_cli.registry.catalog import Registry
    from kinit_cli.registry.plugins import load_plugins

    path = write("sized.py", SIZED_PLUGINS)
    load_plugins([str(path)], base_dir=path.parent)
    return Registry()


def test_a_plugin_layer_is_counted_exactly_by_building_it_symbolically(write):
    registry = plugin_registry(write)
    layers = [
        {"class_name": "Gate", "config": {"width": 1_000_000}},
        {"class_name": "Dense", "config": {"units": 2_000, "kernel_initializer": "Gate"}},
    ]
    # 1000*1e6 + 1e6 (the table knows no Gate), then a Dense whose initializer is no
    # initializer at all: it shapes no weight, so the count goes on.
    found = footprint.estimate(model_config(layers, [1000])["model"], registry)
    assert found == footprint.Estimate(1_001_000_000 + 2_000_002_000, 4)
    assert footprint.estimate(model_config(layers, [1000])["model"]).stopped_at == "model.layers[0]"


def test_a_plugin_whose_build_reads_values_falls_back_to_the_rules(write):
    registry = plugin_registry(write)
    layers = [
        {"class_name": "Dense", "config": {"units": 10}},
        {"class_name": "Valued"},
        {"class_name": "Dense", "config": {"units": 10}},
    ]
    assert footprint._symbolic(layers[1], [(10,)], registry) is None
    found = footprint.estimate(model_config(layers, [5])["model"], registry)
    assert found == footprint.Estimate(60, 4, "model.layers[1]")


def test_layers_the_rules_do_not_know_are_counted_exactly_when_built_symbolically():
    from kinit_cli.registry.catalog import Registry
    from kinit_cli.registry.plugins import load_plugins

    load_plugins([], base_dir=Path.cwd())
    layers = [
        {"class_name": "SeparableConv2D", "config": {"filters": 16, "kernel_size": 3}},
        {"class_name": "Conv2DTranspose", "config": {"filters": 8, "kernel_size": 3}},
        {"class_name": "Reshape", "config": {"target_shape": [-1, 8]}},
        {
            "class_name": "Bidirectional",
            "config": {"layer": {"class_name": "LSTM", "config": {"units": 5}}},
        },
    ]
    built = keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            keras.layers.SeparableConv2D(16, 3),
            keras.layers.Conv2DTranspose(8, 3),
            keras.layers.Reshape((-1, 8)),
            keras.layers.Bidirectional(keras.layers.LSTM(5)),
        ]
    )
    spec = model_config(layers, [12, 12, 3])["model"]
    assert footprint.estimate(spec, Registry()) == footprint.Estimate(built.count_params(), 4)
    assert built.count_params() == (27 + 3 * 16 + 16) + (16 * 8 * 9 + 8) + 2 * 4 * (
        8 * 5 + 5 * 5 + 5
    )
    assert footprint.estimate(spec) == footprint.Estimate(0, 4, "model.layers[0]")  # rules alone


def test_symbolic_counts_draw_no_value_and_leave_kerass_names_alone():
    from kinit_cli.registry.catalog import Registry
    from kinit_cli.registry.plugins import load_plugins

    load_plugins([], base_dir=Path.cwd())
    keras.layers.Dense(1)  # so the process-wide counter is past the first name
    before = keras.layers.Dense(1).name
    spec = model_config([{"class_name": "Dense", "config": {"units": 3}}], [4])["model"]
    assert footprint.estimate(spec, Registry()) == footprint.Estimate(15, 4)
    after = keras.layers.Dense(1).name
    assert int(after.rpartition("_")[2]) == int(before.rpartition("_")[2]) + 1


@pytest.mark.slow  # TensorFlow in a process of its own, under a memory limit
def test_a_24e9_parameter_model_is_refused_before_anything_is_allocated(tmp_path):
    """Counted under a 5 GiB address-space limit: a weight drawn would need 96 GB."""
    config = tmp_path / "huge.yaml"
    config.write_text(
        "model:\n  input_shape: [999]\n  layers:\n"
        "    - {class_name: Dense, config: {units: 24000000}}\n"
        "    - {class_name: Dense, config: {units: 10, activation: softmax}}\n"
        "compile: {optimizer: adam, loss: sparse_categorical_crossentropy}\n"
    )
    result = kinit_limited("validate", str(config), cwd=tmp_path, timeout=120)
    assert result.returncode == 1
    needed = "the model's weights alone need 97.0 GB (2.4e10 parameters as float32)"
    assert result.stderr.splitlines()[-1].startswith(f"error: {needed} but this machine has ")
    assert result.stderr.splitlines()[-1].endswith(
        " available; pass --ignore-memory-check to try anyway"
    )
    assert result.stdout == ""


def test_weights_that_cannot_fit_are_refused_with_the_figures():
    with pytest.raises(ResourceError) as caught:
        footprint.check(HUGE["model"], available=23_100_000_000, ignore=False)
    assert str(caught.value) == (
        "the model's weights alone need 120.0 GB (3.0e10 parameters as float32) but this "
        "machine has 23.1 GB available; pass --ignore-memory-check to try anyway"
    )
    assert (caught.value.needed, caught.value.available) == (120_000_000_000, 23_100_000_000)
    assert caught.value.exit_code == 1


def test_training_counts_gradients_and_the_optimizers_slots():
    config = model_config([{"class_name": "Dense", "config": {"units": 1_000_000}}], [999])
    model, optimizer = config["model"], config["compile"]["optimizer"]
    footprint.check(model, available=5_000_000_000, ignore=False)  # 4.0 GB of weights fit
    with pytest.raises(ResourceError) as caught:
        footprint.check(
            model, available=5_000_000_000, optimizer=optimizer, training=True, ignore=False
        )
    assert str(caught.value) == (
        "training the model needs 16.0 GB: its weights take 4.0 GB (1.0e9 parameters as "
        "float32), the gradients as much again, and adam keeps 2 more per weight (4x in all) "
        "but this machine has 5.0 GB available; pass --ignore-memory-check to try anyway"
    )


@pytest.mark.parametrize(
    ("spec", "slots"),
    [
        ("adam", 2),
        ({"class_name": "Adam", "config": {"amsgrad": True}}, 3),
        ("sgd", 0),
        ({"class_name": "SGD", "config": {"momentum": 0.9}}, 1),
        ({"class_name": "rmsprop", "config": {"centered": True}}, 2),
        ("plugins>MyOptimizer", 0),
    ],
)
def test_optimizer_slots(spec, slots):
    assert footprint.optimizer_slots(spec)[1] == slots


def test_an_unknown_layer_stops_the_count_at_a_lower_bound():
    config = model_config(
        [
            {"class_name": "Dense", "config": {"units": 10_000_000}},
            {"class_name": "MyPluginLayer", "config": {"size": 3}},
            {"class_name": "Dense", "config": {"units": 10}},
        ],
        [1000],
    )
    found = footprint.estimate(config["model"])
    assert found == footprint.Estimate(10_010_000_000, 4, "model.layers[1]")
    with pytest.raises(ResourceError) as caught:
        footprint.check(config["model"], available=1_000_000_000, ignore=False)
    assert str(caught.value) == (
        "the model's weights alone need at least 40.0 GB (1.0e10 parameters as float32) (a "
        "lower bound: kinit cannot size model.layers[1] and what follows it before building) "
        "but this machine has 1.0 GB available; pass --ignore-memory-check to try anyway"
    )


def test_functional_models_count_what_their_inputs_size():
    model = {
        "inputs": [{"name": "left", "shape": [32]}, {"name": "right", "shape": [32]}],
        "layers": [
            {"name": "encoder", "class_name": "Dense", "config": {"units": 16}, "inputs": "left"},
            {"name": "encoder_right", "shares": "encoder", "inputs": "right"},
            {"name": "merged", "class_name": "Concatenate", "inputs": ["encoder", "left"]},
            {"name": "head", "class_name": "Dense", "config": {"units": 10}, "inputs": "merged"},
        ],
        "outputs": "head",
    }
    # 32*16+16 and (16+32)*10+10; the shared layer adds nothing and is not sized.
    assert footprint.estimate(model) == footprint.Estimate(528 + 490, 4, "model.layers[1]")


def test_no_refusal_when_asked_or_when_memory_is_unknown(monkeypatch):
    footprint.check(HUGE["model"], available=1, ignore=True)
    monkeypatch.setattr(memory, "available_bytes", lambda: None)
    footprint.check(HUGE["model"], ignore=False)
    with switches.using(Switches(ignore_memory_check=True)):
        footprint.check(HUGE["model"], available=1)


def test_available_memory_is_read_from_the_system():
    available = memory.available_bytes()
    assert isinstance(available, int) and 0 < available < 1 << 50


@pytest.mark.parametrize("command", ["validate", "train", "inspect-weights"])
def test_every_command_that_builds_a_config_takes_the_flag(runner, command):
    result = runner.invoke(cli, [command, "--help"])
    assert result.exit_code == 0 and "--ignore-memory-check" in result.output


def test_the_flag_holds_for_one_invocation(runner, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1)
    result = runner.invoke(cli, ["validate", DIGITS, "--ignore-memory-check", "--print-config"])
    assert result.exit_code == 0 and not memory.ignored()
    result = runner.invoke(cli, ["validate", DIGITS, "--print-config"])
    assert result.exit_code == 1 and not memory.ignored()
    assert result.stderr.endswith("pass --ignore-memory-check to try anyway\n")


def test_validate_refuses_a_model_too_large_for_memory(runner, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 50_000)
    result = runner.invoke(cli, ["validate", DIGITS])
    assert result.exit_code == 1
    assert result.stderr == (
        "error: the model's weights alone need 68.9 kB (17,226 parameters as float32) but "
        "this machine has 50.0 kB available; pass --ignore-memory-check to try anyway\n"
    )
    assert runner.invoke(cli, ["validate", DIGITS, "--ignore-memory-check"]).exit_code == 0
