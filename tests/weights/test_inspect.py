"""inspect-weights: configs, saved models, run directories, checkpoints; sharing; compare."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from kinit_cli.cli import cli
from kinit_cli.model import sources
from kinit_cli.weights import report
from tests.conftest import DIGITS_PATHS, ROOT

CONFIGS = ROOT / "configs"

TIED_PLUGIN = '''
import keras
from kinit_cli import register_layer


@register_layer(package="tied_test")
class TiedTranspose(keras.layers.Layer):
    """Decodes with the transpose of the kernel of the layer that feeds it (tied weights)."""

    def __call__(self, inputs, *args, **kwargs):
        if not self.built:
            self.source = inputs._keras_history.operation
        return super().__call__(inputs, *args, **kwargs)

    def build(self, input_shape):
        self.kernel = self.source.kernel  # the same variable, not a copy
        self.bias = self.add_weight(name="bias", shape=(self.kernel.shape[0],),
                                    initializer="zeros")

    def call(self, x):
        return keras.ops.matmul(x, keras.ops.transpose(self.kernel)) + self.bias
'''

SHARED = """\
plugins: [tied_plugin.py]
model:
  inputs: [{name: a, shape: [6]}, {name: b, shape: [6]}]
  layers:
    - {name: encoder, class_name: Dense, config: {units: 3, kernel_initializer: {class_name: RandomNormal, config: {stddev: 0.1}}}, inputs: a}
    - {name: encoder_b, shares: encoder, inputs: b}
    - {name: decoder, class_name: TiedTranspose, inputs: encoder}
    - {name: both, class_name: Concatenate, inputs: [decoder, encoder_b]}
  outputs: both
