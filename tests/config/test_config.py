"""Config files: YAML with positions, the schema, overrides (no TensorFlow needed)."""

from __future__ import annotations

import pytest

from kinit_cli.config import schema
from kinit_cli.config import source as config
from kinit_cli.errors import ConfigError


def problems_of(path, overrides=()):
    with pytest.raises(ConfigError) as info:
        schema.validate(config.load(path, overrides))
    return [str(p) for p in info.value.problems]


def test_values_remember_file_line_and_column(write):
    path = write(
        "c.yaml",
        """\
        model:
          input_shape: [4]
          layers:
            - class_name: Dense
              config: {units: 2}
        """,
    )
    cfg = config.load(path)
    assert cfg.get(("model", "layers", 0, "config", "units")) == 2
    p = cfg.problem(("model", "layers", 0, "config", "units"), "bad")
    assert (p.file, p.line, p.column) == (str(path), 5, 23)
    assert str(p) == f"{path}:5:23: model.layers[0].config.units: bad"


def test_scientific_notation_is_a_float(write):
    cfg = config.load(write("c.yaml", "a: 1e-3\nb: 2.5E+2\nc: '1e-3'\nd: 10\n"))
    assert cfg.data == {"a": 0.001, "b": 250.0, "c": "1e-3", "d": 10}


def test_defaults_are_filled_and_name_comes_from_the_file(write):
    path = write("my-run.yaml", "model: {input_shape: [3], layers: [{class_name: Dense}]}\n")
    resolved = schema.validate(config.load(path))
    assert resolved["name"] == "my-run"
    assert resolved["train"] == {
        "epochs": 1,
        "batch_size": 32,
        "steps_per_execution": None,  # the backend's, where it is used (runtime.backend)
        "jit_compile": None,
        "precision": "float32",
        "callbacks": [],
        "allow_no_trainable_weights": False,
        "weight_history": False,
    }
    assert resolved["data"] == {
        "name": "digits",
        "path": None,
        "label": None,
        "features": None,
        "image_size": None,
        "color_mode": "rgb",
        "normalize": True,
        "flatten": None,
        "test_split": 0.2,
        "validation_split": 0.0,
        "limit": None,
        "shuffle": True,
    }
    assert resolved["compile"] == {"optimizer": "rmsprop", "loss": None, "metrics": []}
    assert resolved["plugins"] == [] and resolved["deterministic"] is False


def test_every_problem_is_reported_at_once_with_suggestions(write):
    path = write(
        "c.yaml",
        """\
        sed: 1
        deterministic: yes please
        model:
          input_shape: [784]
          layers:
            - {class_name: Dense, confg: {units: 3}}
        train: {epochs: 0, batch_sise: 128}
        """,
    )
    assert problems_of(path) == [
        f"{path}:1:1: sed: unknown key 'sed'. Did you mean 'seed'?",
        f"{path}:2:16: deterministic: expected true or false, got 'yes please'",
        f"{path}:6:27: model.layers[0].confg: unknown key 'confg'. Did you mean 'config'?",
        f"{path}:7:17: train.epochs: expected an integer from 1 to 2147483647, got 0",
        f"{path}:7:20: train.batch_sise: unknown key 'batch_sise'. Did you mean 'batch_size'?",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "model: [1, 2\n",
            "c.yaml:2:1: invalid YAML: while parsing a flow sequence: expected "
            "',' or ']', but got '<stream end>'",
        ),
        (
            "model: !!python/object/apply:os.system ['echo hi']\n",
            "c.yaml:1:8: invalid YAML: the tag !!python/object/apply:os.system is not allowed",
        ),
        (
            "model: !!python/name:os.system\n",
            "c.yaml:1:8: invalid YAML: the tag !!python/name:os.system is not allowed",
        ),
        (
            "- a\n- b\n",
            "c.yaml:1:1: expected a mapping of sections (model:, compile:, ...), got a list",
        ),
        ("", "c.yaml: the file is empty; a config needs at least a 'model:' section"),
        ("# only a comment\n", "c.yaml: the file is empty"),
        ("model: {}\nmodel: {}\n", "c.yaml:2:1: invalid YAML: duplicate key 'model'"),
        (
            "model: {input_shape: [3], layers: {class_name: Dense}}\n",
            "c.yaml:1:35: model.layers: expected a non-empty list of layers",
        ),
        (
            "plugins: a.py\nmodel: {input_shape: [3], layers: [{class_name: Dense}]}\n",
            "c.yaml:1:10: plugins: expected a list of text items, got 'a.py'",
        ),
        (
            "model: {layers: [{class_name: Dense}]}\n",
            "c.yaml:1:8: model: missing 'input_shape' (Sequential model), 'inputs' "
            "(functional model) or 'class_name' (a model class)",
        ),
        (
            "model: {input_shape: [3, -1], layers: [{class_name: Dense}]}\n",
            "model.input_shape: expected a shape (a list of positive integers), got a list",
        ),
        (
            "train: 5\nmodel: {input_shape: [3], layers: [Dense]}\n",
            "c.yaml:1:8: train: expected a mapping, got the number 5",
        ),
    ],
)
def test_bad_files_get_one_clear_message(write, text, expected):
    path = write("c.yaml", text)
    messages = problems_of(path)
    assert any(expected in m for m in messages), messages


