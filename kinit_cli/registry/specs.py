"""`{class_name, config}` specs -> Keras objects, checked against each class's signature first.

Keras answers a misspelled constructor argument with a long TypeError about `get_config`,
and its `*.get(dict)` functions rewrite the dict they are given; so kinit resolves names
itself, checks every argument against the constructor, collects every problem with its
key path, and only ever hands Keras copies.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

from kinit_cli.config.source import Config, KeyPath, kind_of
from kinit_cli.errors import Problems, ResolveError, did_you_mean, keras_message, raised_in
from kinit_cli.registry.catalog import Entry, Registry
from kinit_cli.registry.registration import source_file
from kinit_cli.registry.signatures import argument_docs, parameters, takes_function


class _Failed:
    def __repr__(self) -> str:
        return "FAILED"


FAILED: Any = _Failed()
CHECKED: Any = object()  # what a check-only SpecBuilder returns for a spec it would build

# Metric names `model.compile` itself turns into the binary, categorical or sparse
# variant that fits the loss; resolving them to keras.metrics.Accuracy would be wrong.
COMPILE_METRICS = ("accuracy", "acc", "crossentropy", "ce")

_SUFFIX_KINDS = (
    ("_initializer", "initializer"),
    ("_regularizer", "regularizer"),
    ("_constraint", "constraint"),
    ("_activation", "activation"),
)


def argument_kind(name: str, value: Any) -> str | None:
    """Which kind of object a constructor argument holds, by Keras's naming convention."""
    if name in ("activation", "activity_regularizer"):
        return "activation" if name == "activation" else "regularizer"
    if name == "learning_rate" and isinstance(value, dict):
        return "schedule"
    for suffix, kind in _SUFFIX_KINDS:
        if name.endswith(suffix):
            return kind
    return None


class SpecBuilder:
    """Builds objects from specs found in a config, collecting problems instead of stopping."""

    def __init__(self, registry: Registry, config: Config, make: bool = True) -> None:
        self.registry = registry
        self.config = config
        self.problems = Problems()
        # False: check names and arguments, make nothing (validate's callbacks, which
        # train makes with their files placed in the run directory).
        self.make = make

    def problem(self, path: KeyPath, message: str, at_key: bool = False) -> None:
        self.problems.append(self.config.problem(path, message, at_key))

    def build(self, kind: str, value: Any, path: KeyPath, keep_builtin_names: bool = True) -> Any:
        """The object `value` (a name or `{class_name, config}`) describes, or FAILED.

        A plain name of a Keras built-in is handed to Keras as a name (so Keras's own
        string semantics, such as the metric 'accuracy', still apply); plugin names and
        mappings become objects.
        """
        if kind == "metric" and isinstance(value, str) and value.lower() in COMPILE_METRICS:
            return value.lower()
        if isinstance(value, str):
            entry = self._resolve(kind, value, path)
            if entry is None:
                return FAILED
            if entry.builtin and keep_builtin_names and kind != "layer":
                return value if value in entry.names() else entry.name
            return self._instantiate(entry, {}, path)
        if isinstance(value, dict):
            name = value.get("class_name")
            if not isinstance(name, str):
                self.problem(path, "missing 'class_name'")
                return FAILED
            entry = self._resolve(kind, name, path + ("class_name",))
            if entry is None:
                return FAILED
            args = copy.deepcopy(value.get("config") or {})
            return self._instantiate(entry, args, path + ("config",))
        self.problem(
            path,
            f"expected a {kind} name or a {{class_name, config}} mapping, got {kind_of(value)}",
        )
        return FAILED

    def _resolve(self, kind: str, name: str, path: KeyPath) -> Entry | None:
        try:
            return self.registry.resolve(kind, name)
        except ResolveError as exc:
            self.problem(path, str(exc))
            return None

    def _instantiate(self, entry: Entry, args: dict[str, Any], path: KeyPath) -> Any:
        obj = entry.obj
        factory = getattr(obj, "factory", None) if inspect.isclass(obj) else None
        if factory is not None:
            return self._from_factory(entry, factory, args, path)
        if not inspect.isclass(obj):
            if args:
                self.problem(path, f"{entry.name} is a function and takes no config")
                return FAILED
            return obj
        if _keras_model_class(obj):
            return self._from_config(entry, args, path)
        params, open_kwargs = parameters(obj)
        by_name = {p.name: p for p in params}
        ok = True
        unknown: list[str] = []  # keys its own **kwargs may take: from_config tells
        for key in list(args):
            value = args[key]
            if key not in by_name and not open_kwargs:
                unknown.append(key)
                continue
            sub_kind = argument_kind(key, value)
            if sub_kind and isinstance(value, str | dict):
                built = self.build(sub_kind, value, path + (key,))
                ok = ok and built is not FAILED
                args[key] = built
                continue
            mismatch = _mismatch(by_name[key].default, value) if key in by_name else None
            if mismatch is None and key in by_name and value is not None:
                mismatch = _not_a_function(entry, by_name[key], value)
            if mismatch:
                self.problem(path + (key,), mismatch)
                ok = False
        for p in params:
            if p.required and p.name not in args:
                self.problem(path, f"missing required argument '{p.name}' for {entry.name}")
                ok = False
        if unknown:
            made = self._by_from_config(entry.obj, args) if ok else FAILED
            if made is FAILED:
                self._unknown(entry, unknown, [p.name for p in params], path)
                return FAILED
            return made if self.make else CHECKED
        if not ok:
            return FAILED
        if not self.make:
            return CHECKED
        try:
            return obj(**args)
        except Exception as exc:  # Keras validates values in constructors: report, don't crash
            message = keras_message(exc)
            where = "" if entry.builtin else raised_in(exc, source_file(obj))
            self.problem(path, f"{entry.name} rejected its arguments{where}: {message}")
            return FAILED

    def _by_from_config(self, cls: type, args: dict[str, Any]) -> Any:
        """What `cls.from_config` makes of arguments its signature does not name, where its
        own constructor takes **kwargs and may still accept them (LayerNormalization's
        rms_scaling, which its get_config writes); FAILED where it raises."""
        if not _own_kwargs(cls):
            return FAILED
        try:
            return cls.from_config(copy.copy(args))
        except Exception:
            return FAILED

    def _unknown(self, entry: Entry, keys: list[str], accepted: list[str], path: KeyPath) -> None:
        for key in keys:
            hint = did_you_mean(key, accepted)
            self.problem(
                path + (key,),
                f"unknown argument '{key}' for {entry.name}.{hint} "
                f"Accepted parameters: {', '.join(accepted) or 'none'}.",
                at_key=True,
            )

    def _from_config(self, entry: Entry, config: dict[str, Any], path: KeyPath) -> Any:
        """A Sequential or functional model used as a layer: made by its own from_config,
        from the config Keras wrote (its layers with their modules and registered names)."""
        try:
            return entry.obj.from_config(config)
        except Exception as exc:
            # Keras repeats the whole config after what is wrong: not the config's own words.
            message = keras_message(exc).split(" Received: config=")[0]
            self.problem(path, f"{entry.name} could not be made from its config: {message}")
            return FAILED

    def _from_factory(self, entry: Entry, factory: Any, args: dict[str, Any], path: KeyPath) -> Any:
        """A registered zero-argument initializer function: called once, its object used."""
        if args:
            self.problem(path, f"{entry.name} is a factory function and takes no config")
            return FAILED
        try:
            made = factory()
        except Exception as exc:
            self.problem(path, f"{entry.name}() raised {type(exc).__name__}: {keras_message(exc)}")
            return FAILED
        if not callable(made):
            self.problem(
                path,
                f"{entry.name}() returned {type(made).__name__}, not an initializer: a factory "
                "must return an initializer object such as keras.initializers.Ones()",
            )
            return FAILED
        return made


