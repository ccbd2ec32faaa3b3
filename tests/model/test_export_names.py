"""export-config names every class so validate resolves it: classes from Keras's own modules
(`MODULE>Name`), operations, nested Keras models, a library's registered classes with the
`plugins:` they need, arguments a class takes through **kwargs, defaults that round-trip."""

from __future__ import annotations

import re
from typing import Any

import keras
import pytest
import yaml
from keras.src.applications.convnext import LayerScale

from kinit_cli.cli import cli
from kinit_cli.config.source import load
from kinit_cli.errors import ConfigError
from kinit_cli.model.sources import prepare
from kinit_cli.registry.catalog import Registry
from kinit_cli.registry.specs import SpecBuilder


def exported(runner, tmp_path, model) -> tuple[str, Any]:
    """The YAML `kinit export-config` writes of `model` saved, and the model it validates to."""
    model.save(tmp_path / "m.keras")
    out = tmp_path / "m.yaml"
    result = runner.invoke(cli, ["export-config", str(tmp_path / "m.keras"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["validate", str(out)])
    assert result.exit_code == 0, result.output
    return out.read_text(), prepare(out).built.model


def _unnamed(config: Any) -> Any:
    """A config without the names Keras numbers per process; a shape a tuple or a list,
    as Keras keeps what it was given (a nested model's build_config)."""
    if isinstance(config, dict):
        return {k: _unnamed(v) for k, v in config.items() if k != "name"}
    if isinstance(config, list | tuple):
        return [_unnamed(v) for v in config]
    return config


def assert_same_architecture(rebuilt, original) -> None:
    assert [type(layer) for layer in rebuilt.layers] == [type(layer) for layer in original.layers]
    assert [_unnamed(layer.get_config()) for layer in rebuilt.layers] == [
        _unnamed(layer.get_config()) for layer in original.layers
    ]
    assert rebuilt.count_params() == original.count_params()


def test_a_class_of_keras_own_module_is_named_by_its_module(runner, tmp_path):
    """ConvNeXt's LayerScale is not in keras.layers: its module names it, and validate
    imports it from there."""
    inputs = keras.Input((4, 4, 8))
    x = keras.layers.Dense(8, name="dense")(inputs)
    x = LayerScale(1e-6, 8, name="scale")(x)
    original = keras.Model(inputs, x)
    text, rebuilt = exported(runner, tmp_path, original)
    assert "  class_name: keras.src.applications.convnext>LayerScale\n" in text
    assert yaml.safe_load(text)["model"]["layers"][1]["config"] == {
        "init_values": 1e-6,
        "projection_dim": 8,
    }
    assert type(rebuilt.layers[2]) is LayerScale
    assert_same_architecture(rebuilt, original)


@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
def test_an_argument_taken_through_kwargs_is_checked_by_from_config(runner, tmp_path, write):
    """LayerNormalization takes rms_scaling through **kwargs and writes it in get_config:
    accepted since from_config takes it; a misspelling still gets the unknown-argument
    message (from_config refuses it)."""
    original = keras.Sequential(
        [keras.Input((6,)), keras.layers.LayerNormalization(rms_scaling=True)]
    )
    text, rebuilt = exported(runner, tmp_path, original)
    assert yaml.safe_load(text)["model"]["layers"][0]["config"]["rms_scaling"] is True
    assert rebuilt.layers[0].rms_scaling is True
    assert rebuilt.count_params() == 6  # gamma only: rms scaling has no beta
    assert_same_architecture(rebuilt, original)
    bad = write(
        "bad.yaml",
        "model:\n  input_shape: [6]\n  layers:\n"
        "  - class_name: LayerNormalization\n    config: {epsilom: 0.1}\n",
    )
    with pytest.raises(ConfigError) as info:
        prepare(bad)
    assert str(info.value).startswith(
        f"{bad}:5:14: model.layers[0].config.epsilom: unknown argument 'epsilom' for "
        "LayerNormalization. Did you mean 'epsilon'? Accepted parameters: axis, epsilon,"
    )


def test_an_initializer_keras_cannot_make_by_name_stays_a_mapping(runner, tmp_path):
    """Constant(0.0) has its default value: the bare name `Constant` would be handed to
    Keras, which cannot make it ('value')."""
    original = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(
                2,
                kernel_initializer=keras.initializers.Zeros(),
                bias_initializer=keras.initializers.Constant(0.0),
            ),
        ]
    )
    text, rebuilt = exported(runner, tmp_path, original)
    config = yaml.safe_load(text)["model"]["layers"][0]["config"]
    assert config["bias_initializer"] == {"class_name": "Constant"}
    assert config["kernel_initializer"] == "Zeros"  # Keras makes Zeros of its name
    assert type(rebuilt.layers[0].bias_initializer) is keras.initializers.Constant
    assert_same_architecture(rebuilt, original)


