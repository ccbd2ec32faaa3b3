"""The same config on TensorFlow, JAX and torch: each in its own process (Keras chooses its
backend once, on import), through the real command line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.conftest import DIGITS, DIGITS_PATHS, ROOT, kinit_env

BACKENDS = ("tensorflow", "jax", "torch")

# Runs the command line in this interpreter, then says which frameworks it imported.
_RUN = """
import json, sys
from kinit_cli.cli import cli
try:
    cli.main(sys.argv[1:], prog_name="kinit")
except SystemExit as exit:
    code = exit.code or 0
else:
    code = 0
loaded = sorted(m for m in ("tensorflow", "jax", "torch") if m in sys.modules)
print("KINIT-LOADED " + json.dumps(loaded), file=sys.stderr)
sys.exit(code)
"""


def kinit_loading(
    *args: str, cwd: Path | None = None
) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run `kinit ARGS` in a fresh interpreter; (the process, the frameworks it imported)."""
    done = subprocess.run(
        [sys.executable, "-c", _RUN, *args],
        capture_output=True,
        text=True,
        env=kinit_env(),
        cwd=cwd,
        timeout=600,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("KINIT-LOADED ")]
    loaded = json.loads(lines[-1].removeprefix("KINIT-LOADED ")) if lines else []
    return done, loaded