def test_binary_and_missing_files(write, tmp_path):
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" * 20)
    assert problems_of(binary) == [f"{binary}: not a text file (it contains binary data)"]
    latin = tmp_path / "l.yaml"
    latin.write_bytes(b"name: caf\xe9\n")
    assert problems_of(latin) == [f"{latin}:1: not a UTF-8 text file (byte 0xe9)"]
    assert problems_of(tmp_path / "nope.yaml") == [
        f"{tmp_path / 'nope.yaml'}: config file not found"
    ]


def test_python_tags_never_run(write, tmp_path):
    marker = tmp_path / "ran"
    path = write("c.yaml", f"x: !!python/object/apply:os.system ['touch {marker}']\n")
    problems_of(path)
    assert not marker.exists()


def test_overrides_parse_yaml_and_reach_into_lists(write):
    path = write(
        "c.yaml",
        """\
        model:
          input_shape: [4]
          layers: [{class_name: Dense, config: {units: 2}}]
        """,
    )
    cfg = config.load(
        path,
        [
            "train.epochs=3",
            "model.layers[0].config.units=64",
            "compile.metrics=[accuracy, mae]",
            "compile.optimizer.config.x=1e-4",
        ],
    )
    assert cfg.data["train"] == {"epochs": 3}
    assert cfg.data["model"]["layers"][0]["config"]["units"] == 64
    assert cfg.data["compile"] == {
        "metrics": ["accuracy", "mae"],
        "optimizer": {"config": {"x": 0.0001}},
    }


def test_problems_in_overridden_values_point_at_the_override(write):
    path = write("c.yaml", "model: {input_shape: [3], layers: [{class_name: Dense}]}\n")
    assert problems_of(path, ["train.epochs=abc"]) == [
        "--set train.epochs=abc: train.epochs: expected an integer, got 'abc'"
    ]


def test_an_override_replaces_the_positions_of_what_it_replaced(write):
    # The file's train.epochs and train.batch_size are gone once --set replaces `train`:
    # problems under it point at the --set, not at the line the file had.
    path = write(
        "c.yaml",
        "model: {input_shape: [3], layers: [{class_name: Dense}]}\n"
        "train: {epochs: 2, batch_size: 8}\n",
    )
    assert problems_of(path, ["train.batch_size=4", "train={epochs: abc, batch_size: 0}"]) == [
        "--set train={epochs: abc, batch_size: 0}: train.epochs: expected an integer, got 'abc'",
        "--set train={epochs: abc, batch_size: 0}: train.batch_size: expected an integer from 1 to "
        "2147483647, got 0",
    ]
    assert problems_of(path, ["train={epochs: 1}", "train.batch_size=x"]) == [
        "--set train.batch_size=x: train.batch_size: expected an integer, got 'x'"
    ]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epochs", "--set train.epochs: expected KEY.PATH=VALUE"),
        (
            "model.layers[5].config.units=3",
            "--set model.layers[5].config.units=3: model.layers[5] does not exist",
        ),
        (
            "model.input_shape.x=3",
            "--set model.input_shape.x=3: model.input_shape.x does not exist",
        ),
        ("name.x=1", "--set name.x=1: name is 'n', not a mapping"),
        ("a..b=1", "--set a..b=1: malformed key path 'a..b'"),
    ],
)
def test_bad_overrides(write, override, message):
    path = write("c.yaml", "name: n\nmodel: {input_shape: [3], layers: [{class_name: Dense}]}\n")
    with pytest.raises(ConfigError) as info:
        config.load(path, [override])
    assert [str(p) for p in info.value.problems] == [message]


