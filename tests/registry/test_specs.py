"""`{class_name, config}` specs -> Keras objects: argument checks and copies."""

from __future__ import annotations

import keras
import pytest

from kinit_cli.config import source as config_mod
from kinit_cli.registry.catalog import Registry
from kinit_cli.registry.plugins import load_plugins
from kinit_cli.registry.specs import FAILED, SpecBuilder


@pytest.fixture
def builder() -> SpecBuilder:
    load_plugins([])
    cfg = config_mod.loads("x: 1\n", "c.yaml")
    return SpecBuilder(Registry(), cfg)


def test_misspelled_argument_gets_the_parameter_name_and_the_accepted_list(builder):
    spec = {"class_name": "GlorotUniform", "config": {"sead": 1}}
    assert builder.build("initializer", spec, ("init",)) is FAILED
    assert [str(p) for p in builder.problems] == [
        "c.yaml: init.config.sead: unknown argument 'sead' for GlorotUniform. Did you mean "
        "'seed'? Accepted parameters: seed, input_axes, output_axes."
    ]


def test_wrong_types_are_caught_from_the_signature_defaults(builder):
    spec = {"class_name": "ExampleRandomNormal", "config": {"mean": 0.0, "stddev": "abc"}}
    assert builder.build("initializer", spec, ("k",)) is FAILED
    assert [p.message for p in builder.problems] == ["expected a number, got 'abc'"]
    assert builder.problems[0].path == "k.config.stddev"
    builder.problems.clear()
    assert (
        builder.build(
            "layer", {"class_name": "Dense", "config": {"units": 2, "use_bias": "no"}}, ("l",)
        )
        is FAILED
    )
    assert [str(p) for p in builder.problems] == [
        "c.yaml: l.config.use_bias: expected true or false, got 'no'"
    ]


def test_missing_required_and_rejected_values(builder):
    assert builder.build("layer", {"class_name": "Dense", "config": {}}, ("l",)) is FAILED
    assert (
        builder.build("layer", {"class_name": "Dense", "config": {"units": -3}}, ("m",)) is FAILED
    )
    assert [str(p) for p in builder.problems] == [
        "c.yaml: l.config: missing required argument 'units' for Dense",
        "c.yaml: m.config: Dense rejected its arguments: Received an invalid value for "
        "`units`, expected a positive integer. Received: units=-3",
    ]


def test_nested_objects_are_built_and_the_spec_is_not_changed(builder):
    spec = {
        "class_name": "Dense",
        "config": {
            "units": 3,
            "activation": "RELU",
            "kernel_initializer": {"class_name": "examplerandomnormal", "config": {"stddev": 0.2}},
            "kernel_regularizer": {"class_name": "l2", "config": {"l2": 0.01}},
            "bias_constraint": "non_neg",
        },
    }
    original = repr(spec)
    layer = builder.build("layer", spec, ("l",))
    assert builder.problems == []
    assert repr(spec) == original
    assert type(layer.kernel_initializer).__name__ == "ExampleRandomNormal"
    assert layer.kernel_initializer.stddev == 0.2
    assert layer.kernel_regularizer.l2 == pytest.approx(0.01)
    assert isinstance(layer.bias_constraint, keras.constraints.NonNeg)
    assert layer.activation is keras.activations.relu


def test_optimizer_dicts_stay_as_written(builder):
    # keras.optimizers.get rewrites the dict it is given ("Adam" -> "adam"): kinit never
    # hands it the user's dict.
    spec = {
        "class_name": "Adam",
        "config": {
            "learning_rate": {
                "class_name": "ExponentialDecay",
                "config": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5},
            }
        },
    }
    optimizer = builder.build("optimizer", spec, ("compile", "optimizer"))
    assert (
        spec["class_name"] == "Adam"
        and spec["config"]["learning_rate"]["class_name"] == "ExponentialDecay"
    )
    assert isinstance(optimizer, keras.optimizers.Adam)
    schedule = optimizer._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.ExponentialDecay)
    assert float(schedule(10)) == pytest.approx(0.05)


def test_builtin_names_pass_through_and_plugin_names_become_objects(builder):
    assert builder.build("metric", "accuracy", ("m",)) == "accuracy"
    assert builder.build("optimizer", "RMSPROP", ("o",)) == "RMSprop"
    init = builder.build("initializer", "unit_normal", ("i",))
    assert isinstance(init, keras.initializers.Initializer)
    assert builder.problems == []


def test_functions_take_no_config(builder):
    assert builder.build("activation", {"class_name": "relu", "config": {"x": 1}}, ("a",)) is FAILED
    assert [p.message for p in builder.problems] == ["relu is a function and takes no config"]
