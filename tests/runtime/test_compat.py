"""Each private Keras or TensorFlow API that runtime/compat.py uses still exists and behaves
as compat expects, so a Keras or TensorFlow upgrade that moves one fails here first, not
deep inside a command."""

from __future__ import annotations

import sys

import keras
import numpy as np
import pytest

from kinit_cli.runtime import compat


def test_stateless_scope_declares_variables_and_keeps_their_values():
    layer = keras.layers.Dense(2, kernel_initializer="ones")
    layer.build((3,))
    with compat.stateless_scope():
        layer.kernel.assign(np.zeros((3, 2), "float32"))  # an update: not applied
        made = keras.layers.Dense(4)
        made.build((5,))
        assert [tuple(v.shape) for v in made.weights] == [(5, 4), (4,)]
    assert np.array_equal(np.asarray(layer.kernel), np.ones((3, 2)))


def test_declared_only_variables_are_never_drawn():
    drawn = []

    class Counting(keras.initializers.Zeros):
        def __call__(self, shape, dtype=None):
            drawn.append(tuple(shape))
            return super().__call__(shape, dtype)

    with compat.declared_only():
        layer = keras.layers.Dense(7, kernel_initializer=Counting(), bias_initializer=Counting())
        layer.build((3,))
        assert layer.count_params() == 3 * 7 + 7
    with keras.StatelessScope():  # its exit draws whatever Keras lists as uninitialized
        pass
    assert drawn == []


def test_declared_only_leaves_the_random_state_as_it_was():
    import random

    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator

    keras.utils.set_random_seed(3)
    expected = [random.random(), float(np.random.rand())]
    keras.utils.set_random_seed(3)
    with compat.declared_only():
        keras.layers.Dense(3).build((4,))  # draws the initializers' seeds from Python's
        np.random.rand()
        keras.random.normal((1,))  # makes Keras's global SeedGenerator
    assert global_state.get_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR) is None
    assert [random.random(), float(np.random.rand())] == expected


def test_fresh_object_names_numbers_from_scratch_and_puts_the_counter_back():
    keras.layers.Dense(1)  # so the process-wide counter is past the first name
    before = keras.layers.Dense(1).name
    with compat.fresh_object_names():
        assert [keras.layers.Dense(1).name, keras.layers.Dense(1).name] == ["dense", "dense_1"]
    after = keras.layers.Dense(1).name
    assert before != "dense"
    assert int(after.rpartition("_")[2]) == int(before.rpartition("_")[2]) + 1


def test_compute_output_spec_traces_a_call_symbolically():
    layer = keras.layers.Dense(3)
    inputs = keras.Input((5,))
    spec = compat.compute_output_spec(
        lambda x: keras.ops.matmul(x, np.ones((5, 3), "float32")), inputs
    )
    assert tuple(spec.shape) == (None, 3)
    assert not layer.built  # tracing changed no state


class _Outer(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = keras.layers.Dense(2)

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(1,), name="scale")
        self.count = self.add_weight(shape=(), name="count", trainable=False)
        self.inner.build(input_shape)

    def call(self, x):
        return self.inner(x) * self.scale


def test_own_variables_are_a_layers_trainable_then_non_trainable_without_sub_layers():
    norm = keras.layers.BatchNormalization()
    norm.build((None, 4))
    names = [v.name for v in compat.own_variables(norm)]
    assert names == ["gamma", "beta", "moving_mean", "moving_variance"]
    outer = _Outer()
    outer.build((None, 3))
    assert [v.name for v in compat.own_variables(outer)] == ["scale", "count"]


def test_tracked_layers_are_a_layers_direct_sub_layers():
    outer = _Outer()
    assert compat.tracked_layers(outer) == [outer.inner]
    assert compat.tracked_layers(keras.layers.Dense(1)) == []


def test_all_layers_are_the_model_and_every_layer_nested_in_it():
    outer = _Outer()
    model = keras.Sequential([keras.Input((3,)), outer, keras.layers.Dense(1)])
    found = compat.all_layers(model)
    assert found[0] is model
    ids = [id(layer) for layer in found]
    assert len(ids) == len(set(ids))  # each once
    assert {id(model), id(outer), id(outer.inner), id(model.layers[1])} <= set(ids)
    assert id(outer.inner) not in {id(layer) for layer in model.layers}  # nested: found here only


def test_symbolic_build_makes_the_optimizers_variables_from_one_batch():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    assert len(model.optimizer.variables) == 2  # the iteration count and learning rate
    compat.symbolic_build(model, (np.zeros((4, 3), "float32"), np.zeros((4, 2), "float32")))
    # Adam's m and v for the kernel and for the bias.
    assert len(model.optimizer.variables) == 2 + 2 * 2


def test_initial_epoch_is_where_backup_and_restore_puts_the_model(tmp_path):
    x, y = np.zeros((4, 3), "float32"), np.zeros((4, 1), "float32")

    def model():
        built = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        built.compile(optimizer="sgd", loss="mse")
        return built

    first = model()
    assert compat.initial_epoch(first) in (None, 0)
    backup = keras.callbacks.BackupAndRestore(str(tmp_path), delete_checkpoint=False)
    first.fit(x, y, epochs=2, verbose=0, callbacks=[backup])
    second = model()
    restore = keras.callbacks.BackupAndRestore(str(tmp_path), delete_checkpoint=False)
    restore.set_model(second)
    restore.on_train_begin()
    assert compat.initial_epoch(second) == 2


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("initializers", {"GlorotUniform", "glorot_uniform", "normal"}),
        ("layers", set()),  # Keras has no table of layers: resolved by attribute instead
        ("losses", {"MeanSquaredError", "mse"}),
        ("optimizers", {"adam", "sgd"}),
        ("activations", {"relu"}),
    ],
)
def test_name_table_is_kerass_table_of_names(module, names):
    table = compat.name_table(module)
    assert names <= set(table)
    if names:
        assert table[sorted(names)[0]] is not None
    assert compat.name_table("no_such_module") == {}


def test_op_determinism_is_read_from_tensorflows_private_config():
    import tensorflow as tf
    from tensorflow.python.framework import config

    was = compat.op_determinism_enabled()
    assert was is config.is_op_determinism_enabled()
    try:
        tf.config.experimental.enable_op_determinism()
        assert compat.op_determinism_enabled() is True
    finally:
        if not was:
            config.disable_op_determinism()
    assert compat.op_determinism_enabled() is was


def test_tensorflow_is_unavailable_to_keras_until_something_imports_it(monkeypatch):
    from keras.src.utils import module_utils

    compat.tensorflow_only_once_loaded()
    compat.tensorflow_only_once_loaded()  # a second call changes nothing
    lazy = module_utils.tensorflow
    assert type(lazy)._kinit_when_loaded is True
    assert lazy.available is True  # TensorFlow is loaded in this process
    monkeypatch.delitem(sys.modules, "tensorflow")
    assert lazy.available is False


def test_set_random_seed_seeds_python_numpy_keras_and_tensorflow():
    import random

    import tensorflow as tf

    def draws() -> list[float]:
        return [
            random.random(),
            float(np.random.rand()),
            float(np.asarray(keras.random.normal((1,)))[0]),
            float(tf.random.uniform(()).numpy()),
        ]

    compat.set_random_seed(7)
    seeded = draws()
    random.seed(7)
    np.random.seed(7)
    tf.random.set_seed(7)
    keras.utils.set_random_seed(7)  # and Keras's global SeedGenerator, made anew
    assert draws() == seeded
    assert draws() != seeded
