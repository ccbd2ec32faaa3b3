"""Everything a config can name: Keras built-ins and plugins, found by one resolver.

Plugins register through Keras's own registry (`keras.saving.register_keras_serializable`,
keys `package>Name`), so models saved with plugin objects load back. kinit adds what
Keras lacks: the kind of each object, bare-name and alias lookup (case-insensitive) and
did-you-mean. Loading the plugins themselves is loading.py's.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from kinit_cli.errors import PluginError, ResolveError, did_you_mean

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
_DECLARED_KINDS: dict[str, str] = {}
_KERAS_API = {"get", "serialize", "deserialize"}

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
        from kinit_cli.backend import keras

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
        _DECLARED_KINDS[f"{pkg}>{bare}"] = kind
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
    try:
        path = inspect.getsourcefile(obj)
        line = inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        path = None
    return f"{path}:{line}" if path else f"module {getattr(obj, '__module__', '?')}"


def _where(obj: Any) -> str:
    return f"{where_defined(obj)}: "


def _function_initializer(fn: Callable[..., Any], name: str, form: str) -> type:
    """An Initializer subclass calling `fn`: serializable where a function is not.

    A factory's class is only the catalog's handle: building a config calls the factory
    (`factory` attribute), so the model holds, saves and reports the object it returns.
    """
    from kinit_cli.backend import keras

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


def kind_of_class(obj: Any) -> str | None:
    """The kind a class belongs to by its Keras base class (Layer, Initializer, ...), or None."""
    from kinit_cli.backend import keras

    k = keras()
    bases = {
        "layer": k.layers.Layer,
        "initializer": k.initializers.Initializer,
        "regularizer": k.regularizers.Regularizer,
        "constraint": k.constraints.Constraint,
        "loss": k.losses.Loss,
        "metric": k.metrics.Metric,
        "optimizer": k.optimizers.Optimizer,
        "schedule": k.optimizers.schedules.LearningRateSchedule,
        "callback": k.callbacks.Callback,
    }
    if not inspect.isclass(obj):
        return None
    return next((kind for kind, base in bases.items() if issubclass(obj, base)), None)


def register_module_classes(module: Any) -> list[str]:
    """Register every public Keras subclass `module` defines itself, under its class name.

    Users bring classes without kinit's decorators (tutorial code); a class already in
    Keras's registry (decorated, by kinit or by Keras's own decorator) is left as it is.
    """
    from kinit_cli.backend import keras

    custom = keras().saving.get_custom_objects()
    known = {id(v) for v in custom.values()}
    keys = []
    for attr, obj in list(vars(module).items()):
        if attr.startswith("_") or not inspect.isclass(obj) or id(obj) in known:
            continue
        if obj.__module__ != module.__name__:
            continue  # imported into the plugin, not defined there
        kind = kind_of_class(obj)
        if kind is None:
            continue
        register(kind, obj)
        keys.append(f"{_package_of(obj)}>{obj.__name__}")
    return keys


# --------------------------------------------------------------------------- the catalog


@dataclass(frozen=True)
class Entry:
    """One nameable object: canonical name, the other names it answers to, and where it lives."""

    kind: str
    name: str
    obj: Any
    aliases: tuple[str, ...] = ()
    key: str | None = None  # 'package>Name' for plugins; None for Keras built-ins
    source: str = "keras"

    @property
    def qualified(self) -> str:
        return self.key or f"keras>{self.name}"

    @property
    def builtin(self) -> bool:
        return self.key is None

    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


class Registry:
    """Every nameable object, from Keras's modules and its registry once plugins are loaded."""

    def __init__(self) -> None:
        from kinit_cli.backend import keras

        self._keras = keras()
        self.entries: dict[str, list[Entry]] = {k: [] for k in KINDS}
        # kinit built-in -> the user plugin's name that shadowed it in a lookup.
        self.shadowed: dict[str, str] = {}
        for kind in KINDS.values():
            self.entries[kind.name].extend(self._builtins(kind))
        for key, obj in self._keras.saving.get_custom_objects().items():
            for kind in self._kinds_of(key, obj):
                package, _, bare = key.rpartition(">")
                module = getattr(obj, "__module__", None) or package
                source = (
                    BUILTIN_SOURCE
                    if module.startswith("kinit_cli")
                    else f"plugin {PLUGIN_ORIGINS.get(module, module)}"
                )
                self.entries[kind].append(Entry(kind, bare, obj, (), key, source))
        for kind, entries in self.entries.items():
            users = {e.name.lower(): e for e in entries if e.key and e.source != BUILTIN_SOURCE}
            self.entries[kind] = [
                dataclasses.replace(
                    e, source=f"{BUILTIN_SOURCE}; shadowed by {users[e.name.lower()].qualified}"
                )
                if e.source == BUILTIN_SOURCE and e.name.lower() in users
                else e
                for e in entries
            ]

    def _builtins(self, kind: Kind) -> list[Entry]:
        module: Any = self._keras
        for part in kind.module.split("."):
            module = getattr(module, part)
        base = getattr(module, kind.base) if kind.base else None
        by_obj: dict[int, list[str]] = {}
        objs: dict[int, Any] = {}
        for attr in dir(module):
            if attr.startswith("_") or attr in _KERAS_API:
                continue
            obj = getattr(module, attr)
            if inspect.isclass(obj):
                if base is None or not issubclass(obj, base) or obj is base:
                    continue
            elif not (kind.functions and inspect.isfunction(obj)):
                continue
            by_obj.setdefault(id(obj), []).append(attr)
            objs[id(obj)] = obj
        for alias, obj in _keras_alias_table(kind).items():
            # Keras's own table adds short aliases ('mse', 'normal'); its generated
            # snake_case names ('binary_io_u') are left out, as Keras's public API does.
            if (
                id(obj) in by_obj
                and "_" not in alias
                and alias.lower() not in {n.lower() for n in by_obj[id(obj)]}
            ):
                by_obj[id(obj)].append(alias.lower())
        entries = []
        for oid, names in by_obj.items():
            obj = objs[oid]
            canonical = obj.__name__ if obj.__name__ in names else names[0]
            aliases = tuple(sorted(n for n in names if n != canonical))
            entries.append(Entry(kind.name, canonical, obj, aliases))
        return sorted(entries, key=lambda e: e.name.lower())

    def _kinds_of(self, key: str, obj: Any) -> list[str]:
        if key in _DECLARED_KINDS:
            return [_DECLARED_KINDS[key]]
        if inspect.isclass(obj):
            kind = kind_of_class(obj)
            return [kind] if kind else []
        # A bare function registered with Keras's own decorator: usable wherever functions are.
        return [kind.name for kind in KINDS.values() if kind.functions]

    def resolve(self, kind: str, name: str) -> Entry:
        """The one entry of `kind` that `name` means; ResolveError if none or several."""
        entries = self.entries[kind]
        if ">" in name:
            package, _, bare = name.rpartition(">")
            if package.lower() == "keras":
                matches = [e for e in entries if e.builtin and _named(e, bare, exact=False)]
            else:
                matches = [e for e in entries if e.key and e.key.lower() == name.lower()]
        else:
            matches = [e for e in entries if _named(e, name, exact=True)]
            if not matches:
                matches = [e for e in entries if _named(e, name, exact=False)]
        if len(matches) > 1 and any(e.key and not _pack(e) for e in matches):
            # A user's plugin wins over kinit's own examples (the tutorials' names:
            # SimpleDense, ExampleRandomNormal); `kinit>Name` still reaches those.
            users = [e for e in matches if not _pack(e)]
            user = next(e for e in users if e.key)
            for e in matches:
                if _pack(e):
                    self.shadowed.setdefault(e.qualified, user.qualified)
            matches = users
        if len(matches) > 1 and all(e.builtin for e in matches):
            # Keras itself has pairs differing only by case (losses.Huber / losses.huber):
            # a class is what a capitalised or mixed-case spelling most likely means.
            matches = [e for e in matches if inspect.isclass(e.obj)][:1] or matches[:1]
        if len(matches) == 1:
            return matches[0]
        info = KINDS[kind]
        if matches:
            listed = ", ".join(f"'{e.qualified}' ({e.source})" for e in matches)
            raise ResolveError(
                f"'{name}' is ambiguous: {listed} all claim it. Write the package>Name form, "
                f"e.g. '{matches[-1].qualified}'.",
                name,
                kind,
            )
        bare = name.rpartition(">")[2]
        hint = (
            self._undecorated(kind, bare)
            or self._keras_spelling(kind, name)
            or did_you_mean(bare, [_closest_name(e, bare) for e in entries])
        )
        raise ResolveError(
            f"unknown {kind} '{name}'.{hint} See `kinit list-{info.plural}` for every {kind} "
            "kinit knows (Keras built-ins and loaded plugins).",
            name,
            kind,
        )

    def _undecorated(self, kind: str, name: str) -> str:
        """A hint when a loaded plugin defines a function of that name: classes register by
        themselves, functions only with a decorator."""
        import sys

        if not KINDS[kind].functions:
            return ""
        for module_name, spec in PLUGIN_ORIGINS.items():
            module = sys.modules.get(module_name)
            obj = getattr(module, name, None)
            if inspect.isfunction(obj) and obj.__module__ == module_name:
                return (
                    f" The plugin '{spec}' defines a function {name}(), but functions are "
                    f"registered only with a decorator: put @register_{kind} (from kinit_cli) "
                    "or @keras.saving.register_keras_serializable() above it."
                )
        return ""

    def _keras_spelling(self, kind: str, name: str) -> str:
        """' Did you mean ...?' for TensorFlow's spelling of a Keras object (tutorials write
        `tf.zeros_initializer`, `tf.nn.relu`, `tf.keras.initializers.GlorotUniform`)."""
        text = re.sub(r"^(?:tf\.keras|tensorflow\.keras|keras|tf|tensorflow)\.", "", name)
        text = re.sub(r"^(?:nn|math|initializers|layers|activations|optimizers|losses)\.", "", text)
        text = re.sub(r"(?<=\w)_initializer$", "", text)
        if text == name:
            return ""
        try:
            entry = self.resolve(kind, text)
        except ResolveError:
            return ""
        canonical = "" if entry.name == text else f" ({entry.name})"
        return (
            f" Did you mean '{text}'{canonical}? A config names the Keras object itself, "
            "without a module path or TensorFlow's '_initializer' suffix."
        )

    def catalog(self, kind: str) -> list[Entry]:
        return sorted(self.entries[kind], key=lambda e: (not e.builtin, e.name.lower()))


