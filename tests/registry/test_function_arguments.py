"""Arguments that take a Python function refuse config values (which are data, never code),
at their key path, at validate: found from the signature, the docstring and, for callbacks,
the `on_*` hooks."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable

import pytest

from kinit_cli.cli import cli
from kinit_cli.registry import json_schema
from kinit_cli.registry.signatures import Parameter, takes_function
from tests.conftest import DIGITS


def refusal(owner: str, key: str, got: str) -> str:
    return (
        f"expected a Python function, got {got}: {owner}'s '{key}' takes code, and a config "
        f"holds data only; pass the function from a plugin class (a subclass of {owner}, say, "
        "that gives it in its __init__)"
    )


@pytest.mark.parametrize(
    ("callback", "owner", "key", "got"),
    [
        ("{class_name: LambdaCallback, config: {on_epoch_end: print}}", "LambdaCallback",
         "on_epoch_end", "'print'"),
        ("{class_name: LearningRateScheduler, config: {schedule: 'lambda e: 0.1'}}",
         "LearningRateScheduler", "schedule", "'lambda e: 0.1'"),
        ("{class_name: LambdaCallback, config: {on_train_batch_end: 3}}", "LambdaCallback",
         "on_train_batch_end", "the number 3"),
    ],
)  # fmt: skip
def test_validate_refuses_text_for_a_callbacks_function(runner, callback, owner, key, got):
    result = runner.invoke(cli, ["validate", DIGITS, "--set", f"train.callbacks=[{callback}]"])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --set train.callbacks=[{callback}]: train.callbacks[0].config.{key}: "
        f"{refusal(owner, key, got)}\n"
    )


def test_validate_checks_the_callbacks_names_too(runner):
    result = runner.invoke(cli, ["validate", DIGITS, "--set", "train.callbacks=[EarlyStoping]"])
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: --set train.callbacks=[EarlyStoping]: train.callbacks[0]: unknown callback "
        "'EarlyStoping'. Did you mean 'EarlyStopping'?"
    )


def test_callbacks_that_take_data_pass_validate_and_write_nothing(runner, tmp_path):
    spec = f"{{class_name: CSVLogger, config: {{filename: {tmp_path / 'log.csv'}}}}}"
    result = runner.invoke(
        cli, ["validate", DIGITS, "--set", f"train.callbacks=[EarlyStopping, {spec}]"]
    )
    assert result.exit_code == 0, result.output
    assert list(tmp_path.iterdir()) == []  # checked, not made


def test_a_lambda_layers_function_as_text_is_refused_at_its_line(runner, write):
    path = write(
        "lambda.yaml",
        """\
        model:
          input_shape: [64]
          layers:
            - {class_name: Lambda, config: {function: "lambda x: x * 2"}}
            - {class_name: Dense, config: {units: 10}}
        compile: {loss: sparse_categorical_crossentropy}
        """,
    )
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {path}:4:47: model.layers[0].config.function: "
        f"{refusal('Lambda', 'function', repr('lambda x: x * 2'))}\n"
    )


def test_a_plugin_argument_annotated_or_defaulted_as_a_function(runner, write):
    plugin = write(
        "scaled.py",
        """\
        from collections.abc import Callable

        import keras
        from kinit_cli import register_layer


        def double(x):
            return x * 2


        @register_layer(package="fn_test")
        class Scaled(keras.layers.Layer):
            def __init__(self, fn: Callable[[str], str] = None, post=double, label: str = "x"):
                super().__init__()
                self.fn, self.post = fn, post

            def call(self, x):
                return self.post(x)
        """,
    )
    config = write(
        "c.yaml",
        """\
        model:
          input_shape: [64]
          layers:
            - {class_name: Scaled, config: {fn: upper, post: triple, label: y}}
            - {class_name: Dense, config: {units: 10}}
        compile: {loss: sparse_categorical_crossentropy}
        """,
    )
    result = runner.invoke(cli, ["validate", str(config), "--plugin", str(plugin)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: 2 problems:",
        f"  {config}:4:41: model.layers[0].config.fn: {refusal('Scaled', 'fn', repr('upper'))}",
        f"  {config}:4:54: model.layers[0].config.post: "
        f"{refusal('Scaled', 'post', repr('triple'))}",
    ]


def _p(annotation=inspect.Parameter.empty, default=None, name="f") -> Parameter:
    return Parameter(name, default, annotation)


@pytest.mark.parametrize(
    ("param", "doc", "callback", "expected"),
    [
        (_p(Callable), "", False, True),
        (_p("Callable[[str], str] | None"), "", False, True),
        (_p("Callable | str"), "", False, False),
        (_p(default=print), "", False, True),
        (_p(), "A function that takes an epoch index.", False, True),
        (_p(), "The function to be evaluated.", False, True),
        (_p(), "A callable.", False, True),
        (_p(), "A Python function, applied to each batch.", False, True),
        # A name, or a qualified function a class may look up by name: text may do.
        (_p(), "A function name, e.g. 'relu'.", False, False),
        (_p(), "The activation function to use.", False, False),
        # Offered among other things: text is one of them.
        (_p(default=0.9), "A float value, or a callable that returns it.", False, False),
        (_p(name="on_epoch_end"), "called at the end of every epoch.", True, True),
        (_p(name="on_epoch_end"), "", False, False),  # not a callback's hook
        (_p(name="activation"), "Activation function to use.", False, False),
    ],
)
def test_takes_function(param, doc, callback, expected):
    assert takes_function(param, doc, callback) is expected


def test_the_schema_takes_only_null_for_a_function_argument():
    configs = json_schema.generate()["$defs"]["callback.configs"]["allOf"]
    lambda_callback = next(
        b["then"]["properties"]["config"]
        for b in configs
        if re.fullmatch(b["if"]["properties"]["class_name"]["pattern"], "LambdaCallback")
    )
    assert lambda_callback["properties"]["on_epoch_end"] == {
        "type": "null",
        "description": "called at the end of every epoch.",
    }
