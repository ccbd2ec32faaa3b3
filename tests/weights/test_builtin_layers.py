"""model.builtin_layers and weights.builtin_initializers against Keras itself, and a .keras
file read from its files (model.weights_file) against the same file read through Keras."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from kinit_cli.model import builtin_layers, saved, weights_file
from kinit_cli.model.variables import describe_initializer
from kinit_cli.weights import report, theory
from kinit_cli.weights.builtin_initializers import builtin
from tests.conftest import ROOT

L = keras.layers

# (layer, the input shape it is built for), covering each class and each config switch.
CASES = [
    (lambda: L.Dense(3), (None, 5)),
    (lambda: L.Dense(3, use_bias=False, trainable=False), (None, 5)),
    (lambda: L.EinsumDense("ab,bc->ac", output_shape=4, bias_axes="c"), (None, 5)),
    (lambda: L.EinsumDense("ab,bc->ac", output_shape=4), (None, 5)),
    (lambda: L.Conv1D(2, 3), (None, 8, 3)),
    (lambda: L.Conv2D(2, 3, use_bias=False), (None, 8, 8, 3)),
    (lambda: L.Conv3D(2, 3), (None, 6, 6, 6, 3)),
    (lambda: L.Conv1DTranspose(2, 3), (None, 8, 3)),
    (lambda: L.Conv2DTranspose(2, 3), (None, 8, 8, 3)),
    (lambda: L.Conv3DTranspose(2, 3, use_bias=False), (None, 6, 6, 6, 3)),
    (lambda: L.DepthwiseConv1D(3), (None, 8, 3)),
    (lambda: L.DepthwiseConv2D(3, use_bias=False), (None, 8, 8, 3)),
    (lambda: L.SeparableConv1D(2, 3), (None, 8, 3)),
    (lambda: L.SeparableConv2D(2, 3, use_bias=False), (None, 8, 8, 3)),
    (lambda: L.BatchNormalization(), (None, 4)),
    (lambda: L.BatchNormalization(center=False, trainable=False), (None, 4)),
    (lambda: L.BatchNormalization(scale=False), (None, 4)),
    (lambda: L.LayerNormalization(), (None, 4)),
    (lambda: L.LayerNormalization(rms_scaling=True), (None, 4)),
    (lambda: L.LayerNormalization(center=False), (None, 4)),
    (lambda: L.RMSNormalization(), (None, 4)),
    (lambda: L.GroupNormalization(groups=2), (None, 4)),
    (lambda: L.GroupNormalization(groups=2, scale=False), (None, 4)),
    (lambda: L.Embedding(10, 4), (None, 3)),
    (lambda: L.PReLU(), (None, 4)),
    (lambda: L.Normalization(), (None, 4)),
    (lambda: L.Normalization(mean=0.5, variance=2.0), (None, 4)),
]


@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
@pytest.mark.parametrize("case", range(len(CASES)))
def test_the_table_names_each_variable_as_keras_makes_it(case):
    make, shape = CASES[case]
    layer = make()
    layer.build(shape)
    entry = keras.saving.serialize_keras_object(layer)
    slots = builtin_layers.slots(json.loads(json.dumps(entry)))
    assert [s.name for s in slots] == [v.name for v in layer.weights]  # the file's order
    assert [s.trainable and layer.trainable for s in slots] == [v.trainable for v in layer.weights]
    for slot in slots:
        record = builtin_layers.initializer_record(entry["config"], slot)
        if isinstance(slot.initializer, str):  # the layer keeps it under that config key
            made = describe_initializer(getattr(layer, slot.initializer))
            assert record == made
        else:
            assert record["class_name"] in ("Zeros", "Ones")


def test_the_table_covers_the_layers_keras_writes_in_its_applications():
    known = set(builtin_layers.classes())
    for name in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "BatchNormalization"):
        assert name in known
    # A class the table says holds no variables has no add_weight in its code.
    weightless = [n for n in known if builtin_layers.slots(_entry(n)) == []]
    assert len(weightless) > 40
    for name in weightless:
        cls = getattr(L, name)
        own = [c for c in cls.__mro__ if c.__module__.startswith("keras.src.layers.")]
        code = "".join(inspect.getsource(c) for c in own if c is not L.Layer)
        assert "add_weight" not in code, name


def _entry(name: str) -> dict:
    return {"module": "keras.layers", "class_name": name, "config": {"name": "x"}}


def test_an_unknown_class_or_config_is_left_to_keras():
    assert builtin_layers.slots({**_entry("Dense"), "module": "demo"}) is None
    assert builtin_layers.slots(_entry("Lambda")) is None
    lora = {**_entry("Dense"), "config": {"name": "d", "lora_rank": 2}}
    assert builtin_layers.slots(lora) is None
    int8 = {"name": "d", "dtype": {"class_name": "QuantizedDTypePolicy", "config": {}}}
    assert builtin_layers.slots({**_entry("Dense"), "config": int8}) is None


INITIALIZERS = [
    ("GlorotUniform", {}),
    ("glorot_normal", {}),
    ("HeNormal", {"seed": 3}),
    ("HeUniform", {}),
    ("LecunNormal", {}),
    ("lecun_uniform", {}),
    ("VarianceScaling", {"scale": 0.5, "mode": "fan_out", "distribution": "normal"}),
    ("VarianceScaling", {"scale": 2.0, "mode": "fan_avg", "distribution": "untruncated_normal"}),
    ("VarianceScaling", {"input_axes": [0], "output_axes": [1]}),
    ("RandomNormal", {"mean": 0.5, "stddev": 0.2}),
    ("normal", {}),
    ("RandomUniform", {"minval": 0.1, "maxval": -0.3}),
    ("TruncatedNormal", {"stddev": 0.1}),
    ("Zeros", {}),
    ("ones", {}),
    ("Constant", {"value": 0.25}),
    ("Orthogonal", {"gain": 2.0}),
    ("Identity", {"gain": 0.5}),
    ("Identity", {}),
]


@pytest.mark.parametrize(("name", "config"), INITIALIZERS)
@pytest.mark.parametrize("shape", [(3, 4, 5), (6, 4)])
def test_a_builtin_initializers_theory_needs_no_keras(name, config, shape):
    record = {"class_name": name, "config": config}
    assert builtin(record) is not None
    fast = theory.theory_with_reason(record, shape)
    obj = keras.initializers.get({"class_name": name, "config": dict(config)})
    label = keras.saving.get_registered_name(type(obj))
    through_keras = theory._keras_theory(obj, label, shape, config)
    assert fast == through_keras


def test_an_initializer_keras_would_refuse_is_left_to_keras():
    assert builtin({"class_name": "GlorotUniform", "config": {"stddev": 1}}) is None
    assert builtin({"class_name": "VarianceScaling", "config": {"mode": "sideways"}}) is None
    assert builtin({"class_name": "demo>Scaled", "config": {}}) is None
    assert builtin({"class_name": "Zeros", "module": "demo", "config": {}}) is None


def _model() -> keras.Model:
    """Most table classes in one functional model, with an operation on a constant."""
    image = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, name="conv")(image)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU()(x)
    x = L.DepthwiseConv2D(3, name="depthwise")(x)
    x = L.SeparableConv2D(4, 1, use_bias=False, name="separable")(x)
    x = x + 3.0  # an operation (keras.src.ops.numpy Add), stored nowhere
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(5, kernel_initializer=keras.initializers.Orthogonal(), name="dense")(x)
    x = L.LayerNormalization(name="norm")(x)
    x = L.Dense(5, name="dense_1")(x)
    x = L.Dense(2, trainable=False, kernel_initializer="he_normal", name="frozen")(x)
    return keras.Model(image, x)


@pytest.fixture
def saved_model(tmp_path):
    path = tmp_path / "small.keras"
    _model().save(path)
    return path


def _documents(path, monkeypatch, **options):
    options = report.InspectOptions(**options)
    fast = report.inspect(str(path), options=options)
    assert fast.loaded.model is None  # read from the files
    with monkeypatch.context() as m:
        m.setattr(weights_file, "read", lambda *args: None)
        slow = report.inspect(str(path), options=options)
    assert slow.loaded.model is not None  # read through Keras
    return fast.document, slow.document


def test_the_files_give_the_report_keras_gives(saved_model, monkeypatch):
    fast, slow = _documents(saved_model, monkeypatch, check=True)
    assert [v["path"] for v in fast["variables"]] == [
        "conv/kernel",
        "conv/bias",
        "bn/gamma",
        "bn/beta",
        "bn/moving_mean",
        "bn/moving_variance",
        "depthwise/kernel",
        "depthwise/bias",
        "separable/depthwise_kernel",
        "separable/pointwise_kernel",
        "dense/kernel",
        "dense/bias",
        "norm/gamma",
        "norm/beta",
        "dense_1/kernel",
        "dense_1/bias",
        "frozen/kernel",
        "frozen/bias",
    ]
    # Both readings find every initializer (a depthwise kernel's is its layer's
    # depthwise_initializer), value for value the same.
    assert fast["variables"] == slow["variables"]
    assert fast["variables"][6]["initializer"]["class_name"] == "GlorotUniform"
    assert fast["variables"][-2]["trainable"] is False
    assert fast["variables"][10]["initializer"]["class_name"] == "Orthogonal"
    assert {k: v for k, v in fast.items() if k not in ("variables", "check", "check_summary")} == {
        k: v for k, v in slow.items() if k not in ("variables", "check", "check_summary")
    }
    statuses = {c["path"]: c["status"] for c in fast["check"]}
    assert set(statuses.values()) == {"PASS"}
    assert {c["path"]: c["status"] for c in slow["check"]} == statuses


def test_the_files_of_a_sequential_model(tmp_path, monkeypatch):
    path = tmp_path / "seq.keras"
    model = keras.Sequential([keras.Input((4,)), L.Dense(3), L.Dropout(0.1), L.Dense(2)])
    model.save(path)
    fast, slow = _documents(path, monkeypatch)
    assert [v["path"] for v in fast["variables"]] == [v["path"] for v in slow["variables"]]
    assert fast == slow


def test_duplicates_and_values_from_the_files(tmp_path, monkeypatch):
    model = keras.Sequential([keras.Input((4,)), L.Dense(4, name="a"), L.Dense(4, name="b")])
    model.layers[1].kernel.assign(model.layers[0].kernel)
    path = tmp_path / "copies.keras"
    model.save(path)
    fast, slow = _documents(path, monkeypatch, values="a/kernel")
    assert [d["paths"] for d in fast["duplicates"]] == [["a/kernel", "b/kernel"]]
    assert fast["values"] == slow["values"]
    assert np.asarray(fast["values"]["a/kernel"]).shape == (4, 4)


def test_a_class_outside_the_table_is_read_through_keras(tmp_path):
    inputs = keras.Input((4,))
    inner = keras.Sequential([L.Dense(3)], name="inner")
    path = tmp_path / "nested.keras"
    keras.Model(inputs, inner(inputs)).save(path)
    assert weights_file.read(path, saved.read_config(path), "model", str(path)) is None
    loaded = report.inspect(str(path)).loaded
    assert loaded.model is not None


@pytest.mark.slow
def test_inspecting_the_files_imports_neither_keras_nor_tensorflow(saved_model):
    code = (
        "import sys\n"
        "from kinit_cli.__main__ import main\n"
        f"sys.argv = ['kinit', 'inspect-weights', {str(saved_model)!r}, '--check', '--json']\n"
        "try:\n    main()\n"
        "except SystemExit:\n    pass\n"
        "print([m for m in ('keras', 'tensorflow') if m in sys.modules], file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr
    document = json.loads(done.stdout)
    assert document["check_summary"]["pass"] == 18
    assert document["variables"][0]["path"] == "conv/kernel"
