"""Failures during training are failures: a plugin's sys.exit() or KeyboardInterrupt, a fit
that ran no step, a model with nothing to train; each recorded in metrics.json with one
message and a non-zero exit, and no terminal codes in the record."""

from __future__ import annotations

import json
import signal

import keras
import pytest

from kinit_cli.cli import cli
from kinit_cli.errors import NoStepTrained
from kinit_cli.training.plan import TrainOptions, plan
from kinit_cli.training.trainer import Trainer
from tests.conftest import DIGITS

FAST = ["--set", "data.limit=64", "--set", "train.batch_size=16"]

STOPPER = """\
import sys

import keras
from kinit_cli import register_callback


@register_callback(package="stop_test")
class Stopper(keras.callbacks.Callback):
    \"\"\"Ends at the second epoch's end, the way a script would.\"\"\"

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            {stop}
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stop", "raised"),
    [("sys.exit(0)", "SystemExit: 0"), ("raise KeyboardInterrupt", "KeyboardInterrupt")],
)
def test_a_plugin_that_exits_or_raises_keyboardinterrupt_fails_the_run(
    runner, write, tmp_path, stop, raised
):
    plugin = write("stopper.py", STOPPER.replace("{stop}", stop))
    out = tmp_path / "run"
    result = runner.invoke(
        cli,
        [
            "train",
            DIGITS,
            "--plugin",
            str(plugin),
            "--set",
            "train.epochs=3",
            "--set",
            "train.callbacks=[Stopper]",
            *FAST,
            "--output",
            str(out),
            "--json",
        ],
    )
    message = (
        f"{plugin}:13: training failed in plugin code (on_epoch_end): {raised} (plugin code "
        "stops training with self.model.stop_training = True, or fails it by raising an "
        "exception; it cannot end kinit)"
    )
    assert result.exit_code == 1
    # The first epoch's progress line (the second ended in the plugin), then one message.
    assert result.stderr.splitlines()[1:] == [f"error: {message}"]
    record = json.loads((out / "metrics.json").read_text())
    assert record == {
        "status": "failed",
        "error": message,
        "epochs": 1,
        "initial_epoch": 0,
        "seed": 42,
    }
    # Under --json the one document on stdout says how the run ended.
    assert json.loads(result.stdout) == {"run_dir": str(out), "metrics": record}


def test_a_second_ctrl_c_still_stops_at_once(tmp_path):
    """A KeyboardInterrupt after a signal was handled is the user's second Ctrl-C (the
    handler gives the next one Python's default): it is not turned into a failure."""
    trainer = Trainer(
        plan(
            DIGITS,
            ["train.epochs=3", "data.limit=64"],
            [],
            TrainOptions(output=str(tmp_path / "r")),
        )
    )
    trainer.start()

    def twice(epoch, logs):
        trainer.guard.interrupt(signal.SIGINT)
        raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            trainer.fit([keras.callbacks.LambdaCallback(on_epoch_end=twice)])
    finally:
        trainer.close()
    assert not (tmp_path / "r" / "metrics.json").exists()
    assert trainer.record is None


@pytest.mark.filterwarnings("ignore:Your input ran out of data")
def test_a_fit_that_ran_no_step_is_failed_not_completed(monkeypatch, runner, tmp_path):
    """Keras ends an epoch whose data gave no batch with a warning only (a steps_per_execution
    of 2**31 did that before it was bounded): the run is failed, not completed."""
    real = Trainer._train_data
    monkeypatch.setattr(Trainer, "_train_data", lambda self, p=None: real(self, p).take(0))
    out = tmp_path / "run"
    result = runner.invoke(
        cli, ["train", DIGITS, "--set", "train.epochs=2", *FAST, "--output", str(out), "-q"]
    )
    message = (
        "no training step ran in epochs 1 to 2 (64 training examples, batch_size 16, "
        "steps_per_execution 8): Keras ended each epoch without a batch, so nothing was "
        "trained"
    )
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert result.stderr == f"error: {message}\n"
    record = json.loads((out / "metrics.json").read_text())
    assert record == {
        "status": "failed",
        "error": message,
        "epochs": 0,
        "initial_epoch": 0,
        "seed": 42,
    }
    assert not (out / "model.keras").exists()
    assert NoStepTrained.exit_code == 1


