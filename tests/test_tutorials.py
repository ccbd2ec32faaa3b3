"""Keras code as tutorials write it (tests/tutorials/): validated, trained, inspected, reloaded.

Each plugin file there is copied into tmp_path before use, so every test imports it afresh
and the conftest fixture unregisters what it defined.
"""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import keras
import numpy as np
import pytest

from kinit_cli.cli import cli
from kinit_cli.errors import ConfigError, PluginError
from kinit_cli.model.sources import prepare

TUTORIALS = Path(__file__).parent / "tutorials"
COMPILE = """\
compile: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}
train: {epochs: 1, batch_size: 64}
"""

# The custom-initializer tutorial's classes, named as it names them, in a Sequential list.
CUSTOM_INITIALIZER = (
    """\
seed: 3
plugins: [custom_initializer.py]
model:
  input_shape: [64]
  layers:
    - class_name: SimpleDense
      config:
        units: 32
        activation: relu
        kernel_initializer: {class_name: ExampleRandomNormal, config: {mean: 0.0, stddev: 0.05}}
    - {class_name: Dense, config: {units: 10, activation: softmax}}
"""
    + COMPILE
)

# The subclassing guide's layers: weights made in __init__ (Linear) and in build() (MyLayer).
SUBCLASSING_GUIDE = (
    """\
seed: 3
plugins: [subclassing_guide.py]
model:
  input_shape: [64]
  layers:
    - {class_name: Linear, config: {units: 32, input_dim: 64}}
    - {class_name: MyLayer, config: {output_dim: 16}}
    - {class_name: Dense, config: {units: 10, activation: softmax}}
"""
    + COMPILE
)

# A tf.keras.Model subclass with its sub-layers made in __init__, as the whole model.
MODEL_SUBCLASS = (
    """\
seed: 3
plugins: [parameters_chapter.py]
model:
  class_name: Linear
  config: {units: 16}
  input_shape: [64]
"""
    + COMPILE
)


# The d2l custom-layer chapter: a tf.keras.Model used as a layer, weights made in build()
# with TensorFlow's initializers, and a factory function for the head's kernel.
D2L_LAYER = (
    """\
seed: 3
plugins: [parameters_chapter.py]
model:
  input_shape: [64]
  layers:
    - {class_name: MyDense, config: {units: 32}}
    - {class_name: Dense, config: {units: 10, activation: softmax, bias_initializer: my_init}}
"""
    + COMPILE
)


def _plugin(tmp_path: Path, name: str) -> Path:
    return Path(shutil.copy(TUTORIALS / name, tmp_path / name))


@pytest.fixture
def tutorial(tmp_path, write):
    """tutorial(plugin file, config text) -> the config's path, the plugin beside it."""

    def make(plugin: str, text: str) -> Path:
        _plugin(tmp_path, plugin)
        return write("model.yaml", text)

    return make


def _paths(built) -> list[tuple[str, tuple[int, ...]]]:
    return [(w.path, w.shape) for w in built.weights]


@pytest.mark.parametrize(
    ("plugin", "text", "expected"),
    [
        (
            "custom_initializer.py",
            CUSTOM_INITIALIZER,
            [
                ("simple_dense/variable", (64, 32), "custom_initializer>ExampleRandomNormal"),
                ("simple_dense/variable_1", (32,), "Zeros"),
                ("dense/kernel", (32, 10), "GlorotUniform"),
                ("dense/bias", (10,), "Zeros"),
            ],
        ),
        (
            "subclassing_guide.py",
            SUBCLASSING_GUIDE,
            [
                ("linear/variable", (64, 32), "RandomNormal"),
                ("linear/variable_1", (32,), "Zeros"),
                ("my_layer/kernel", (32, 16), "RandomUniform"),
                ("dense/kernel", (16, 10), "GlorotUniform"),
                ("dense/bias", (10,), "Zeros"),
            ],
        ),
        (
            "parameters_chapter.py",
            MODEL_SUBCLASS,
            [
                ("linear/hidden/kernel", (64, 16), "RandomNormal"),
                ("linear/hidden/bias", (16,), "Zeros"),
                ("linear/out/kernel", (16, 10), "GlorotUniform"),
                ("linear/out/bias", (10,), "Ones"),
            ],
        ),
        (
            "parameters_chapter.py",
            D2L_LAYER,
            [
                ("my_dense/weight", (64, 32), "RandomNormal"),
                ("my_dense/bias", (32,), "Zeros"),
                ("dense/kernel", (32, 10), "GlorotUniform"),
                ("dense/bias", (10,), "Ones"),
            ],
        ),
    ],
    ids=["custom-initializer", "subclassing-guide", "model-subclass", "d2l-layer"],
)
def test_tutorial_classes_build_unchanged(tutorial, plugin, text, expected):
    built = prepare(tutorial(plugin, text)).built
    assert [(w.path, w.shape, w.initializer["class_name"]) for w in built.weights] == expected
    assert built.trainable_params == sum(int(np.prod(s)) for _, s, _ in expected)


