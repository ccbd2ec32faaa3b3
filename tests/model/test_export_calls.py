"""export-config of a functional model's calls: constants, keyword arguments, nested input
structures and several outputs, each back through validate to the same graph."""

from __future__ import annotations

import keras
import pytest
import yaml

from kinit_cli.cli import cli
from kinit_cli.config import source as config_mod
from kinit_cli.config.model_schema import check_model, unused
from kinit_cli.errors import ConfigError, Problems
from kinit_cli.model.sources import prepare


def round_trip(runner, tmp_path, model):
    """The model saved, exported with the CLI, and built again from the YAML: the exported
    model section and the rebuilt model."""
    model.save(tmp_path / "m.keras")
    out = tmp_path / "m.yaml"
    result = runner.invoke(cli, ["export-config", str(tmp_path / "m.keras"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return yaml.safe_load(out.read_text())["model"], prepare(out).built.model


@pytest.fixture(autouse=True)
def _fresh_names():
    """Keras numbers default names per process (add, add_1): each test from the start."""
    keras.backend.clear_session()


def graph(model):
    """Each operation's class, name and call (its tensors' sources, shapes and constants);
    the `mask=None` Keras records for a layer that supports masking is its default, which
    export leaves out."""
    layers = keras.saving.serialize_keras_object(model)["config"]["layers"]
    for op in layers:
        for node in op["inbound_nodes"]:
            if node.get("kwargs", {}).get("mask", 0) is None:
                del node["kwargs"]["mask"]
    return [(op["class_name"], op["name"], op["inbound_nodes"]) for op in layers]


def assert_same_model(saved, rebuilt):
    assert graph(rebuilt) == graph(saved)
    assert rebuilt.count_params() == saved.count_params()
    assert [tuple(o.shape) for o in rebuilt.outputs] == [tuple(o.shape) for o in saved.outputs]


def entries(section):
    return {entry["name"]: entry for entry in section["layers"]}


def test_constants_in_calls_are_args(runner, tmp_path):
    """x + 3.0 and x * (1/6), as mobilenet_v3's hard swish writes them: Operations whose
    constant follows the tensor; 1.0 - x, whose constant comes first, is all `args`."""
    x = keras.Input(shape=(4,), name="x")
    shifted = keras.ops.add(x, 3.0)
    flipped = 1.0 - shifted * (1 / 6)
    saved = keras.Model(x, keras.layers.Dense(2, name="head")(flipped))
    section, rebuilt = round_trip(runner, tmp_path, saved)
    found = entries(section)
    assert found["add"] == {
        "name": "add",
        "class_name": "keras.src.ops.numpy>Add",
        "inputs": "x",
        "args": [3.0],
    }
    assert (found["multiply"]["inputs"], found["multiply"]["args"]) == ("add", [1 / 6])
    assert "inputs" not in found["subtract"]
    assert found["subtract"]["args"] == [1.0, {"ref": "multiply"}]
    assert found["head"]["inputs"] == "subtract"
    assert_same_model(saved, rebuilt)


def test_keyword_arguments_tensors_and_constants(runner, tmp_path):
    """MultiHeadAttention(query, value, training=False) and LSTM(x, mask=m): a second
    positional tensor, a constant keyword and a tensor keyword."""
    q = keras.Input(shape=(3, 4), name="q")
    v = keras.Input(shape=(5, 4), name="v")
    m = keras.Input(shape=(3,), name="m", dtype="bool")
    attended = keras.layers.MultiHeadAttention(2, 4, name="mha")(q, v, training=False)
    out = keras.layers.LSTM(2, name="lstm")(attended, mask=m)
    saved = keras.Model([q, v, m], out)
    section, rebuilt = round_trip(runner, tmp_path, saved)
    found = entries(section)
    assert {k: found["mha"][k] for k in ("inputs", "args", "kwargs")} == {
        "inputs": "q",
        "args": [{"ref": "v"}],
        "kwargs": {"training": False},
    }
    assert {k: found["lstm"].get(k) for k in ("inputs", "args", "kwargs")} == {
        "inputs": "mha",
        "args": None,
        "kwargs": {"mask": {"ref": "m"}},
    }
    assert_same_model(saved, rebuilt)


@keras.saving.register_keras_serializable(package="calls_test")
class Mix(keras.layers.Layer):
    """a + b[0] * b[1], of a dict holding a tensor and a list of two."""

    def call(self, inputs):
        return inputs["a"] + inputs["b"][0] * inputs["b"][1]


def test_a_nested_input_structure_is_passed_as_written(runner, tmp_path):
    x, y, z = (keras.Input(shape=(3,), name=n) for n in "xyz")
    mixed = Mix(name="mix")({"a": x, "b": [y, keras.layers.Dense(3, name="dense")(z)]})
    saved = keras.Model([x, y, z], mixed)
    section, rebuilt = round_trip(runner, tmp_path, saved)
    assert entries(section)["mix"]["inputs"] == {"a": "x", "b": ["y", "dense"]}
    assert "args" not in entries(section)["mix"]
    assert_same_model(saved, rebuilt)


def test_several_outputs_are_referenced_by_index(runner, tmp_path):
    """keras.ops.split's second part, an LSTM's states (return_state) and top_k's first
    output alone."""
    x = keras.Input(shape=(4,), name="x")
    s = keras.Input(shape=(3, 2), name="s")
    parts = keras.ops.split(x, 2, axis=-1)
    dense = keras.layers.Dense(2, name="dense")(parts[1])
    _, hidden, cell = keras.layers.LSTM(2, return_state=True, name="lstm")(s)
    values = keras.ops.top_k(x, 2)[0]
    joined = keras.layers.Concatenate(name="joined")([parts[0], dense, hidden, values])
    saved = keras.Model([x, s], [joined, cell])
    section, rebuilt = round_trip(runner, tmp_path, saved)
    found = entries(section)
    assert found["split"]["config"] == {"indices_or_sections": 2, "axis": -1}
    assert found["dense"]["inputs"] == "split[1]"
    assert found["joined"]["inputs"] == ["split[0]", "dense", "lstm[1]", "top_k"]
    assert section["outputs"] == ["joined", "lstm[2]"]
    assert_same_model(saved, rebuilt)


def test_plain_calls_keep_their_short_form(runner, tmp_path):
    """One tensor, or a list of them, with nothing else: `inputs` alone, as before."""
    a, b = keras.Input(shape=(2,), name="a"), keras.Input(shape=(2,), name="b")
    out = keras.layers.Add(name="sum")([keras.layers.Dense(2, name="d")(a), b])
    section, _ = round_trip(runner, tmp_path, keras.Model([a, b], out))
    assert [{k: v for k, v in e.items() if k != "config"} for e in section["layers"]] == [
        {"name": "d", "class_name": "Dense", "inputs": "a"},
        {"name": "sum", "class_name": "Add", "inputs": ["d", "b"]},
    ]


CALLS = """\
model:
  inputs: [{name: x, shape: [4]}, {name: mask, shape: [4]}]
  layers:
    - {name: d, class_name: Dense, config: {units: 4}, inputs: x, kwargs: {training: false}}
    - {name: e, class_name: Dense, config: {units: 4}, args: [{ref: masks}]}
    - {name: f, class_name: Dense, config: {units: 4}, inputs: {a: [d, "masc[1]"]}}
    - {name: g, class_name: Dense, config: {units: 4}}
    - {name: h, class_name: Dense, config: {units: 4}, inputs: d, args: 5}
    - {name: i, class_name: Dense, config: {units: 4}, inputs: d, kwargs: {m: {ref: 3}}}
  outputs: [d, "e[2]"]
"""


def test_references_in_calls_name_what_is_above():
    cfg = config_mod.loads(CALLS, "c.yaml")
    found = Problems()
    check_model(cfg, cfg.data["model"], found)
    assert [str(p) for p in found] == [
        "c.yaml:5:69: model.layers[1].args[0].ref: 'masks' is not an input or layer defined "
        "above. Did you mean 'mask'?",
        "c.yaml:6:72: model.layers[2].inputs.a[1]: 'masc[1]' is not an input or layer "
        "defined above. Did you mean 'mask'?",
        "c.yaml:7:7: model.layers[3]: missing 'inputs' (what the layer is applied to), or 'args'",
        "c.yaml:8:73: model.layers[4].args: expected a list of arguments ({ref: NAME} for a "
        "tensor), got the number 5",
        "c.yaml:9:85: model.layers[5].kwargs.m.ref: expected the name of a tensor, got the "
        "number 3",
    ]


def test_unused_follows_references_in_args_and_kwargs():
    model = {
        "inputs": [{"name": "x"}, {"name": "m"}, {"name": "lost"}],
        "layers": [
            {"name": "s", "inputs": "x"},
            {"name": "a", "args": [{"ref": "s[1]"}], "kwargs": {"mask": {"ref": "m"}}},
        ],
        "outputs": "a",
    }
    assert unused(model) == ["lost"]


def test_an_output_index_past_the_last_is_told(write):
    path = write(
        "c.yaml",
        """\
        model:
          inputs: [{name: x, shape: [4]}]
          layers:
            - {name: split, class_name: keras.src.ops.numpy>Split,
               config: {indices_or_sections: 2, axis: -1}, inputs: x}
            - {name: d, class_name: Dense, config: {units: 2}, inputs: "split[2]"}
          outputs: d
        """,
    )
    with pytest.raises(ConfigError) as info:
        prepare(path)
    assert (
        str(info.value)
        .splitlines()[-1]
        .endswith(
            "model.layers[1].inputs: 'split[2]': 'split' has 2 outputs (split[0] to split[1])"
        )
    )