def _pack(entry: Entry) -> bool:
    """Whether an entry is one of kinit's built-in examples."""
    return entry.source.startswith(BUILTIN_SOURCE)


def _closest_name(entry: Entry, name: str) -> str:
    """The one of an entry's names nearest to `name`, so suggestions never repeat an object."""
    import difflib

    low = name.lower()
    return max(entry.names(), key=lambda n: difflib.SequenceMatcher(None, low, n.lower()).ratio())


def _keras_alias_table(kind: Kind) -> dict[str, Any]:
    """Keras's ALL_OBJECTS_DICT for a kind (what its `get()` accepts), where it has one."""
    try:
        module = importlib.import_module(f"keras.src.{kind.module}")
    except ImportError:
        return {}
    return dict(getattr(module, "ALL_OBJECTS_DICT", {}))


def _named(entry: Entry, name: str, exact: bool) -> bool:
    if exact:
        return name in entry.names()
    low = name.lower()
    return any(n.lower() == low for n in entry.names())


# --------------------------------------------------------------------------- signatures


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any = inspect.Parameter.empty

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


# Keras's Layer.__init__ takes these from **kwargs besides its named parameters.
_LAYER_EXTRA_KWARGS = ("input_dim", "input_shape")


def parameters(obj: Any) -> tuple[list[Parameter], bool]:
    """Constructor (or function) parameters along the MRO, and whether any others are accepted.

    A class whose `__init__` takes `**kwargs` passes them up to its base, so the walk goes
    on to the base's `__init__` until one has no `**kwargs`: that set is what Keras accepts.
    """
    if not inspect.isclass(obj):
        return _own_parameters(obj)
    seen: dict[str, Parameter] = {}
    last: type | None = None
    for klass in obj.__mro__:
        if "__init__" not in vars(klass):
            continue
        if klass is object:
            # Keras's own base classes (Optimizer, Loss, ...) take **kwargs only to reject
            # unknown ones with their own message: what they name is the whole set.
            keras_root = last is not None and last.__module__.split(".")[0] == "keras"
            return list(seen.values()), not keras_root
        params, open_kwargs = _own_parameters(klass.__init__, skip_first=True)
        for p in params:
            # A base's required parameter (BaseConv's `rank`) is the subclass's to supply.
            seen.setdefault(
                p.name, p if last is None or not p.required else Parameter(p.name, None)
            )
        if klass.__name__ == "Layer" and klass.__module__.startswith("keras"):
            for extra in _LAYER_EXTRA_KWARGS:
                seen.setdefault(extra, Parameter(extra, None))
            return list(seen.values()), False
        if not open_kwargs:
            return list(seen.values()), False
        last = klass
    return list(seen.values()), True


