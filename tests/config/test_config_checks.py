"""validate refuses what train cannot run: counts past TensorFlow's 32-bit integers, layer
names the chosen backend cannot train; and warns about layers that lead to no output."""

from __future__ import annotations

import pytest

from kinit_cli.cli import cli
from kinit_cli.config import schema
from kinit_cli.config import source as config
from kinit_cli.errors import ConfigError
from kinit_cli.runtime import backend
from tests.conftest import DIGITS, ROOT

MODEL = "model: {input_shape: [3], layers: [{class_name: Dense}]}\n"
BOUND = 2**31 - 1


def problems_of(overrides: tuple[str, ...]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        cfg = config.loads(MODEL, "c.yaml")
        config.apply_overrides(cfg, overrides)
        schema.validate(cfg)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    "key", ["train.epochs", "train.batch_size", "train.steps_per_execution", "data.limit"]
)
@pytest.mark.parametrize("value", [2**31, 2**63])
def test_counts_past_tensorflows_32_bit_integers_are_refused(key, value):
    assert problems_of((f"{key}={value}",)) == [
        f"--set {key}={value}: {key}: expected an integer from 1 to {BOUND}, got {value}"
    ]


@pytest.mark.parametrize(
    "key", ["train.epochs", "train.batch_size", "train.steps_per_execution", "data.limit"]
)
def test_the_largest_count_is_taken(key):
    cfg = config.loads(MODEL, "c.yaml")
    config.apply_overrides(cfg, (f"{key}={BOUND}",))
    section, name = key.split(".")
    assert schema.validate(cfg)[section][name] == BOUND


@pytest.mark.parametrize("value", [".inf", "1.0e+300"])
def test_a_timeout_past_the_bound_is_refused(value):
    got = float(value.replace(".inf", "inf"))
    assert problems_of((f"distribute.timeout={value}",)) == [
        f"--set distribute.timeout={value}: distribute.timeout: expected a number from 1 to "
        f"{BOUND}, got {got}"
    ]


def test_validate_names_the_bound(runner):
    result = runner.invoke(
        cli, ["validate", DIGITS, "--set", "train.steps_per_execution=2147483648"]
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --set train.steps_per_execution=2147483648: train.steps_per_execution: "
        f"expected an integer from 1 to {BOUND}, got 2147483648\n"
    )


# --- layer names ----------------------------------------------------------------------------

TF_RULE = (
    "is not a layer name backend tensorflow can train: ASCII letters, digits and _ . - > only "
    "(TensorFlow's rule for the name scope a layer runs in); rename it (backends jax and "
    "torch take it as it is)"
)


def test_layer_names_tensorflow_cannot_train_are_refused_at_their_key(runner, write):
    path = write(
        "names.yaml",
        """\
        model:
          input_shape: [64]
          layers:
            - {class_name: Dense, config: {units: 8, name: my dense}}
            - {class_name: Dense, config: {units: 10, name: dénse_日本}}
        compile: {loss: sparse_categorical_crossentropy}
        """,
    )
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: 2 problems:",
        f"  {path}:4:52: model.layers[0].config.name: 'my dense' {TF_RULE}",
        f"  {path}:5:53: model.layers[1].config.name: 'dénse_日本' {TF_RULE}",
    ]


def test_a_functional_layer_name_is_refused_at_its_name_key(runner, write):
    path = write(
        "functional.yaml",
        """\
        model:
          inputs: [{name: my input, shape: [64]}]
          layers:
            - name: hidden layer
              class_name: Dense
              config: {units: 10}
              inputs: my input
          outputs: hidden layer
        compile: {loss: sparse_categorical_crossentropy}
        """,
    )
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    # An input's name is no name scope: TensorFlow takes 'my input'.
    assert result.stderr == (
        f"error: {path}:4:13: model.layers[0].name: 'hidden layer' {TF_RULE}\n"
    )


def test_names_tensorflow_takes_inside_a_model_pass(runner, write):
    path = write(
        "ok.yaml",
        """\
        model:
          input_shape: [64]
          layers:
            - {class_name: Dense, config: {units: 8, name: _hidden.1}}
            - {class_name: Dense, config: {units: 10, name: out>put-2}}
        compile: {loss: sparse_categorical_crossentropy}
        """,
    )
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    # Sizing the model beforehand left no name scope behind for the layers made after it.
    import keras

    layer = keras.layers.Dense(2, name="after")
    layer.build((None, 3))
    assert [w.path for w in layer.weights] == ["after/kernel", "after/bias"]


@pytest.mark.parametrize(
    ("name", "refused_by"),
    [
        ("my dense", {"tensorflow"}),
        ("dénse_日本", {"tensorflow"}),
        ("a.b", {"torch"}),
        ("_x", set()),
    ],
)
def test_each_backend_refuses_only_what_it_cannot_train(name, refused_by):
    refused = {b for b in ("tensorflow", "jax", "torch") if backend.layer_name_problem(name, b)}
    assert refused == refused_by


def test_torchs_rule_names_the_other_backends():
    assert backend.layer_name_problem("a.b", "torch") == (
        "'a.b' is not a layer name backend torch can train: no '.' (torch's rule for the keys "
        "of a layer's weights); rename it (backends tensorflow and jax take it as it is)"
    )


# --- layers that lead to no output ----------------------------------------------------------


def test_layers_nothing_uses_are_named_in_a_warning(runner, write):
    path = write(
        "unused.yaml",
        """\
        model:
          inputs: [{name: x, shape: [64]}]
          layers:
            - {name: a, class_name: Dense, config: {units: 10}, inputs: x}
            - {name: b, class_name: Dense, config: {units: 10}, inputs: x}
            - {name: c, class_name: Dense, config: {units: 10}, inputs: b}
            - {name: again, shares: a, inputs: x}
          outputs: again
        compile: {loss: sparse_categorical_crossentropy}
        """,
    )
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    # 'a' is used through 'again', which shares its layer.
    assert result.stderr == (
        "warning: model: 'b', 'c' lead to none of the model's outputs: Keras leaves them out "
        "of the model, untrained\n"
    )


def test_a_model_whose_every_layer_is_used_gets_no_warning(runner):
    result = runner.invoke(cli, ["validate", str(ROOT / "configs" / "functional.yaml")])
    assert result.exit_code == 0, result.output
    assert "lead to none" not in result.stderr
