"""TensorFlow ops in plugin code, found before a JAX or torch run trips on them.

Tutorial code calls `tf.matmul`, `tf.nn.relu` or `tf.random_normal_initializer`; on the JAX
or torch backend those get a tensor they cannot take (or make TensorFlow tensors Keras
cannot use), and the error comes from deep inside the backend. Reading the source finds
them first: every attribute read through a name the module binds to TensorFlow
(`tf.keras`, Keras itself, excepted), in the class a config names, its bases, and the
classes and functions of the user's own modules it refers to (a sub-layer, a helper).
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import os
import sys
import textwrap
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from types import FunctionType, ModuleType
from typing import Any

from kinit_cli.errors import PluginCodeError
from kinit_cli.runtime import backend, compat

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
    "clip_by_value": "keras.ops.clip",
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
# Modules whose code is not the user's: never read.
_FRAMEWORKS = {"keras", "tensorflow", "tf_keras", "builtins", "abc", "typing", "numpy", "kinit_cli"}


@dataclass(frozen=True)
class TensorFlowUse:
    """One TensorFlow op in plugin code: where, which, and what to write instead."""

    file: str
    line: int
    owner: str  # Class.method or function
    op: str  # as written: tf.matmul
    via: str | None = None  # the named class, when the op is in code it refers to

    @property
    def fix(self) -> str:
        last = self.op.rsplit(".", 1)[-1]
        if last in _RENAMED:
            return _RENAMED[last]
        import keras

        return f"keras.ops.{last}" if hasattr(keras.ops, last) else "its keras.ops counterpart"

    def message(self, backend: str, switch: str) -> str:
        """`switch`: how the user picks the TensorFlow backend where they picked this one."""
        via = f" (used by {self.via})" if self.via else ""
        return (
            f"{self.file}:{self.line}: {self.owner}{via} calls {self.op}, a TensorFlow op, which "
            f"backend {backend} cannot run: write {self.fix} (backend-neutral), or {switch}"
        )


def binds_tensorflow(module: ModuleType | None) -> bool:
    """`module` binds a name to TensorFlow: `import tensorflow as tf`, or `from tensorflow
    import matmul` (a TensorFlow function or class)."""
    return module is not None and any(_from_tensorflow(v) for v in vars(module).values())


def _from_tensorflow(value: Any) -> bool:
    if isinstance(value, ModuleType):
        return is_tensorflow(value)
    try:
        return str(getattr(value, "__module__", "") or "").startswith("tensorflow.")
    except Exception:  # an object whose attributes raise: not TensorFlow's
        return False


def _other_backend() -> str | None:
    """The backend Keras runs on when it is not TensorFlow (None before Keras starts)."""
    running = backend.started()
    return None if running == "tensorflow" else running


def _advice(module: ModuleType, running: str) -> str:
    name = os.path.basename(getattr(module, "__file__", None) or module.__name__)
    return (
        f"{name} uses TensorFlow, whose ops backend {running} cannot run: write them with "
        "keras.ops, backend-neutral, or run on backend tensorflow"
    )


def unseen_ops_hint(module: ModuleType | None) -> str:
    """For an error raised in plugin code on JAX or torch: when `module` binds TensorFlow, a
    TensorFlow op this scan cannot see (`getattr(tf, name)`) may be the cause, and the
    backend's own error will not say so."""
    running = _other_backend()
    if running is None or module is None or not binds_tensorflow(module):
        return ""
    return f" ({_advice(module, running)})"


# Keras's warning for trainable weights the loss does not reach.
NO_GRADIENTS = "Gradients do not exist for variables"


