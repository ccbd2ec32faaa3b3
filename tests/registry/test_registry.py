"""Plugin loading and name resolution through Keras's own registry."""

from __future__ import annotations

import importlib.metadata

import keras
import pytest

from kinit_cli.errors import PluginError, ResolveError
from kinit_cli.registry import plugins as plugin_loading
from kinit_cli.registry import signatures
from kinit_cli.registry.catalog import Registry
from kinit_cli.registry.plugins import load_plugins

PLUGIN = """\
import keras
from kinit_cli import register_initializer, register_layer

@register_initializer
class Gauss(keras.initializers.Initializer):
    \"\"\"Normal draws with a configurable scale.\"\"\"
    def __init__(self, scale=1.0, seed=None):
        self.scale, self.seed = scale, seed
    def __call__(self, shape, dtype=None):
        return keras.random.normal(shape, stddev=self.scale, dtype=dtype, seed=self.seed)
    def get_config(self):
        return {"scale": self.scale, "seed": self.seed}

@register_initializer(name="halves")
def half_init(shape, dtype=None):
    \"\"\"Every value 0.5.\"\"\"
    return keras.ops.full(shape, 0.5, dtype=dtype)
"""


@pytest.fixture
def reg() -> Registry:
    load_plugins([])
    return Registry()


@pytest.mark.parametrize(
    ("kind", "name", "expected"),
    [
        ("initializer", "GlorotUniform", "GlorotUniform"),
        ("initializer", "glorot_uniform", "GlorotUniform"),
        ("initializer", "GLOROT_UNIFORM", "GlorotUniform"),
        ("initializer", "he_normal", "HeNormal"),
        ("initializer", "keras>Orthogonal", "Orthogonal"),
        ("optimizer", "rmsprop", "RMSprop"),
        ("optimizer", "Adam", "Adam"),
        ("optimizer", "adamw", "AdamW"),
        ("layer", "dense", "Dense"),
        ("layer", "SimpleDense", "SimpleDense"),
        ("layer", "kinit>simpledense", "SimpleDense"),
        ("initializer", "examplerandomnormal", "ExampleRandomNormal"),
        ("regularizer", "l2", "L2"),
        ("constraint", "max_norm", "MaxNorm"),
        ("activation", "relu", "relu"),
        ("loss", "sparse_categorical_crossentropy", "sparse_categorical_crossentropy"),
        ("loss", "Huber", "Huber"),
        ("metric", "accuracy", "Accuracy"),
        ("schedule", "exponentialdecay", "ExponentialDecay"),
    ],
)
def test_names_resolve(reg, kind, name, expected):
    assert reg.resolve(kind, name).name == expected


def test_builtin_entries_carry_their_keras_aliases(reg):
    entry = reg.resolve("initializer", "GlorotUniform")
    assert entry.obj is keras.initializers.GlorotUniform
    assert entry.aliases == ("glorot_uniform",)
    assert entry.source == "keras" and entry.qualified == "keras>GlorotUniform"
    simple = reg.resolve("layer", "SimpleDense")
    assert simple.key == "kinit>SimpleDense" and simple.source == "kinit (built-in)"


def test_unknown_name_suggests_and_says_where_to_look(reg):
    with pytest.raises(ResolveError) as info:
        reg.resolve("initializer", "glorot_unifrom")
    assert str(info.value) == (
        "unknown initializer 'glorot_unifrom'. Did you mean 'glorot_uniform' or 'glorot_normal' "
        "or 'random_uniform'? "
        "See `kinit list-initializers` for every initializer kinit knows (Keras built-ins and "
        "loaded plugins)."
    )