def test_functional_structure_is_checked(write):
    path = write(
        "c.yaml",
        """\
        model:
          inputs: [{name: a, shape: [4]}]
          layers:
            - {name: enc, class_name: Dense, config: {units: 2}, inputs: a}
            - {name: again, shares: encc, inputs: b}
            - {name: enc, class_name: Dense, inputs: [enc]}
          outputs: [enc, missing]
        """,
    )
    assert problems_of(path) == [
        f"{path}:5:29: model.layers[1].shares: 'encc' is not a layer defined above. "
        "Did you mean 'enc'?",
        f"{path}:5:43: model.layers[1].inputs: 'b' is not an input or layer defined above. "
        "Defined above: a, enc.",
        f"{path}:6:14: model.layers[2].name: the name 'enc' is used twice; names must be unique "
        "(use 'shares' to apply a layer again)",
        f"{path}:7:18: model.outputs[1]: 'missing' is not an input or layer defined above. "
        "Defined above: a, enc, again.",
    ]


def test_inputs_need_the_functional_form_and_shares_stands_alone(write):
    path = write(
        "c.yaml",
        """\
        model:
          input_shape: [4]
          layers:
            - {shares: dense}
            - {class_name: Dense, config: {units: 4}, inputs: x}
            - {shares: dense, config: {units: 4}}
        """,
    )
    assert problems_of(path) == [
        f"{path}:4:16: model.layers[0].shares: no layer above to share",
        f"{path}:5:47: model.layers[1].inputs: 'inputs' needs the functional form "
        "(model.inputs, named layers, model.outputs)",
        f"{path}:6:23: model.layers[2].config: unknown key 'config'. Allowed keys: shares.",
    ]


def test_dump_keeps_key_order(write):
    path = write("c.yaml", "seed: 1\nmodel: {input_shape: [3], layers: [{class_name: Dense}]}\n")
    text = config.dump(schema.validate(config.load(path)))
    assert text.splitlines()[:4] == ["name: c", "seed: 1", "backend: null", "deterministic: false"]
    assert config.loads(text).data["model"]["layers"] == [{"class_name": "Dense"}]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "distribute.cluster={workers: [a:1, b], index: 0}",
            "distribute.cluster: workers: 'b' is not a host:port address",
        ),
        (
            "distribute.cluster={workers: [a:1, b:2], index: 2}",
            "distribute.cluster: index: expected an integer from 0 to 1 (one per worker), got 2",
        ),
        (
            "distribute.cluster={workers: [a:1]}",
            "distribute.cluster: expected {workers: [host:port, ...], index: N} (this "
            "process's worker index)",
        ),
        (
            "distribute.timeout=0",
            "distribute.timeout: expected a number from 1 to 2147483647, got 0",
        ),
    ],
)
def test_bad_cluster_sections(write, override, message):
    path = write("c.yaml", "name: n\nmodel: {input_shape: [3], layers: [{class_name: Dense}]}\n")
    assert problems_of(path, [override]) == [f"--set {override}: {message}"]


def test_model_given_as_one_class(write):
    good = write("g.yaml", "model: {class_name: Linear, config: {units: 4}, input_shape: [8]}\n")
    assert schema.validate(config.load(good))["model"] == {
        "class_name": "Linear",
        "config": {"units": 4},
        "input_shape": [8],
    }
    bad = write(
        "b.yaml",
        """\
        model:
          class_name: Linear
          layers: [{class_name: Dense}]
        """,
    )
    # input_shape may be left out: a class that builds itself needs none (build says so).
    assert problems_of(bad) == [
        f"{bad}:3:3: model.layers: 'layers' does not go with 'class_name': a model given as "
        "one class takes 'config' and 'input_shape' only",
    ]
