"""Plugin loading: the built-in pack, `.py` files, modules and `kinit.plugins` entry points.

Each plugin is imported once; what it registers lands in Keras's own registry, where the
catalog (registry.py) finds it, and so does every public Keras subclass it defines (no
decorator needed). Registering a name another plugin already holds is an error.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kinit_cli.errors import KinitError, PluginCodeError, PluginError, explained, frames_in
from kinit_cli.registration import PLUGIN_ORIGINS, register_module_classes

ENTRY_POINT_GROUP = "kinit.plugins"
BUILTIN_PLUGINS = ("kinit_cli.plugins.initializers", "kinit_cli.plugins.layers")


@dataclass
class LoadedPlugin:
    spec: str
    module: str
    registered: list[str] = field(default_factory=list)


def load_plugins(
    specs: Iterable[str], base_dir: Path | None = None, entry_points: bool = True
) -> list[LoadedPlugin]:
    """Import the built-in pack, the given plugins and the installed entry points, once each.

    A spec ending in `.py` (or holding a path separator) is a file, relative to `base_dir`;
    anything else is a dotted module name. Raises PluginError naming the plugin.
    """
    from kinit_cli.backend import keras

    registry = keras().saving.get_custom_objects()
    loaded: list[LoadedPlugin] = []
    sources: list[tuple[str, Callable[[], str]]] = [
        (m, lambda m=m: _import_module(m, m)) for m in BUILTIN_PLUGINS
    ]
    for spec in specs:
        if is_file(spec):
            path = Path(spec).expanduser()
            if not path.is_absolute():
                path = (base_dir or Path.cwd()) / path
            sources.append((spec, lambda s=spec, p=path: _import_file(s, p)))
        else:
            sources.append((spec, lambda s=spec: _import_module(s, s)))
    if entry_points:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            label = f"{ep.name} (entry point {ep.value})"
            sources.append((label, lambda ep=ep, label=label: _load_entry_point(ep, label)))
    for spec, load in sources:
        before = dict(registry)
        module = load()
        PLUGIN_ORIGINS[module] = spec
        # Classes need no decorator: the tutorials' code registers nothing itself.
        register_module_classes(sys.modules[module])
        clashes = [k for k, v in before.items() if registry.get(k) is not v]
        if clashes:
            key = clashes[0]
            raise PluginError(
                f"plugin '{spec}' registers '{key}', which "
                f"{_describe_source(before[key])} already registered. Give one of them another "
                "package or name (register_*(package=...) or name=...).",
                plugin=spec,
            )
        loaded.append(LoadedPlugin(spec, module, sorted(set(registry) - set(before))))
    return loaded


def is_file(spec: str) -> bool:
    """Whether a plugin spec names a file (ends in .py or holds a path separator)."""
    return spec.endswith(".py") or "/" in spec or "\\" in spec


def _describe_source(obj: Any) -> str:
    module = getattr(obj, "__module__", "?")
    return f"plugin '{PLUGIN_ORIGINS.get(module, module)}'"


def _import_module(spec: str, module: str) -> str:
    if module in sys.modules:
        return module
    try:
        importlib.import_module(module)
    except KinitError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise PluginError(
                f"plugin '{spec}': no module named '{exc.name}'. Give an importable module "
                "name, or a path to a .py file (relative to the config file's folder).",
                plugin=spec,
            ) from exc
        raise _import_failure(spec, exc) from exc
    except Exception as exc:
        raise _import_failure(spec, exc) from exc
    return module


def _import_file(spec: str, path: Path) -> str:
    if not path.is_file():
        raise PluginError(f"plugin file '{spec}' not found (looked for {path})", plugin=spec)
    path = path.resolve()
    module = path.stem
    existing = sys.modules.get(module)
    if existing is not None:
        if Path(getattr(existing, "__file__", "") or "").resolve() == path:
            return module
        raise PluginError(
            f"plugin file '{spec}' would be imported as module '{module}', a name already "
            f"taken by {getattr(existing, '__file__', None) or 'a built-in module'}. "
            "Rename the file.",
            plugin=spec,
        )
    loader_spec = importlib.util.spec_from_file_location(module, path)
    if loader_spec is None or loader_spec.loader is None:
        raise PluginError(f"plugin file '{spec}' cannot be imported as Python", plugin=spec)
    mod = importlib.util.module_from_spec(loader_spec)
    sys.modules[module] = mod
    try:
        loader_spec.loader.exec_module(mod)
    except BaseException as exc:
        del sys.modules[module]
        if not isinstance(exc, Exception) or isinstance(exc, KinitError):
            raise
        raise _import_failure(spec, exc, path) from exc
    return module


def _load_entry_point(ep: importlib.metadata.EntryPoint, label: str) -> str:
    try:
        obj = ep.load()
    except Exception as exc:
        raise _import_failure(label, exc) from exc
    return getattr(obj, "__name__", ep.module) if inspect.ismodule(obj) else ep.module


def _import_failure(spec: str, exc: BaseException, path: Path | None = None) -> PluginError:
    """One message: where in the plugin it failed, what, and the Keras 3 spelling of a
    Keras 2 API when that is what failed."""
    return PluginError(
        f"{_failing_line(exc, path)}plugin '{spec}' failed to import: {type(exc).__name__}: "
        f"{explained(exc)} "
        "(run with --debug for the traceback)",
        plugin=spec,
    )


def _failing_line(exc: BaseException, path: Path | None) -> str:
    """'file:line: ' of the innermost traceback frame in the plugin's own file."""
    import traceback

    if path is not None:
        frames = frames_in(exc, {str(path)})
    else:  # a module: the innermost frame that is neither kinit's nor the import system's
        own = str(Path(__file__).resolve().parent)
        frames = [
            f
            for f in traceback.extract_tb(exc.__traceback__)
            if not f.filename.startswith(("<frozen", own)) and "importlib" not in f.filename
        ]
    if not frames:
        return ""
    return f"{frames[-1].filename}:{frames[-1].lineno}: "


def plugin_failure(exc: BaseException, doing: str) -> PluginCodeError | None:
    """One message for an error raised inside a loaded plugin's code while `doing`: the
    plugin's file and line, the error, and the Keras 3 spelling of a Keras 2 API; None when
    no plugin code is on the traceback (then it is not the plugin's)."""
    files = set()
    for name in PLUGIN_ORIGINS:
        path = getattr(sys.modules.get(name), "__file__", None)
        if path and not name.startswith("kinit_cli"):
            files.add(str(Path(path).resolve()))
    frames = frames_in(exc, files)
    if not frames:
        return None
    frame = frames[-1]
    return PluginCodeError(
        f"{frame.filename}:{frame.lineno}: {doing} failed in plugin code ({frame.name}): "
        f"{type(exc).__name__}: {explained(exc)}"
    )