@pytest.mark.parametrize(
    ("kind", "name", "keras_name", "canonical"),
    [
        ("initializer", "zeros_initializer", "zeros", " (Zeros)"),
        ("initializer", "tf.random_normal_initializer", "random_normal", " (RandomNormal)"),
        ("initializer", "tf.keras.initializers.GlorotUniform", "GlorotUniform", ""),
        ("activation", "tf.nn.relu", "relu", ""),
        ("layer", "tf.keras.layers.Dense", "Dense", ""),
    ],
)
def test_tensorflow_spellings_suggest_the_keras_name(reg, kind, name, keras_name, canonical):
    with pytest.raises(ResolveError) as info:
        reg.resolve(kind, name)
    dropped = " or ".join(
        [
            w
            for w, on in (
                ("a module path", "." in name),
                ("TensorFlow's '_initializer' suffix", name.endswith("_initializer")),
            )
            if on
        ]
    )
    assert str(info.value).startswith(
        f"unknown {kind} '{name}'. Did you mean '{keras_name}'{canonical}? A config names the "
        f"Keras object itself, without {dropped}."
    )


def test_file_plugin_registers_class_and_function_initializers(write):
    path = write("gauss_plugin.py", PLUGIN)
    (loaded,) = [p for p in load_plugins([str(path)]) if p.spec == str(path)]
    assert loaded.module == "gauss_plugin"
    assert loaded.registered == ["gauss_plugin>Gauss", "gauss_plugin>halves"]
    reg = Registry()
    gauss = reg.resolve("initializer", "gauss")
    assert gauss.source == f"plugin {path}" and gauss.key == "gauss_plugin>Gauss"
    halves = reg.resolve("initializer", "halves").obj()
    assert isinstance(halves, keras.initializers.Initializer)
    assert keras.ops.convert_to_numpy(halves((2, 3))).tolist() == [[0.5] * 3] * 2
    # The wrapper serializes under the registered name and comes back from it.
    config = keras.initializers.serialize(halves)
    assert config["registered_name"] == "gauss_plugin>halves"
    assert type(keras.initializers.deserialize(config)) is type(halves)


def test_relative_plugin_paths_resolve_against_the_base_dir(write, tmp_path):
    write("sub/rel_plugin.py", PLUGIN.replace("Gauss", "RelGauss"))
    load_plugins(["sub/rel_plugin.py"], base_dir=tmp_path)
    assert Registry().resolve("initializer", "RelGauss").key == "rel_plugin>RelGauss"


def test_two_plugins_with_one_bare_name_need_the_package_form(write):
    a = write("plug_a.py", PLUGIN)
    b = write("plug_b.py", PLUGIN)
    load_plugins([str(a), str(b)])
    reg = Registry()
    with pytest.raises(ResolveError) as info:
        reg.resolve("initializer", "Gauss")
    assert str(info.value) == (
        f"'Gauss' is ambiguous: 'plug_a>Gauss' (plugin {a}), 'plug_b>Gauss' (plugin {b}) all "
        "claim it. Write the package>Name form, e.g. 'plug_b>Gauss'."
    )
    assert reg.resolve("initializer", "plug_b>Gauss").obj.__module__ == "plug_b"


def test_same_registered_key_from_two_plugins_is_refused(write):
    a = write(
        "dup_one.py",
        PLUGIN.replace("@register_initializer\n", "@register_initializer(package='shared')\n", 1),
    )
    b = write(
        "dup_two.py",
        PLUGIN.replace("@register_initializer\n", "@register_initializer(package='shared')\n", 1),
    )
    with pytest.raises(PluginError) as info:
        load_plugins([str(a), str(b)])
    assert str(info.value).startswith(
        f"plugin '{b}' registers 'shared>Gauss', which plugin '{a}' already registered."
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "missing_plugin.py",
            "plugin file 'missing_plugin.py' not found (looked for {tmp}/missing_plugin.py)",
        ),
        (
            "no_such_module_kinit",
            "plugin 'no_such_module_kinit': no module named "
            "'no_such_module_kinit'. Give an importable module name, or a "
            "path to a .py file (relative to the config file's folder); if it is a library, "
            "install it: pip install no-such-module-kinit.",
        ),
        (
            "raising_plugin.py",
            "{tmp}/raising_plugin.py:1: plugin 'raising_plugin.py' failed to import: "
            "ValueError: bad plugin state (run with --debug for the traceback)",
        ),
        (
            "broken_syntax.py",
            "{tmp}/broken_syntax.py:1: plugin 'broken_syntax.py' failed to import: SyntaxError: ",
        ),
    ],
)
def test_plugin_failures_name_the_plugin(write, tmp_path, spec, message):
    write("raising_plugin.py", "raise ValueError('bad plugin state')\n")
    write("broken_syntax.py", "def f(:\n")
    with pytest.raises(PluginError) as info:
        load_plugins([spec], base_dir=tmp_path)
    assert str(info.value).startswith(message.format(tmp=tmp_path))
    assert info.value.plugin == spec