"""


def inspect_json(runner, *args):
    result = runner.invoke(cli, ["inspect-weights", *map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow
def test_config_target_reports_what_the_initializers_made(runner):
    doc = inspect_json(runner, CONFIGS / "mnist.yaml")
    assert doc["kind"] == "config"
    kernel, bias, dense_kernel, dense_bias = doc["variables"]
    assert (kernel["path"], kernel["shape"], kernel["fan_in"], kernel["fan_out"]) == (
        "simple_dense/kernel",
        [784, 512],
        784,
        512,
    )
    assert kernel["initializer"] == {
        "class_name": "kinit>ExampleRandomNormal",
        "config": {"mean": 0.0, "stddev": 0.05},
    }
    assert abs(kernel["mean"]) < 4 * 0.05 / np.sqrt(784 * 512)
    assert kernel["std"] == pytest.approx(0.05, rel=0.01)
    assert kernel["spectral_norm"] == pytest.approx(0.05 * (np.sqrt(784) + np.sqrt(512)), rel=0.05)
    assert sum(kernel["histogram"]) == 784 * 512 and len(kernel["histogram"]) == 16
    assert (bias["zero_fraction"], bias["spectral_norm"]) == (1.0, None)
    assert dense_kernel["initializer"]["class_name"] == "GlorotUniform"
    assert doc["layers"] == [
        {
            "name": "simple_dense",
            "parameters": 401920,
            "trainable": 401920,
            "non_trainable": 0,
            "bytes": 1607680,
        },
        {
            "name": "dense",
            "parameters": 5130,
            "trainable": 5130,
            "non_trainable": 0,
            "bytes": 20520,
        },
    ]
    assert doc["totals"]["parameters"] == 407050


@pytest.mark.slow
def test_table_output(runner):
    result = runner.invoke(
        cli, ["inspect-weights", str(CONFIGS / "mnist.yaml"), "--layer", "simple*"]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "simple_dense/kernel" in out and "dense/kernel" not in out.replace("simple_dense/", "")
    assert "784/512" in out and "ExampleRandomNormal(" in out and "stddev=0.05)" in out
    assert "Totals" in out and "401,920" in out


def test_shared_variables_appear_once_with_every_user(runner, write):
    write("tied_plugin.py", TIED_PLUGIN)
    config = write("shared.yaml", SHARED)
    doc = inspect_json(runner, config)
    paths = [v["path"] for v in doc["variables"]]
    assert paths == ["encoder/kernel", "encoder/bias", "decoder/bias"]
    kernel = doc["variables"][0]
    assert kernel["layers"] == ["encoder", "decoder"] and kernel["shape"] == [6, 3]
    assert kernel["call_sites"] == {"encoder": ["encoder", "encoder_b"], "decoder": ["decoder"]}
    assert "call_sites" not in doc["variables"][2]
    assert doc["totals"]["parameters"] == 6 * 3 + 3 + 6
    table = runner.invoke(cli, ["inspect-weights", str(config)]).stdout
    assert "encoder/kernel (encoder, decoder)" in table


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from click.testing import CliRunner

    out = tmp_path_factory.mktemp("inspect") / "run"
    result = CliRunner().invoke(
        cli,
        [
            "train",
            str(CONFIGS / "digits.yaml"),
            "--set",
            "train.epochs=2",
            "--output",
            str(out),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow
def test_saved_model_and_run_directory(runner, trained_run):
    saved = inspect_json(runner, trained_run / "model.keras")
    assert saved["kind"] == "model"
    assert [v["initializer"]["class_name"] for v in saved["variables"]] == [
        "HeNormal",
        "Zeros",
        "HeNormal",
        "Zeros",
        "GlorotUniform",
        "Zeros",
    ]
    final = json.loads((trained_run / "weights-final.json").read_text())
    assert [v["sha256"] for v in saved["variables"]] == [v["sha256"] for v in final["variables"]]
    run = inspect_json(runner, trained_run)
    assert run["kind"] == "run"
    init = json.loads((trained_run / "weights-init.json").read_text())["variables"]
    assert [v["initial"]["std"] for v in run["variables"]] == [v["std"] for v in init]


def test_checkpoint_in_a_run_directory(runner, trained_run, tmp_path):
    # The run's own backup: the state after its last epoch, the trained weights.
    checkpoint = trained_run / "backup" / "epoch-00002.weights.h5"
    doc = inspect_json(runner, checkpoint)
    assert doc["kind"] == "checkpoint"
    assert [v["sha256"] for v in doc["variables"]] == [
        v["sha256"] for v in inspect_json(runner, trained_run / "model.keras")["variables"]
    ]


def test_against_reports_change_and_cosine(runner, trained_run):
    # The run's own config, built again with its seed, gives the initial weights back.
    doc = inspect_json(runner, trained_run, "--against", trained_run / "config.yaml")
    against = doc["against"]
    assert against["only_in_target"] == [] and against["only_in_other"] == []
    rows = {row["path"]: row for row in against["variables"]}
    assert list(rows) == [v["path"] for v in doc["variables"]]
    assert 0 < rows["dense/kernel"]["relative_change"] < 5
    assert 0 < rows["dense/kernel"]["cosine"] < 1
    assert rows["dense/bias"]["relative_change"] > 0 and rows["dense/bias"]["cosine"] is None
    other = inspect_json(runner, trained_run, "--against", CONFIGS / "mnist.yaml")["against"]
    assert other["only_in_target"] == [
        "dense_1/kernel",
        "dense_1/bias",
        "dense_2/kernel",
        "dense_2/bias",
    ]
    assert other["only_in_other"] == ["simple_dense/kernel", "simple_dense/bias"]
    shapes = {r["path"]: r for r in other["variables"]}
    assert (shapes["dense/kernel"]["shape"], shapes["dense/kernel"]["other_shape"]) == (
        [64, 128],
        [512, 10],
    )


def test_filters_and_bad_targets(runner, tmp_path):
    doc = inspect_json(runner, CONFIGS / "mnist.yaml", "--trainable-only", "--layer", "dense")
    assert [v["path"] for v in doc["variables"]] == ["dense/kernel", "dense/bias"]
    result = runner.invoke(cli, ["inspect-weights", str(tmp_path / "nope.keras")])
    assert result.exit_code == 2 and "does not exist" in result.stderr
    (tmp_path / "x.txt").write_text("hi")
    result = runner.invoke(cli, ["inspect-weights", str(tmp_path / "x.txt")])
    assert result.exit_code == 2
    assert "expected a config (.yaml), a saved model (.keras), a run directory" in result.stderr
    result = runner.invoke(cli, ["inspect-weights", str(tmp_path)])
    assert result.exit_code == 2 and "is it a kinit run directory?" in result.stderr


def test_select_matches_paths_and_layers():
    class W:
        def __init__(self, path, layers, trainable=True):
            self.path, self.layers, self.trainable = path, layers, trainable

    weights = [W("enc/kernel", ["enc", "dec"]), W("dec/bias", ["dec"]), W("bn/mean", ["bn"], False)]
    assert [w.path for w in report.select(weights, "dec")] == ["enc/kernel", "dec/bias"]
    assert [w.path for w in report.select(weights, "*/kernel")] == ["enc/kernel"]
    assert [w.path for w in report.select(weights, trainable_only=True)] == [
        "enc/kernel",
        "dec/bias",
    ]


def transfer_config(write, run, extra=""):
    return write(
        "transfer.yaml",
        f"""\
        seed: 5
        init_from:
          source: {run}
        {extra}
        model:
          input_shape: [64]
          layers:
            - {{class_name: Dense, config: {{units: 128, activation: relu}}}}
            - {{class_name: Dense, config: {{units: 64, activation: relu}}}}
            - {{class_name: Dense, config: {{units: 5, activation: softmax}}}}
        """,
    )


def test_init_from_loads_matching_layers_and_says_so(runner, write, trained_run):
    path = transfer_config(write, trained_run, "  layers: [dense, dense_1]\n          freeze: true")
    doc = inspect_json(runner, path)
    final = {
        v["path"]: v
        for v in json.loads((trained_run / "weights-final.json").read_text())["variables"]
    }
    by_path = {v["path"]: v for v in doc["variables"]}
    for name in ("dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"):
        assert by_path[name]["sha256"] == final[name]["sha256"]
        assert by_path[name]["loaded_from"] == f"{trained_run}/model.keras:{name}"
        assert by_path[name]["trainable"] is False
    head = by_path["dense_2/kernel"]
    assert head["loaded_from"] is None and head["trainable"] is True
    assert head["shape"] == [64, 5] and head["initializer"]["class_name"] == "GlorotUniform"
    table = runner.invoke(cli, ["inspect-weights", str(path)]).stdout
    assert table.count("loaded from") == 4 and "Train" in table  # the frozen column appears


def test_init_from_maps_names_and_reports_shape_mismatches(runner, write, trained_run):
    path = transfer_config(write, trained_run, "  map: {dense_2: dense_1}")
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[1:] == [
        f"  {path}:4:18: init_from.map.dense_2: dense_2/kernel has shape (64, 5) here but "
        f"(128, 64) in {trained_run}/model.keras:dense_1/kernel",
        f"  {path}:4:18: init_from.map.dense_2: dense_2/bias has shape (5,) here but (64,) in "
        f"{trained_run}/model.keras:dense_1/bias",
    ]
    path = transfer_config(write, trained_run, "  map: {dens: dense}")
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert (
        "init_from.map.dens: this model has no layer 'dens' with weights. Did you mean "
        "'dense'" in result.stderr
    )


def test_init_from_names_what_it_cannot_freeze_or_read(runner, write, trained_run, tmp_path):
    extra = "  layers: [dense, dense_1]\n          freeze: [dense, dens_1]"
    path = transfer_config(write, trained_run, extra)
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {path}:5:19: init_from.freeze[1]: this model has no layer 'dens_1' to "
        "freeze. Did you mean 'dense_1' or 'dense_2' or 'dense'?\n"
    )
    script = tmp_path / "model.py"
    script.write_text("print('a script')\n")
    path = transfer_config(write, script)
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {path}:3:11: init_from.source: {script}: expected a config (.yaml), a saved "
        "model (.keras), a run directory or a checkpoint (.weights.h5)\n"
    )


def test_a_layer_glob_that_matches_nothing_says_what_there_is(runner):
    result = runner.invoke(
        cli, ["inspect-weights", str(CONFIGS / "digits.yaml"), "--layer", "nope"]
    )
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --layer nope: no variable of {CONFIGS / 'digits.yaml'} (built, not trained) "
        "matches; its layers: dense, dense_1, dense_2\n"
    )


def test_activations_push_one_batch_of_the_configured_data(runner):
    doc = inspect_json(runner, CONFIGS / "digits.yaml", "--activations")["activations"]
    assert doc["input"] == "scikit-learn digits (bundled, 1,797 images): first 32 examples"
    assert doc["batch_size"] == 32
    assert [(layer["name"], layer["shape"]) for layer in doc["layers"]] == [
        ("dense", [32, 128]),
        ("dense_1", [32, 64]),
        ("dense_2", [32, 10]),
    ]
    softmax = doc["layers"][-1]
    assert softmax["mean"] == pytest.approx(0.1, abs=1e-6)  # rows of a softmax sum to 1
    assert doc["loss"]["name"] == "sparse_categorical_crossentropy"
    assert 1.0 < doc["loss"]["value"] < 5.0  # near ln(10) for an untrained classifier
    assert [g["path"] for g in doc["gradients"]] == DIGITS_PATHS
    assert all(g["norm"] > 0 for g in doc["gradients"])
    assert doc["gradients"][1]["relative"] is None  # zero-initialized bias


def test_activations_fall_back_to_gaussian_input(runner, write):
    path = write(
        "offline.yaml",
        """\
        data: {path: missing-folder}
        model:
          input_shape: [16]
          layers: [{class_name: Dense, config: {units: 8, activation: tanh}}]
        """,
    )
    doc = inspect_json(runner, path, "--activations")["activations"]
    assert doc["input"].startswith("unit-Gaussian input, 32 examples (data.path 'missing-folder'")
    assert doc["loss"]["name"] == "0.5 * mean(output^2) (no compile.loss)"
    assert doc["layers"][0]["shape"] == [32, 8] and 0 < doc["layers"][0]["std"] < 1
    result = runner.invoke(
        cli,
        [
            "inspect-weights",
            str(CONFIGS / "mnist.yaml"),
            "--against",
            str(CONFIGS / "mnist.yaml"),
            "--activations",
        ],
    )
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_check_passes_fresh_initializers_and_fails_a_scaled_kernel(runner, trained_run, tmp_path):
    doc = inspect_json(runner, CONFIGS / "mnist.yaml", "--check")
    assert [(c["path"], c["status"]) for c in doc["check"]] == [
        ("simple_dense/kernel", "PASS"),
        ("simple_dense/bias", "PASS"),
        ("dense/kernel", "PASS"),
        ("dense/bias", "PASS"),
    ]
    kernel = doc["check"][0]
    assert kernel["theory"]["std"] == 0.05 and kernel["observed"]["std"] == pytest.approx(
        0.05, rel=0.01
    )
    model = keras.saving.load_model(trained_run / "model.keras")
    fresh = keras.saving.load_model(trained_run / "model.keras")
    for layer, source in zip(model.layers, fresh.layers, strict=True):
        layer.kernel.assign(source.kernel_initializer(layer.kernel.shape))
    model.layers[0].kernel.assign(model.layers[0].kernel * 1.5)
    path = tmp_path / "scaled.keras"
    model.save(path)
    result = runner.invoke(cli, ["inspect-weights", str(path), "--check", "--json"])
    assert result.exit_code == 1
    statuses = {c["path"]: c["status"] for c in json.loads(result.stdout)["check"]}
    assert statuses["dense/kernel"] == "FAIL"
    assert statuses["dense_1/kernel"] == statuses["dense_2/kernel"] == "PASS"
    table = runner.invoke(cli, ["inspect-weights", str(path), "--check"])
    assert table.exit_code == 1 and "FAIL" in table.stdout and "PASS" in table.stdout


def test_plot_draws_a_png_and_keeps_existing_files(runner, tmp_path, monkeypatch):
    out = tmp_path / "weights.png"
    result = runner.invoke(
        cli, ["inspect-weights", str(CONFIGS / "digits.yaml"), "--plot", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    again = runner.invoke(
        cli, ["inspect-weights", str(CONFIGS / "digits.yaml"), "--plot", str(out)]
    )
    assert again.exit_code == 2 and f"{out} already exists" in again.stderr
    for bad, message in (
        (
            tmp_path / "no" / "x.png",
            f"--plot {tmp_path / 'no' / 'x.png'}: the folder {tmp_path / 'no'} does not exist",
        ),
        (
            tmp_path / "x.txt",
            f"--plot writes a PNG image: give a FILE.png, not {tmp_path / 'x.txt'}",
        ),
    ):
        refused = runner.invoke(
            cli, ["inspect-weights", str(CONFIGS / "digits.yaml"), "--plot", str(bad)]
        )
        assert (refused.exit_code, refused.stderr.strip()) == (2, f"error: {message}")
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    missing = runner.invoke(
        cli,
        ["inspect-weights", str(CONFIGS / "digits.yaml"), "--plot", str(tmp_path / "other.png")],
    )
    assert missing.exit_code == 2
    assert missing.stderr.strip() == (
        "error: --plot needs matplotlib, an optional extra: pip install 'kinit[plot]'"
    )


def test_plot_density_matches_the_theory():
    from kinit_cli.output.plot import density
    from kinit_cli.weights.theory import theory_for

    x = np.linspace(-1, 1, 2001)
    for name in ("glorot_uniform", "he_normal", "truncated_normal"):
        theory = theory_for(name, (30, 20))
        area = np.trapezoid(density(theory, x), x)
        assert area == pytest.approx(1.0, abs=0.01), name


def test_saved_models_are_read_without_running_initializers(trained_run, write, tmp_path):
    from kinit_cli.model.sources import prepare
    from tests.conftest import MNIST_LIKE

    fast = sources.read(str(trained_run / "model.keras"))
    assert fast.stored is not None  # read from model.weights.h5, not rebuilt by load_model
    model = prepare(write("c.yaml", MNIST_LIKE)).built.model
    model.save(tmp_path / "plugin.keras")
    read = sources.read(str(tmp_path / "plugin.keras"))
    assert read.stored is not None and [w.path for w in read.weights] == [
        "simple_dense/kernel",
        "simple_dense/bias",
        "dense/kernel",
        "dense/bias",
    ]
    for w, v in zip(read.weights, model.weights, strict=True):
        np.testing.assert_array_equal(read.array(w.variable), v.numpy())


def test_check_on_a_run_judges_its_initial_weights(runner, trained_run, tmp_path):
    """Trained weights are not the initializer's draws: the run's initial weights are,
    rebuilt from its config and seed and proven by weights-init.json's SHA-256."""
    result = runner.invoke(cli, ["inspect-weights", str(trained_run), "--check", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [v["provenance"] for v in doc["variables"]] == [
        {"kind": "trained", "detail": "2 epochs"}
    ] * 6
    assert [(c["path"], c["status"]) for c in doc["check"]] == [(p, "PASS") for p in DIGITS_PATHS]
    initial = json.loads((trained_run / "weights-init.json").read_text())["variables"]
    # Observed: the initial values' statistics, not the trained ones'.
    assert doc["check"][0]["observed"]["std"] == pytest.approx(initial[0]["std"], rel=1e-6)
    assert doc["check_summary"] == {
        "pass": 6,
        "warn": 0,
        "fail": 0,
        "loaded": 0,
        "not_checkable": 0,
    }
    assert doc["check_of"] == (
        "the run's initial weights, rebuilt from its config and seed (their SHA-256 as in "
        "weights-init.json)"
    )
    table = runner.invoke(cli, ["inspect-weights", str(trained_run), "--check"])
    assert table.stdout.rstrip().splitlines()[-1] == "6 pass, 0 warn, 0 fail, 0 not checkable"

    # A run whose recorded initial values are not what its config rebuilds is not judged.
    copy = tmp_path / "copy"
    shutil.copytree(trained_run, copy)
    init = json.loads((copy / "weights-init.json").read_text())
    init["variables"][0]["sha256"] = "0" * 64
    (copy / "weights-init.json").write_text(json.dumps(init))
    doc = inspect_json(runner, copy, "--check")
    first = doc["check"][0]
    assert (first["status"], first["reasons"]) == (
        "NOT CHECKABLE",
        [
            "the initial values rebuilt from the run's config and seed differ from "
            "weights-init.json (SHA-256), so they are not the run's"
        ],
    )
    assert doc["check_summary"]["not_checkable"] == 1 and doc["check_summary"]["pass"] == 5


def test_check_compares_loaded_variables_with_their_source(runner, write, trained_run):
    path = transfer_config(write, trained_run, "  layers: [dense, dense_1]")
    doc = inspect_json(runner, path, "--check")
    statuses = {c["path"]: (c["status"], c["reasons"]) for c in doc["check"]}
    source = f"{trained_run}/model.keras"
    assert statuses["dense/kernel"] == (
        "LOADED",
        [f"identical to its source {source}:dense/kernel"],
    )
    assert statuses["dense_1/bias"][0] == "LOADED"
    assert statuses["dense_2/kernel"][0] == "PASS"  # fresh: held to its theory
    assert doc["check_summary"] == {
        "pass": 2,
        "warn": 0,
        "fail": 0,
        "loaded": 4,
        "not_checkable": 0,
    }
    kinds = {v["path"]: v["provenance"] for v in doc["variables"]}
    assert kinds["dense/kernel"] == {"kind": "loaded", "detail": f"{source}:dense/kernel"}
    assert kinds["dense_2/kernel"] == {"kind": "initializer", "detail": ""}


def test_check_on_a_checkpoint_is_not_against_theory(runner, trained_run):
    checkpoint = trained_run / "backup" / "epoch-00002.weights.h5"
    result = runner.invoke(cli, ["inspect-weights", str(checkpoint), "--check", "--json"])
    assert result.exit_code == 0, result.output
    check = json.loads(result.stdout)["check"]
    assert {c["status"] for c in check} == {"NOT CHECKABLE"}
    assert check[0]["reasons"] == [
        "checkpoint values (after training): an initializer's theory describes fresh values only"
    ]


def _duplicate_message(paths: str, initializer: str, held: str = "hold identical values") -> str:
    return (
        f"{paths} {held} (made by {initializer}). Most likely one initializer instance was "
        "given to several layers: Keras 3 seeds an instance once, so every variable it fills "
        "gets the same draws. Give each layer its own initializer (or its own seed); if a "
        "layer was copied with its weights, initialize the copy anew."
    )


def test_one_initializer_instance_in_two_layers_is_flagged(runner, tmp_path):
    """The classic silent bug, in a plain Keras script: both kernels get the same draws."""
    init = keras.initializers.RandomNormal(stddev=0.1)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            # Named: Keras numbers unnamed layers process-wide, whatever ran before.
            keras.layers.Dense(8, kernel_initializer=init, name="dense"),
            keras.layers.Dense(8, kernel_initializer=init, name="dense_1"),
            keras.layers.Dense(8, name="dense_2"),
        ]
    )
    path = tmp_path / "twins.keras"
    model.save(path)
    doc = inspect_json(runner, path)
    assert doc["duplicates"] == [
        {
            "paths": ["dense/kernel", "dense_1/kernel"],
            "message": _duplicate_message("dense/kernel and dense_1/kernel", "RandomNormal"),
        }
    ]
    table = runner.invoke(cli, ["inspect-weights", str(path)], env={"COLUMNS": "400"})
    assert "warning: " + _duplicate_message("dense/kernel and dense_1/kernel", "RandomNormal") in (
        table.stdout
    )


