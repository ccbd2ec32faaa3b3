"""A model library's backbones (keras_hub): functional Model subclasses that build
themselves from registered layers. Exported in the one-class form with their plugin."""

from __future__ import annotations

import pytest
import yaml

from tests.corpus.published import BACKBONES
from tests.corpus.roundtrip import assert_no_failure, round_trip


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BACKBONES))
def test_a_backbone_round_trips(name, runner, tmp_path):
    original = BACKBONES[name]()
    text, rebuilt, document = round_trip(runner, original, tmp_path)
    config = yaml.safe_load(text)
    assert config["plugins"] == ["keras_hub"]
    assert config["model"]["class_name"] == f"keras_hub>{type(original).__name__}"
    assert "input_shape" not in config["model"]
    assert type(rebuilt) is type(original)
    assert rebuilt.count_params() == original.count_params()
    assert [w.path for w in rebuilt.weights] == [w.path for w in original.weights]
    assert_no_failure(document)
    unknown = [c for c in document["check"] if c["status"] == "NOT CHECKABLE"]
    assert unknown == []
