"""Plugin loading: the built-in pack, `.py` files, modules and `kinit.plugins` entry points.

Each plugin is imported once; what it registers lands in Keras's own registry, where the
catalog (catalog.py) finds it, and so does every public Keras subclass it defines (no
decorator needed). Registering a name another plugin already holds is an error.

A plugin is code that runs: kinit imports it as Python would. What it prints while being
imported goes to stderr (stdout carries --json and --print-config), and an attempt to end
the program (sys.exit, a KeyboardInterrupt of its own) is a PluginError naming it. An
installed entry point that fails to import is recorded (entry_point_notes) rather than
stopping every command; a config that names something it would have registered gets the
failure in its resolution error. KINIT_DISABLE_PLUGINS=name,... skips entry points by name.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import re
import signal
import stat
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kinit_cli.errors import (
    EntryPointFailed,
    KinitError,
    PluginCodeError,
    PluginError,
    explained,
    frames_in,
)
from kinit_cli.registry import tf_ops
from kinit_cli.registry.registration import PLUGIN_ORIGINS, register_module_classes
from kinit_cli.runtime.imports import keras, tensorflow

ENTRY_POINT_GROUP = "kinit.plugins"
BUILTIN_PLUGINS = ("kinit_cli.plugins.initializers", "kinit_cli.plugins.layers")
DISABLE_ENV = "KINIT_DISABLE_PLUGINS"
_DEBUG_HINT = " (run with --debug for the traceback)"


@dataclass
class LoadedPlugin:
    spec: str
    module: str
    registered: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EntryPointFailure:
    """An installed `kinit.plugins` entry point that failed to import: every command goes on
    without it, and a name it would have registered fails to resolve with this message."""

    name: str
    value: str
    package: str | None
    error: str  # the PluginError's message, without the --debug hint (none is kept)

    def message(self) -> str:
        package = f" (installed by the package {self.package})" if self.package else ""
        return (
            f"{self.error}; kinit goes on without it{package}. Set {DISABLE_ENV}={self.name} "
            "to skip it."
        )


# Entry-point name -> its failure in the latest load_plugins call that scanned entry points.
ENTRY_POINT_FAILURES: dict[str, EntryPointFailure] = {}
# Entry points KINIT_DISABLE_PLUGINS skipped, and names in it that no entry point has.
DISABLED: set[str] = set()
UNKNOWN_DISABLED: set[str] = set()


def entry_point_notes() -> list[str]:
    """Warnings for the entry points that failed to import and for names in
    KINIT_DISABLE_PLUGINS that match none (a typo would otherwise skip nothing silently)."""
    out = [f.message() for f in ENTRY_POINT_FAILURES.values()]
    out += [
        f"{DISABLE_ENV} names '{name}', which no installed kinit.plugins entry point has"
        for name in sorted(UNKNOWN_DISABLED)
    ]
    return out


def load_plugins(
    specs: Iterable[str], base_dir: Path | None = None, entry_points: bool = True
) -> list[LoadedPlugin]:
    """Import the built-in pack, the given plugins and the installed entry points, once each.

    A spec ending in `.py` (or holding a path separator) is a file, relative to `base_dir`;
    anything else is a dotted module name. Raises PluginError naming the plugin.
    """

    registry = keras().saving.get_custom_objects()
    loaded: list[LoadedPlugin] = []
    sources: list[tuple[str, Callable[[], str]]] = [
        (m, lambda m=m: _import_module(m, m)) for m in BUILTIN_PLUGINS
    ]
    for spec in specs:
        if is_file(spec):
            path = file_of(spec, base_dir)
            sources.append((spec, lambda s=spec, p=path: _import_file(s, p)))
        else:
            sources.append((spec, lambda s=spec: _import_module(s, s)))
    if entry_points:
        sources += _entry_point_sources()
    for spec, load in sources:
        before = dict(registry)
        try:
            module = load()
        except EntryPointFailed:
            continue
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


def file_of(spec: str, base_dir: Path | None) -> Path:
    """The file a file spec names: relative ones against `base_dir` (else the current folder)."""
    path = Path(spec).expanduser()
    return path if path.is_absolute() else (base_dir or Path.cwd()) / path


def absolute(spec: str, base_dir: Path | None) -> str:
    """A spec as it still resolves from anywhere: a file's absolute path, a module's name."""
    return str(file_of(spec, base_dir).resolve()) if is_file(spec) else spec


def is_imported(spec: str, base_dir: Path | None) -> bool:
    """Whether importing the plugin would run nothing: its module (for a file, the module
    imported from that very file) is loaded already."""
    if not is_file(spec):
        return spec in sys.modules
    path = file_of(spec, base_dir).resolve()
    module = sys.modules.get(path.stem)
    origin = getattr(module, "__file__", None)
    return origin is not None and Path(origin).resolve() == path


def _entry_point_sources() -> list[tuple[str, Callable[[], str]]]:
    disabled = {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}
    found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    # Each scan starts afresh: the notes say what the latest one found.
    ENTRY_POINT_FAILURES.clear()
    DISABLED.clear()
    UNKNOWN_DISABLED.clear()
    UNKNOWN_DISABLED.update(disabled - {ep.name for ep in found})
    sources = []
    for ep in found:
        if ep.name in disabled:
            DISABLED.add(ep.name)
            continue
        label = f"{ep.name} (entry point {ep.value})"
        sources.append((label, lambda ep=ep, label=label: _load_entry_point(ep, label)))
    return sources


# Import names whose distribution pip knows by another name.
_DISTRIBUTIONS = {
    "cv2": "opencv-python",
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "yaml": "pyyaml",
}


def pip_command(module: str) -> str:
    """`pip install DIST` for the package that provides `module`: the installed distribution's
    name where Python knows it, else the import name as pip spells it (`keras_hub` ->
    `keras-hub`)."""
    top = module.split(".")[0]
    found = importlib.metadata.packages_distributions().get(top)
    return f"pip install {found[0] if found else _DISTRIBUTIONS.get(top, top.replace('_', '-'))}"


def is_installed(module: str) -> bool:
    """Whether the top-level package of `module` can be imported here (nothing is imported)."""
    try:
        return importlib.util.find_spec(module.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def how_to_load(module: str) -> str:
    """How to make the classes a saved model took from `module` known: the --plugin that
    imports its top-level package, and the pip command first where it is not installed."""
    top = module.split(".")[0]
    if top == "__main__":
        return (
            "the script that saved the model defined it: load that script, or a file with "
            "the same classes, with --plugin FILE.py"
        )
    if is_installed(top):
        return f"load it with --plugin {top}"
    if "." in module:  # a package's module: a library
        return f"{top} is not installed here: {pip_command(top)}, then add --plugin {top}"
    return (
        f"load the file that defines it with --plugin {top}.py (or, if {top} is a library, "
        f"{pip_command(top)} and add --plugin {top})"
    )


def _describe_source(obj: Any) -> str:
    module = getattr(obj, "__module__", "?")
    return f"plugin '{PLUGIN_ORIGINS.get(module, module)}'"


def _import_module(spec: str, module: str) -> str:
    if module in sys.modules:
        return module
    try:
        with _plugin_import(spec, None):
            importlib.import_module(module)
    except KinitError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise PluginError(
                f"plugin '{spec}': no module named '{exc.name}'. Give an importable module "
                "name, or a path to a .py file (relative to the config file's folder)"
                f"{_install_hint(exc.name)}.",
                plugin=spec,
            ) from exc
        raise _import_failure(spec, exc) from exc
    except Exception as exc:
        raise _import_failure(spec, exc) from exc
    return module


def _import_file(spec: str, path: Path) -> str:
    _check_regular(spec, path)
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
        with _plugin_import(spec, path):
            loader_spec.loader.exec_module(mod)
    except BaseException as exc:
        del sys.modules[module]
        if not isinstance(exc, Exception) or isinstance(exc, KinitError):
            raise
        raise _import_failure(spec, exc, path) from exc
    return module


# What a path is when it is not a regular file: named, so a FIFO or a folder is not "not found".
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _check_regular(spec: str, path: Path) -> None:
    """A plugin file must be a regular file; found by stat, never opened, so a FIFO (whose
    open waits for a writer) cannot hang kinit."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise PluginError(
            f"plugin file '{spec}' not found (looked for {path})", plugin=spec
        ) from None
    except OSError as exc:
        raise PluginError(
            f"plugin file '{spec}' cannot be read ({path}): {exc.strerror}", plugin=spec
        ) from None
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    hint = (
        "; name the .py file inside it, or the package by its dotted module name"
        if stat.S_ISDIR(mode)
        else "; a plugin is read from a regular .py file"
    )
    raise PluginError(f"plugin file '{spec}' is {kind}, not a file ({path}){hint}", plugin=spec)