def test_real_sharing_and_constants_are_not_duplicates(runner, write):
    # One Dense applied to two inputs: one variable, used by both calls.
    doc = inspect_json(runner, CONFIGS / "functional.yaml")
    assert doc["duplicates"] == []
    assert [v["layers"] for v in doc["variables"]][:1] == [["encoder"]]
    # Two same-shape zero biases hold the same bytes: constants, expected to repeat.
    path = write(
        "z.yaml",
        "model: {input_shape: [8], layers: [{class_name: Dense, config: {units: 8}}, "
        "{class_name: Dense, config: {units: 8}}]}\n",
    )
    doc = inspect_json(runner, path)
    biases = [v["sha256"] for v in doc["variables"] if v["path"].endswith("/bias")]
    assert len(biases) == 2 and biases[0] == biases[1]
    assert doc["duplicates"] == []


TWIN_PLUGIN = """\
import tensorflow as tf


class TwinDense(tf.keras.layers.Layer):
    def __init__(self, units=8):
        super().__init__()
        self.units = units
        self.init = tf.keras.initializers.RandomNormal(stddev=0.1)

    def build(self, input_shape):
        self.a = self.add_weight(shape=(input_shape[-1], self.units), initializer=self.init)
        self.b = self.add_weight(shape=(input_shape[-1], self.units), initializer=self.init)

    def call(self, x):
        return tf.matmul(x, self.a) + tf.nn.relu(tf.matmul(x, self.b))
"""


