"""Registering plugin objects in Keras's own serialization registry: kinit's decorators,
the undecorated classes a plugin defines, and initializer functions in their three forms.

Everything lands under Keras's `package>Name` keys, so saved models load back; what kind
each object is (layer, initializer, ...) is kept beside it for the catalog (catalog.py).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from kinit_cli.errors import PluginError
from kinit_cli.runtime.imports import keras

# Module name -> how the user named the plugin that defined it (for the 'source' column).
PLUGIN_ORIGINS: dict[str, str] = {}
BUILTIN_SOURCE = "kinit (built-in)"


@dataclass(frozen=True)
class Kind:
    """A family of nameable objects: where Keras keeps its own and which base class marks them."""

    name: str
    plural: str
    module: str  # attribute of `keras` holding the built-ins
    base: str | None  # attribute of that module: the base class (None: plain functions)
    functions: bool  # whether plain functions are members too


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("layer", "layers", "layers", "Layer", False),
        Kind("initializer", "initializers", "initializers", "Initializer", True),
        Kind("regularizer", "regularizers", "regularizers", "Regularizer", False),
        Kind("constraint", "constraints", "constraints", "Constraint", False),
        Kind("activation", "activations", "activations", None, True),
        Kind("loss", "losses", "losses", "Loss", True),
        Kind("metric", "metrics", "metrics", "Metric", True),
        Kind("optimizer", "optimizers", "optimizers", "Optimizer", False),
        Kind("schedule", "schedules", "optimizers.schedules", "LearningRateSchedule", False),
        Kind("callback", "callbacks", "callbacks", "Callback", False),
    )
}

# Registered key ('package>Name') -> kind, for objects registered through kinit's decorators.
DECLARED_KINDS: dict[str, str] = {}

T = TypeVar("T")


def register(
    kind: str, obj: T | None = None, *, name: str | None = None, package: str | None = None
) -> Any:
    """Register `obj` as a `kind` in Keras's serialization registry (usable as a decorator).

    `package` defaults to the top-level package of the module defining `obj` (`kinit` for
    the built-in pack); `name` to its `__name__`. A plain function registered as an
    initializer is wrapped in an Initializer subclass so models using it serialize.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")

    def decorate(target: T) -> T:

        pkg = package or _package_of(target)
        bare = name or target.__name__
        registered: Any = target
        if kind == "initializer" and not inspect.isclass(target):
            registered = _function_initializer(target, bare, _function_form(target))
        saving = keras().saving
        if kind == "callback" and not hasattr(registered, "get_config"):
            # Callbacks never go into a saved model, so Keras's get_config requirement for
            # serializable objects does not apply; they still live in its registry.
            saving.get_custom_objects()[f"{pkg}>{bare}"] = registered
        else:
            saving.register_keras_serializable(package=pkg, name=bare)(registered)
        DECLARED_KINDS[f"{pkg}>{bare}"] = kind
        return target

    return decorate(obj) if obj is not None else decorate


def _kind_decorator(kind: str) -> Callable[..., Any]:
    def decorator(obj: Any = None, *, name: str | None = None, package: str | None = None) -> Any:
        return register(kind, obj, name=name, package=package)

    decorator.__name__ = f"register_{kind}"
    decorator.__doc__ = f"Register a {kind} (decorator; optional name= and package=)."
    return decorator


register_layer = _kind_decorator("layer")
register_initializer = _kind_decorator("initializer")
register_regularizer = _kind_decorator("regularizer")
register_constraint = _kind_decorator("constraint")
register_activation = _kind_decorator("activation")
register_loss = _kind_decorator("loss")
register_metric = _kind_decorator("metric")
register_optimizer = _kind_decorator("optimizer")
register_callback = _kind_decorator("callback")


def _package_of(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or "Custom"
    return "kinit" if module.startswith("kinit_cli") else module.split(".")[0]


def _function_form(fn: Callable[..., Any]) -> str:
    """How kinit calls an initializer function: 'factory', 'shape', 'shape_dtype' (dtype by
    keyword) or 'shape_dtype_positional'; PluginError when Keras could not call it at all.

    Keras calls an initializer as `f(shape, dtype=...)`; tutorials also write `f(shape)`
    and zero-argument factories (`def my_init(): return keras.initializers.Ones()`).
    """
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return "shape_dtype"
    if not params:
        return "factory"
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    var_positional = any(p.kind is p.VAR_POSITIONAL for p in params)
    var_keyword = any(p.kind is p.VAR_KEYWORD for p in params)
    required = [p for p in positional if p.default is p.empty]
    required_keyword = [p for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    by_keyword = var_keyword or any(p.name == "dtype" for p in params)
    takes_dtype = by_keyword or len(positional) >= 2 or var_positional
    if (positional or var_positional) and not required_keyword:
        if len(required) <= (2 if takes_dtype else 1):
            if not takes_dtype:
                return "shape"
            return "shape_dtype" if by_keyword else "shape_dtype_positional"
    raise PluginError(
        f"{_where(fn)}initializer function {fn.__name__}{inspect.signature(fn)} cannot be "
        "called as an initializer. kinit accepts f(shape, dtype=None), f(shape), or a "
        "function with no arguments that returns an initializer object (called once to get it).",
        plugin=getattr(fn, "__module__", None),
    )


def source_file(obj: Any) -> str | None:
    """The file that defines a class or function, where Python can tell."""
    try:
        return inspect.getsourcefile(obj)
    except (OSError, TypeError):
        return None


def where_defined(obj: Any) -> str:
    """'file.py:LINE' of a plugin object's definition, or its module when Python cannot tell."""
    path = source_file(obj)
    if path is None:
        return f"module {getattr(obj, '__module__', '?')}"
    try:
        return f"{path}:{inspect.getsourcelines(obj)[1]}"
    except (OSError, TypeError):
        return path


def user_class(cls: type) -> bool:
    """Whether a class is the user's: not Keras's, TensorFlow's, Python's or kinit's own,
    which kinit takes as sound (they are not the user's to fix)."""
    module = (getattr(cls, "__module__", None) or "").split(".")[0]
    return module not in ("keras", "tensorflow", "tf_keras", "builtins", "kinit_cli")


def _where(obj: Any) -> str:
    return f"{where_defined(obj)}: "


def _function_initializer(fn: Callable[..., Any], name: str, form: str) -> type:
    """An Initializer subclass calling `fn`: serializable where a function is not.

    A factory's class is only the catalog's handle: building a config calls the factory
    (`factory` attribute), so the model holds, saves and reports the object it returns.
    """

    def call(self: Any, shape: Any, dtype: Any = None) -> Any:
        if form == "factory":
            return fn()(shape, dtype=dtype)
        if form == "shape":
            return fn(shape)
        return fn(shape, dtype) if form == "shape_dtype_positional" else fn(shape, dtype=dtype)

    def get_config(self: Any) -> dict[str, Any]:
        return {}

    cls = type(
        name,
        (keras().initializers.Initializer,),
        {
            "__call__": call,
            "get_config": get_config,
            # The function's own words (or none): not the Initializer base class's.
            "__doc__": fn.__doc__ or "",
            "__module__": fn.__module__,
            "wrapped_function": staticmethod(fn),
            "factory": staticmethod(fn) if form == "factory" else None,
        },
    )
    return cls


def keras_module(kind: Kind) -> tuple[Any, Any]:
    """The Keras module holding a kind's built-ins, and its base class (None: functions)."""

    module: Any = keras()
    for part in kind.module.split("."):
        module = getattr(module, part)
    return module, getattr(module, kind.base) if kind.base else None


def kind_of_class(obj: Any) -> str | None:
    """The kind a class belongs to by its Keras base class (Layer, Initializer, ...), or None."""
    if not inspect.isclass(obj):
        return None
    for kind in KINDS.values():
        base = keras_module(kind)[1]
        if base is not None and issubclass(obj, base):
            return kind.name
    return None


def register_module_classes(module: Any) -> None:
    """Register every public Keras subclass `module` defines itself, under its class name.

    Users bring classes without kinit's decorators (tutorial code); a class already in
    Keras's registry (decorated, by kinit or by Keras's own decorator) is left as it is.
    """

    known = {id(v) for v in keras().saving.get_custom_objects().values()}
    for attr, obj in list(vars(module).items()):
        if attr.startswith("_") or not inspect.isclass(obj) or id(obj) in known:
            continue
        if obj.__module__ != module.__name__:
            continue  # imported into the plugin, not defined there
        kind = kind_of_class(obj)
        if kind is not None:
            register(kind, obj)
