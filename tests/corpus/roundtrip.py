"""What every published model must do: export, validate into the same architecture, and
hold no FAIL against its initializers' theory on fresh weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from kinit_cli.cli import cli
from kinit_cli.model.sources import prepare

# Keys whose values name things rather than describe the architecture.
NAMES = {"name", "registered_name"}


def round_trip(runner: Any, original: Any, folder: Path) -> tuple[str, Any, dict[str, Any]]:
    """The exported YAML, the model `kinit validate` builds from it, and inspect-weights
    --check --json's document of the saved file."""
    saved = folder / "model.keras"
    original.save(saved)
    out = folder / "model.yaml"
    result = runner.invoke(cli, ["export-config", str(saved), "-o", str(out)])
    assert result.exit_code == 0, result.output
    rebuilt = prepare(out).built.model
    result = runner.invoke(cli, ["inspect-weights", str(saved), "--check", "--json"])
    assert result.exit_code == 0, result.output
    return out.read_text(), rebuilt, json.loads(result.stdout)


def assert_same_architecture(original: Any, rebuilt: Any) -> None:
    """The same layers in the same order, each of the same class and config (names aside),
    applied to the same layers, and the same parameter counts."""
    assert rebuilt.count_params() == original.count_params()
    assert [type(x).__name__ for x in rebuilt.layers] == [type(x).__name__ for x in original.layers]
    for mine, theirs in zip(rebuilt.layers, original.layers, strict=True):
        assert _unnamed(mine.get_config()) == _unnamed(theirs.get_config()), theirs.name
        assert mine.count_params() == theirs.count_params(), theirs.name
    assert _connections(rebuilt) == _connections(original)


def _connections(model: Any) -> list[list[str]]:
    """Each layer's inbound layers, by position in model.layers (names may differ)."""
    index = {id(layer): i for i, layer in enumerate(model.layers)}
    out = []
    for layer in model.layers:
        for node in getattr(layer, "_inbound_nodes", []):
            parents = [index.get(id(t._keras_history[0]), -1) for t in node.input_tensors]
            out.append([index[id(layer)], *parents])
    return sorted(out)


def _unnamed(value: Any) -> Any:
    """A config with names left out, and floats as the float32 Keras computes with
    (export writes a float32 value in its shortest form: 3291.8906 for 3291.890625)."""
    if isinstance(value, float):
        return float(np.float32(value))
    if isinstance(value, dict):
        return {k: _unnamed(v) for k, v in value.items() if k not in NAMES}
    if isinstance(value, list | tuple):
        return [_unnamed(v) for v in value]
    return value


def assert_no_failure(document: dict[str, Any]) -> None:
    """No FAIL, and a theory for every variable whose initializer a config names."""
    summary = document["check_summary"]
    failed = [c for c in document["check"] if c["status"] == "FAIL"]
    assert summary["fail"] == 0, failed[:3]
    assert summary["pass"] > 0