@pytest.mark.slow
def test_train_warns_and_the_run_remembers_initial_duplicates(runner, write, tmp_path):
    write("twin.py", TWIN_PLUGIN)
    config = write(
        "t.yaml",
        """\
        seed: 2
        plugins: [twin.py]
        model:
          input_shape: [64]
          layers:
            - {class_name: TwinDense, config: {units: 8}}
            - {class_name: Dense, config: {units: 10, activation: softmax}}
        compile: {loss: sparse_categorical_crossentropy}
        """,
    )
    message = _duplicate_message("twin_dense/variable and twin_dense/variable_1", "RandomNormal")
    run = tmp_path / "run"
    result = runner.invoke(cli, ["train", str(config), "-q", "--output", str(run)])
    assert result.exit_code == 0, result.output
    assert f"warning: {message}" in result.stderr
    # Trained, the twins differ; the run's record shows how they started.
    doc = inspect_json(runner, run)
    assert doc["duplicates"] == [
        {
            "paths": ["twin_dense/variable", "twin_dense/variable_1"],
            "message": _duplicate_message(
                "twin_dense/variable and twin_dense/variable_1",
                "RandomNormal",
                "held identical values at initialization",
            ),
        }
    ]


def test_values_of_matching_variables(runner, trained_run):
    final = keras.saving.load_model(trained_run / "model.keras")
    kernel = keras.ops.convert_to_numpy(final.layers[2].kernel)  # dense_2/kernel, (64, 10)
    doc = inspect_json(runner, trained_run, "--values", "dense_2/*")
    assert sorted(doc["values"]) == ["dense_2/bias", "dense_2/kernel"]
    np.testing.assert_array_equal(np.array(doc["values"]["dense_2/kernel"], "float32"), kernel)
    for target in (trained_run, trained_run / "model.keras"):
        text = runner.invoke(
            cli, ["inspect-weights", str(target), "--values", "dense_2/kernel"]
        ).stdout
        printed = text.split("dense_2/kernel (64, 10) float32\n")[1]
        # As NumPy prints it, at the width of the output (160 columns when piped).
        assert printed == np.array2string(kernel, max_line_width=160) + "\n"
    # 8,192 values: NumPy's summary unless --full.
    summary = runner.invoke(cli, ["inspect-weights", str(trained_run), "--values", "dense/kernel"])
    assert "..." in summary.stdout.split("dense/kernel (64, 128) float32")[1]
    full = runner.invoke(
        cli, ["inspect-weights", str(trained_run), "--values", "dense/kernel", "--full"]
    )
    assert "..." not in full.stdout.split("dense/kernel (64, 128) float32")[1]
    fresh = inspect_json(runner, CONFIGS / "digits.yaml", "--values", "dense_1")
    assert sorted(fresh["values"]) == ["dense_1/bias", "dense_1/kernel"]
    assert fresh["values"]["dense_1/bias"] == [0.0] * 64


