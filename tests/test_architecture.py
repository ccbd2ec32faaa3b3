"""The package's shape: imports run one way, from the command line down to the config and
errors, with no circle (import-linter's layers contract in pyproject.toml, on grimp's graph);
every module imports on its own, without TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import grimp
import pytest
from importlinter import api  # noqa: F401  (configures import-linter before its use cases run)
from importlinter.application import use_cases

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "kinit_cli"
# The public API (the plugin decorators) and what runs on top of it: they may import anything.
TOP = {"kinit_cli", "kinit_cli.__main__", "kinit_cli.plugins"}


def _modules() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


MODULES = _modules()


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    """Every import between kinit's modules, at the top or inside a function."""
    return grimp.build_graph("kinit_cli", cache_dir=None)


def test_the_layers_contract_is_kept(capsys):
    """Every module sits in a layer (the contract is exhaustive) and imports from its own
    layer and those below only."""
    kept = use_cases.lint_imports(str(ROOT / "pyproject.toml"), cache_dir=None, no_logo=True)
    report = capsys.readouterr().out
    assert kept, report
    assert "Contracts: 1 kept, 0 broken." in report


def test_only_the_top_imports_the_package_itself(graph):
    importers = graph.find_modules_that_directly_import("kinit_cli")
    assert {m for m in importers if not m.startswith("kinit_cli.plugins")} - TOP == set()


def test_the_import_graph_has_no_cycle(graph):
    cycles = sorted(
        f"{a} -> {b}"
        for a in graph.modules
        for b in graph.find_modules_directly_imported_by(a)
        if graph.chain_exists(importer=b, imported=a)
    )
    assert cycles == []


def test_the_graph_sees_lazy_imports(graph):
    # init_from's source is read through the one saved-model reader, imported at the top.
    for imported in ("kinit_cli.model.saved", "kinit_cli.registry.plugins"):
        assert graph.direct_import_exists(importer="kinit_cli.model.sources", imported=imported)
    assert set(graph.modules) == set(MODULES)


# Modules that subclass Keras classes at their top level import Keras with themselves; each
# is imported only by the command that needs it.
SUBCLASS_KERAS = {
    "kinit_cli.data.batches",
    "kinit_cli.output.progress",
    "kinit_cli.training.callbacks",
    "kinit_cli.plugins.initializers",
    "kinit_cli.plugins.layers",
}

# One interpreter, forked once per module: each child imports its module from the same
# fresh state (nothing of kinit or of the four frameworks loaded) and reports what came with it.
PROBE = """\
import json, os, sys, traceback
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            __import__(name)
            heavy = [m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules]
            print(json.dumps([name, 0, sorted(heavy)]), flush=True)
            os._exit(0)
        except BaseException:
            print(json.dumps([name, 1, traceback.format_exc()]), flush=True)
            os._exit(1)
    os.waitpid(pid, 0)
"""


def _probe(names: list[str]) -> dict[str, tuple[int, object]]:
    """Each module's (status, frameworks in sys.modules after importing it alone)."""
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *names],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("[")]
    return {name: (status, found) for name, status, found in lines}


@pytest.fixture(scope="module")
def imported_alone() -> Callable[[str], tuple[int, object]]:
    """imported_alone(name): the probe's answer for a module, the modules that import Keras
    probed together (seconds each, so their tests are slow), the others together."""
    found: dict[str, tuple[int, object]] = {}

    def get(name: str) -> tuple[int, object]:
        if name not in found:
            keras = name in SUBCLASS_KERAS
            found.update(_probe([m for m in MODULES if (m in SUBCLASS_KERAS) == keras]))
        return found[name]

    return get


@pytest.mark.parametrize(
    "name", [pytest.param(m, marks=pytest.mark.slow) if m in SUBCLASS_KERAS else m for m in MODULES]
)
def test_each_module_imports_alone_without_tensorflow(imported_alone, name):
    """On the JAX backend even those that import Keras leave TensorFlow out (on its own
    backend TensorFlow imports JAX too, when installed: tensorflow/lite/python/util.py)."""
    expected = ["jax", "keras"] if name in SUBCLASS_KERAS else []
    status, found = imported_alone(name)
    assert status == 0, found
    assert found == expected