def test_entry_points_are_discovered(write, tmp_path, monkeypatch):
    write("ep_pack.py", PLUGIN.replace("Gauss", "EpGauss"))
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = importlib.metadata.EntryPoint("ep", "ep_pack", plugin_loading.ENTRY_POINT_GROUP)
    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        lambda group: [ep] if group == plugin_loading.ENTRY_POINT_GROUP else [],
    )
    loaded = load_plugins([])
    assert loaded[-1].spec == "ep (entry point ep_pack)"
    entry = Registry().resolve("initializer", "EpGauss")
    assert entry.key == "ep_pack>EpGauss" and entry.source == "plugin ep (entry point ep_pack)"


def test_failing_entry_point_names_its_distribution_entry(monkeypatch):
    # Recorded, not raised: one broken installed package must not disable every command
    # (tests/registry/test_plugins.py has the warning and the resolver's message).
    ep = importlib.metadata.EntryPoint(
        "bad", "kinit_no_such_pkg.mod", plugin_loading.ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [ep])
    monkeypatch.setattr(plugin_loading, "ENTRY_POINT_FAILURES", {})
    loaded = load_plugins([])
    assert [p.spec for p in loaded] == list(plugin_loading.BUILTIN_PLUGINS)
    failure = plugin_loading.ENTRY_POINT_FAILURES["bad"]
    assert (failure.value, failure.package) == ("kinit_no_such_pkg.mod", None)
    assert failure.error.startswith(
        "plugin 'bad (entry point kinit_no_such_pkg.mod)' failed to import: "
        "ModuleNotFoundError: No module named 'kinit_no_such_pkg'"
    )


def test_keras_decorator_registrations_are_found_by_kind(write):
    path = write(
        "keras_style.py",
        """\
        import keras

        @keras.saving.register_keras_serializable(package="ks")
        class Doubler(keras.layers.Layer):
            def call(self, x):
                return 2 * x

        @keras.saving.register_keras_serializable(package="ks")
        def clipped_relu(x):
            return keras.ops.minimum(keras.ops.relu(x), 6.0)
        """,
    )
    load_plugins([str(path)])
    reg = Registry()
    assert reg.resolve("layer", "doubler").key == "ks>Doubler"
    assert reg.resolve("activation", "clipped_relu").key == "ks>clipped_relu"
    with pytest.raises(ResolveError):
        reg.resolve("initializer", "Doubler")


def test_parameters_follow_kwargs_up_the_hierarchy():
    params, open_kwargs = signatures.parameters(keras.layers.Dense)
    names = [p.name for p in params]
    assert names[:2] == ["units", "activation"] and not open_kwargs
    assert {"name", "dtype", "trainable", "input_shape"} <= set(names)
    params, open_kwargs = signatures.parameters(keras.optimizers.RMSprop)
    assert "learning_rate" in [p.name for p in params] and not open_kwargs
    assert [p.name for p in signatures.own_parameters(keras.initializers.RandomNormal)] == [
        "mean",
        "stddev",
        "seed",
    ]


def test_describe_gives_plain_data(reg):
    item = signatures.describe(reg.resolve("initializer", "random_normal"))
    assert item["name"] == "RandomNormal"
    assert item["aliases"] == ["normal", "random_normal"]
    assert item["parameters"] == [
        {"name": "mean", "required": False, "default": 0.0},
        {"name": "stddev", "required": False, "default": 0.05},
        {"name": "seed", "required": False, "default": None},
    ]
    assert item["summary"].startswith("Random normal initializer")


def test_base_class_required_parameters_are_the_subclass_business():
    params, _ = signatures.parameters(keras.layers.Conv2D)
    required = [p.name for p in params if p.required]
    assert required == ["filters", "kernel_size"]
    assert "rank" in [p.name for p in params]  # accepted by the base, supplied by Conv2D
