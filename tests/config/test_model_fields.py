"""`model:` is described once (config/model_fields.py): validation and the JSON Schema for
editors both follow the description, so a key added there is taken and checked by both."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from kinit_cli.config import model_fields, model_schema
from kinit_cli.config import source as config
from kinit_cli.config.fields import string
from kinit_cli.errors import Problems
from kinit_cli.registry import json_schema

SEQUENTIAL = """\
model:
  input_shape: [4]
  note: {note}
  layers: [{{class_name: Dense, config: {{units: 2}}}}]
"""
FUNCTIONAL = """\
model:
  inputs: [{{name: x, shape: [4]}}]
  note: {note}
  layers: [{{name: d, class_name: Dense, inputs: x}}]
  outputs: d
"""
WHOLE = """\
model:
  class_name: Linear
  note: {note}
  input_shape: [4]
"""


def problems(text: str) -> list[str]:
    """What validation says of the model section of `text`."""
    cfg = config.loads(text, "c.yaml")
    found = Problems()
    model_schema.check_model(cfg, cfg.data["model"], found)
    return [str(p) for p in found]


def schema_errors(text: str) -> list[str]:
    """What the JSON Schema's model part says of `text` (class names and configs stubbed:
    they come from the registry, and are tested in tests/registry/test_json_schema.py)."""
    document = {
        "type": "object",
        "properties": {"model": json_schema._model()},
        "$defs": {"layer.name": {"type": "string"}, "layer.configs": {}, "layer.object": {}},
    }
    validator = jsonschema.Draft202012Validator(document)
    return [e.message for e in validator.iter_errors(config.loads(text, "c.yaml").data)]


@pytest.fixture
def note(monkeypatch: pytest.MonkeyPatch) -> None:
    """A `note:` text key of the Sequential form, added to the description alone."""
    key = model_fields.Key(string, doc="a word about the model")
    monkeypatch.setitem(model_fields.KEYS, "note", key)
    monkeypatch.setitem(model_fields.SEQUENTIAL.keys, "note", key)


def test_a_key_added_to_the_description_is_taken_by_validation_and_the_schema(note):
    good = SEQUENTIAL.format(note="hello")
    assert problems(good) == []
    assert schema_errors(good) == []
    bad = SEQUENTIAL.format(note="5")
    assert problems(bad) == ["c.yaml:3:9: model.note: expected text, got the number 5"]
    # Once for completion's list of every key, once for the Sequential form.
    assert schema_errors(bad) == ["5 is not of type 'string'"] * 2
    model = json_schema._model()
    assert model["properties"]["note"] == {
        "type": "string",
        "description": "a word about the model",
    }
    assert model["else"]["else"]["properties"]["note"] == model["properties"]["note"]


def test_a_key_added_to_one_form_is_refused_by_both_in_the_others(note):
    assert problems(FUNCTIONAL.format(note="hello")) == [
        "c.yaml:2:3: model: 'note' does not go with this form of model"
    ]
    assert problems(WHOLE.format(note="hello")) == [
        "c.yaml:3:3: model.note: 'note' does not go with 'class_name': a model given as one "
        "class takes 'config' and 'input_shape' only"
    ]
    for text in (FUNCTIONAL, WHOLE):
        assert schema_errors(text.format(note="hello")) == [
            "Additional properties are not allowed ('note' was unexpected)"
        ]


def test_without_the_key_nothing_takes_it():
    text = SEQUENTIAL.format(note="hello")
    assert problems(text) == [
        "c.yaml:3:3: model.note: unknown key 'note'. Allowed keys: name, input_shape, inputs, "
        "layers, outputs, class_name, config."
    ]
    assert schema_errors(text) == ["Additional properties are not allowed ('note' was unexpected)"]


def forms_in_schema(fragment: dict[str, Any]) -> list[dict[str, Any]]:
    """The forms of an if/then/else chain, in the order they are told apart."""
    if "if" not in fragment:
        return [fragment]
    return [fragment["then"], *forms_in_schema(fragment["else"])]


def test_every_form_and_key_of_the_description_is_in_the_schema():
    """Each form's keys, required keys and items, as the schema has them: derived, not
    written twice."""
    model = json_schema._model()
    assert list(model["properties"]) == list(model_fields.MODEL.keys)
    assert list(model["properties"]) == list(model_schema.MODEL_KEYS)

    def compare(forms: model_fields.Forms, fragments: list[dict[str, Any]]) -> int:
        assert len(fragments) == len(forms.forms)
        seen = 0
        for form, fragment in zip(forms.forms, fragments, strict=True):
            if "$ref" in fragment:  # {class_name, config}: the kind's own definition
                assert fragment == {"$ref": f"#/$defs/{form.kind}.object"}
                assert list(form.keys) == ["class_name", "config"] and form.required == [
                    "class_name"
                ]
                seen += len(form.keys)
                continue
            assert list(fragment["properties"]) == list(form.keys)
            assert fragment["required"] == form.required
            assert fragment["additionalProperties"] is False
            assert fragment.get("anyOf", []) == [{"required": [k]} for k in form.one_of]
            for key, rule in form.keys.items():
                described = fragment["properties"][key]
                assert described.get("description", "") == rule.doc, key
                if rule.items:
                    seen += compare(rule.items, forms_in_schema(described["items"]))
                if rule.items and rule.items.first:  # the form the first item must take
                    assert described["prefixItems"] == [{"$ref": "#/$defs/layer.object"}]
                seen += 1
        return seen

    # 3 model forms (4 + 4 + 3 keys), inputs (3), 2 functional entry forms (5 + 6 keys) and
    # 2 Sequential ones.
    assert compare(model_fields.MODEL, forms_in_schema(model)) == 11 + 3 + 5 + 6 + 1 + 2