def _module_file(module: str) -> Path | None:
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    origin = getattr(found, "origin", None)
    return Path(origin) if origin and origin.endswith(".py") else None


def _tensorflow_first(path: Path | None) -> None:
    """Import TensorFlow, quietly (imports.tensorflow), before a plugin that imports it on
    another backend: its native start-up logs would otherwise reach the terminal."""
    if path is None:
        return
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    if re.search(r"^\s*(import|from)\s+tensorflow\b", text, re.MULTILINE):
        with contextlib.suppress(ImportError):
            tensorflow()


@contextlib.contextmanager
def _plugin_import(spec: str, path: Path | None) -> Iterator[None]:
    """Run a plugin's import with its prints on stderr, and its attempts to end the program
    turned into a PluginError naming it.

    SystemExit is always the plugin's: nothing else raises it during an import. A
    KeyboardInterrupt is the user's only when a real SIGINT arrived meanwhile (a Ctrl-C, which
    still aborts kinit); one the plugin raises itself is its error. A handler that notes the
    signal and then calls the one in place tells them apart: where none can be installed (a
    thread other than the main one) no SIGINT reaches this code, so any KeyboardInterrupt
    there is the plugin's too.
    """
    if "tensorflow" not in sys.modules:  # on its own backend it is loaded already
        _tensorflow_first(path or _module_file(spec))
    interrupted: list[bool] = []
    previous: Any = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGINT)
        if callable(previous):

            def noted(signum: int, frame: Any) -> None:
                interrupted.append(True)
                previous(signum, frame)

            signal.signal(signal.SIGINT, noted)
        else:
            previous = None  # SIG_IGN or SIG_DFL: a Ctrl-C raises no KeyboardInterrupt
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except SystemExit as exc:
        code = "" if exc.code is None else repr(exc.code)
        raise PluginError(
            f"{_failing_line(exc, path)}plugin '{spec}' called sys.exit({code}) while being "
            f"imported; a plugin must not end the program{_DEBUG_HINT}",
            plugin=spec,
        ) from exc
    except KeyboardInterrupt as exc:
        if interrupted:
            raise
        raise PluginError(
            f"{_failing_line(exc, path)}plugin '{spec}' raised KeyboardInterrupt while being "
            f"imported{_DEBUG_HINT}",
            plugin=spec,
        ) from exc
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _load_entry_point(ep: importlib.metadata.EntryPoint, label: str) -> str:
    """Import an entry point; a failure is recorded, not raised: one broken installed package
    must not disable every command (a config that needs it learns why from the resolver)."""
    try:
        try:
            with _plugin_import(label, None):
                obj = ep.load()
        except KinitError:
            raise
        except Exception as exc:
            raise _import_failure(label, exc) from exc
    except KinitError as exc:
        dist = getattr(ep, "dist", None)
        ENTRY_POINT_FAILURES[ep.name] = EntryPointFailure(
            ep.name, ep.value, getattr(dist, "name", None), str(exc).removesuffix(_DEBUG_HINT)
        )
        raise EntryPointFailed(ep.name) from exc
    return getattr(obj, "__name__", ep.module) if inspect.ismodule(obj) else ep.module