def _own_parameters(fn: Any, skip_first: bool = False) -> tuple[list[Parameter], bool]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return [], True
    out, open_kwargs = [], False
    items = list(sig.parameters.values())[1 if skip_first else 0 :]
    for p in items:
        if p.kind is p.VAR_KEYWORD:
            open_kwargs = True
        elif p.kind is not p.VAR_POSITIONAL:
            out.append(Parameter(p.name, p.default))
    return out, open_kwargs


def own_parameters(obj: Any) -> list[Parameter]:
    """The parameters a class's own constructor names (what a catalog shows first)."""
    if inspect.isclass(obj):
        for klass in obj.__mro__:
            if "__init__" in vars(klass) and klass is not object:
                return _own_parameters(klass.__init__, skip_first=True)[0]
        return []
    return _own_parameters(obj)[0]


def own_doc(obj: Any) -> str:
    """The docstring a class or function itself has: a plugin class without one would
    otherwise show its Keras base class's (all 100 lines of Layer's)."""
    if inspect.isclass(obj):
        return inspect.cleandoc(vars(obj).get("__doc__") or "")
    return inspect.getdoc(obj) or ""


def summary(obj: Any) -> str:
    """First line of the docstring."""
    doc = own_doc(obj)
    return doc.strip().splitlines()[0] if doc.strip() else ""


def describe(entry: Entry) -> dict[str, Any]:
    """Plain data about an entry, for `list-*` tables and their `--json`."""
    params = []
    for p in own_parameters(entry.obj):
        item: dict[str, Any] = {"name": p.name, "required": p.required}
        if not p.required:
            item["default"] = _jsonable(p.default)
        params.append(item)
    wrapped = getattr(entry.obj, "wrapped_function", None) if inspect.isclass(entry.obj) else None
    doc = own_doc(wrapped if wrapped is not None else entry.obj)
    text = summary(wrapped if wrapped is not None else entry.obj)
    if getattr(entry.obj, "factory", None) is not None:
        text = (
            f"Factory: {wrapped.__name__}() is called once and the initializer it returns "
            f"is used. {text}"
        ).strip()
    return {
        "name": entry.name,
        "kind": entry.kind,
        "qualified_name": entry.qualified,
        "aliases": list(entry.aliases),
        "source": entry.source,
        "summary": text,
        "parameters": params,
        "doc": doc,
    }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)
