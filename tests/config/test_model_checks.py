"""Every problem the checks of `model:` report, each at its place and in the order they are
found (the order a `--set model=...` override shows them in)."""

from __future__ import annotations

import pytest

from kinit_cli.config import model_schema
from kinit_cli.config import source as config
from kinit_cli.errors import Problems

# 501 layers, after inputs and outputs no check would take: only the count is said.

MESSAGES = [
    (
        "one class with bad values",
        """\
model:
  class_name: 5
  config: 5
  input_shape: [0]
""",
        [
            "c.yaml:2:15: model.class_name: expected text, got the number 5",
            "c.yaml:3:11: model.config: expected a mapping, got the number 5",
            "c.yaml:4:16: model.input_shape: expected a shape (a list of positive integers), got "
            "a list",
        ],
    ),
    (
        "one class with a functional model's keys",
        """\
model:
  inputs: [{name: a, shape: [2]}]
  class_name: Linear
  outputs: a
  input_shape: [2]
""",
        [
            "c.yaml:2:3: model.inputs: 'inputs' does not go with 'class_name': a model given as "
            "one class takes 'config' and 'input_shape' only",
            "c.yaml:4:3: model.outputs: 'outputs' does not go with 'class_name': a model given "
            "as one class takes 'config' and 'input_shape' only",
        ],
    ),
    (
        "config without class_name",
        """\
model:
  input_shape: [2]
  config: {units: 2}
  layers: [{class_name: Dense}]
""",
        [
            "c.yaml:3:3: model.config: 'config' belongs to a model given as one class (with "
            "'class_name')",
        ],
    ),
    (
        "input_shape with inputs",
        """\
model:
  inputs: [{name: a, shape: [2]}]
  input_shape: [0]
  layers: [{name: d, class_name: Dense, inputs: a}]
  outputs: d
""",
        [
            "c.yaml:2:3: model: give either 'input_shape' (Sequential) or 'inputs' (functional), "
            "not both",
            "c.yaml:3:16: model.input_shape: expected a shape (a list of positive integers), got "
            "a list",
        ],
    ),
    (
        "no layers",
        "model: {input_shape: [2], outputs: x}\n",
        [
            "c.yaml:1:8: model: missing required key 'layers'",
            "c.yaml:1:27: model.outputs: 'outputs' belongs to a functional model (with "
            "'inputs'); a Sequential model's output is its last layer",
        ],
    ),
    (
        "Sequential entries",
        """\
model:
  input_shape: [2]
  layers:
    - Dense
    - {config: {units: 2}}
    - {class_name: Dense, name: d}
    - {shares: 5}
""",
        [
            "c.yaml:4:7: model.layers[0]: expected a {class_name, config} mapping, got 'Dense'",
            "c.yaml:5:7: model.layers[1]: missing 'class_name'",
            "c.yaml:6:27: model.layers[2].name: unknown key 'name'. Allowed keys: class_name, "
            "config.",
            "c.yaml:7:16: model.layers[3].shares: expected text, got the number 5",
        ],
    ),
    (
        "functional inputs",
        """\
model:
  inputs: [x, {shape: [2], dtipe: float32}, {name: b, shape: [0], dtype: 5}]
  layers: [{name: d, class_name: Dense, inputs: b}]
  outputs: d
""",
        [
            "c.yaml:2:12: model.inputs[0]: expected a {name, shape} mapping, got 'x'",
            "c.yaml:2:28: model.inputs[1].dtipe: unknown key 'dtipe'. Did you mean 'dtype'?",
            "c.yaml:2:15: model.inputs[1]: missing required key 'name'",
            "c.yaml:2:62: model.inputs[2].shape: expected a shape (a list of positive integers), "
            "got a list",
            "c.yaml:2:74: model.inputs[2].dtype: expected text, got the number 5",
        ],
    ),
    (
        "no functional inputs",
        """\
model:
  inputs: []
  layers: [{name: d, class_name: Dense, inputs: b}]
""",
        [
            "c.yaml:2:11: model.inputs: expected a non-empty list of {name, shape} inputs",
            "c.yaml:3:49: model.layers[0].inputs: 'b' is not an input or layer defined above. "
            "Defined above: nothing.",
            "c.yaml:2:3: model: missing required key 'outputs' (the functional model's output "
            "layer names)",
        ],
    ),
    (
        "functional entries",
        """\
model:
  inputs: [{name: a, shape: [2]}]
  layers:
    - Dense
    - {name: d, config: 5, inputs: a}
    - {name: e, class_name: Dense, config: {name: f}, inputs: 5}
    - {name: g, shares: e, class_name: Dense, config: {}, inputs: [a]}
    - {class_name: Dense}
  outputs: 5
""",
        [
            "c.yaml:4:7: model.layers[0]: expected a mapping with name, class_name, config and "
            "inputs, got 'Dense'",
            "c.yaml:5:7: model.layers[1]: missing 'class_name' (or 'shares' to reuse a layer "
            "defined above)",
            "c.yaml:6:51: model.layers[2].config.name: differs from the entry's name 'e'; give "
            "the name once",
            "c.yaml:6:63: model.layers[2].inputs: expected a name, or a list or mapping of "
            "names, got the number 5",
            "c.yaml:7:28: model.layers[3].class_name: a layer entry with 'shares' reuses another "
            "layer and takes no 'class_name'",
            "c.yaml:7:47: model.layers[3].config: a layer entry with 'shares' reuses another "
            "layer and takes no 'config'",
            "c.yaml:8:7: model.layers[4]: missing required key 'name'",
            "c.yaml:8:7: model.layers[4]: missing 'inputs' (what the layer is applied to), or "
            "'args'",
            "c.yaml:9:12: model.outputs: expected a name or a list of names, got the number 5",
        ],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [m[1:] for m in MESSAGES], ids=[m[0] for m in MESSAGES]
)
def test_model_problems(text, expected):
    cfg = config.loads(text, "c.yaml")
    found = Problems()
    model_schema.check_model(cfg, cfg.data["model"], found)
    assert [str(p) for p in found] == expected