def _own_kwargs(cls: type) -> bool:
    """Whether the class's own constructor (the first in its MRO) takes **kwargs."""
    init = next((vars(k)["__init__"] for k in cls.__mro__ if "__init__" in vars(k)), None)
    try:
        return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(init).parameters.values())
    except (TypeError, ValueError):
        return False


def _keras_model_class(cls: type) -> bool:
    """Keras's own Sequential, Functional and Model, whose from_config reads a model's layers
    (not constructor arguments): a nested model's config is theirs to read."""
    return getattr(cls, "__module__", "").startswith("keras.src.models.")


def _not_a_function(entry: Entry, param: Any, value: Any) -> str | None:
    """The message for a config value given to an argument that takes a Python function
    only (LambdaCallback's on_epoch_end: print), which would fail once training calls it."""
    doc = argument_docs(entry.obj).get(param.name, "")
    if not takes_function(param, doc, callback=entry.kind == "callback"):
        return None
    return (
        f"expected a Python function, got {kind_of(value)}: {entry.name}'s '{param.name}' "
        "takes code, and a config holds data only; pass the function from a plugin class "
        f"(a subclass of {entry.name}, say, that gives it in its __init__)"
    )


def _mismatch(default: Any, value: Any) -> str | None:
    """A type error message when `value` cannot be what the parameter's default says it is."""
    if value is None or default is None or default is inspect.Parameter.empty:
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else f"expected true or false, got {kind_of(value)}"
    if isinstance(default, int | float):
        # Lists are allowed: axis-like parameters default to an int and accept several.
        if isinstance(value, bool) or not isinstance(value, int | float | list):
            return f"expected a number, got {kind_of(value)}"
        return None
    if isinstance(default, str) and not isinstance(value, str | dict):
        return f"expected text, got {kind_of(value)}"
    return None


def check_specs(
    registry: Registry, config: Config, kind: str, specs: list[Any], where: KeyPath
) -> Problems:
    """Every problem of a list of specs (names, arguments), found without making any: what
    validate says of the callbacks train makes once the run directory exists."""
    builder = SpecBuilder(registry, config, make=False)
    for i, spec in enumerate(specs):
        builder.build(kind, spec, where + (i,), keep_builtin_names=False)
    return builder.problems