def test_no_constructor_argument_the_yaml_does_not_hold(tutorial):
    """`__init__(self, units=32)` takes no `name`: kinit names the layer without passing one."""
    built = prepare(tutorial("custom_initializer.py", CUSTOM_INITIALIZER)).built
    layer = built.model.layers[0]
    assert (type(layer).__name__, layer.name, layer.units) == ("SimpleDense", "simple_dense", 32)
    init = built.weights[0].initializer
    assert init == {
        "class_name": "custom_initializer>ExampleRandomNormal",
        "config": {"mean": 0.0, "stddev": 0.05},
    }


def test_functional_entry_names_a_layer_whose_init_takes_no_name(tutorial, write):
    tutorial("custom_initializer.py", "")
    path = write(
        "f.yaml",
        """\
        plugins: [custom_initializer.py]
        model:
          inputs: [{name: x, shape: [64]}]
          layers:
            - {name: hidden, class_name: SimpleDense, config: {units: 8}, inputs: x}
            - {name: head, class_name: Dense, config: {units: 10}, inputs: hidden}
          outputs: head
        """,
    )
    built = prepare(path).built
    assert [w.path for w in built.weights] == [
        "hidden/variable",
        "hidden/variable_1",
        "head/kernel",
        "head/bias",
    ]


def test_tensorflow_initializers_are_recorded_with_their_class_and_config(tutorial):
    built = prepare(tutorial("parameters_chapter.py", MODEL_SUBCLASS)).built
    by_path = {w.path: w.initializer for w in built.weights}
    assert by_path["linear/hidden/kernel"] == {
        "class_name": "RandomNormal",
        "config": {"mean": 0, "stddev": 0.01},
    }
    assert by_path["linear/out/bias"] == {"class_name": "Ones", "config": {}}


def test_tensorflow_initializers_are_checked_against_their_theory(runner, tutorial):
    config = tutorial("parameters_chapter.py", MODEL_SUBCLASS)
    result = runner.invoke(cli, ["inspect-weights", str(config), "--check", "--json"])
    assert result.exit_code == 0, result.output
    checks = {c["path"]: c for c in json.loads(result.output)["check"]}
    hidden = checks["linear/hidden/kernel"]
    assert hidden["status"] == "PASS"
    assert (hidden["theory"]["mean"], hidden["theory"]["std"]) == (0.0, 0.01)
    assert checks["linear/hidden/bias"]["theory"]["value"] == 0.0
    assert checks["linear/out/bias"]["status"] == "PASS"
    assert checks["linear/out/bias"]["theory"]["value"] == 1.0


def test_paths_do_not_depend_on_what_the_process_built_before(tutorial, write):
    config = tutorial("subclassing_guide.py", SUBCLASSING_GUIDE)
    first = _paths(prepare(config).built)
    # Unnamed layers and variables elsewhere move Keras's process-wide counters.
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dense(2)])
    keras.Variable(np.zeros(2))
    assert _paths(prepare(config).built) == first


