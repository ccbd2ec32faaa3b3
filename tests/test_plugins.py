"""The built-in plugin pack: serialization round trips, real samples, and .keras files."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from kinit_cli.loading import load_plugins
from kinit_cli.plugins.initializers import ExampleRandomNormal
from kinit_cli.plugins.layers import Linear, SimpleDense
from kinit_cli.prepare import prepare
from kinit_cli.registry import Registry
from tests.conftest import MNIST_LIKE


@pytest.mark.parametrize(
    "obj",
    [
        ExampleRandomNormal(mean=1.0, stddev=0.2, seed=3),
        SimpleDense(units=7, activation="tanh", kernel_regularizer="l2", name="sd"),
        Linear(units=3, input_dim=4, kernel_initializer="ones", name="lin"),
    ],
    ids=["ExampleRandomNormal", "SimpleDense", "Linear"],
)
def test_get_config_from_config_round_trip(obj):
    config = keras.saving.serialize_keras_object(obj)
    assert config["registered_name"] == f"kinit>{type(obj).__name__}"
    again = keras.saving.deserialize_keras_object(config)
    assert type(again) is type(obj)
    assert again.get_config() == obj.get_config()


def test_function_initializer_round_trip_and_values():
    load_plugins([])
    cls = Registry().resolve("initializer", "unit_normal").obj
    init = cls()
    config = keras.initializers.serialize(init)
    assert config["registered_name"] == "kinit>unit_normal"
    assert type(keras.initializers.deserialize(config)) is cls
    sample = keras.ops.convert_to_numpy(init((200, 200)))
    bound = 4 / math.sqrt(sample.size)  # four standard errors of the mean
    assert abs(sample.mean()) < bound and abs(sample.std() - 1.0) < 4 / math.sqrt(2 * sample.size)


@pytest.mark.parametrize(("mean", "stddev"), [(0.0, 0.05), (2.0, 0.5)])
def test_example_random_normal_draws_the_moments_it_promises(mean, stddev):
    sample = keras.ops.convert_to_numpy(ExampleRandomNormal(mean, stddev, seed=1)((300, 400)))
    n = sample.size
    assert sample.shape == (300, 400) and sample.dtype == np.float32
    assert abs(sample.mean() - mean) < 4 * stddev / math.sqrt(n)
    assert abs(sample.std() - stddev) < 4 * stddev / math.sqrt(2 * n)


def test_simple_dense_computes_x_w_plus_b():
    layer = SimpleDense(units=2, kernel_initializer="ones", bias_initializer="ones")
    out = layer(np.array([[1.0, 2.0, 3.0]], "float32"))
    assert keras.ops.convert_to_numpy(out).tolist() == [[7.0, 7.0]]
    assert [w.path for w in layer.weights] == [f"{layer.name}/kernel", f"{layer.name}/bias"]
    assert layer.compute_output_shape((None, 3)) == (None, 2)


def test_saved_model_with_plugin_objects_loads_back(write, tmp_path):
    model = prepare(write("c.yaml", MNIST_LIKE)).built.model
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(layer).__name__ for layer in loaded.layers] == ["SimpleDense", "Dense"]
    assert type(loaded.layers[0].kernel_initializer).__name__ == "ExampleRandomNormal"
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
