"""The typed, frozen settings a validated config becomes, the schema derived from them, and
README's key table generated from them (no TensorFlow needed)."""

from __future__ import annotations

import dataclasses

import pytest

from kinit_cli.config import reference, schema
from kinit_cli.config import source as config
from kinit_cli.config.fields import REQUIRED
from kinit_cli.config.settings import (
    Compile,
    Data,
    Distribute,
    InitFrom,
    Settings,
    Train,
)
from kinit_cli.model.prepared import Checked
from tests.conftest import ROOT

FULL = """\
name: full
seed: 7
backend: jax
plugins: [my_plugin.py, other.module]
data: {name: mnist, limit: 100, validation_split: 0.25}
model:
  input_shape: [4]
  layers:
    - {class_name: Dense, config: {units: 3, name: d1}}
    - {class_name: Dense, config: {units: 2, name: d2}}
compile:
  optimizer: {class_name: Adam, config: {learning_rate: 0.01}}
  loss: mse
  metrics: [mae, {class_name: MeanSquaredError}]
train: {epochs: 3, callbacks: [TerminateOnNaN]}
distribute: {strategy: mirrored, devices: ["cpu:0", "cpu:1"]}
init_from: {source: run, layers: [d1], map: {d1: dense}, freeze: [d1]}
"""

MINIMAL = "model: {input_shape: [3], layers: [{class_name: Dense}]}\n"

# Every key of every section, in the schema's order.
KEYS = {
    "name": None,
    "seed": None,
    "backend": None,
    "deterministic": None,
    "plugins": None,
    "data": [
        "name",
        "path",
        "label",
        "features",
        "image_size",
        "color_mode",
        "normalize",
        "flatten",
        "test_split",
        "validation_split",
        "limit",
        "shuffle",
    ],
    "model": None,
    "compile": ["optimizer", "loss", "metrics"],
    "train": [
        "epochs",
        "batch_size",
        "steps_per_execution",
        "jit_compile",
        "precision",
        "callbacks",
        "allow_no_trainable_weights",
        "weight_history",
    ],
    "distribute": ["strategy", "devices", "cluster", "timeout"],
    "init_from": ["source", "layers", "map", "freeze"],
}


def both(text: str, file: str = "c.yaml") -> tuple[dict, Settings]:
    cfg = config.loads(text, file)
    return schema.validate(cfg), schema.settings(cfg)


def test_values_are_read_by_attribute_lists_as_tuples_specs_as_dicts():
    _, settings = both(FULL)
    assert (settings.name, settings.seed, settings.backend) == ("full", 7, "jax")
    assert settings.plugins == ("my_plugin.py", "other.module")
    assert settings.data == Data(name="mnist", limit=100, validation_split=0.25)
    assert settings.compile == Compile(
        optimizer={"class_name": "Adam", "config": {"learning_rate": 0.01}},
        loss="mse",
        metrics=("mae", {"class_name": "MeanSquaredError"}),
    )
    assert settings.train == Train(epochs=3, callbacks=("TerminateOnNaN",))
    assert settings.distribute == Distribute(strategy="mirrored", devices=("cpu:0", "cpu:1"))
    assert settings.init_from == InitFrom(
        source="run", layers=("d1",), map={"d1": "dense"}, freeze=("d1",)
    )
    assert settings.model["layers"][1] == {
        "class_name": "Dense",
        "config": {"units": 2, "name": "d2"},
    }


@pytest.mark.parametrize("text", [FULL, MINIMAL])
def test_every_value_equals_the_resolved_documents(text):
    resolved, settings = both(text)
    for key, keys in KEYS.items():
        if key not in resolved:
            assert key == "init_from" and settings.init_from is None
            continue
        value = getattr(settings, key)
        for name in keys or [None]:
            read = value if name is None else getattr(value, name)
            given = resolved[key] if name is None else resolved[key][name]
            assert (list(read) if isinstance(read, tuple) else read) == given, (key, name)


@pytest.mark.parametrize("text", [FULL, MINIMAL])
def test_the_document_is_the_resolved_config_byte_for_byte(text):
    resolved, settings = both(text)
    document = settings.document()
    assert document == resolved
    assert config.dump(document) == config.dump(resolved)  # config.yaml, validate --resolved
    assert Settings.from_document(document) == settings
    document["model"]["layers"].clear()  # a copy: what the caller does with it stays there
    document["plugins"].append("x.py")
    assert len(settings.model["layers"]) == 2 - (text == MINIMAL)
    assert "x.py" not in settings.plugins