def test_a_nested_sequential_keeps_the_config_keras_wrote(runner, tmp_path):
    inputs = keras.Input((5,))
    stem = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(4), keras.layers.LayerNormalization()],
        name="stem",
    )
    original = keras.Model(inputs, keras.layers.Dense(2, name="head")(stem(inputs)))
    text, rebuilt = exported(runner, tmp_path, original)
    entry = yaml.safe_load(text)["model"]["layers"][0]
    assert entry["class_name"] == "keras>Sequential"
    assert [(layer["module"], layer["class_name"]) for layer in entry["config"]["layers"]] == [
        ("keras.layers", "InputLayer"),
        ("keras.layers", "Dense"),
        ("keras.layers", "LayerNormalization"),
    ]
    assert type(rebuilt.layers[1]) is keras.Sequential
    assert rebuilt.layers[1].name == "stem"
    assert_same_architecture(rebuilt, original)
    # The saving process's object ids tie nothing together here: left out, so the same
    # model exports to the same text; so is the mask=None Keras records for every call.
    ids = re.findall(r"shared_object_id: (\d+)", text)
    assert ids and set(ids) <= {"1", "2", "3"}
    assert "mask" not in text


def test_an_operation_is_named_by_its_module_not_as_the_merge_layer(runner, tmp_path):
    """`a + b` is the operation Add of keras.src.ops.numpy, not the layer keras.layers.Add:
    each is exported under the name that resolves to it."""
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    original = keras.Model([a, b], [a + b, keras.layers.Add(name="merged")([a, b])])
    original.save(tmp_path / "m.keras")
    result = runner.invoke(cli, ["export-config", str(tmp_path / "m.keras")])
    assert result.exit_code == 0, result.output
    names = [e["class_name"] for e in yaml.safe_load(result.stdout)["model"]["layers"]]
    assert names == ["keras.src.ops.numpy>Add", "Add"]
    registry = Registry()
    from keras.src.ops.numpy import Add as AddOperation

    assert registry.resolve("layer", "keras.src.ops.numpy>Add").obj is AddOperation
    assert registry.resolve("layer", "Add").obj is keras.layers.Add
    made = SpecBuilder(registry, load_text(tmp_path)).build(
        "layer", {"class_name": "keras.src.ops.numpy>Add", "config": {}}, ("model",)
    )
    assert type(made) is AddOperation


def load_text(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("{}\n")
    return load(path)


def test_a_class_outside_keras_modules_does_not_resolve_by_module(tmp_path):
    """Only Keras's own modules are imported for a `MODULE>Name`: any other module is a
    plugin's, to be loaded as one."""
    registry = Registry()
    with pytest.raises(Exception, match="unknown layer 'os.path>join'"):
        registry.resolve("layer", "os.path>join")
    with pytest.raises(Exception, match="unknown layer 'keras.src.ops.numpy>Nothing'"):
        registry.resolve("layer", "keras.src.ops.numpy>Nothing")


@pytest.mark.slow
def test_a_library_backbone_is_one_class_with_its_plugin(runner, tmp_path):
    """A keras_hub backbone builds itself from its arguments: exported as one class under its
    registered key, with `plugins: [keras_hub]`, no input shape."""
    import keras_hub

    original = keras_hub.models.BertBackbone(
        vocabulary_size=20,
        num_layers=1,
        num_heads=1,
        hidden_dim=4,
        intermediate_dim=8,
        max_sequence_length=6,
    )
    text, rebuilt = exported(runner, tmp_path, original)
    config = yaml.safe_load(text)
    assert config["plugins"] == ["keras_hub"]
    assert "\nplugins: [keras_hub]\nmodel:\n  class_name: keras_hub>BertBackbone\n" in text
    assert "input_shape" not in config["model"]
    assert config["model"]["config"]["vocabulary_size"] == 20
    assert type(rebuilt) is keras_hub.models.BertBackbone
    assert_same_architecture(rebuilt, original)


def test_a_class_that_does_not_build_itself_asks_for_input_shape(write):
    path = write("m.yaml", "model:\n  class_name: Dense\n  config: {units: 3}\n")
    with pytest.raises(ConfigError) as info:
        prepare(path)
    assert str(info.value) == (
        f"{path}:1:1: model: missing 'input_shape': Dense does not build itself when it is made "
        "(it is not a functional model of its own inputs), so the config needs the shape it is "
        "applied to (model.input_shape)"
    )
