"""Everything a config can name: Keras built-ins and plugins, found by one resolver.

Plugins register through Keras's own registry (`keras.saving.register_keras_serializable`,
keys `package>Name`), so models saved with plugin objects load back. kinit adds what
Keras lacks: the kind of each object, bare-name and alias lookup (case-insensitive) and
did-you-mean. Loading the plugins themselves is plugins.py's; what a class takes is
signatures.py's.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass
from typing import Any

from kinit_cli.errors import ResolveError, did_you_mean
from kinit_cli.registry import plugins
from kinit_cli.registry.registration import (
    BUILTIN_SOURCE,
    DECLARED_KINDS,
    KINDS,
    PLUGIN_ORIGINS,
    Kind,
    keras_module,
    kind_of_class,
)
from kinit_cli.runtime import compat
from kinit_cli.runtime.imports import keras

# Names in Keras's modules that are its API functions, not objects a config names.
_KERAS_API = {"get", "serialize", "deserialize"}


@dataclass(frozen=True)
class Entry:
    """One nameable object: canonical name, the other names it answers to, and where it lives."""

    kind: str
    name: str
    obj: Any
    aliases: tuple[str, ...] = ()
    key: str | None = None  # 'package>Name' for plugins; None for Keras built-ins
    source: str = "keras"
    shadowed_by: str | None = None  # a kinit example's name a user plugin also defines

    @property
    def qualified(self) -> str:
        return self.key or f"keras>{self.name}"

    @property
    def pack(self) -> bool:
        """Whether this is one of kinit's built-in examples."""
        return self.source == BUILTIN_SOURCE

    @property
    def builtin(self) -> bool:
        return self.key is None

    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


class Registry:
    """Every nameable object, from Keras's modules and its registry once plugins are loaded."""

    def __init__(self) -> None:

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
            users = {e.name.lower(): e.qualified for e in entries if e.key and not e.pack}
            self.entries[kind] = [
                dataclasses.replace(e, shadowed_by=users[e.name.lower()])
                if e.pack and e.name.lower() in users
                else e
                for e in entries
            ]

    def _builtins(self, kind: Kind) -> list[Entry]:
        module, base = keras_module(kind)
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
        for alias, obj in compat.name_table(kind.module).items():
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
        if key in DECLARED_KINDS:
            return [DECLARED_KINDS[key]]
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
            if not matches and (keras_own := _keras_class(kind, package, bare)):
                matches = [keras_own]
        else:
            matches = [e for e in entries if _named(e, name, exact=True)]
            if not matches:
                matches = [e for e in entries if _named(e, name, exact=False)]
        if len(matches) > 1 and any(e.key and not e.pack for e in matches):
            # A user's plugin wins over kinit's own examples (the tutorials' names:
            # SimpleDense, ExampleRandomNormal); `kinit>Name` still reaches those.
            users = [e for e in matches if not e.pack]
            user = next(e for e in users if e.key)
            for e in matches:
                if e.pack:
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
            f"kinit knows (Keras built-ins and loaded plugins).{_missing_plugins()}",
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
        dropped = [
            what
            for what, present in (
                ("a module path", "." in name),
                ("TensorFlow's '_initializer' suffix", name.endswith("_initializer")),
            )
            if present
        ]
        return (
            f" Did you mean '{text}'{canonical}? A config names the Keras object itself, "
            f"without {' or '.join(dropped)}."
        )

    def catalog(self, kind: str) -> list[Entry]:
        return sorted(self.entries[kind], key=lambda e: (not e.builtin, e.name.lower()))


def _keras_class(kind: str, module: str, name: str) -> Entry | None:
    """`keras.src.applications.convnext>LayerScale`: a class of `kind` from one of Keras's
    own modules (the `module` and name its config.json gives), imported from there since it
    is Keras's code; an Operation (`keras.src.ops.numpy>Add`) is a layer in a model. None
    for a module outside Keras or one that has no such class."""
    import importlib

    if module != "keras" and not module.startswith("keras."):
        return None
    try:
        obj = getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None
    if not inspect.isclass(obj) or inspect.isabstract(obj):
        return None
    is_kind = kind_of_class(obj) == kind or (
        kind == "layer" and issubclass(obj, keras().Operation) and obj is not keras().Operation
    )
    return Entry(kind, name, obj, (), f"{module}>{name}") if is_kind else None


def _missing_plugins() -> str:
    """' It may be one of ...' naming the installed entry points that failed to import or
    that KINIT_DISABLE_PLUGINS skipped: what they register is missing, and no name of theirs
    is known, since a plugin's names are known only once it is imported."""

    parts = [
        f" If the installed plugin '{f.name}' defines it, it is missing: {f.error}."
        for f in plugins.ENTRY_POINT_FAILURES.values()
    ]
    if plugins.DISABLED:
        names = ", ".join(f"'{n}'" for n in sorted(plugins.DISABLED))
        parts.append(f" {plugins.DISABLE_ENV} skips the installed plugin(s) {names}.")
    return "".join(parts)


def _closest_name(entry: Entry, name: str) -> str:
    """The one of an entry's names nearest to `name`, so suggestions never repeat an object."""
    import difflib

    low = name.lower()
    return max(entry.names(), key=lambda n: difflib.SequenceMatcher(None, low, n.lower()).ratio())


def _named(entry: Entry, name: str, exact: bool) -> bool:
    if exact:
        return name in entry.names()
    low = name.lower()
    return any(n.lower() == low for n in entry.names())
