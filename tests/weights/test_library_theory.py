"""--check of saved models whose layers make sub-layers and weights in their own code (as model
libraries do), and the message for a saved model whose classes nothing loaded defines."""

from __future__ import annotations

import json
import math
import sys
import textwrap
from pathlib import Path

import pytest

from kinit_cli.cli import cli
from kinit_cli.registry.plugins import load_plugins
from tests.conftest import forget

# Written the way tutorials write a layer: a sub-layer made in __init__, a weight made in
# build() with an initializer of the class's own choosing, get_config for the argument only.
MIXER = """
import keras


class Mixer(keras.layers.Layer):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.proj = keras.layers.Dense(units, bias_initializer="ones")

    def build(self, input_shape):
        self.proj.build(input_shape)
        self.mix = self.add_weight(
            shape=(self.units, self.units),
            initializer=keras.initializers.HeNormal(),
            name="mix",
        )

    def call(self, x):
        return self.proj(x) @ self.mix

    def get_config(self):
        return {**super().get_config(), "units": self.units}
"""


def _saved_mixer(folder: Path, module: str = "mixer_layers") -> Path:
    """A model of one Mixer(64) saved to folder/mixer.keras, its class from the file
    folder/mixer_layers.py or from the module `module` (on sys.path); unloaded again."""
    import keras

    plugin = folder / f"{module.split('.')[-1]}.py"
    plugin.write_text(textwrap.dedent(MIXER))
    load_plugins([str(plugin) if "." not in module else module], entry_points=False)
    inputs = keras.Input((16,))
    model = keras.Model(inputs, sys.modules[module].Mixer(64, name="mixer")(inputs))
    path = folder / "mixer.keras"
    model.save(path)
    forget({module})
    return path


def test_check_knows_the_initializers_a_layer_chooses_in_its_own_code(runner, tmp_path):
    path = _saved_mixer(tmp_path)
    plugin = str(tmp_path / "mixer_layers.py")
    result = runner.invoke(
        cli, ["inspect-weights", str(path), "--plugin", plugin, "--check", "--json"]
    )
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    report = json.loads(result.stdout)
    made = {v["path"]: v["initializer"]["class_name"] for v in report["variables"]}
    assert made == {
        "mixer/mix": "HeNormal",
        "mixer/proj/kernel": "GlorotUniform",
        "mixer/proj/bias": "Ones",
    }
    check = {c["path"]: c for c in report["check"]}
    assert {p: c["status"] for p, c in check.items()} == dict.fromkeys(made, "PASS")
    # HeNormal: a normal truncated at 2 std, whose std after truncation is sqrt(2 / fan_in).
    he = check["mixer/mix"]["theory"]
    assert he["distribution"] == "truncated_normal"
    assert he["std"] == pytest.approx(math.sqrt(2 / 64))
    assert he["scale"] == pytest.approx(math.sqrt(2 / 64) / 0.8796256610342398)
    glorot = check["mixer/proj/kernel"]["theory"]  # U(-limit, limit), limit sqrt(6 / (16 + 64))
    assert (glorot["low"], glorot["high"]) == pytest.approx((-math.sqrt(6 / 80), math.sqrt(6 / 80)))
    assert check["mixer/proj/bias"]["theory"]["value"] == 1.0
    assert report["check_summary"]["pass"] == 3


def test_owned_initializer_reads_the_innermost_layers_config(tmp_path):
    """Without a record of the build (a model made elsewhere), each variable's initializer is
    its own layer's, nested ones included, by Keras's `<name>_initializer` convention."""
    import keras

    from kinit_cli.model.variables import config_initializer, owned_initializer, weight_infos

    layers = keras.layers
    inputs = keras.Input((4, 8))
    mha = layers.MultiHeadAttention(2, 4, kernel_initializer="he_uniform", name="mha")
    x = mha(inputs, inputs)
    x = layers.LayerNormalization(gamma_initializer="ones", name="layer_normalization")(x)
    x = layers.DepthwiseConv1D(3, depthwise_initializer="orthogonal", name="depthwise_conv1d")(x)
    model = keras.Model(inputs, layers.BatchNormalization(name="batch_normalization")(x))
    made = {w.path: (w.initializer or {}).get("class_name") for w in weight_infos(model)}
    assert made["mha/query/kernel"] == "HeUniform"
    assert made["mha/attention_output/bias"] == "Zeros"
    assert made["layer_normalization/gamma"] == "Ones"
    assert made["depthwise_conv1d/kernel"] == "Orthogonal"  # its depthwise_initializer
    assert made["batch_normalization/moving_variance"] == "Ones"
    assert None not in made.values()
    # The same from a config as config.json holds it (serialized, module and all).
    saved = keras.saving.serialize_keras_object(
        keras.layers.DepthwiseConv2D(
            3, depthwise_initializer=keras.initializers.RandomNormal(0, 0.3)
        )
    )
    assert config_initializer(saved["config"], "kernel", ["bias"]) == (
        {"class_name": "RandomNormal", "config": {"mean": 0, "stddev": 0.3}},
        "",
    )
    # A layer that names no initializer for a variable says so, in one line.
    layer = keras.layers.Dense(2)
    layer.build((3,))
    assert owned_initializer(layer, "scale") == (
        None,
        f"no initializer is known: Dense '{layer.name}' did not make 'scale' with "
        "add_weight(initializer=...) while kinit watched, and its config names no "
        "scale_initializer",
    )