def _import_failure(spec: str, exc: BaseException, path: Path | None = None) -> PluginError:
    """One message: where in the plugin it failed, what, and the Keras 3 spelling of a
    Keras 2 API when that is what failed; for a library it needs, the pip command."""
    missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
    return PluginError(
        f"{_failing_line(exc, path)}plugin '{spec}' failed to import: {type(exc).__name__}: "
        f"{explained(exc)}{_install_hint(missing)}{_DEBUG_HINT}",
        plugin=spec,
    )


def _install_hint(missing: str | None) -> str:
    """'; if it is a library, install it: pip install X' for a top-level package that is
    not installed; nothing for a submodule of one that is."""
    if not missing or is_installed(missing):
        return ""
    return f"; if it is a library, install it: {pip_command(missing)}"


def _failing_line(exc: BaseException, path: Path | None) -> str:
    """'file:line: ' of the innermost traceback frame in the plugin's own file; for a
    SyntaxError, where the parser stopped (no frame of the file ran)."""
    import traceback

    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        return f"{exc.filename}:{exc.lineno}: "
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
    modules = {}  # resolved file -> the plugin module loaded from it
    for name in PLUGIN_ORIGINS:
        path = getattr(sys.modules.get(name), "__file__", None)
        if path and not name.startswith("kinit_cli"):
            modules[str(Path(path).resolve())] = sys.modules[name]
    frames = frames_in(exc, set(modules))
    if not frames:
        return None
    frame = frames[-1]
    hint = tf_ops.unseen_ops_hint(modules.get(str(Path(frame.filename).resolve())))
    if not isinstance(exc, Exception):  # sys.exit(), KeyboardInterrupt: not kinit's to end
        hint += (
            " (plugin code stops training with self.model.stop_training = True, or fails it "
            "by raising an exception; it cannot end kinit)"
        )
    detail = explained(exc) if str(exc) else ""
    return PluginCodeError(
        f"{frame.filename}:{frame.lineno}: {doing} failed in plugin code ({frame.name}): "
        f"{type(exc).__name__}{': ' if detail else ''}{detail}{hint}"
    )