def train_on(out: Path, backend: str, *args: str) -> dict:
    done, loaded = kinit_loading(
        "train", DIGITS, "--backend", backend, "-q", "--output", str(out), "--set",
        "train.epochs=3", *args,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    if backend != "tensorflow":
        assert "tensorflow" not in loaded
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def run_on(tmp_path_factory) -> Callable[[str], tuple[Path, dict]]:
    """run_on(backend) -> (the run, its metrics): configs/digits.yaml for 3 epochs on that
    backend, trained once for the tests below that only read it."""
    runs: dict[str, tuple[Path, dict]] = {}

    def get(backend: str) -> tuple[Path, dict]:
        if backend not in runs:
            out = tmp_path_factory.mktemp(backend) / "run"
            runs[backend] = (out, train_on(out, backend))
        return runs[backend]

    return get


def final_weights(run: Path) -> dict[str, tuple]:
    variables = json.loads((run / "weights-final.json").read_text())["variables"]
    return {v["path"]: (v["mean"], v["std"], v["l2"], v["min"], v["max"]) for v in variables}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_trains_evaluates_and_inspects_without_tensorflow(run_on, backend):
    run, metrics = run_on(backend)
    assert metrics["status"] == "completed"
    assert metrics["backend"] == backend
    assert set(metrics["versions"]) == {"python", backend, "keras", "kinit"}
    assert metrics["test"]["accuracy"] > 0.9
    assert metrics["steps_per_execution"] == (8 if backend == "jax" else 1)
    assert metrics["jit_compile"] is (backend == "jax")
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["backend"] == backend
    # What the config left to the backend stays left to it: the run rebuilds on any other.
    assert saved["train"]["steps_per_execution"] is None and saved["train"]["jit_compile"] is None
    # The run directory is read back on the backend it recorded, without --backend.
    done, loaded = kinit_loading("inspect-weights", str(run), "--json")
    assert done.returncode == 0, done.stderr
    assert "tensorflow" not in loaded and backend in loaded
    document = json.loads(done.stdout)
    assert [v["path"] for v in document["variables"]] == DIGITS_PATHS
    # Weights are numbers: the run reads on another backend too.
    other = "torch" if backend == "jax" else "jax"
    done, _ = kinit_loading("inspect-weights", str(run), "--backend", other, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["variables"] == document["variables"]
    # The initial weights, drawn on this backend, match what their initializers promise.
    done, loaded = kinit_loading("inspect-weights", DIGITS, "--backend", backend, "--check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tensorflow" not in loaded
    assert done.stdout.splitlines()[-1] == "6 pass, 0 warn, 0 fail, 0 not checkable"


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_same_backend_gives_the_same_bits(run_on, tmp_path, backend):
    first = run_on(backend)[0]
    train_on(tmp_path / "b", backend)
    a, b = final_weights(first), final_weights(tmp_path / "b")
    assert list(a) == DIGITS_PATHS
    assert a == b
    history = [(run / "history.csv").read_text() for run in (first, tmp_path / "b")]
    assert history[0] == history[1]


@pytest.mark.slow
def test_the_backends_reach_the_same_accuracy_class(run_on):
    """configs/digits.yaml, 3 epochs, seed 42: the backends draw different initial weights
    and batch orders, so the figures differ; measured 0.961 (TensorFlow), 0.975 (JAX) and
    0.969 (torch). Each must be above 0.93 and within 0.04 of the others."""
    accuracy = {b: run_on(b)[1]["test"]["accuracy"] for b in BACKENDS}
    assert min(accuracy.values()) > 0.93, accuracy
    assert max(accuracy.values()) - min(accuracy.values()) <= 0.04, accuracy


@pytest.mark.slow
def test_jax_data_parallel_over_two_cpu_devices_matches_one_device(run_on, tmp_path):
    first, one = run_on("jax")
    two = train_on(
        tmp_path / "two",
        "jax",
        "--set",
        "distribute={strategy: data_parallel, devices: [cpu:0, cpu:1]}",
    )
    assert (one["strategy"], one["num_replicas"], one["devices"]) == ("default", 1, ["CPU:0"])
    assert (two["strategy"], two["num_replicas"], two["devices"]) == (
        "data_parallel",
        2,
        ["CPU:0", "CPU:1"],
    )
    # Partial batches that do not split in two are padded with weight 0: the same maths, and
    # the same accuracy (a weighted metric there, which leaves the copies out).
    assert two["test"]["accuracy"] == pytest.approx(one["test"]["accuracy"], abs=1e-6)
    assert two["train"]["accuracy"] == pytest.approx(one["train"]["accuracy"], abs=1e-6)
    w1, w2 = final_weights(first), final_weights(tmp_path / "two")
    for path in DIGITS_PATHS:
        assert w2[path] == pytest.approx(w1[path], rel=1e-3, abs=1e-5), path


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backend", "setting", "message"),
    [
        (
            "jax",
            "distribute.strategy=mirrored",
            "error: distribute.strategy mirrored is a tf.distribute strategy: it runs on "
            "backend tensorflow, not jax; on jax, data_parallel trains on several devices",
        ),
        (
            "jax",
            "distribute={strategy: data_parallel, devices: [cpu:0, cpu:1, cpu:2]}",
            "error: data_parallel splits every batch evenly across its 3 devices: "
            "train.batch_size 32 does not divide; use a multiple of 3",
        ),
        (
            "tensorflow",
            "distribute.strategy=data_parallel",
            "error: distribute.strategy data_parallel is JAX's "
            "(keras.distribution.DataParallel), not tensorflow's; use mirrored on tensorflow",
        ),
    ],
)
def test_a_strategy_the_backend_does_not_have(tmp_path, backend, setting, message):
    done, _ = kinit_loading(
        "train", DIGITS, "--backend", backend, "-q", "-o", str(tmp_path / "r"), "--set", setting
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "r").exists()


TUTORIAL_PLUGIN = """\
import tensorflow as tf
from tensorflow import keras


class Linear(keras.layers.Layer):
    def __init__(self, units=32):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units),
                                 initializer="random_normal", trainable=True)

    def call(self, inputs):
        return tf.nn.relu(tf.matmul(inputs, self.w))


class NeutralLinear(keras.layers.Layer):
    def __init__(self, units=32):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units),
                                 initializer="random_normal", trainable=True)

    def call(self, inputs):
        return keras.ops.relu(keras.ops.matmul(inputs, self.w))
"""

PLUGIN_CONFIG = """\
plugins: [layers.py]
backend: {backend}
model:
  input_shape: [64]
  layers:
    - {{class_name: {layer}, config: {{units: 16}}}}
    - {{class_name: Dense, config: {{units: 10, activation: softmax}}}}
compile: {{optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}}
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_a_plugin_with_tensorflow_ops_fails_at_validate_with_the_fix(tmp_path, backend):
    (tmp_path / "layers.py").write_text(TUTORIAL_PLUGIN)
    config = tmp_path / "c.yaml"
    config.write_text(PLUGIN_CONFIG.format(backend=backend, layer="Linear"))
    done, _ = kinit_loading("validate", str(config), cwd=tmp_path)
    assert done.returncode == 2
    plugin = tmp_path / "layers.py"
    assert done.stderr.splitlines()[:3] == [
        "error: 2 problems:",
        f"  {config}:6:20: model.layers[0].class_name: {plugin}:15: Linear.call calls "
        f"tf.nn.relu, a TensorFlow op, which backend {backend} cannot run: write "
        "keras.ops.relu (backend-neutral), or set backend: tensorflow",
        f"  {config}:6:20: model.layers[0].class_name: {plugin}:15: Linear.call calls "
        f"tf.matmul, a TensorFlow op, which backend {backend} cannot run: write "
        "keras.ops.matmul (backend-neutral), or set backend: tensorflow",
    ]
    assert "Traceback" not in done.stderr
    # The same file's backend-neutral class trains there; TensorFlow is imported only
    # because the file imports it.
    config.write_text(PLUGIN_CONFIG.format(backend=backend, layer="NeutralLinear"))
    done, _ = kinit_loading("train", str(config), "-q", "-o", str(tmp_path / "run"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["backend"] == backend and metrics["status"] == "completed"


# A TensorFlow op the source scan cannot see: reached through a module-level table.
HIDDEN_OP_PLUGIN = """\
import tensorflow as tf
from tensorflow import keras

ACTIVATIONS = {"relu": tf.nn.relu, "tanh": tf.nn.tanh}


class Block(keras.layers.Layer):
    def __init__(self, units=32, activation="relu"):
        super().__init__()
        self.units = units
        self.act = ACTIVATIONS[activation]

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units),
                                 initializer="random_normal", trainable=True)

    def call(self, inputs):
        return self.act(keras.ops.matmul(inputs, self.w))
