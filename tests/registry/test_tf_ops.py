"""TensorFlow ops in plugin code, read from the source the way a user wrote it."""

from __future__ import annotations

import importlib.util
import sys

from kinit_cli.registry import tf_ops

PLUGIN = """\
import tensorflow as tf
import keras


def my_act(x):
    return tf.nn.relu(x)


class TFDense(keras.layers.Layer):
    def __init__(self, units=32):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal")

    def call(self, x):
        return tf.clip_by_value(tf.matmul(x, self.w), -1.0, 1.0)


class Wrap(keras.layers.Layer):
    def __init__(self, units=10):
        super().__init__()
        self.inner = TFDense(units)

    def call(self, x):
        return my_act(self.inner(x))


class Neutral(keras.layers.Layer):
    def call(self, x):
        return keras.ops.relu(x) + tf.keras.ops.abs(x)
"""


def _module(tmp_path, name="tf_ops_plugin"):
    path = tmp_path / f"{name}.py"
    path.write_text(PLUGIN)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module, str(path)


def test_ops_in_the_class_its_sub_layers_and_its_helpers_with_their_fix(tmp_path):
    module, path = _module(tmp_path)
    try:
        found = [(u.file, u.line, u.owner, u.op, u.via, u.fix) for u in tf_ops.uses(module.Wrap)]
        assert found == [
            (path, 18, "TFDense.call", "tf.clip_by_value", "Wrap", "keras.ops.clip"),
            (path, 18, "TFDense.call", "tf.matmul", "Wrap", "keras.ops.matmul"),
            (path, 6, "my_act", "tf.nn.relu", "Wrap", "keras.ops.relu"),
        ]
        direct = tf_ops.uses(module.TFDense)
        assert [(u.owner, u.op, u.via) for u in direct] == [
            ("TFDense.call", "tf.clip_by_value", None),
            ("TFDense.call", "tf.matmul", None),
        ]
        assert direct[1].message("jax", "set backend: tensorflow") == (
            f"{path}:18: TFDense.call calls tf.matmul, a TensorFlow op, which backend jax "
            "cannot run: write keras.ops.matmul (backend-neutral), or set backend: tensorflow"
        )
        # keras.ops, and tf.keras (Keras itself), run on every backend.
        assert tf_ops.uses(module.Neutral) == []
    finally:
        del sys.modules["tf_ops_plugin"]