@pytest.mark.slow
def test_plot_says_where_it_went_and_draws_theory_over_fresh_values_only(
    runner, trained_run, tmp_path, monkeypatch
):
    from kinit_cli.output import plot

    drawn = {}
    real = plot.histograms

    def recording(items, path, overwrite=False, history=()):
        drawn[str(path)] = items
        real(items, path, overwrite, history)

    monkeypatch.setattr(plot, "histograms", recording)
    fresh, trained = tmp_path / "fresh.png", tmp_path / "trained.png"
    result = runner.invoke(
        cli, ["inspect-weights", str(CONFIGS / "digits.yaml"), "--plot", str(fresh)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().splitlines()[-1] == f"Histograms written to {fresh}"
    kernel = drawn[str(fresh)][0]
    assert kernel.title == "dense/kernel (64, 128)"
    assert kernel.theory.distribution == "truncated_normal"
    assert kernel.caption == kernel.theory.description
    doc = inspect_json(runner, trained_run, "--plot", str(trained))
    assert doc["plot"] == str(trained) and trained.stat().st_size > 20_000
    assert [(item.theory, item.caption) for item in drawn[str(trained)]] == [
        (None, "trained values (2 epochs): no theoretical density drawn")
    ] * 6


@pytest.mark.slow
def test_check_on_a_run_that_started_from_init_from(runner, write, trained_run, tmp_path):
    path = transfer_config(
        write, trained_run, "  layers: [dense, dense_1]\n          freeze: [dense]"
    )
    run = tmp_path / "ft"
    result = runner.invoke(
        cli,
        ["train", str(path), "-q", "--output", str(run), "--set", "data.limit=200"]
        + ["--set", "model.layers[2].config.units=10"]
        + ["--set", "compile.loss=sparse_categorical_crossentropy"],
    )
    assert result.exit_code == 0, result.output
    doc = inspect_json(runner, run, "--check")
    source = f"{trained_run}/model.keras"
    by_path = {v["path"]: v for v in doc["variables"]}
    assert by_path["dense/kernel"]["loaded_from"] == f"{source}:dense/kernel"
    assert by_path["dense/kernel"]["provenance"] == {
        "kind": "loaded",
        "detail": f"{source}:dense/kernel",
    }
    assert by_path["dense_1/kernel"]["provenance"]["kind"] == "trained"
    checks = {c["path"]: (c["status"], c["reasons"]) for c in doc["check"]}
    assert checks["dense/kernel"] == ("LOADED", [f"identical to its source {source}:dense/kernel"])
    assert checks["dense_1/kernel"] == (
        "LOADED",
        [f"started identical to its source {source}:dense_1/kernel; trained since"],
    )
    assert checks["dense_2/kernel"][0] == "PASS"  # fresh at the start: its theory applies
    assert doc["check_summary"] == {
        "pass": 2,
        "warn": 0,
        "fail": 0,
        "loaded": 4,
        "not_checkable": 0,
    }
    table = runner.invoke(cli, ["inspect-weights", str(run)], env={"COLUMNS": "200"}).stdout
    assert table.count("loaded from") == 4


# Saved files kinit cannot read, and where --plot cannot write: one clear message each.


def _tiny_model(extra=()):
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2, name="d"), *extra], name="tiny"
    )
    return model


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            "truncated",
            "zip archive truncated: 300 bytes that start as a zip archive but lack the "
            "directory at its end; was it copied or downloaded in full?",
        ),
        (bytes(range(16)) * 4, "not a zip archive: 64 bytes starting 00 01 02 03 04 05 06 07"),
        (b"", "an empty file"),
        (
            b"\x89HDF\r\n\x1a\n" + bytes(8),
            "an HDF5 file (a .weights.h5 checkpoint, or a Keras 2 .h5 model), not a .keras "
            "zip archive",
        ),
        ("no-config", "a zip archive without config.json; it holds notes.txt"),
    ],
    ids=["truncated", "random-bytes", "empty", "hdf5", "no-config"],
)
def test_an_unreadable_keras_file_says_why(runner, tmp_path, content, reason):
    import zipfile

    path = tmp_path / "m.keras"
    if content == "truncated":
        _tiny_model().save(path)
        path.write_bytes(path.read_bytes()[:300])
    elif content == "no-config":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes.txt", "hello")
    else:
        path.write_bytes(content)
    result = runner.invoke(cli, ["inspect-weights", str(path)])
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {path} is not a readable Keras model file ({reason}); a .keras file is the "
        "zip archive model.save('NAME.keras') writes\n",
    )


