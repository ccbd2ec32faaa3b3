"""The package's shape: imports run one way, from the command line down to the config and
errors, with no circle; every module imports on its own, without TensorFlow."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kinit_cli"

# Bottom to top: a module may import from its own layer and the layers below it only.
LAYERS = [
    "errors",
    "config",
    "runtime",
    "storage",
    "registry",
    "data",
    "model",
    "weights",
    "training",
    "output",
    "cli",
]
# The public API (the plugin decorators) and what runs on top of it.
TOP = {
    "kinit_cli": len(LAYERS),
    "kinit_cli.__main__": len(LAYERS),
    "kinit_cli.plugins": len(LAYERS),
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """The kinit modules `name` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kinit_cli"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in MODULES)
    found.discard(name)
    return found


GRAPH = {name: _imports(name) for name in MODULES}


def _rank(name: str) -> int:
    if name in TOP or name.startswith("kinit_cli.plugins"):
        return len(LAYERS)
    return LAYERS.index(name.split(".")[1])


def test_every_module_sits_in_a_layer():
    assert {name.split(".")[1] for name in MODULES if name not in TOP} - {"plugins"} == set(LAYERS)


def test_no_import_points_up():
    upward = sorted(f"{a} -> {b}" for a, deps in GRAPH.items() for b in deps if _rank(b) > _rank(a))
    assert upward == []


def test_the_import_graph_has_no_cycle():
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_the_graph_sees_lazy_imports():
    # init_from's source is read through the one saved-model reader, imported at the top.
    assert "kinit_cli.model.saved" in GRAPH["kinit_cli.model.sources"]
    assert "kinit_cli.registry.plugins" in GRAPH["kinit_cli.model.sources"]


# Modules that subclass Keras classes at their top level import Keras with themselves; each
# is imported only by the command that needs it.
SUBCLASS_KERAS = {
    "kinit_cli.data.batches",
    "kinit_cli.output.progress",
    "kinit_cli.training.callbacks",
    "kinit_cli.plugins.initializers",
    "kinit_cli.plugins.layers",
}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_module_imports_alone_without_tensorflow(name):
    """On the JAX backend even those that import Keras leave TensorFlow out (on its own
    backend TensorFlow imports JAX too, when installed: tensorflow/lite/python/util.py)."""
    expected = "['jax', 'keras']" if name in SUBCLASS_KERAS else "[]"
    probe = (
        f"import sys, {name}\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules))"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected
