"""`kinit schema`: the JSON Schema editors check configs with, and its agreement with validate."""

from __future__ import annotations

import copy
import inspect
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from kinit_cli.cli import cli
from kinit_cli.config import model_schema, schema
from kinit_cli.config import source as config
from kinit_cli.registry import class_schemas, json_schema
from tests.conftest import ROOT

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
MODELINE = "# yaml-language-server: $schema=../kinit.schema.json"

PLUGIN = """\
import keras
from tests.conftest import ROOT


class MyDense(keras.layers.Layer):
    def __init__(self, units=32):
        super().__init__()
        self.units = units
"""

BASE = """\
model:
  input_shape: [4]
  layers:
    - class_name: Dense
      config: {units: 3, kernel_initializer: {class_name: HeNormal, config: {seed: 1}}}
    - {class_name: Dense, config: {units: 2, activation: softmax}}
compile: {optimizer: adam, loss: sparse_categorical_crossentropy}
"""

FUNCTIONAL = """\
model:
  inputs: [{name: left, shape: [4]}, {name: right, shape: [4]}]
  layers:
    - {name: encoder, class_name: Dense, config: {units: 3}, inputs: left}
    - {name: encoder_right, shares: encoder, inputs: right}
    - {name: merged, class_name: Concatenate, inputs: [encoder, encoder_right]}
  outputs: merged
compile: {loss: mse}
"""


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return json_schema.generate()