def test_a_lambda_layer_loads_only_with_unsafe_deserialization(runner, tmp_path, write):
    path = tmp_path / "lambda.keras"
    _tiny_model([keras.layers.Lambda(lambda x: x * 2, name="twice")]).save(path)
    refused = runner.invoke(cli, ["inspect-weights", str(path)])
    assert (refused.exit_code, refused.stderr) == (
        2,
        f"error: {path} holds a Lambda layer (Python code, which Keras will not load by "
        "default); if you trust the file, add --unsafe-deserialization\n",
    )
    loaded = runner.invoke(
        cli, ["inspect-weights", str(path), "--unsafe-deserialization", "--json"]
    )
    assert loaded.exit_code == 0, loaded.output
    assert [v["path"] for v in json.loads(loaded.stdout)["variables"]] == ["d/kernel", "d/bias"]
    assert loaded.stderr == (
        f"warning: --unsafe-deserialization: {path} holds a Lambda layer, and Keras loaded its "
        "Python code, which runs whenever the model is called\n"
    )
    # init_from never runs a file's code (train has no such flag).
    config = write(
        "from_lambda.yaml",
        f"""\
        init_from:
          source: {path}
        model:
          input_shape: [3]
          layers:
            - {{class_name: Dense, config: {{units: 2, name: d}}}}
        """,
    )
    transfer = runner.invoke(cli, ["validate", str(config)])
    assert (transfer.exit_code, transfer.stderr) == (
        2,
        f"error: {config}:2:11: init_from.source: {path} holds a Lambda layer (Python code, "
        "which Keras will not load by default), and init_from never loads a file's code: use "
        "a source whose layers are registered classes (a plugin), or a kinit run directory\n",
    )