@pytest.mark.slow
def test_a_library_backbone_has_a_theory_for_every_variable(runner, tmp_path):
    keras_hub = pytest.importorskip("keras_hub")
    model = keras_hub.models.BertBackbone(
        vocabulary_size=50,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=8,
    )
    path = tmp_path / "bert.keras"
    model.save(path)
    result = runner.invoke(
        cli, ["inspect-weights", str(path), "--plugin", "keras_hub", "--check", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["check"]) == len(model.weights) == 23
    assert {c["status"] for c in report["check"]} == {"PASS"}
    made = {v["path"]: v["initializer"] for v in report["variables"]}
    # keras_hub's own choice for BERT: TruncatedNormal(stddev=0.02) for kernels and embeddings.
    assert made["token_embedding/embeddings"]["class_name"] == "TruncatedNormal"
    assert made["token_embedding/embeddings"]["config"]["stddev"] == 0.02


def test_a_class_nothing_loaded_defines_is_named_with_its_plugin(runner, tmp_path):
    path = _saved_mixer(tmp_path)
    out = tmp_path / "hist.png"
    result = runner.invoke(cli, ["inspect-weights", str(path), "--check", "--plot", str(out)])
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: cannot load {path}: its model uses Mixer (module mixer_layers), which no "
        "loaded plugin or library defines (kinit imports no code a file names); load the file "
        "that defines it with --plugin mixer_layers.py (or, if mixer_layers is a library, "
        "pip install mixer-layers and add --plugin mixer_layers)\n",
    )
    assert not out.exists()


def test_a_library_that_is_not_installed_gets_the_pip_command(runner, tmp_path, monkeypatch):
    """A class from a package's module (a library's) that is not installed here."""
    site = tmp_path / "site"
    (site / "absent_lib").mkdir(parents=True)
    (site / "absent_lib" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(site))
    path = _saved_mixer(site / "absent_lib", "absent_lib.mixers")
    forget({"absent_lib"})
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(site)])
    out = tmp_path / "values.npz"
    result = runner.invoke(cli, ["inspect-weights", str(path), "--values", str(out)])
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: cannot load {path}: its model uses Mixer (module absent_lib.mixers), which "
        "no loaded plugin or library defines (kinit imports no code a file names); absent_lib "
        "is not installed here: pip install absent-lib, then add --plugin absent_lib\n",
    )
    assert not out.exists()


def test_the_pip_command_for_a_library_is_its_distributions():
    from kinit_cli.registry.plugins import how_to_load, pip_command

    assert pip_command("keras_hub.src.models.vit.vit_backbone") == "pip install keras-hub"
    assert pip_command("sklearn.linear_model") == "pip install scikit-learn"
    assert how_to_load("keras_hub.src.models.vit.vit_backbone") == (
        "load it with --plugin keras_hub"
    )


def test_a_config_plugin_that_is_not_installed_gets_the_pip_command(runner, write):
    config = write(
        "c.yaml",
        """
        plugins: [keras_nothing_here]
        model: {input_shape: [3], layers: [{class_name: Dense, config: {units: 1}}]}
        """,
    )
    out = config.parent / "values.npz"
    result = runner.invoke(cli, ["inspect-weights", str(config), "--values", str(out)])
    assert (result.exit_code, result.stderr) == (
        2,
        "error: plugin 'keras_nothing_here': no module named 'keras_nothing_here'. Give an "
        "importable module name, or a path to a .py file (relative to the config file's "
        "folder); if it is a library, install it: pip install keras-nothing-here.\n",
    )
    assert not out.exists()