@pytest.fixture(scope="module")
def validator(document: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(document)


def errors(validator: jsonschema.Draft202012Validator, data: Any) -> list[str]:
    """Every error with its path, and inside anyOf the reasons each branch failed (what an
    editor shows at the spot)."""

    def lines(error: jsonschema.ValidationError) -> list[str]:
        here = [f"{'.'.join(map(str, error.absolute_path))}: {error.message}"]
        return here + [line for sub in error.context for line in lines(sub)]

    return [line for e in validator.iter_errors(data) for line in lines(e)]


def read(text: str) -> Any:
    """YAML as kinit reads it (`1e-3` a float), not as PyYAML's YAML 1.1 would."""
    return config.loads(text).data


def test_the_schema_is_valid_draft_2020_12(document):
    jsonschema.Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert json_schema.is_kinit_schema(document)
    train = document["properties"]["train"]
    assert train["additionalProperties"] is False
    assert train["properties"]["precision"]["enum"] == [
        "float32",
        "mixed_float16",
        "mixed_bfloat16",
    ]
    assert train["properties"]["epochs"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 2**31 - 1,
        "description": "passes over the training data",
        "default": 1,
    }
    assert document["required"] == ["model"]
    # Every key carries its Field doc, as the one-line description.
    for key, rule in schema.SCHEMA.items():
        rules = rule if isinstance(rule, dict) else {key: rule}
        props = document["properties"][key]["properties"] if isinstance(rule, dict) else None
        for name, field in rules.items():
            described = props[name] if props is not None else document["properties"][key]
            assert described["description"] == field.doc, (key, name)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates_and_carries_the_modeline(path):
    text = path.read_text()
    assert text.splitlines()[0] == MODELINE
    # --config loads the config's own plugins (configs/plugin.yaml names scaled_tanh).
    validator = jsonschema.Draft202012Validator(json_schema.generate(config_files=[str(path)]))
    assert errors(validator, read(text)) == []


@pytest.mark.slow
def test_the_readme_command_covers_every_shipped_config_and_is_reproducible(tmp_path):
    """`kinit schema --config configs/plugin.yaml -o kinit.schema.json`, as README.md says,
    in two processes with different hash seeds: the same bytes, and every shipped config
    passes it."""
    import os
    import subprocess
    import sys

    command = "kinit schema --config configs/plugin.yaml -o kinit.schema.json"
    assert command in (ROOT / "README.md").read_text()
    kinit = Path(sys.executable).parent / "kinit"
    written = []
    for seed in ("1", "2"):
        out = tmp_path / seed / "kinit.schema.json"
        out.parent.mkdir()
        done = subprocess.run(
            [str(kinit), *command.split()[1:-1], str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        written.append(out.read_bytes())
    assert written[0] == written[1]
    validator = jsonschema.Draft202012Validator(json.loads(written[0]))
    for path in CONFIGS:
        assert errors(validator, read(path.read_text())) == [], path.name


def readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^```yaml\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def test_every_yaml_example_in_the_readme_validates(validator):
    """A block with a `model:` is a whole config; the others (`distribute:`, `init_from:`)
    are sections, checked inside a minimal config. Only the modeline, a lone comment, is
    left out."""
    blocks = readme_blocks()
    assert len(blocks) >= 5
    for block in blocks:
        if all(line.startswith("#") for line in block.splitlines()):
            continue  # the modeline on its own: a comment, no config
        data = read(block)
        if "model" not in data:
            data = {**read(BASE), **data}
        checker = validator
        libraries = [p for p in data.get("plugins") or [] if not p.endswith(".py")]
        if libraries:  # a library's names, as `kinit schema --plugin LIBRARY` writes them
            checker = jsonschema.Draft202012Validator(json_schema.generate(libraries))
        assert errors(checker, data) == [], block


def test_the_readme_key_table_names_only_keys_the_schema_has():
    text = (ROOT / "README.md").read_text()
    table = text.split("### Sections and keys", 1)[1].split("\n\n", 2)[1]
    keys = re.findall(r"^\| (`[^|]*`)", table, re.MULTILINE)
    assert len(keys) > 10
    for cell in keys:
        for key in re.findall(r"`([\w.*]+)`", cell):
            section, _, name = key.partition(".")
            assert section in schema.SCHEMA, key
            if name and name != "*":
                assert name in schema.SCHEMA[section], key


def mutate(text: str, change: Any) -> dict[str, Any]:
    data = read(text)
    change(data)
    return data


def layer(i: int) -> Any:
    return lambda d: d["model"]["layers"][i]


def set_in(get: Any, key: str, value: Any) -> Any:
    return lambda d: get(d).__setitem__(key, value)


def top(key: str, value: Any) -> Any:
    return lambda d: d.__setitem__(key, value)


def cfg(i: int) -> Any:
    return lambda d: d["model"]["layers"][i]["config"]


# (id, a change to BASE or FUNCTIONAL, what the schema says, the text validate prints).
MISTAKES = [
    (
        "misspelled section",
        BASE,
        top("trian", {"epochs": 1}),
        "'trian' was unexpected",
        "unknown key 'trian'. Did you mean 'train'?",
    ),
    (
        "misspelled key",
        BASE,
        top("train", {"epocs": 1}),
        "'epocs' was unexpected",
        "unknown key 'epocs'",
    ),
    (
        "wrong type",
        BASE,
        top("train", {"epochs": "ten"}),
        "'ten' is not of type 'integer'",
        "expected an integer, got 'ten'",
    ),
    (
        "out of range",
        BASE,
        top("train", {"epochs": 0}),
        "0 is less than the minimum of 1",
        "expected an integer from 1 to 2147483647, got 0",
    ),
    (
        "seed too large",
        BASE,
        top("seed", 2**32),
        "is greater than the maximum",
        "expected an integer from 0 to",
    ),
    (
        "fraction",
        BASE,
        top("data", {"validation_split": 1.5}),
        "greater than or equal to the maximum of 1",
        "expected a number from 0 up to",
    ),
    (
        "bad choice",
        BASE,
        top("train", {"precision": "float8"}),
        "'float8' is not one of",
        "expected one of float32",
    ),
    (
        "bad strategy",
        BASE,
        top("distribute", {"strategy": "mirored"}),
        "'mirored' is not one of",
        "Did you mean 'mirrored'?",
    ),
    ("run name", BASE, top("name", "_x"), "does not match", "expected a name matching"),
    (
        "section not a mapping",
        BASE,
        top("train", 5),
        "5 is not of type 'object', 'null'",
        "expected a mapping, got",
    ),
    (
        "plugins not a list",
        BASE,
        top("plugins", "p.py"),
        "is not of type 'array'",
        "expected a list of text items",
    ),
    (
        "missing model",
        BASE,
        lambda d: d.pop("model"),
        "'model' is a required property",
        "missing required key 'model'",
    ),
    (
        "init_from without source",
        BASE,
        top("init_from", {"freeze": True}),
        "'source' is a required property",
        "missing required key 'source'",
    ),
    (
        "cluster address",
        BASE,
        top("distribute", {"cluster": {"workers": ["nohost"], "index": 0}}),
        "does not match",
        "is not a host:port address",
    ),
    (
        "model without a form",
        BASE,
        lambda d: d["model"].pop("input_shape"),
        "'input_shape' is a required property",
        "missing 'input_shape' (Sequential model)",
    ),
    (
        "model key misspelled",
        BASE,
        set_in(lambda d: d["model"], "layer", []),
        "'layer' was unexpected",
        "unknown key 'layer'",
    ),
    (
        "no layers",
        BASE,
        set_in(lambda d: d["model"], "layers", []),
        "should be non-empty",
        "expected a non-empty list of layers",
    ),
    (
        "bad input shape",
        BASE,
        set_in(lambda d: d["model"], "input_shape", [0]),
        "less than the minimum of 1",
        "expected a shape",
    ),
    (
        "outputs in Sequential",
        BASE,
        set_in(lambda d: d["model"], "outputs", "x"),
        "'outputs' was unexpected",
        "'outputs' belongs to a functional model",
    ),
    (
        "config without class_name",
        BASE,
        set_in(lambda d: d["model"], "config", {}),
        "'config' was unexpected",
        "'config' belongs to a model given as one class",
    ),
    (
        "layer not a mapping",
        BASE,
        lambda d: d["model"]["layers"].append("Dense"),
        "is not of type 'object'",
        "expected a {class_name, config} mapping",
    ),
    (
        "layer key misspelled",
        BASE,
        set_in(layer(0), "confg", {}),
        "'confg' was unexpected",
        "unknown key 'confg'. Did you mean 'config'?",
    ),
    (
        "inputs in Sequential",
        BASE,
        set_in(layer(0), "inputs", "x"),
        "'inputs' was unexpected",
        "'inputs' needs the functional form",
    ),
    (
        "shares the first layer",
        BASE,
        lambda d: d["model"]["layers"].insert(0, {"shares": "dense"}),
        "'class_name' is a required property",
        "no layer above to share",
    ),
    (
        "class_name not text",
        BASE,
        set_in(layer(0), "class_name", 5),
        "is not of type 'string'",
        "expected text, got",
    ),
    (
        "unknown layer",
        BASE,
        set_in(layer(0), "class_name", "Dence"),
        "'Dence' is not valid",
        "unknown layer 'Dence'. Did you mean 'Dense'?",
    ),
    (
        "unknown argument",
        BASE,
        set_in(cfg(0), "unitz", 3),
        "'unitz' was unexpected",
        "unknown argument 'unitz' for Dense",
    ),
    (
        "unknown initializer argument",
        BASE,
        set_in(lambda d: cfg(0)(d)["kernel_initializer"]["config"], "sead", 1),
        "'sead' was unexpected",
        "unknown argument 'sead' for HeNormal. Did you mean 'seed'?",
    ),
    (
        "unknown initializer",
        BASE,
        set_in(cfg(0), "kernel_initializer", "he_normel"),
        "'he_normel' is not valid",
        "unknown initializer 'he_normel'",
    ),
    (
        "argument type from its default",
        BASE,
        set_in(cfg(0), "use_bias", "yes"),
        "'yes' is not of type 'boolean', 'null'",
        "expected true or false, got 'yes'",
    ),
    (
        "argument type from the docstring",
        BASE,
        set_in(cfg(0), "units", "many"),
        "'many' is not of type",
        "Dense rejected its arguments",
    ),
    (
        "missing argument",
        BASE,
        lambda d: cfg(0)(d).pop("units"),
        "'units' is a required property",
        "missing required argument 'units' for Dense",
    ),
    (
        "a function with a config",
        BASE,
        set_in(cfg(1), "activation", {"class_name": "relu", "config": {"x": 1}}),
        "is expected to be empty",
        "relu is a function and takes no config",
    ),
    (
        "unknown optimizer",
        BASE,
        lambda d: d["compile"].__setitem__("optimizer", "adamm"),
        "'adamm' is not valid",
        "unknown optimizer 'adamm'",
    ),
    (
        "optimizer argument",
        BASE,
        lambda d: d["compile"].__setitem__(
            "optimizer", {"class_name": "Adam", "config": {"learning_rat": 0.1}}
        ),
        "'learning_rat' was unexpected",
        "unknown argument 'learning_rat' for Adam",
    ),
    (
        "unknown loss",
        BASE,
        lambda d: d["compile"].__setitem__("loss", "crossentropy_loss"),
        "is not valid",
        "unknown loss 'crossentropy_loss'",
    ),
    (
        "metric not a spec",
        BASE,
        lambda d: d["compile"].__setitem__("metrics", [5]),
        "5 is not valid",
        "expected a name or a {class_name, config} mapping",
    ),
    (
        "functional layer without inputs",
        FUNCTIONAL,
        lambda d: d["model"]["layers"][0].pop("inputs"),
        "is not valid under any of the given schemas",
        "model.layers[0]: missing 'inputs' (what the layer is applied to), or 'args'",
    ),
    (
        "functional layer without name",
        FUNCTIONAL,
        lambda d: d["model"]["layers"][2].pop("name"),
        "'name' is a required property",
        "missing required key 'name'",
    ),
    (
        "input without shape",
        FUNCTIONAL,
        lambda d: d["model"]["inputs"][0].pop("shape"),
        "'shape' is a required property",
        "missing required key 'shape'",
    ),
    (
        "shares with class_name",
        FUNCTIONAL,
        set_in(layer(1), "class_name", "Dense"),
        "'class_name' was unexpected",
        "reuses another layer and takes no 'class_name'",
    ),
    (
        "no outputs",
        FUNCTIONAL,
        lambda d: d["model"].pop("outputs"),
        "'outputs' is a required property",
        "missing required key 'outputs'",
    ),
    (
        "inputs and input_shape",
        FUNCTIONAL,
        set_in(lambda d: d["model"], "input_shape", [4]),
        "'input_shape' was unexpected",
        "give either 'input_shape' (Sequential) or 'inputs'",
    ),
]
# What validate knows and JSON Schema cannot say, so the schema leaves it to validate:
# names that must refer to inputs or layers defined above (inputs, shares, outputs), names
# used twice, config.name differing from the entry's name, values Keras's constructors
# check (units: -1), callback file paths, and a worker index beyond the list of workers.


@pytest.mark.parametrize(
    ("text", "change", "schema_says", "validate_says"),
    [m[1:] for m in MISTAKES],
    ids=[m[0] for m in MISTAKES],
)
def test_validate_and_the_schema_reject_the_same_mistakes(
    runner, write, validator, text, change, schema_says, validate_says
):
    good = read(text)
    assert errors(validator, good) == []
    data = mutate(text, change)
    found = errors(validator, data)
    assert found and any(schema_says in e for e in found), found
    path = write("c.yaml", yaml.safe_dump(data))
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert validate_says in result.output


def test_the_unmutated_configs_pass_validate(runner, write):
    for text in (BASE, FUNCTIONAL):
        result = runner.invoke(cli, ["validate", str(write("ok.yaml", text))])
        assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "change",
    [
        set_in(layer(0), "class_name", "DENSE"),  # names resolve in any capitalisation
        set_in(layer(0), "class_name", "keras>Dense"),
        set_in(layer(0), "class_name", "kinit>SimpleDense"),
        set_in(cfg(0), "units", True),  # Keras takes it as 1 (bool is int)
        set_in(cfg(0), "kernel_initializer", None),
        set_in(cfg(0), "kernel_regularizer", {"class_name": "L2", "config": {"l2": 0.01}}),
        lambda d: d["compile"].__setitem__("metrics", ["acc", "MSE", {"class_name": "AUC"}]),
        lambda d: d["compile"].__setitem__(
            "optimizer",
            {
                "class_name": "SGD",
                "config": {
                    "learning_rate": {
                        "class_name": "ExponentialDecay",
                        "config": {
                            "initial_learning_rate": 0.1,
                            "decay_steps": 10,
                            "decay_rate": 0.9,
                        },
                    }
                },
            },
        ),
        top("train", None),
        lambda d: d["model"]["layers"].insert(
            1,
            {
                "class_name": "keras.src.applications.convnext>LayerScale",
                "config": {"init_values": 0.1, "projection_dim": 3},
            },
        ),
    ],
    ids=[
        "any-case",
        "keras>",
        "kinit>",
        "bool-units",
        "null",
        "regularizer",
        "metrics",
        "schedule",
        "empty-section",
        "keras-module",
    ],
)
def test_the_schema_accepts_what_validate_accepts(runner, write, validator, change):
    data = mutate(BASE, change)
    assert errors(validator, data) == []
    result = runner.invoke(cli, ["validate", str(write("c.yaml", yaml.safe_dump(data)))])
    assert result.exit_code == 0, result.output


# A value of each JSON type a docstring-inferred type excludes.
EXCLUDED = {"string": "many", "array": [2], "object": {"a": 1}, "fraction": 2.5}


def test_docstring_types_are_only_ones_keras_enforces(tmp_path):
    from kinit_cli.registry.catalog import Registry
    from kinit_cli.registry.signatures import argument_docs, parameters

    registry = Registry()
    assert {"Dense.units", "Conv2D.filters", "Dropout.rate"} <= class_schemas.DOCSTRING_TYPED
    checked = set()
    for name in sorted(class_schemas.DOCSTRING_TYPED):
        class_name, _, param = name.partition(".")
        entry = next(
            e
            for kind in ("layer", "callback")
            for e in registry.catalog(kind)
            if e.builtin and e.name == class_name
        )
        params = {p.name: p for p in parameters(entry.obj)[0]}
        docs = argument_docs(entry.obj)
        inferred = class_schemas.infer_type(docs[param])
        assert inferred is not None, (name, docs[param])
        good = {"integer": 2, "number": 0.5, "string": str(tmp_path / "backup")}
        args = {
            p: good[class_schemas.infer_type(docs.get(p, "")) or "integer"]
            for p, info in params.items()
            if info.required
        }
        entry.obj(**args)  # the right types construct
        fragment = class_schemas.parameter(entry, params[param], docs[param])
        allowed = set(fragment["type"])
        for what, value in EXCLUDED.items():
            excluded = "number" not in allowed if what == "fraction" else what not in allowed
            if excluded:
                with pytest.raises(Exception):  # noqa: B017 - Keras raises several kinds
                    entry.obj(**{**args, param: value})
        checked.add(name)
    assert checked == class_schemas.DOCSTRING_TYPED


def test_other_parameters_without_a_default_stay_untyped(document):
    configs = document["$defs"]["layer.configs"]["allOf"]

    def config_of(name: str) -> dict[str, Any]:
        return next(
            b["then"]["properties"]["config"]
            for b in configs
            if re.fullmatch(b["if"]["properties"]["class_name"]["pattern"], name)
        )

    assert config_of("Dense")["properties"]["units"]["type"] == ["boolean", "integer", "null"]
    # Resizing's constructor takes height: "many", and LSTM units: 2.5.
    assert "type" not in config_of("Resizing")["properties"]["height"]
    assert "type" not in config_of("LSTM")["properties"]["units"]
    dense = config_of("Dense")
    assert dense["required"] == ["units"] and dense["additionalProperties"] is False
    assert dense["properties"]["use_bias"] == {
        "type": ["boolean", "null"],
        "description": "Boolean, whether the layer uses a bias vector.",
        "default": True,
    }
    assert {"$ref": "#/$defs/initializer.name"} in dense["properties"]["kernel_initializer"][
        "anyOf"
    ]


def names_and_config(document: dict[str, Any], name: str) -> tuple[list[str], dict[str, Any]]:
    enum = document["$defs"]["layer.name"]["anyOf"][0]["enum"]
    configs = [
        b["then"]["properties"]["config"]
        for b in document["$defs"]["layer.configs"]["allOf"]
        if re.fullmatch(b["if"]["properties"]["class_name"]["pattern"], name)
    ]
    return enum, configs[0] if configs else {}


def test_a_plugin_given_with_plugin_appears_with_its_parameters(runner, write):
    plugin = write("my_layers.py", PLUGIN)
    result = runner.invoke(cli, ["schema", "--plugin", str(plugin)])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    enum, config_schema = names_and_config(document, "MyDense")
    assert "MyDense" in enum and "my_layers>MyDense" in enum
    assert config_schema["properties"] == {
        "units": {"type": ["array", "null", "number"], "default": 32}
    }
    assert config_schema["additionalProperties"] is False
    validator = jsonschema.Draft202012Validator(document)
    data = read(BASE)
    data["model"]["layers"][0] = {"class_name": "MyDense", "config": {"units": 4}}
    assert errors(validator, data) == []
    data["model"]["layers"][0]["config"] = {"unitz": 4}
    assert any("'unitz' was unexpected" in e for e in errors(validator, data))


def test_a_plugin_the_config_names_appears_with_config(runner, write, tmp_path):
    write("plugins/my_layers.py", PLUGIN)
    path = write("sub/c.yaml", "plugins: [../plugins/my_layers.py]\ntrian: {}\n")
    # The rest of the file may be broken: only `plugins:` is read.
    result = runner.invoke(cli, ["schema", "--config", str(path)])
    assert result.exit_code == 0, result.output
    enum, config_schema = names_and_config(json.loads(result.stdout), "MyDense")
    assert "MyDense" in enum and "units" in config_schema["properties"]


def test_a_config_whose_plugins_are_not_a_list_is_refused(runner, write):
    result = runner.invoke(cli, ["schema", "--config", str(write("c.yaml", "plugins: 5\n"))])
    assert result.exit_code == 2
    assert "plugins: expected a list of text items, got" in result.output


def test_output_replaces_its_own_schema_and_nothing_else(runner, tmp_path):
    target = tmp_path / "kinit.schema.json"
    result = runner.invoke(cli, ["schema", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert json_schema.is_kinit_schema(json.loads(target.read_text()))
    assert result.stdout == ""
    again = runner.invoke(cli, ["schema", "-o", str(target)])  # a kinit schema: regenerated
    assert again.exit_code == 0, again.output
    other = tmp_path / "settings.json"
    other.write_text('{"editor": 1}\n')
    refused = runner.invoke(cli, ["schema", "-o", str(other)])
    assert refused.exit_code == 2
    assert "is not a schema kinit wrote" in refused.output and "--overwrite" in refused.output
    assert other.read_text() == '{"editor": 1}\n'
    forced = runner.invoke(cli, ["schema", "-o", str(other), "--overwrite"])
    assert forced.exit_code == 0, forced.output
    assert json_schema.is_kinit_schema(json.loads(other.read_text()))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_every_check_in_the_schema_carries_a_fragment():
    def walk(rules: dict[str, Any]) -> None:
        for key, rule in rules.items():
            if isinstance(rule, dict):
                walk(rule)
            else:
                fragment = getattr(rule.check, "json_schema", None)
                assert fragment, (key, inspect.getsource(rule.check))

    walk(schema.SCHEMA)


def test_the_readme_explains_the_modeline_and_the_vs_code_setting():
    text = (ROOT / "README.md").read_text()
    section = text.split("### Editing configs", 1)[1].split("\n## ", 1)[0]
    assert "kinit schema -o kinit.schema.json" in section
    assert "# yaml-language-server: $schema=" in section
    assert '"yaml.schemas"' in section
    assert "kinit.schema.json" in (ROOT / ".gitignore").read_text().split()


def test_models_forms_use_schema_keys(document):
    model = document["properties"]["model"]
    assert set(model["properties"]) == set(model_schema.MODEL_KEYS)
    sequential = model["else"]["else"]
    assert "maxItems" not in sequential["properties"]["layers"]
    assert copy.deepcopy(sequential["required"]) == ["input_shape", "layers"]