def _custom_initializer_script(module):
    return keras.Sequential(
        [
            keras.Input((64,)),
            module.SimpleDense(
                32, activation="relu", kernel_initializer=module.ExampleRandomNormal(0.0, 0.05)
            ),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def _subclassing_guide_script(module):
    return keras.Sequential(
        [
            keras.Input((64,)),
            module.Linear(units=32, input_dim=64),
            module.MyLayer(output_dim=16),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def _d2l_layer_script(module):
    return keras.Sequential(
        [
            keras.Input((64,)),
            module.MyDense(32),
            keras.layers.Dense(10, activation="softmax", bias_initializer=module.my_init()),
        ]
    )


def _model_subclass_script(module):
    model = module.Linear(units=16)
    model(np.zeros((1, 64), "float32"))  # a subclassed model builds on its first call
    return model


@pytest.mark.parametrize(
    ("plugin", "text", "script"),
    [
        ("custom_initializer.py", CUSTOM_INITIALIZER, _custom_initializer_script),
        ("subclassing_guide.py", SUBCLASSING_GUIDE, _subclassing_guide_script),
        ("parameters_chapter.py", MODEL_SUBCLASS, _model_subclass_script),
        ("parameters_chapter.py", D2L_LAYER, _d2l_layer_script),
    ],
    ids=["custom-initializer", "subclassing-guide", "model-subclass", "d2l-layer"],
)
def test_same_seed_gives_the_plain_keras_scripts_initial_weights(tutorial, plugin, text, script):
    """The same classes in a plain Keras script, seeded alike, start from the same weights."""
    import sys

    from kinit_cli.model.sources import read
    from kinit_cli.weights import stats

    inspected = read(str(tutorial(plugin, text)))
    module = sys.modules[plugin.removesuffix(".py")]  # imported by kinit from tmp_path
    keras.utils.set_random_seed(3)
    model = script(module)
    ours = [inspected.array(w.variable) for w in inspected.weights]
    theirs = [keras.ops.convert_to_numpy(v) for v in model.weights]
    assert [a.shape for a in ours] == [b.shape for b in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert stats.moments(a.ravel()) == stats.moments(b.ravel())
        np.testing.assert_array_equal(a, b)


def test_user_plugin_shadows_the_builtin_example(runner, tutorial, write):
    config = tutorial("custom_initializer.py", CUSTOM_INITIALIZER)
    prepared = prepare(config)
    assert type(prepared.built.model.layers[0]).__module__ == "custom_initializer"
    assert prepared.registry.shadowed == {
        "kinit>SimpleDense": "custom_initializer>SimpleDense",
        "kinit>ExampleRandomNormal": "custom_initializer>ExampleRandomNormal",
    }
    result = runner.invoke(cli, ["validate", str(config)])
    assert result.exit_code == 0, result.output
    assert (
        "warning: 'custom_initializer>SimpleDense' from a plugin shadows kinit's built-in "
        "example 'kinit>SimpleDense' (still reachable as 'kinit>SimpleDense')"
    ) in result.output
    # The built-in pack stays reachable by its package name.
    builtin = write(
        "b.yaml",
        CUSTOM_INITIALIZER.replace("class_name: SimpleDense", "class_name: kinit>SimpleDense"),
    )
    assert type(prepare(builtin).built.model.layers[0]).__module__ == "kinit_cli.plugins.layers"


def test_two_user_plugins_claiming_a_name_stay_ambiguous(tutorial, tmp_path, write):
    _plugin(tmp_path, "subclassing_guide.py")
    _plugin(tmp_path, "parameters_chapter.py")
    config = write(
        "m.yaml",
        """\
        plugins: [subclassing_guide.py, parameters_chapter.py]
        model:
          input_shape: [4]
          layers: [{class_name: Linear, config: {units: 2}}]
        """,
    )
    with pytest.raises(ConfigError) as caught:
        prepare(config)
    assert "'Linear' is ambiguous: 'subclassing_guide>Linear'" in str(caught.value)
    assert "'parameters_chapter>Linear'" in str(caught.value)
    assert "kinit>Linear" not in str(caught.value)


def test_classes_register_without_decorators(tmp_path):
    from kinit_cli.registry.catalog import Registry
    from kinit_cli.registry.plugins import load_plugins

    path = _plugin(tmp_path, "subclassing_guide.py")
    loaded = load_plugins([str(path)])
    assert loaded[-1].registered == ["subclassing_guide>Linear", "subclassing_guide>MyLayer"]
    registry = Registry()
    entry = registry.resolve("layer", "MyLayer")
    assert (entry.key, entry.source) == (
        "subclassing_guide>MyLayer",
        f"plugin {path}",
    )
    assert keras.saving.get_registered_object("subclassing_guide>MyLayer") is entry.obj


def test_factory_function_is_called_for_its_initializer(tutorial, write):
    tutorial("parameters_chapter.py", "")
    config = write(
        "f.yaml",
        """\
        plugins: [parameters_chapter.py]
        model:
          input_shape: [8]
          layers: [{class_name: Dense, config: {units: 3, kernel_initializer: my_init}}]
        """,
    )
    built = prepare(config).built
    assert built.weights[0].initializer == {"class_name": "Ones", "config": {}}
    np.testing.assert_array_equal(built.weights[0].variable.numpy(), np.ones((8, 3)))


def test_initializer_function_of_the_wrong_shape_is_one_message(write):
    plugin = write(
        "bad_init.py",
        """\
        from kinit_cli import register_initializer


        @register_initializer
        def three(a, b, c):
            return None
        """,
    )
    config = write(
        "c.yaml",
        "plugins: [bad_init.py]\nmodel: {input_shape: [2], layers: [{class_name: Dense, "
        "config: {units: 1}}]}\n",
    )
    with pytest.raises(PluginError) as caught:
        prepare(config)
    assert str(caught.value) == (
        f"{plugin}:4: initializer function three(a, b, c) cannot be called as an initializer. "
        "kinit accepts f(shape, dtype=None), f(shape), or a function with no arguments that "
        "returns an initializer object (called once to get it)."
    )


def test_untracked_tf_variables_are_an_error_at_validate(runner, tmp_path, write):
    plugin = _plugin(tmp_path, "tf_variables.py")
    config = write(
        "v.yaml",
        """\
        plugins: [tf_variables.py]
        model:
          input_shape: [64]
          layers:
            - {class_name: SimpleDense, config: {units: 8}}
        """,
    )
    result = runner.invoke(cli, ["validate", str(config)])
    assert result.exit_code == 2
    assert result.output == (
        f"error: {config}:5:7: model.layers[0]: SimpleDense 'simple_dense' ({plugin}:6) keeps "
        "weights Keras 3 does not track: w (tf.Variable), b (tf.Variable). They would be "
        "neither trained nor saved. Make each with self.add_weight(shape=..., "
        "initializer=..., trainable=True) in build() or __init__ instead.\n"
    )


def test_keras2_import_names_the_keras3_spelling(runner, tmp_path, write):
    plugin = _plugin(tmp_path, "keras2_topology.py")
    config = write(
        "k.yaml",
        "plugins: [keras2_topology.py]\nmodel: {input_shape: [2], layers: [{class_name: Dense, "
        "config: {units: 1}}]}\n",
    )
    result = runner.invoke(cli, ["validate", str(config)])
    assert result.exit_code == 2
    assert result.output == (
        f"error: {plugin}:3: plugin 'keras2_topology.py' failed to import: "
        "ModuleNotFoundError: No module named 'keras.engine'. 'keras.engine' is Keras 2's; "
        "Keras 3 has keras.layers.Layer, keras.Model and keras.Input (from keras import "
        "layers) instead. (run with --debug for the traceback)\n"
    )


def test_keras2_backend_call_names_keras_ops(runner, tmp_path, write):
    plugin = _plugin(tmp_path, "keras2_backend.py")
    config = write(
        "k.yaml",
        """\
        plugins: [keras2_backend.py]
        model:
          input_shape: [4]
          layers: [{class_name: DotLayer, config: {output_dim: 2}}]
        """,
    )
    result = runner.invoke(cli, ["validate", str(config)])
    assert result.exit_code == 2
    assert result.output.startswith(
        f"error: {config}:4:12: model.layers[0]: applying DotLayer 'dot_layer' failed "
        f"(at {plugin}:17): "
    )
    assert result.output.endswith(
        "module 'keras.backend' has no attribute 'dot'. keras.backend.dot (K.dot) is Keras 2's; "
        "Keras 3 spells it keras.ops.dot.\n"
    )
    assert "Traceback" not in result.output


def test_sequential_shares_applies_a_layer_again(tutorial, write):
    config = write(
        "s.yaml",
        """\
        seed: 1
        model:
          input_shape: [64]
          layers:
            - {class_name: Dense, config: {units: 16, activation: relu}}
            - {class_name: Dense, config: {units: 16, activation: relu, name: shared}}
            - {shares: shared}
            - {class_name: Dense, config: {units: 10, activation: softmax}}
        """,
    )
    built = prepare(config).built
    assert [w.path for w in built.weights] == [
        "dense/kernel",
        "dense/bias",
        "shared/kernel",
        "shared/bias",
        "dense_1/kernel",
        "dense_1/bias",
    ]
    shared = next(info for info in built.layers if info.name == "shared")
    assert shared.calls == ["layers[1]", "layers[2]"]
    assert shared.output_shapes == [(None, 16), (None, 16)]
    model = built.model
    x = np.random.default_rng(0).normal(size=(2, 64)).astype("float32")
    dense, share, head = (model.get_layer(n) for n in ("dense", "shared", "dense_1"))
    expected = head(share(share(dense(x))))
    np.testing.assert_allclose(model(x), expected, rtol=1e-6)


def test_sequential_shares_an_unknown_layer(write):
    config = write(
        "s.yaml",
        """\
        model:
          input_shape: [4]
          layers:
            - {class_name: Dense, config: {units: 4}}
            - {shares: dens}
        """,
    )
    with pytest.raises(ConfigError) as caught:
        prepare(config)
    assert str(caught.value) == (
        f"{config}:5:16: model.layers[1].shares: 'dens' is not a layer defined above. "
        "Did you mean 'dense'? Layers above: dense."
    )


# --------------------------------------------------------------------------- whole runs


@pytest.mark.slow
@pytest.mark.parametrize(
    ("plugin", "text", "unsaveable"),
    [
        ("custom_initializer.py", CUSTOM_INITIALIZER, ["SimpleDense"]),
        ("subclassing_guide.py", SUBCLASSING_GUIDE, ["Linear"]),
        ("parameters_chapter.py", MODEL_SUBCLASS, ["Linear"]),
        ("parameters_chapter.py", D2L_LAYER, ["MyDense"]),
    ],
    ids=["custom-initializer", "subclassing-guide", "model-subclass", "d2l-layer"],
)
def test_tutorial_model_trains_and_its_run_reloads(
    runner, tutorial, tmp_path, plugin, text, unsaveable
):
    config = tutorial(plugin, text)
    run = tmp_path / "run"
    saved = "model.weights.h5"
    result = runner.invoke(cli, ["train", str(config), "-q", "--output", str(run)])
    assert result.exit_code == 0, result.output
    warned = [
        line.removeprefix("warning: ").split(" (")[0]
        for line in result.stderr.splitlines()
        if "cannot be reloaded by Keras" in line
    ]
    assert warned == unsaveable
    assert (run / saved).exists() and not (run / "model.keras").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["model_file"] == saved and metrics["test"]["accuracy"] > 0.1
    final = {
        v["path"]: v for v in json.loads((run / "weights-final.json").read_text())["variables"]
    }
    initial = {
        v["path"]: v for v in json.loads((run / "weights-init.json").read_text())["variables"]
    }
    # Trained: every kernel moved away from what its initializer drew.
    kernels = [p for p, v in initial.items() if len(v["shape"]) == 2]
    assert kernels and all(final[p]["sha256"] != initial[p]["sha256"] for p in kernels)

    shown = runner.invoke(cli, ["inspect-weights", str(run), "--json"])
    assert shown.exit_code == 0, shown.output
    variables = json.loads(shown.output)["variables"]
    assert [v["path"] for v in variables] == list(final)
    for v in variables:
        # The trained values, and what made them initially, as the run recorded it.
        assert v["sha256"] == final[v["path"]]["sha256"]
        assert v["initializer"] == initial[v["path"]]["initializer"] is not None

    started = tmp_path / "started.yaml"
    started.write_text(text + f"init_from: {{source: {run}}}\n")
    built = prepare(started).built
    for w in built.weights:
        assert w.loaded_from == f"{run / saved}:{w.path}"
        assert w.initializer == initial[w.path]["initializer"]


@pytest.mark.slow
def test_frozen_layers_of_a_run_keras_cannot_reload_stay_frozen_in_its_report(
    runner, tutorial, tmp_path
):
    """A run saved as model.weights.h5 is rebuilt from its config, without init_from: what
    it froze comes from weights-init.json, not from the rebuilt layers."""
    config = tutorial("subclassing_guide.py", SUBCLASSING_GUIDE)
    source = tmp_path / "source"
    assert runner.invoke(cli, ["train", str(config), "-q", "-o", str(source)]).exit_code == 0
    text = config.read_text() + f"init_from: {{source: {source}, layers: [linear], freeze: true}}\n"
    tuned = config.with_name("tuned.yaml")
    tuned.write_text(text)
    run = tmp_path / "tuned"
    result = runner.invoke(cli, ["train", str(tuned), "-q", "-o", str(run)])
    assert result.exit_code == 0, result.output
    assert (run / "model.weights.h5").exists()
    doc = json.loads(runner.invoke(cli, ["inspect-weights", str(run), "--json"]).stdout)
    by_path = {v["path"]: v for v in doc["variables"]}
    for path in ("linear/variable", "linear/variable_1"):
        assert by_path[path]["trainable"] is False
        assert by_path[path]["provenance"]["kind"] == "loaded"
    assert by_path["dense/kernel"]["trainable"] is True
    assert by_path["dense/kernel"]["provenance"]["kind"] == "trained"
    frozen = sum(v["size"] for p, v in by_path.items() if p.startswith("linear/"))
    assert doc["totals"]["non_trainable"] == frozen


@pytest.mark.slow  # trains for seconds
def test_model_keras_written_when_the_classes_round_trip(runner, tmp_path, write):
    """A plugin written with get_config and **kwargs still gets a .keras file."""
    run = tmp_path / "run"
    config = write(
        "c.yaml",
        """\
        model:
          input_shape: [64]
          layers:
            - {class_name: SimpleDense, config: {units: 8}}
            - {class_name: Dense, config: {units: 10, activation: softmax}}
        compile: {loss: sparse_categorical_crossentropy}
        """,
    )
    result = runner.invoke(cli, ["train", str(config), "-q", "--output", str(run)])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    assert (run / "model.keras").exists() and not (run / "model.weights.h5").exists()
    loaded = keras.saving.load_model(run / "model.keras")
    assert [type(layer).__name__ for layer in loaded.layers] == ["SimpleDense", "Dense"]


@pytest.mark.slow
def test_interrupted_tutorial_run_resumes(tutorial, tmp_path):
    """--resume rebuilds from the run's config.yaml: classes Keras cannot reload resume too."""
    from kinit_cli.errors import TrainingInterrupted
    from kinit_cli.training.plan import TrainOptions, plan
    from kinit_cli.training.trainer import Trainer

    config = tutorial("subclassing_guide.py", SUBCLASSING_GUIDE)
    run = tmp_path / "run"
    trainer = Trainer(plan(str(config), ["train.epochs=3"], [], TrainOptions(output=str(run))))
    trainer.start()
    stop = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: epoch == 0 and trainer.guard.interrupt(signal.SIGINT)
    )
    trainer.fit([stop])
    with pytest.raises(TrainingInterrupted, match="1 of 3 epochs are saved"):
        trainer.finish()
    trainer.close()
    resumed = Trainer(plan(None, [], [], TrainOptions(resume=str(run))))
    resumed.start()
    assert resumed.plan.initial_epoch == 1
    resumed.fit([])
    result = resumed.finish()
    resumed.close()
    assert result.metrics["epochs"] == 3 and result.metrics["model_file"] == "model.weights.h5"
    assert [w.path for w in resumed.plan.built.weights] == [
        "linear/variable",
        "linear/variable_1",
        "my_layer/kernel",
        "dense/kernel",
        "dense/bias",
    ]


@pytest.mark.slow
def test_initializer_without_get_config_warns_and_its_run_reloads(runner, tmp_path, write):
    plugin = _plugin(tmp_path, "no_get_config.py")
    config = write(
        "n.yaml",
        """\
        seed: 1
        plugins: [no_get_config.py]
        model:
          input_shape: [64]
          layers:
            - class_name: Dense
              config:
                units: 16
                kernel_initializer: {class_name: ScaledNormal, config: {mean: 0.0, stddev: 0.1}}
            - {class_name: Dense, config: {units: 10, activation: softmax}}
        compile: {loss: sparse_categorical_crossentropy}
        """,
    )
    run = tmp_path / "run"
    result = runner.invoke(cli, ["train", str(config), "-q", "--output", str(run)])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == (
        f"warning: ScaledNormal ({plugin}:5) cannot be reloaded by Keras: "
        "from_config(get_config()) fails: ScaledNormal.__init__() missing 2 required "
        "positional arguments: 'mean' and 'stddev'. A get_config() returning mean, stddev "
        "would fix it. kinit keeps the run usable anyway: it writes the weights to "
        "model.weights.h5 instead of model.keras, and inspect-weights RUN, predict, "
        "evaluate, --resume and init_from rebuild the model from the run's config.yaml "
        "(importing its plugins with --trust-plugins, or --plugin FILE)."
    )
    shown = runner.invoke(cli, ["inspect-weights", str(run), "--json"])
    assert shown.exit_code == 0, shown.output
    kernel = json.loads(shown.output)["variables"][0]
    assert kernel["path"] == "dense/kernel"
    # No get_config: the arguments are read back from the attributes __init__ set.
    assert kernel["initializer"] == {
        "class_name": "no_get_config>ScaledNormal",
        "config": {"mean": 0.0, "stddev": 0.1},
    }
    final = json.loads((run / "weights-final.json").read_text())["variables"][0]
    assert kernel["sha256"] == final["sha256"]


def test_catalog_says_a_factory_is_one(runner, tmp_path):
    plugin = _plugin(tmp_path, "parameters_chapter.py")
    result = runner.invoke(cli, ["list-initializers", "my_init", "--plugin", str(plugin), "--json"])
    assert result.exit_code == 0, result.output
    item = json.loads(result.output)
    assert item["qualified_name"] == "parameters_chapter>my_init"
    assert item["summary"] == (
        "Factory: my_init() is called once and the initializer it returns is used."
    )
    assert item["parameters"] == [] and item["doc"] == ""


BLOCKS = """\
seed: 3
plugins: [blocks.py]
model:
  input_shape: [64]
  layers:
    - {class_name: MLPBlock, config: {units: 16}}
    - {class_name: ResNetMLP, config: {units: 8, stages: 2}}
    - {class_name: Dense, config: {units: 10, activation: softmax}}
"""


def test_sub_layers_in_lists_are_named_by_their_place(tutorial):
    built = prepare(tutorial("blocks.py", BLOCKS)).built
    assert [w.path for w in built.weights] == [
        "mlp_block/blocks.0/kernel",
        "mlp_block/blocks.0/bias",
        "mlp_block/blocks.1/kernel",
        "mlp_block/blocks.1/bias",
        "res_net_mlp/stem/kernel",
        "res_net_mlp/stem/bias",
        "res_net_mlp/stages.0.0/kernel",
        "res_net_mlp/stages.0.0/bias",
        "res_net_mlp/stages.0.1/kernel",
        "res_net_mlp/stages.0.1/bias",
        "res_net_mlp/stages.1.0/kernel",
        "res_net_mlp/stages.1.0/bias",
        "res_net_mlp/stages.1.1/kernel",
        "res_net_mlp/stages.1.1/bias",
        "res_net_mlp/head/kernel",
        "res_net_mlp/head/bias",
        # The blocks' own Dense sub-layers do not use up the list's numbering.
        "dense/kernel",
        "dense/bias",
    ]
    assert [info.name for info in built.layers] == ["mlp_block", "res_net_mlp", "dense"]


def test_catalog_shows_a_plugin_class_s_own_docstring_and_what_it_shadows(runner, tmp_path):
    plugin = _plugin(tmp_path, "custom_initializer.py")
    _plugin(tmp_path, "blocks.py")
    result = runner.invoke(
        cli,
        ["list-layers", "--json", "--plugin", str(plugin), "--plugin", str(tmp_path / "blocks.py")],
    )
    assert result.exit_code == 0, result.output
    items = {item["qualified_name"]: item for item in json.loads(result.output)}
    assert items["blocks>MLPBlock"]["summary"] == "" and items["blocks>MLPBlock"]["doc"] == ""
    assert [p["name"] for p in items["blocks>MLPBlock"]["parameters"]] == ["units", "depth"]
    assert items["kinit>SimpleDense"]["source"] == (
        "kinit (built-in); shadowed by custom_initializer>SimpleDense"
    )
    assert items["custom_initializer>SimpleDense"]["source"] == f"plugin {plugin}"


def test_a_failing_call_shows_its_own_error_without_keras_build_warnings(runner, tmp_path, write):
    plugin = _plugin(tmp_path, "blocks.py")
    config = write(
        "bad.yaml",
        """\
        plugins: [blocks.py]
        model:
          input_shape: [64]
          layers: [{class_name: ResidualBlock, config: {units: 32}}]
        """,
    )
    result = runner.invoke(cli, ["validate", str(config)])
    assert result.exit_code == 2
    # Keras warns that the layer "looks like it has unbuilt state" and advises a
    # compute_output_shape(): beside the point, since x + y itself fails.
    assert "UserWarning" not in result.output and "infer the output shape" not in result.output
    line = plugin.read_text().splitlines().index("        return tf.nn.relu(self.norm(x + y))")
    assert result.output.startswith(
        f"error: {config}:4:12: model.layers[0]: applying ResidualBlock 'residual_block' "
        f"failed (at {plugin}:{line + 1}): Dimensions must be equal, but are 64 and 32"
    ), result.output


def test_a_broken_call_is_found_at_validate_even_with_compute_output_shape(runner, tmp_path, write):
    plugin = _plugin(tmp_path, "keras2_docs.py")
    config = write(
        "k.yaml",
        """\
        plugins: [keras2_docs.py]
        model:
          input_shape: [64]
          layers:
            - {class_name: MyLayer, config: {output_dim: 32}}
        """,
    )
    result = runner.invoke(cli, ["validate", str(config)])
    assert result.exit_code == 2
    line = plugin.read_text().splitlines().index("        return K.dot(x, self.kernel)") + 1
    assert result.output == (
        f"error: {config}:5:7: model.layers[0]: applying MyLayer 'my_layer' failed "
        f"(at {plugin}:{line}): module 'keras.backend' has no attribute 'dot'. "
        "keras.backend.dot (K.dot) is Keras 2's; Keras 3 spells it keras.ops.dot.\n"
    )


GUIDE_MODEL = """\
seed: 1
plugins: [training_guide.py]
model:
  input_shape: [64]
  layers: [{class_name: Dense, config: {units: 10, activation: softmax}}]
train: {epochs: 1}
"""


def test_plugin_code_failing_in_training_is_one_message(runner, tmp_path, write):
    plugin = _plugin(tmp_path, "training_guide.py")
    config = write(
        "s.yaml",
        GUIDE_MODEL
        + """\
compile:
  optimizer: {class_name: SGD, config: {learning_rate: {class_name: MyLRSchedule, config: {initial_learning_rate: 0.1}}}}
  loss: sparse_categorical_crossentropy
""",
    )
    result = runner.invoke(cli, ["train", str(config), "-q", "--output", str(tmp_path / "run")])
    assert result.exit_code == 1
    line = (
        plugin.read_text()
        .splitlines()
        .index("        return self.initial_learning_rate / (step + 1)")
    )
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(
        f"error: {plugin}:{line + 1}: training failed in plugin code (__call__): TypeError: "
    ), error
    assert "Traceback" not in result.output and "unexpected failure" not in result.output


@pytest.mark.slow
def test_a_loss_keras_cannot_reload_keeps_the_run_as_weights(runner, tmp_path, write):
    plugin = _plugin(tmp_path, "training_guide.py")
    config = write(
        "l.yaml",
        GUIDE_MODEL
        + """\
compile:
  loss: {class_name: CustomMSE, config: {regularization_factor: 0.1}}
""",
    )
    run = tmp_path / "run"
    result = runner.invoke(cli, ["train", str(config), "-q", "--output", str(run)])
    assert result.exit_code == 0, result.output
    assert (
        f"warning: CustomMSE ({plugin}:7) cannot be reloaded by Keras: from_config(get_config()) fails: CustomMSE.__init__() got an unexpected keyword argument 'reduction'"
        in result.stderr
    )
    assert (run / "model.weights.h5").exists() and not (run / "model.keras").exists()
    shown = runner.invoke(cli, ["inspect-weights", str(run), "--json"])
    assert shown.exit_code == 0, shown.output
    assert [v["path"] for v in json.loads(shown.output)["variables"]] == [
        "dense/kernel",
        "dense/bias",
    ]


def test_an_undecorated_function_gets_told_to_use_a_decorator(tmp_path, write):
    _plugin(tmp_path, "training_guide.py")
    config = write("f.yaml", GUIDE_MODEL + "compile: {loss: custom_mean_squared_error}\n")
    with pytest.raises(ConfigError) as caught:
        prepare(config)
    assert str(caught.value) == (
        f"{config}:7:17: compile.loss: unknown loss 'custom_mean_squared_error'. The plugin "
        "'training_guide.py' defines a function custom_mean_squared_error(), but functions are "
        "registered only with a decorator: put @register_loss (from kinit_cli) or "
        "@keras.saving.register_keras_serializable() above it. See `kinit list-losses` for "
        "every loss kinit knows (Keras built-ins and loaded plugins)."
    )