@pytest.mark.parametrize("checkpoint", [False, True])
def test_a_run_without_its_trained_weights_says_what_is_left(runner, tmp_path, checkpoint):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(CONFIGS / "digits.yaml", run / "config.yaml")
    (run / "weights-init.json").write_text("{}")
    (run / ".kinit-run").write_text("{}")
    (run / "backup").mkdir()
    if checkpoint:
        (run / "backup" / "epoch-00001.weights.h5").write_bytes(b"")
        # A write in progress (replacing()) that the metadata does not point to.
        (run / "backup" / ".epoch-00002.weights.h5.tmp1.weights.h5").write_bytes(b"")
        meta = '{"epoch": 1, "weights": "epoch-00001.weights.h5", "history": [{"epoch": 0}]}'
        (run / "backup" / "training_metadata.json").write_text(meta)
    else:
        record = {"epochs": 2, "test": {"loss": 0.1}, "versions": {}, "model_file": "model.keras"}
        (run / "metrics.json").write_text(json.dumps({"status": "completed", **record}))
    result = runner.invoke(cli, ["inspect-weights", str(run)])
    head = f"error: {run} has neither model.keras nor model.weights.h5"
    if checkpoint:
        expected = (
            f"{head}: the run did not finish (it wrote no metrics.json); inspect its last backup "
            f"(after epoch 1) instead: kinit inspect-weights "
            f"{run / 'backup' / 'epoch-00001.weights.h5'}"
        )
    else:
        expected = (
            f"{head}, though the run completed: its trained weights are "
            "gone, and it holds no checkpoint either (it has: config.yaml, metrics.json, "
            f"weights-init.json). `kinit inspect-weights {run / 'config.yaml'}` shows the "
            "weights its config and seed build (its initial ones); "
            f"`kinit train {run / 'config.yaml'}` trains it again"
        )
    assert (result.exit_code, result.stderr) == (2, expected + "\n")