def test_defaults_fill_an_empty_config_as_the_schema_says():
    resolved, settings = both(MINIMAL, "my-run.yaml")
    assert settings.name == "my-run"
    assert settings.seed is None and settings.backend is None and settings.plugins == ()
    assert settings.data == Data() and settings.compile == Compile()
    assert settings.train == Train() and settings.distribute == Distribute()
    assert settings.init_from is None and "init_from" not in settings.document()
    for section in (Data, Compile, Train, Distribute):
        name = {Data: "data", Compile: "compile", Train: "train", Distribute: "distribute"}
        for key, rule in schema.SCHEMA[name[section]].items():
            value = getattr(section(), key)
            assert (list(value) if isinstance(value, tuple) else value) == rule.default, key
    assert (Train().epochs, Train().batch_size, Compile().optimizer) == (1, 32, "rmsprop")
    assert (Distribute().timeout, Distribute().strategy, Data().name) == (120, "default", "digits")


def test_settings_are_frozen():
    _, settings = both(FULL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.seed = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.train.epochs = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.init_from.source = "elsewhere"  # type: ignore[union-attr,misc]
    assert (settings.seed, settings.train.epochs, settings.init_from.source) == (7, 3, "run")


def test_a_seed_is_set_on_a_copy():
    cfg = config.loads(FULL, "c.yaml")
    checked = Checked(cfg, schema.settings(cfg))
    seeded = checked.with_seed(11)
    assert seeded.settings == dataclasses.replace(checked.settings, seed=11)
    assert checked.settings.seed == 7 and seeded.settings.document()["seed"] == 11
    assert seeded.settings.document() == {**checked.settings.document(), "seed": 11}


def test_the_schema_is_derived_from_the_settings_with_every_key():
    assert list(schema.SCHEMA) == list(KEYS)
    for key, keys in KEYS.items():
        rule = schema.SCHEMA[key]
        if keys is None:
            assert rule is Settings.__dataclass_fields__[key].metadata["field"], key
        else:
            assert list(rule) == keys, key
    assert schema.SCHEMA["model"].default is REQUIRED
    assert schema.SCHEMA["init_from"]["source"].default is REQUIRED
    assert schema.SCHEMA["train"]["epochs"].doc == "passes over the training data"
    assert (
        schema.SCHEMA["plugins"].default == [] and schema.SCHEMA["init_from"]["map"].default == {}
    )
    assert schema.OPTIONAL_SECTIONS == ("init_from",)
    assert list(schema.SECTION_DOCS) == ["data", "compile", "train", "distribute", "init_from"]
    assert schema.SECTION_DOCS["train"] == "the arguments of model.fit, and the dtype policy"


def test_every_key_says_its_type_for_the_readme():
    table = reference.markdown_table()
    rows = table.splitlines()[2:]
    expected = [
        name for key, keys in KEYS.items() for name in [key, *(f"{key}.{k}" for k in keys or [])]
    ]
    assert [row.split(" | ")[0] for row in rows] == [f"| `{k}`" for k in expected]
    for row in rows:
        key, kind, _, meaning = row.strip("| ").split(" | ")
        assert kind and meaning, key
    assert (
        "| `train.epochs` | integer from 1 to 2**31 - 1 | 1 | passes over the training data |"
        in rows
    )
    assert "| `model` | mapping | required | " in table
    assert rows[expected.index("init_from")].startswith("| `init_from` | mapping | absent | ")


def test_the_readme_key_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Sections and keys", 1)[1]
    assert section.count(reference.BEGIN) == 1 and section.count(reference.END) == 1
    written = section.split(reference.BEGIN + "\n", 1)[1].split(reference.END, 1)[0]
    assert written == reference.markdown_table(), (
        "README.md's key table differs from config/settings.py: refresh it with "
        "`python -m kinit_cli.config.reference README.md`"
    )
    assert reference.with_table(readme) == readme


def test_the_reference_rewrites_only_the_table(tmp_path, capsys):
    page = tmp_path / "README.md"
    page.write_text(f"# Title\n\n{reference.BEGIN}\nold\n{reference.END}\n\nafter\n")
    reference.main([str(page)])
    assert page.read_text() == (
        f"# Title\n\n{reference.BEGIN}\n{reference.markdown_table()}{reference.END}\n\nafter\n"
    )
    reference.main([])
    assert capsys.readouterr().out == reference.markdown_table()