@contextlib.contextmanager
def cut_gradients_fail(model: Any) -> Iterator[None]:
    """On JAX or torch, a TensorFlow op in a layer of a user class whose module binds
    TensorFlow can run without an error (torch tensors become NumPy arrays) and cut the
    layer's weights off from the gradients; Keras only warns (NO_GRADIENTS), and the run
    would end with those weights untrained. Inside this, that warning, when it names such a
    layer's weights, fails the run instead (PluginCodeError), saying why; any other warning
    goes on as before."""
    from kinit_cli.registry.registration import user_class

    running = _other_backend()
    layers = [
        layer
        for layer in (compat.all_layers(model) if running else [])
        if user_class(type(layer)) and binds_tensorflow(sys.modules.get(type(layer).__module__))
    ]
    with warnings.catch_warnings():  # restores showwarning on the way out
        show = warnings.showwarning

        def showwarning(message: Any, *args: Any, **kwargs: Any) -> None:
            text = str(message)
            if NO_GRADIENTS in text:
                for layer in layers:
                    cut = [v.path for v in layer.trainable_weights if f"'{v.path}'" in text]
                    if cut:
                        module = sys.modules[type(layer).__module__]
                        raise PluginCodeError(
                            f"{module.__file__}: training on backend {running} got no "
                            f"gradients for the weights of {type(layer).__name__} "
                            f"'{layer.name}' ({', '.join(cut)}), so they would never train: "
                            f"{_advice(module, str(running))} (its ops turn the backend's "
                            "tensors into NumPy arrays, which gradients do not pass through)"
                        )
            show(message, *args, **kwargs)

        if layers:
            warnings.showwarning = showwarning
        yield


def uses(cls: type) -> list[TensorFlowUse]:
    """The TensorFlow ops in `cls`, its non-framework bases, and the user's classes and
    functions they refer to, each place once, in source order within each."""
    found: list[TensorFlowUse] = []
    seen: set[int] = set()
    pending: list[Any] = [k for k in cls.__mro__ if _users(k)]
    while pending:
        obj = pending.pop(0)
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        ops, refers = _read(obj)
        via = None if obj in cls.__mro__ else cls.__name__
        found += [TensorFlowUse(u.file, u.line, u.owner, u.op, via) for u in ops]
        pending += [r for r in refers if id(r) not in seen]
    return found


def _users(obj: Any) -> bool:
    """Whether `obj` is a class or function of the user's (not a framework's)."""
    module = getattr(obj, "__module__", None) or ""
    return (
        isinstance(obj, type | FunctionType)
        and module.split(".")[0] not in _FRAMEWORKS
        and module in sys.modules
    )


def _read(obj: Any) -> tuple[list[TensorFlowUse], list[Any]]:
    """The ops in `obj`'s source, and the user's classes and functions it names."""
    module: ModuleType = sys.modules[obj.__module__]
    names = vars(module)
    aliases = {name for name, value in names.items() if is_tensorflow(value)}
    try:
        lines, first = inspect.getsourcelines(obj)
        file = inspect.getsourcefile(obj) or "<unknown>"
    except (OSError, TypeError):
        return [], []
    tree = ast.parse(textwrap.dedent("".join(lines)))
    refers = [
        names[n.id]
        for n in ast.walk(tree)
        if isinstance(n, ast.Name) and n.id in names and _users(names[n.id])
    ]
    found: dict[tuple[int, str], tuple[tuple[int, int], TensorFlowUse]] = {}
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    for node in functions:
        # tf.nn.relu holds tf.nn: only the outermost attribute of a chain is the op.
        inside = {id(n.value) for n in ast.walk(node) if isinstance(n, ast.Attribute)}
        for inner in ast.walk(node):
            op = None if id(inner) in inside else _chain(inner)
            if op and op.split(".")[0] in aliases and _is_op(op):
                line = first + inner.lineno - 1
                owner = (
                    node.name if isinstance(obj, FunctionType) else f"{obj.__name__}.{node.name}"
                )
                if (line, op) not in found or node.name != obj.__name__:
                    found[(line, op)] = (
                        (line, inner.col_offset),
                        TensorFlowUse(file, line, owner, op),
                    )
    ordered = sorted(found.values(), key=lambda pair: pair[0])
    return [use for _, use in ordered], refers


def is_tensorflow(value: Any) -> bool:
    """`value` is TensorFlow or one of its modules."""
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