def test_plot_into_a_folder_it_cannot_write_or_onto_a_folder_is_refused(runner, tmp_path):
    config = str(CONFIGS / "digits.yaml")
    folder = tmp_path / "w.png"
    folder.mkdir()
    onto = runner.invoke(cli, ["inspect-weights", config, "--plot", str(folder), "--overwrite"])
    assert onto.exit_code == 2  # click's own refusal of a folder
    assert onto.stderr.endswith(
        f"Error: Invalid value for '--plot': File '{folder}' is a directory.\n"
    )
    # sysfs refuses new files even to root, for whom a chmod'ed folder stays writable.
    if not Path("/sys/kernel").is_dir():
        pytest.skip("no /sys here")
    denied = runner.invoke(cli, ["inspect-weights", config, "--plot", "/sys/w.png"])
    # rundir.replacing's WriteError: the file asked for, not the temporary name beside it.
    assert (denied.exit_code, denied.stderr) == (1, "error: permission denied writing /sys/w.png\n")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_plot_into_a_read_only_folder_is_refused(runner, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        result = runner.invoke(
            cli, ["inspect-weights", str(CONFIGS / "digits.yaml"), "--plot", str(folder / "w.png")]
        )
    finally:
        folder.chmod(0o700)
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: permission denied writing {folder / 'w.png'}\n",
    )
