"""Models deeper than Python's default recursion limit: built, trained, saved and read back,
as Keras builds them (no layer cap)."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from kinit_cli.cli import cli
from kinit_cli.runtime.recursion import mappings_in, room_for

DEPTH = 1_100  # Keras's graph mapping needs one frame per layer: past the default 1,000


def _deep(functional: bool) -> dict:
    hidden = [{"class_name": "Activation", "config": {"activation": "linear"}}] * DEPTH
    out = {"class_name": "Dense", "config": {"units": 10, "activation": "softmax"}}
    if not functional:
        model = {"input_shape": [64], "layers": [*hidden, out]}
    else:
        entries = [
            {**layer, "name": f"a{i}", "inputs": "x" if i == 0 else f"a{i - 1}"}
            for i, layer in enumerate(hidden)
        ]
        entries.append({**out, "name": "out", "inputs": f"a{DEPTH - 1}"})
        model = {"inputs": [{"name": "x", "shape": [64]}], "layers": entries, "outputs": "out"}
    return {
        "name": "deep",
        "data": {"name": "digits", "limit": 200},
        "model": model,
        "compile": {"optimizer": "sgd", "loss": "sparse_categorical_crossentropy"},
        "train": {"epochs": 1, "batch_size": 100},
    }


@pytest.mark.slow
def test_a_sequential_model_deeper_than_the_recursion_limit_builds(runner, tmp_path):
    config = tmp_path / "deep.yaml"
    config.write_text(yaml.safe_dump(_deep(functional=False)))
    limit = sys.getrecursionlimit()
    result = runner.invoke(cli, ["validate", str(config)])
    assert result.exit_code == 0, result.output
    assert sys.getrecursionlimit() == limit  # put back once the model is built
    assert "Total params: 650" in " ".join(result.output.split())


@pytest.mark.slow
def test_a_functional_model_deeper_than_the_recursion_limit_trains_and_reads_back(runner, tmp_path):
    config = tmp_path / "deep.yaml"
    config.write_text(yaml.safe_dump(_deep(functional=True)))
    result = runner.invoke(cli, ["train", str(config), "-o", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (metrics["status"], metrics["epochs"]) == ("completed", 1)
    saved = str(tmp_path / "run" / "model.keras")
    result = runner.invoke(cli, ["inspect-weights", saved, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    shapes = {v["path"]: v["shape"] for v in document["variables"]}
    assert shapes == {"out/kernel": [64, 10], "out/bias": [10]}


def test_the_limit_rises_with_the_model_and_is_put_back():
    before = sys.getrecursionlimit()
    with room_for(100_000):
        assert sys.getrecursionlimit() >= 300_000
    assert sys.getrecursionlimit() == before
    with room_for(1):
        assert sys.getrecursionlimit() == max(before, 2_003)
    assert mappings_in({"a": [{"b": 1}, {"c": {"d": 2}}], "e": ({},)}) == 5
