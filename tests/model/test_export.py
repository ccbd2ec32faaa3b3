"""kinit export-config: a saved model back to the kinit config that builds it again."""

from __future__ import annotations

import keras
import pytest
import yaml

from kinit_cli.cli import cli
from kinit_cli.config import source as config_mod
from kinit_cli.model import export
from kinit_cli.model.sources import prepare
from tests.conftest import MNIST_LIKE
from tests.model.test_model import FUNCTIONAL


@pytest.mark.parametrize("text", [MNIST_LIKE, FUNCTIONAL], ids=["sequential", "functional"])
def test_get_config_round_trips_through_kinit_yaml(write, text):
    first = prepare(write("a.yaml", text)).built.model
    spec = export.model_section(keras.saving.serialize_keras_object(first))
    second = prepare(write("b.yaml", config_mod.dump({"model": spec}))).built.model
    assert second.get_config() == first.get_config()
    assert [w.path for w in second.weights] == [w.path for w in first.weights]
    assert second is not first


def tutorial_model(path):
    """The Keras guide's MLP, saved as a script saves it."""
    model = keras.Sequential(
        [
            keras.Input(shape=(784,)),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=0.002),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.save(path)
    return model


def test_a_script_saved_model_becomes_a_config_that_validates(runner, tmp_path):
    saved = tutorial_model(tmp_path / "mlp.keras")
    out = tmp_path / "mlp.yaml"
    result = runner.invoke(cli, ["export-config", str(tmp_path / "mlp.keras"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stderr == f"Wrote the config of {tmp_path / 'mlp.keras'} to {out}\n"
    text = out.read_text()
    assert text.startswith(f"# Written by kinit export-config from {tmp_path / 'mlp.keras'}.")
    config = yaml.safe_load(text)
    assert config["model"]["input_shape"] == [784]
    assert [
        (layer["class_name"], layer["config"]["units"], layer["config"]["activation"])
        for layer in config["model"]["layers"]
    ] == [("Dense", 512, "relu"), ("Dense", 10, "softmax")]
    assert config["compile"]["loss"] == "sparse_categorical_crossentropy"
    assert config["compile"]["metrics"] == ["accuracy"]
    assert config["compile"]["optimizer"]["class_name"] == "RMSprop"
    assert config["compile"]["optimizer"]["config"]["learning_rate"] == pytest.approx(0.002)
    rebuilt = prepare(out)
    # The layers keep the names the script's model gave them (Keras numbers them per process).
    assert [(w.path, w.shape) for w in rebuilt.built.weights] == [
        (f"{layer.name}/{v.name}", tuple(v.shape)) for layer in saved.layers for v in layer.weights
    ]
    assert type(rebuilt.compile_args["optimizer"]).__name__ == "RMSprop"


def test_stdout_by_default_and_nothing_overwritten(runner, tmp_path):
    saved = tutorial_model(tmp_path / "mlp.keras")
    result = runner.invoke(cli, ["export-config", str(tmp_path / "mlp.keras")])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout)["name"] == saved.name  # Keras's own: sequential_N
    mine = tmp_path / "mine.yaml"
    mine.write_text("my notes\n")
    result = runner.invoke(cli, ["export-config", str(tmp_path / "mlp.keras"), "-o", str(mine)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {mine} already exists; give another --output, or add --overwrite\n"
    )
    assert mine.read_text() == "my notes\n"
    result = runner.invoke(
        cli, ["export-config", str(tmp_path / "mlp.keras"), "-o", str(mine), "--overwrite"]
    )
    assert result.exit_code == 0 and yaml.safe_load(mine.read_text())["model"]["input_shape"] == [
        784
    ]


def test_a_model_holding_a_lambda_is_refused_naming_its_layers(runner, tmp_path):
    model = keras.Sequential(
        [
            keras.Input(shape=(4,)),
            keras.layers.Lambda(lambda x: x * 2, name="double"),
            keras.layers.Dense(3, name="dense"),
            keras.layers.Lambda(lambda x: x + 1, name="shift"),
        ]
    )
    saved = tmp_path / "lam.keras"
    model.save(saved)
    out = tmp_path / "lam.yaml"
    result = runner.invoke(cli, ["export-config", str(saved), "-o", str(out)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {saved} holds Python code a config cannot carry (a lambda, saved as compiled "
        "bytecode) in layer 'double', layer 'shift'; give that code a class of its own in a "
        "plugin (a Layer subclass) and write its entry by hand\n"
    )
    assert not out.exists()


def test_what_is_not_a_saved_model_is_told_plainly(runner, tmp_path):
    (tmp_path / "run").mkdir()
    result = runner.invoke(cli, ["export-config", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {tmp_path / 'run'}: export-config reads a saved model (.keras); a run "
        f"directory has its config already: {tmp_path / 'run' / 'config.yaml'}\n"
    )
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    result = runner.invoke(cli, ["export-config", str(broken)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {broken} is not a readable Keras model file")


def test_an_unbuilt_model_class_is_exported_without_input_shape():
    """A class that was never built has no input shape in the file: the one-class form
    without it, which builds a class that builds itself and asks for it otherwise."""
    saved = {"class_name": "MyModel", "registered_name": "demo>MyModel", "config": {}}
    assert export.model_section(saved) == {"class_name": "MyModel"}
    built = {
        **saved,
        "config": {"units": 3, "name": "m"},
        "build_config": {"input_shape": [None, 5]},
    }
    # The script's package is not kinit's: the config names the class as a person would.
    assert export.model_section(built) == {
        "class_name": "MyModel",
        "config": {"units": 3},
        "input_shape": [5],
    }


def test_a_functional_model_with_one_unwrapped_output_and_a_shared_layer(runner, tmp_path):
    """keras.Model(inputs, out), as the functional API guide writes it: Keras keeps the one
    output as [name, node, tensor], not a list of them."""
    left, right = keras.Input(shape=(64,), name="left"), keras.Input(shape=(64,), name="right")
    shared = keras.layers.Dense(16, activation="relu", name="encoder")
    merged = keras.layers.Concatenate(name="merged")([shared(left), shared(right)])
    out = keras.layers.Dense(10, activation="softmax", name="head")(merged)
    model = keras.Model([left, right], out)
    model.save(tmp_path / "siamese.keras")
    result = runner.invoke(cli, ["export-config", str(tmp_path / "siamese.keras")])
    assert result.exit_code == 0, result.output
    section = yaml.safe_load(result.stdout)["model"]
    assert section["outputs"] == "head"
    assert [entry["name"] for entry in section["layers"]] == [
        "encoder",
        "encoder_call1",
        "merged",
        "head",
    ]
    assert section["layers"][1] == {"name": "encoder_call1", "shares": "encoder", "inputs": "right"}
    assert section["layers"][0]["config"] == {"units": 16, "activation": "relu"}


def test_defaults_are_left_out_and_float32_values_read_as_written(tmp_path):
    tutorial_model(tmp_path / "mlp.keras")
    config = export.export(tmp_path / "mlp.keras")
    assert config["model"]["layers"][0]["config"] == {
        "name": config["model"]["layers"][0]["config"]["name"],
        "units": 512,
        "activation": "relu",
    }
    assert config["compile"]["optimizer"] == {
        "class_name": "RMSprop",
        "config": {"learning_rate": 0.002},
    }


TUTORIAL_LAYER = """\
import tensorflow as tf
import keras


class Linear(keras.layers.Layer):
    def __init__(self, units=32):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(
            shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True
        )
        self.b = self.add_weight(shape=(self.units,), initializer="zeros", trainable=True)

    def call(self, inputs):
        return tf.matmul(inputs, self.w) + self.b
"""


def test_a_tutorial_layer_exports_to_a_config_that_builds(write, tmp_path):
    """The Keras guide's Linear (no **kwargs, no get_config, tf ops), registered by a script
    under its own package: the config names it as a person would, with only its arguments."""
    from kinit_cli.registry.plugins import load_plugins

    write("tut_layers.py", TUTORIAL_LAYER)
    load_plugins(["tut_layers.py"], base_dir=tmp_path)
    import tut_layers

    keras.saving.register_keras_serializable("myscript")(tut_layers.Linear)
    model = keras.Sequential([keras.Input((64,)), tut_layers.Linear(16), keras.layers.Dense(10)])
    model.save(tmp_path / "lin.keras")
    # The script ran in a process of its own: kinit knows the class by its plugin only.
    keras.saving.get_custom_objects().pop("myscript>Linear")
    config = export.export(tmp_path / "lin.keras")
    assert config["model"]["layers"][0] == {"class_name": "Linear", "config": {"units": 16}}
    header = export.document(tmp_path / "lin.keras")
    assert header.splitlines()[0].endswith("Not Keras's: Linear (module tut_layers); add the")
    text = "plugins: [tut_layers.py]\n" + config_mod.dump(config)
    built = prepare(write("lin.yaml", text)).built
    assert [(w.path, w.shape) for w in built.weights] == [
        ("linear/variable", (64, 16)),
        ("linear/variable_1", (16,)),
        (f"{model.layers[1].name}/kernel", (16, 10)),  # Keras's name, numbered per process
        (f"{model.layers[1].name}/bias", (10,)),
    ]