def test_a_keras_error_is_recorded_without_terminal_codes(monkeypatch, runner, write, tmp_path):
    """Keras bolds the message of an error raised in a layer's call with ANSI codes; the
    record in metrics.json is plain text. (The layer name is let through validate here to
    reach that error: validate refuses it on TensorFlow.)"""
    from kinit_cli.model import sources

    monkeypatch.setattr(sources, "layer_names", lambda model: [])
    config = write(
        "spaced.yaml",
        """\
        seed: 1
        data: {name: digits, limit: 64}
        model:
          input_shape: [64]
          layers:
            - {class_name: Dense, config: {units: 10, activation: softmax, name: my dense}}
        compile: {loss: sparse_categorical_crossentropy}
        train: {batch_size: 16}
        """,
    )
    out = tmp_path / "run"
    result = runner.invoke(cli, ["train", str(config), "--output", str(out), "-q"])
    assert result.exit_code == 1
    error = json.loads((out / "metrics.json").read_text())["error"]
    assert error == (
        "ValueError: 'my dense' is not a valid scope name. A scope name has to match the "
        "following pattern: ^[A-Za-z0-9_.\\\\/>-]*$"
    )
    assert "\x1b" not in (out / "metrics.json").read_text()


FROZEN = """\
seed: 3
data: {name: digits, limit: 64}
model:
  input_shape: [64]
  layers:
    - {class_name: Dense, config: {units: 10, activation: softmax, trainable: false}}
compile: {loss: sparse_categorical_crossentropy}
train: {batch_size: 16}
"""


@pytest.mark.parametrize("command", ["train", "validate"])
def test_a_model_with_no_trainable_weights_is_refused(runner, write, tmp_path, command):
    config = write("frozen.yaml", FROZEN)
    out = tmp_path / "run"
    result = runner.invoke(cli, _train_or_validate(command, config, out))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {config}:4:3: model: the model has no trainable weights (650 parameters, "
        "none trainable), so training would change nothing; if that is meant, set "
        "train.allow_no_trainable_weights: true\n"
    )
    assert not out.exists()


@pytest.mark.filterwarnings("ignore:The model does not have any trainable weights")
def test_a_model_with_no_trainable_weights_trains_when_the_config_allows_it(
    runner, write, tmp_path
):
    config = write("frozen.yaml", FROZEN)
    out = tmp_path / "run"
    result = runner.invoke(
        cli,
        [
            "train",
            str(config),
            "--set",
            "train.allow_no_trainable_weights=true",
            "--output",
            str(out),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "metrics.json").read_text())["status"] == "completed"


IDENTITY = """\
data: {name: digits, limit: 64}
model:
  inputs: [{name: x, shape: [64]}]
  layers:
    - {name: d, class_name: Dense, config: {units: 10}, inputs: x}
  outputs: x
compile: {loss: mse}
"""


def _train_or_validate(command: str, config, out) -> list[str]:
    """The arguments of `kinit train CONFIG` into `out`, or of `kinit validate CONFIG`."""
    if command == "train":
        return ["train", str(config), "--output", str(out), "-q"]
    return ["validate", str(config)]


@pytest.mark.parametrize("command", ["train", "validate"])
def test_outputs_naming_an_input_is_refused_naming_the_unused_layers(
    runner, write, tmp_path, command
):
    config = write("identity.yaml", IDENTITY)
    out = tmp_path / "run"
    result = runner.invoke(cli, _train_or_validate(command, config, out))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {config}:3:3: model: the model has no trainable weights (0 parameters, none "
        "trainable) ('d' leads to none of the model's outputs), so training would change "
        "nothing; if that is meant, set train.allow_no_trainable_weights: true\n"
    )
    assert not out.exists()


def test_validate_passes_a_model_with_no_trainable_weights_the_config_allows(runner, write):
    config = write("identity.yaml", IDENTITY + "train: {allow_no_trainable_weights: true}\n")
    result = runner.invoke(cli, ["validate", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "warning: model: 'd' leads to none of the model's outputs: Keras leaves it out of the "
        "model, untrained\n"
    )
    assert "Total params: 0" in result.stdout
