"""TensorFlow ops in plugin classes, found before a JAX or torch run trips on them.

Tutorial code calls `tf.matmul`, `tf.nn.relu` or `tf.random_normal_initializer`; on the JAX
or torch backend those get a tensor they cannot take (or make TensorFlow tensors Keras
cannot use), and the error comes from deep inside the backend. Reading the class's source
finds them first: every attribute read through a name the class's module binds to
TensorFlow, `tf.keras` (Keras itself) excepted.
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from dataclasses import dataclass
from types import ModuleType
from typing import Any

# Where the keras.ops name differs from TensorFlow's (the rest keep their names).
_RENAMED = {
    "reduce_sum": "keras.ops.sum",
    "reduce_mean": "keras.ops.mean",
    "reduce_max": "keras.ops.max",
    "reduce_min": "keras.ops.min",
    "reduce_prod": "keras.ops.prod",
    "reduce_any": "keras.ops.any",
    "reduce_all": "keras.ops.all",
    "concat": "keras.ops.concatenate",
    "constant": "keras.ops.convert_to_tensor",
    "Variable": "self.add_weight (or keras.Variable)",
    "random_normal_initializer": "keras.initializers.RandomNormal",
    "random_uniform_initializer": "keras.initializers.RandomUniform",
    "zeros_initializer": "keras.initializers.Zeros",
    "ones_initializer": "keras.initializers.Ones",
    "constant_initializer": "keras.initializers.Constant",
    "truncated_normal_initializer": "keras.initializers.TruncatedNormal",
    "normal": "keras.random.normal",
    "uniform": "keras.random.uniform",
    "truncated_normal": "keras.random.truncated_normal",
}


_FRAMEWORKS = {"keras", "tensorflow", "tf_keras", "builtins", "abc", "typing"}


@dataclass(frozen=True)
class TensorFlowUse:
    """One TensorFlow op in a plugin class: where, which, and what to write instead."""

    file: str
    line: int
    owner: str  # Class.method
    op: str  # as written: tf.matmul

    @property
    def fix(self) -> str:
        last = self.op.rsplit(".", 1)[-1]
        if last in _RENAMED:
            return _RENAMED[last]
        try:
            import keras

            if hasattr(keras.ops, last):
                return f"keras.ops.{last}"
        except ImportError:  # pragma: no cover - Keras is a dependency
            pass
        return "its keras.ops counterpart"

    def message(self, backend: str) -> str:
        return (
            f"{self.file}:{self.line}: {self.owner} calls {self.op}, a TensorFlow op, which "
            f"backend {backend} cannot run: write {self.fix} (backend-neutral), or set "
            "backend: tensorflow"
        )


def uses(cls: type) -> list[TensorFlowUse]:
    """The TensorFlow ops `cls`'s own methods and its non-Keras bases' read, in source
    order."""
    found: list[TensorFlowUse] = []
    for klass in cls.__mro__:
        module = sys.modules.get(klass.__module__)
        if module is None or klass.__module__.split(".")[0] in _FRAMEWORKS:
            continue
        found += _class_uses(klass, module)
    return found


def _class_uses(klass: type, module: ModuleType) -> list[TensorFlowUse]:
    aliases = {name for name, value in vars(module).items() if _is_tensorflow(value)}
    if not aliases:
        return []
    try:
        lines, first = inspect.getsourcelines(klass)
        file = inspect.getsourcefile(klass) or "<unknown>"
    except (OSError, TypeError):
        return []
    tree = ast.parse(textwrap.dedent("".join(lines)))
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        # tf.nn.relu holds tf.nn: only the outermost attribute of a chain is the op.
        inside = {id(n.value) for n in ast.walk(node) if isinstance(n, ast.Attribute)}
        for inner in ast.walk(node):
            if id(inner) in inside:
                continue
            op = _chain(inner)
            if op and op.split(".")[0] in aliases and _is_op(op):
                line = first + inner.lineno - 1
                where = (line, inner.col_offset)
                out.append((where, TensorFlowUse(file, line, f"{klass.__name__}.{node.name}", op)))
    unique = {(u.line, u.op): (where, u) for where, u in sorted(out, key=lambda p: p[0])}
    return [u for _, u in sorted(unique.values(), key=lambda p: p[0])]


def _is_tensorflow(value: Any) -> bool:
    name = getattr(value, "__name__", "")
    return isinstance(value, ModuleType) and (
        name == "tensorflow" or name.startswith("tensorflow.")
    )


def _is_op(op: str) -> bool:
    """`tf.x...`, but not `tf.keras...` (Keras itself, on whichever backend)."""
    parts = op.split(".")
    return len(parts) > 1 and parts[1] != "keras"


def _chain(node: ast.AST) -> str | None:
    """`tf.nn.relu` for the outermost attribute of a dotted name; None for anything else."""
    if not isinstance(node, ast.Attribute):
        return None
    parts, cur = [], node
    while isinstance(cur, ast.Attribute):
        parts.append(cur.attr)
        cur = cur.value
    if not isinstance(cur, ast.Name):
        return None
    return ".".join([cur.id, *reversed(parts)])
