"""Model building: Sequential and functional forms, shared layers, weights at build time."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kinit_cli.errors import ConfigError
from kinit_cli.model.sources import prepare
from tests.conftest import MNIST_LIKE

FUNCTIONAL = """\
name: two-towers
model:
  inputs:
    - {name: left, shape: [6]}
    - {name: right, shape: [6]}
  layers:
    - {name: encoder, class_name: Dense, config: {units: 4, kernel_initializer: ones}, inputs: left}
    - {name: encoder_right, shares: encoder, inputs: right}
    - {name: merged, class_name: Concatenate, inputs: [encoder, encoder_right]}
    - {name: head, class_name: Dense, config: {units: 2}, inputs: merged}
    - {name: aux, class_name: Dense, config: {units: 1}, inputs: encoder_right}
  outputs: [head, aux]
"""


def test_sequential_weights_exist_before_compile_with_their_initializers(write):
    built = prepare(write("c.yaml", MNIST_LIKE)).built
    assert built.model.built and getattr(built.model, "optimizer", None) is None
    assert [(w.path, w.shape) for w in built.weights] == [
        ("simple_dense/kernel", (8, 4)),
        ("simple_dense/bias", (4,)),
        ("dense/kernel", (4, 3)),
        ("dense/bias", (3,)),
    ]
    assert [w.initializer["class_name"] for w in built.weights] == [
        "kinit>ExampleRandomNormal",
        "Zeros",
        "GlorotUniform",
        "Zeros",
    ]
    assert built.weights[0].initializer["config"] == {"mean": 0.0, "stddev": 0.05}
    assert [(i.name, i.output_shapes, i.params) for i in built.layers] == [
        ("simple_dense", [(None, 4)], 36),
        ("dense", [(None, 3)], 15),
    ]
    assert built.trainable_params == 51 and built.non_trainable_params == 0


def test_functional_model_shares_one_set_of_variables(write):
    built = prepare(write("f.yaml", FUNCTIONAL)).built
    model = built.model
    assert [t.shape for t in model.inputs] == [(None, 6), (None, 6)]
    assert [tuple(t.shape) for t in model.outputs] == [(None, 2), (None, 1)]
    encoder = model.get_layer("encoder")
    assert [w.path for w in built.weights].count("encoder/kernel") == 1
    info = {i.name: i for i in built.layers}
    assert info["encoder"].calls == ["encoder", "encoder_right"]
    assert info["encoder"].output_shapes == [(None, 4), (None, 4)]
    # Same variables on both paths: ones kernel, zero bias -> each unit is the input's sum.
    left, right = np.ones((1, 6), "float32"), 2 * np.ones((1, 6), "float32")
    encoded = keras.Model(model.inputs, [model.get_layer("merged").output])([left, right])
    assert keras.ops.convert_to_numpy(encoded).tolist() == [[6.0] * 4 + [12.0] * 4]
    assert len(encoder.weights) == 2 and built.trainable_params == 4 * 6 + 4 + 8 * 2 + 2 + 4 + 1


def test_layer_creating_weights_in_init(write):
    built = prepare(
        write(
            "l.yaml",
            """\
        model:
          input_shape: [5]
          layers: [{class_name: Linear, config: {units: 2, input_dim: 5}}]
        """,
        )
    ).built
    assert [(w.path, w.shape, w.initializer["class_name"]) for w in built.weights] == [
        ("linear/kernel", (5, 2), "RandomNormal"),
        ("linear/bias", (2,), "Zeros"),
    ]


def test_shape_errors_point_at_the_layer(write):
    path = write(
        "bad.yaml",
        """\
        model:
          input_shape: [5]
          layers:
            - {class_name: Dense, config: {units: 3}}
            - {class_name: Reshape, config: {target_shape: [4]}}
        """,
    )
    with pytest.raises(ConfigError) as info:
        prepare(path)
    (problem,) = info.value.problems
    assert (problem.line, problem.path) == (5, "model.layers[1]")
    assert problem.message == (
        "applying Reshape 'reshape' failed: The total size of the tensor must be unchanged. "
        "Received: input_shape=(3,), target_shape=(4,)"
    )


def test_all_name_problems_across_sections_at_once(write):
    path = write(
        "bad.yaml",
        """\
        model:
          input_shape: [5]
          layers:
            - {class_name: Dens, config: {units: 3}}
            - {class_name: Dense, config: {units: 2, kernel_initializer: {class_name: GlorotUniform, config: {sead: 1}}}}
        compile: {optimizer: adamm, loss: mse}
        """,
    )
    with pytest.raises(ConfigError) as info:
        prepare(path)
    assert [(p.line, p.path) for p in info.value.problems] == [
        (4, "model.layers[0].class_name"),
        (5, "model.layers[1].config.kernel_initializer.config.sead"),
        (6, "compile.optimizer"),
    ]
    # A structural problem is reported first, alone, before plugins and Keras load
    # (tests/config/test_config_limits.py checks that TensorFlow stays unimported).
    path.write_text(path.read_text() + "train: {epochs: zero}\n")
    with pytest.raises(ConfigError) as info:
        prepare(path)
    assert [(p.line, p.path) for p in info.value.problems] == [(7, "train.epochs")]


COUNTING_LAYER = """\
import tensorflow as tf


class Counted(tf.keras.layers.Layer):
    calls = 0

    def call(self, inputs):
        Counted.calls += 1
        return inputs * 1.0


class Fails(tf.keras.layers.Layer):
    def call(self, inputs):
        raise ValueError("this layer wants images")
"""


def test_a_sequential_model_calls_each_layer_a_fixed_number_of_times_however_deep(
    write, forget_plugins
):
    """Built once when every layer is in, as keras.Sequential([...]) builds: adding the
    layers one by one called every layer above again at each step (quadratic: 30 s at
    400 layers); now twice the layers make twice the calls."""
    write("counted.py", COUNTING_LAYER)
    calls = []
    for depth in (30, 60):
        layers = "\n".join("    - {class_name: Counted}" for _ in range(depth))
        config = f"plugins: [counted.py]\nmodel:\n  input_shape: [4]\n  layers:\n{layers}\n"
        model = prepare(write(f"deep{depth}.yaml", config)).built.model
        assert (type(model).__name__, len(model.layers)) == ("Sequential", depth)
        counted = type(model.layers[0])
        calls.append(counted.calls - sum(calls))
    assert calls[1] == 2 * calls[0]


@pytest.mark.parametrize(
    ("layer", "index", "message"),
    [
        ("{class_name: Fails}", 2, "applying Fails 'fails' failed"),
        (
            "{class_name: Conv2D, config: {filters: 2, kernel_size: 3}}",
            2,
            "applying Conv2D 'conv2d' failed",
        ),
    ],
)
def test_the_layer_that_fails_in_a_deep_sequential_is_named(
    write, forget_plugins, layer, index, message
):
    write("counted.py", COUNTING_LAYER)
    path = write(
        "bad.yaml",
        f"""\
        plugins: [counted.py]
        model:
          input_shape: [4]
          layers:
            - {{class_name: Dense, config: {{units: 4}}}}
            - {{class_name: Dense, config: {{units: 4}}}}
            - {layer}
            - {{class_name: Dense, config: {{units: 4}}}}
        """,
    )
    with pytest.raises(ConfigError) as info:
        prepare(path)
    (problem,) = info.value.problems
    assert problem.path == f"model.layers[{index}]"
    assert problem.message.startswith(message)
