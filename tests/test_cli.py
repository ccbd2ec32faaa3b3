"""The command line: output, exit statuses, no tracebacks, and no TensorFlow for --help."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from kinit_cli.cli import cli
from tests.conftest import KINIT, ROOT

CONFIGS = ROOT / "configs"


def test_validate_prints_layers_params_and_initializers(runner):
    result = runner.invoke(cli, ["validate", str(CONFIGS / "mnist.yaml")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    # The path wraps with the checkout's length: compared without the line breaks.
    assert "".join(f"{CONFIGS / 'mnist.yaml'}: valid".split()) in "".join(out.split())
    for text in (
        "simple_dense",
        "SimpleDense",
        "(None, 512)",
        "401,920",
        "(None, 10)",
        "5,130",
        "simple_dense/kernel",
        "(784, 512)",
        "ExampleRandomNormal(mean=0.0, stddev=0.05)",
        "dense/kernel",
        "GlorotUniform()",
        "Zeros()",
        "Total params: 407,050  (trainable: 407,050, non-trainable: 0)",
    ):
        assert text in out, text


def test_validate_shows_shared_layers_and_plugin_files(runner):
    result = runner.invoke(cli, ["validate", str(CONFIGS / "functional.yaml")])
    assert result.exit_code == 0, result.output
    assert "encoder, encoder_right" in result.stdout
    assert "encoder at encoder, encoder_right" in result.stdout
    result = runner.invoke(cli, ["validate", str(CONFIGS / "plugin.yaml")])
    assert result.exit_code == 0, result.output
    assert "plugins loaded: plugins/my_plugin.py" in result.stdout
    assert "ScaledUniform(scale=1.5)" in result.stdout


def test_print_config_applies_overrides_and_defaults(runner):
    result = runner.invoke(
        cli,
        [
            "validate",
            str(CONFIGS / "mnist.yaml"),
            "--print-config",
            "--set",
            "train.epochs=1",
            "--set",
            "compile.optimizer.config.learning_rate=1e-2",
        ],
    )
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.stdout)
    assert printed["backend"] == "tensorflow"
    assert printed["train"] == {
        "epochs": 1,
        "batch_size": 128,
        "steps_per_execution": None,  # the backend's (8 on tensorflow), where it is used
        "jit_compile": None,
        "precision": "float32",
        "callbacks": [],
        "allow_no_trainable_weights": False,
        "weight_history": False,
    }
    assert printed["compile"]["optimizer"] == {
        "class_name": "rmsprop",
        "config": {"learning_rate": 0.01},
    }
    assert printed["plugins"] == [] and printed["name"] == "mnist-mlp"


def test_invalid_config_exits_2_with_every_problem_and_no_traceback(runner, write):
    path = write(
        "bad.yaml",
        """\
        model:
          input_shape: [784]
          layers:
            - class_name: SimpleDense
              config: {units: 8, kernel_initializer: {class_name: ExampleRandomNormal, config: {stddev: abc}}}
            - {class_name: Dense, config: {units: 10, activaton: softmax}}
        compile: {optimizer: {class_name: rmsprop, config: {learning_rate: 0.001}}}
        """,
    )
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: 2 problems:",
        f"  {path}:5:97: model.layers[0].config.kernel_initializer.config.stddev: expected a "
        "number, got 'abc'",
        f"  {path}:6:47: model.layers[1].config.activaton: unknown argument 'activaton' for "
        "Dense. Did you mean 'activation'? Accepted parameters: units, activation, use_bias, "
        "kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer, "
        "activity_regularizer, kernel_constraint, bias_constraint, lora_rank, lora_alpha, "
        "quantization_config, trainable, dtype, autocast, name, input_dim, input_shape.",
    ]
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epochs=abc", "train.epochs: expected an integer, got 'abc'"),
        (
            "model.layers[0].class_name=Dens",
            "model.layers[0].class_name: unknown layer 'Dens'. Did you mean 'Dense'? See "
            "`kinit list-layers` for every layer kinit knows (Keras built-ins and loaded "
            "plugins).",
        ),
        # The file's own layer and metric list had positions: replaced, they point at --set.
        (
            "model.layers[0]={class_name: Dens}",
            "model.layers[0].class_name: unknown layer 'Dens'. Did you mean 'Dense'? See "
            "`kinit list-layers` for every layer kinit knows (Keras built-ins and loaded "
            "plugins).",
        ),
        (
            "compile.optimizer=adamm",
            "compile.optimizer: unknown optimizer 'adamm'. Did you mean 'Adam' or 'Nadam' or "
            "'AdamW'? See `kinit list-optimizers` for every optimizer kinit knows (Keras "
            "built-ins and loaded plugins).",
        ),
        (
            "compile.metrics=[acuracy]",
            "compile.metrics[0]: unknown metric 'acuracy'. Did you mean 'Accuracy' or "
            "'BinaryAccuracy' or 'binary_accuracy'? See `kinit list-metrics` for every metric "
            "kinit knows (Keras built-ins and loaded plugins).",
        ),
    ],
)
def test_problems_from_set_point_at_the_set(runner, write, override, message):
    path = write(
        "c.yaml",
        """\
        model:
          input_shape: [3]
          layers:
            - {class_name: Dense, config: {units: 2}}
        compile: {optimizer: adam, metrics: [accuracy]}
        """,
    )
    result = runner.invoke(cli, ["validate", str(path), "--set", override])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: --set {override}: {message}"


def test_debug_lets_the_exception_through(runner, write):
    path = write("bad.yaml", "model: {input_shape: [3], layers: [{class_name: Nope}]}\n")
    result = runner.invoke(cli, ["validate", str(path), "--debug"])
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "ConfigError"


def test_failing_plugin_is_named(runner, write):
    plugin = write("exploding.py", "import nonexistent_dependency_xyz\n")
    path = write(
        "c.yaml",
        "plugins: [exploding.py]\nmodel: {input_shape: [3], layers: [{class_name: Dense, config: {units: 1}}]}\n",
    )
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {plugin}:1: plugin 'exploding.py' failed to import: ModuleNotFoundError: "
        "No module named "
        "'nonexistent_dependency_xyz'; if it is a library, install it: pip install "
        "nonexistent-dependency-xyz (run with --debug for the traceback)"
    )


def test_list_initializers_table_and_detail(runner):
    result = runner.invoke(cli, ["list-initializers"])
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[1].strip(): line
        for line in result.stdout.splitlines()
        if line.startswith("│") and line.split("│")[1].strip()
    }
    assert "glorot_uniform" in rows["GlorotUniform"] and "seed=None" in rows["GlorotUniform"]
    assert "kinit (built-in)" in rows["ExampleRandomNormal"]
    assert "mean=0.0," in rows["ExampleRandomNormal"]
    detail = runner.invoke(cli, ["list-initializers", "HE_NORMAL"])
    assert detail.exit_code == 0
    assert detail.stdout.splitlines()[:2] == [
        "HeNormal  (initializer, keras)",
        "Name in configs: keras>HeNormal; aliases: he_normal",
    ]


def test_list_json_is_one_document(runner):
    result = runner.invoke(cli, ["list-optimizers", "--json"])
    items = {item["name"]: item for item in json.loads(result.stdout)}
    assert items["RMSprop"]["parameters"][0] == {
        "name": "learning_rate",
        "required": False,
        "default": 0.001,
    }
    assert items["Adam"]["source"] == "keras"
    layers = json.loads(runner.invoke(cli, ["list-layers", "--json"]).stdout)
    simple = next(i for i in layers if i["name"] == "SimpleDense")
    assert simple["qualified_name"] == "kinit>SimpleDense"
    assert simple["parameters"][0] == {"name": "units", "required": False, "default": 32}


def test_list_with_a_plugin_file_and_an_unknown_name(runner):
    plugin = str(CONFIGS / "plugins" / "my_plugin.py")
    result = runner.invoke(cli, ["list-activations", "--plugin", plugin, "--json"])
    names = {i["name"]: i for i in json.loads(result.stdout)}
    assert names["scaled_tanh"]["source"].startswith("plugin ")
    assert names["scaled_tanh"]["source"].endswith("my_plugin.py")
    result = runner.invoke(cli, ["list-layers", "Dens"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: unknown layer 'Dens'. Did you mean 'Dense'")


def _run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        args, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, **kwargs
    )


@pytest.mark.slow
def test_installed_script_validates_and_fails_cleanly(tmp_path):
    ok = _run(str(KINIT), "validate", "configs/functional.yaml")
    assert ok.returncode == 0, ok.stderr
    assert "Total params: 858" in ok.stdout
    assert ok.stderr == ""  # TensorFlow's native start-up logs stay hidden
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: !!python/object/apply:os.system ['echo hi']\n")
    failed = _run(str(KINIT), "validate", str(bad))
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert failed.stderr.startswith(f"error: {bad}:1:8: invalid YAML: the tag ")
    version = _run(sys.executable, "-m", "kinit_cli", "--version")
    assert version.stdout.startswith("kinit, version ")


@pytest.mark.slow
def test_debug_shows_the_traceback_in_a_real_process(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [\n")
    result = _run(str(KINIT), "--debug", "validate", str(bad))
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "kinit_cli.errors.ConfigError" in result.stderr


@pytest.mark.slow
def test_help_never_imports_tensorflow():
    commands = sorted(cli.commands)
    probe = (
        "import sys\n"
        "from kinit_cli.cli import cli\n"
        f"for args in [['--help'], ['--version']] + [[c, '--help'] for c in {commands!r}]:\n"
        "    try:\n"
        "        cli.main(args, prog_name='kinit')\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, (args, exc.code)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    result = _run(sys.executable, "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert "list-initializers" in commands and "validate" in commands
    timing = _run(sys.executable, "-X", "importtime", "-m", "kinit_cli", "--help")
    assert "Usage: kinit" in timing.stdout
    assert not [line for line in timing.stderr.splitlines() if line.endswith("| tensorflow")]