"""


@pytest.mark.slow
def test_a_tensorflow_op_the_scan_cannot_see_gets_the_backend_hint(tmp_path):
    (tmp_path / "layers.py").write_text(HIDDEN_OP_PLUGIN)
    config = tmp_path / "c.yaml"
    config.write_text(PLUGIN_CONFIG.format(backend="jax", layer="Block"))
    done, _ = kinit_loading("validate", str(config), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    said = [line for line in done.stderr.splitlines() if not line.startswith("KINIT-LOADED")]
    words = " ".join(" ".join(said).split())  # one message, however rich wrapped it
    assert words.startswith(f"error: {config}:6:7: model.layers[0]: "), done.stderr
    assert f"applying Block 'block' failed (at {tmp_path / 'layers.py'}:18): " in words
    assert words.endswith(
        "(layers.py uses TensorFlow, whose ops backend jax cannot run: write them with "
        "keras.ops, backend-neutral, or run on backend tensorflow)"
    ), done.stderr
    assert "Traceback" not in done.stderr
    # On TensorFlow the same class is fine.
    config.write_text(PLUGIN_CONFIG.format(backend="tensorflow", layer="Block"))
    done, _ = kinit_loading("validate", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr


# TensorFlow ops that run on torch without an error: the torch tensors become NumPy arrays
# on the way in, so no gradient reaches the layer's weights.
GETATTR_OP_PLUGIN = """\
import tensorflow as tf
from tensorflow import keras


