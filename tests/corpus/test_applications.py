"""Keras's applications families: export-config, validate and --check on each."""

from __future__ import annotations

import pytest

from tests.corpus.published import APPLICATIONS
from tests.corpus.roundtrip import assert_no_failure, assert_same_architecture, round_trip


@pytest.mark.slow
@pytest.mark.parametrize("name", list(APPLICATIONS))
def test_an_application_round_trips(name, runner, tmp_path):
    original = APPLICATIONS[name]()
    text, rebuilt, document = round_trip(runner, original, tmp_path)
    assert text.count("class_name:") >= len(original.layers) - 1
    assert_same_architecture(original, rebuilt)
    assert_no_failure(document)