class Block(keras.layers.Layer):
    def __init__(self, units=32):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units),
                                 initializer="random_normal", trainable=True)

    def call(self, inputs):
        return keras.ops.relu(getattr(tf, "matmul")(inputs, self.w))
"""


@pytest.mark.slow
def test_weights_a_tensorflow_op_cuts_off_from_the_gradients_fail_the_run(tmp_path):
    (tmp_path / "layers.py").write_text(GETATTR_OP_PLUGIN)
    config = tmp_path / "c.yaml"
    config.write_text(PLUGIN_CONFIG.format(backend="torch", layer="Block"))
    run = tmp_path / "run"
    done, _ = kinit_loading("train", str(config), "-q", "-o", str(run), "--set", "train.epochs=1")
    assert done.returncode == 1, done.stderr
    message = (
        f"{tmp_path / 'layers.py'}: training on backend torch got no gradients for the "
        "weights of Block 'block' (c/block/variable), so they would never train: layers.py "
        "uses TensorFlow, whose ops backend torch cannot run: write them with keras.ops, "
        "backend-neutral, or run on backend tensorflow (its ops turn the backend's tensors "
        "into NumPy arrays, which gradients do not pass through)"
    )
    said = [line for line in done.stderr.splitlines() if not line.startswith("KINIT-LOADED")]
    assert f"error: {message}" in " ".join(" ".join(said).split()), done.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "failed" and metrics["error"] == message
    # `from tensorflow import matmul` binds TensorFlow too: the hint on jax.
    (tmp_path / "layers.py").write_text(
        GETATTR_OP_PLUGIN.replace(
            "import tensorflow as tf", "from tensorflow import matmul"
        ).replace('getattr(tf, "matmul")', "matmul")
    )
    config.write_text(PLUGIN_CONFIG.format(backend="jax", layer="Block"))
    done, _ = kinit_loading("validate", str(config), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    said = [line for line in done.stderr.splitlines() if not line.startswith("KINIT-LOADED")]
    assert " ".join(" ".join(said).split()).endswith(
        "(layers.py uses TensorFlow, whose ops backend jax cannot run: write them with "
        "keras.ops, backend-neutral, or run on backend tensorflow)"
    ), done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_builtin_pack_and_tutorial_classes_build_and_train(tmp_path, backend):
    """The pack's SimpleDense and ExampleRandomNormal, configs/plugin.yaml's plugin (a
    function initializer and activation), and the Keras training guide's CustomMSE loss and
    MyLRSchedule as the guide writes them (tests/tutorials/training_guide.py, keras.ops).
    The schedule divides a float by TensorFlow's int64 step, which TensorFlow refuses
    (tests/test_tutorials.py); on JAX and torch it runs, so it is tried there."""
    rate = (
        "0.5"
        if backend == "tensorflow"
        else "{class_name: MyLRSchedule, config: {initial_learning_rate: 0.5}}"
    )
    plugins = [
        ROOT / "configs" / "plugins" / "my_plugin.py",
        ROOT / "tests/tutorials/training_guide.py",
    ]
    (tmp_path / "c.yaml").write_text(
        textwrap.dedent(
            f"""\
            plugins: [{plugins[0]}, {plugins[1]}]
            model:
              input_shape: [64]
              layers:
                - class_name: SimpleDense
                  config:
                    units: 32
                    kernel_initializer: {{class_name: ExampleRandomNormal, config: {{stddev: 0.05}}}}
                - {{class_name: Dense, config: {{units: 32, activation: scaled_tanh,
                    kernel_initializer: {{class_name: ScaledUniform, config: {{scale: 1.5}}}}}}}}
                - {{class_name: Dense, config: {{units: 10, activation: softmax}}}}
            compile:
              optimizer: {{class_name: SGD, config: {{learning_rate: {rate}}}}}
              loss: {{class_name: CustomMSE, config: {{regularization_factor: 0.1}}}}
              metrics: [accuracy]
            train: {{epochs: 2}}
            """
        )
    )
    done, _ = kinit_loading(
        "train", "c.yaml", "--backend", backend, "-q", "-o", str(tmp_path / "run"), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (metrics["backend"], metrics["status"]) == (backend, "completed")
    # The guide's schedule divides the rate by the step: slow, but learning.
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    losses = [float(row.split(",")[history[0].split(",").index("loss")]) for row in history[1:]]
    assert len(losses) == 2 and losses[1] < losses[0], history
    variables = json.loads((tmp_path / "run" / "weights-final.json").read_text())["variables"]
    assert [(v["path"], v["shape"]) for v in variables] == [
        ("simple_dense/kernel", [64, 32]),
        ("simple_dense/bias", [32]),
        ("dense/kernel", [32, 32]),
        ("dense/bias", [32]),
        ("dense_1/kernel", [32, 10]),
        ("dense_1/bias", [10]),
    ]


@pytest.mark.slow
def test_validate_and_list_honour_the_backend(tmp_path):
    done, loaded = kinit_loading("validate", DIGITS, "--backend", "torch", "--print-config")
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    assert resolved["backend"] == "torch"
    assert resolved["train"]["steps_per_execution"] is None  # the backend's: 1 on torch
    assert "torch" in loaded and "tensorflow" not in loaded
    done, _ = kinit_loading(
        "validate", DIGITS, "--backend", "torch", "--set", "train.steps_per_execution=8"
    )
    assert done.returncode == 2
    assert done.stderr.startswith(
        "error: --set train.steps_per_execution=8: train.steps_per_execution: must be 1 on "
        "backend torch (Keras's torch trainer runs one step per call), got 8"
    ), done.stderr
    done, _ = kinit_loading("validate", DIGITS, "--backend", "jax")
    assert done.returncode == 0, done.stderr
    words = " ".join(done.stdout.split())  # as rich may have wrapped the line
    assert words.startswith(f"{DIGITS}: valid on backend jax Model "), done.stdout
    done, loaded = kinit_loading("list-initializers", "--backend", "jax", "--json")
    assert done.returncode == 0, done.stderr
    assert "jax" in loaded and "tensorflow" not in loaded
    assert "GlorotUniform" in [item["name"] for item in json.loads(done.stdout)]


@pytest.mark.slow
def test_a_layer_name_is_refused_only_on_the_backend_that_cannot_train_it(tmp_path):
    config = tmp_path / "names.yaml"
    config.write_text(
        "model:\n"
        "  input_shape: [64]\n"
        "  layers:\n"
        "    - {class_name: Dense, config: {units: 8, name: my dense}}\n"
        "    - {class_name: Dense, config: {units: 10, name: out.put}}\n"
        "compile: {loss: sparse_categorical_crossentropy}\n"
    )
    done, _ = kinit_loading("validate", str(config), "--backend", "jax")
    assert done.returncode == 0, done.stderr
    done, _ = kinit_loading("validate", str(config), "--backend", "torch")
    assert done.returncode == 2
    said = [line for line in done.stderr.splitlines() if not line.startswith("KINIT-LOADED")]
    assert said == [
        f"error: {config}:5:53: model.layers[1].config.name: 'out.put' is not a layer name "
        "backend torch can train: no '.' (torch's rule for the keys of a layer's weights); "
        "rename it (backends tensorflow and jax take it as it is)"
    ]


def test_an_unknown_backend_is_a_config_error_with_a_suggestion(write):
    from kinit_cli.config import source
    from kinit_cli.config.schema import check

    path = write(
        "c.yaml", "backend: jaxx\nmodel: {input_shape: [3], layers: [{class_name: Dense}]}\n"
    )
    _, problems = check(source.load(path))
    assert [(p.path, p.line, p.message) for p in problems] == [
        ("backend", 1, "expected one of tensorflow, jax, torch, got 'jaxx'. Did you mean 'jax'?")
    ]
