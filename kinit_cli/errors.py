"""kinit's exceptions: what went wrong, where, and how to fix it; rendered once by the CLI."""

from __future__ import annotations

import re
import signal
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config: where it is (file, line, column, key path) and what."""

    message: str
    path: str = ""
    file: str | None = None
    line: int | None = None
    column: int | None = None

    def location(self) -> str:
        """`file:line:column` as far as it is known ('' when nothing is)."""
        parts = [p for p in (self.file, self.line, self.column) if p is not None]
        return ":".join(str(p) for p in parts)

    def __str__(self) -> str:
        where = self.location()
        head = f"{where}: " if where else ""
        key = f"{self.path}: " if self.path else ""
        return f"{head}{key}{self.message}"


class KinitError(Exception):
    """Base of every error kinit reports to the user without a traceback."""

    exit_code = 1

    @property
    def message(self) -> str:
        return str(self)

    def lines(self) -> list[str]:
        """The error as the user reads it, a line each: the CLI styles and prints them, and
        the cluster watchdog writes them for a process that can no longer speak."""
        return [f"error: {self}"]


class UsageError(KinitError):
    """A command was asked for something it cannot do with the given arguments."""

    exit_code = 2


class ConfigError(KinitError):
    """A config file is unreadable or invalid; carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: list[Problem]) -> None:
        # In file order; problems without a line (from --set) last.
        self.problems = sorted(problems, key=lambda p: (p.line is None, p.line or 0, p.column or 0))
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        if len(self.problems) < 2:
            return super().lines()
        return [f"error: {len(self.problems)} problems:", *(f"  {p}" for p in self.problems)]


class Problems(list[Problem]):
    """The one way problems are collected: each check adds what it finds, a ConfigError
    raised by a step is taken in (collecting()), and all of them are raised together."""

    @contextmanager
    def collecting(self) -> Iterator[None]:
        """Take in the problems of a ConfigError raised inside the block, and go on."""
        try:
            yield
        except ConfigError as exc:
            self.extend(exc.problems)

    def raise_any(self) -> None:
        """One ConfigError with every problem found, if there is one."""
        if self:
            raise ConfigError(list(self))


class PluginError(KinitError):
    """A plugin could not be found or imported, or two plugins claim the same name."""

    exit_code = 2

    def __init__(self, message: str, plugin: str | None = None) -> None:
        self.plugin = plugin
        super().__init__(message)


class PluginCodeError(KinitError):
    """A plugin's own code raised while kinit ran it (a layer's call(), a schedule, a loss)."""

    exit_code = 1


class ModelFileError(UsageError):
    """A saved model given to kinit is not one it can read: not a .keras archive, a damaged
    one, or one holding Python code (a Lambda layer) that needs --unsafe-deserialization."""

    def __init__(self, message: str, path: str, code: str | None = None) -> None:
        self.path = path
        self.code = code  # the code it holds ('a Lambda layer'): loads only with safe_mode=False
        super().__init__(message)


class UntrustedCode(UsageError):
    """Reading a run or a checkpoint needs code its files name (their plugins), which kinit
    imports only when the user asks (--trust-plugins, or the same file with --plugin)."""

    def __init__(self, message: str, plugins: list[str], classes: list[str]) -> None:
        self.plugins = plugins  # what the files name and kinit did not import
        self.classes = classes  # the classes that could not be rebuilt without them
        super().__init__(message)


class DataError(KinitError):
    """A data set cannot be found, downloaded or read, or does not fit the model."""

    exit_code = 2


class NonFiniteDataError(DataError):
    """A data set holds NaN or infinite values, which would train a NaN model."""

    def __init__(self, message: str, found: dict[str, tuple[int, tuple[int, ...]]]) -> None:
        # array name (x_train, y_test, ...) -> (how many, the index of the first)
        self.found = found
        super().__init__(message)


class ResourceError(KinitError):
    """The machine lacks what a config needs (memory): a run that would fail or thrash.

    Exit status 1, a run failure: the config is valid, this machine cannot hold it.
    """

    exit_code = 1

    def __init__(self, message: str, needed: int, available: int) -> None:
        self.needed = needed  # bytes
        self.available = available  # bytes
        super().__init__(message)


class DeclaredSizeError(KinitError):
    """A file declares more than it holds, more than it could hold, or more than this machine
    has memory for: refused before that memory is spent. Exit status 1, as ResourceError."""

    exit_code = 1

    def __init__(
        self, message: str, path: str, declared: int, available: int | None = None
    ) -> None:
        self.path = path
        self.declared = declared  # bytes the file declares
        self.available = available  # bytes it holds, or memory available; None: not the cause
        super().__init__(message)


class Interrupted(KinitError):
    """Ctrl-C outside training (start-up, validate, inspect), where there is nothing to save."""

    exit_code = 130


class TrialsFailed(KinitError):
    """A sweep whose every trial ran, some of them failing (a plugin's error): the others'
    results stand, and the summary counts the failures."""

    exit_code = 1


class RunDirError(KinitError):
    """A run directory cannot be used: another kinit process holds it, or it holds files
    kinit did not write."""

    exit_code = 2


class RecordError(RunDirError):
    """A file kinit wrote into a run directory reads back damaged (truncated, edited, not
    of the shape kinit writes): the file and what is wrong with it."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path} cannot be read back: {reason}")


class WriteError(KinitError):
    """A file of the run could not be written (a full disk, a read-only folder); what was
    complete before stays as it was."""

    exit_code = 1


class TrainingInterrupted(KinitError):
    """Training was stopped by a signal; the last full epoch is saved for --resume. Exits
    128 + the signal's number, as a shell reports a process the signal ended (130 for
    SIGINT, 143 for SIGTERM)."""

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.exit_code = 128 + int(signum)


class NoStepTrained(KinitError):
    """Training ended its epochs without one step: nothing was trained."""


class TrainingDiverged(KinitError):
    """The loss became NaN or infinite."""


class DistributeError(KinitError):
    """A strategy or device set that cannot be made on this machine."""

    exit_code = 2


class BackendError(KinitError):
    """A backend that is not installed, not known, or not the one Keras already runs on;
    or a feature the chosen backend does not have."""

    exit_code = 2


class DeviceError(KinitError):
    """The requested device is not available."""


class PeerError(KinitError):
    """A peer worker stopped answering, or never came."""


class EntryPointFailed(Exception):
    """An installed plugin's entry point failed to import: recorded as a warning
    (registry.plugins.ENTRY_POINT_FAILURES), and loading goes on; never shown as an error."""


class ResolveError(KinitError):
    """A name in a config does not resolve to exactly one registered object."""

    exit_code = 2

    def __init__(self, message: str, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind
        super().__init__(message)


def did_you_mean(word: str, choices: list[str] | set[str] | tuple[str, ...]) -> str:
    """' Did you mean 'x'?' for the closest choices (case-insensitive), or '' when none is close."""
    import difflib

    by_lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=3, cutoff=0.6)
    if not close:
        return ""
    quoted = " or ".join(f"'{by_lower[c]}'" for c in close)
    return f" Did you mean {quoted}?"


def frames_in(exc: BaseException, files: set[str]) -> list[traceback.FrameSummary]:
    """The traceback frames of `exc`, then of the errors it was raised from (Keras re-raises
    with errors of its own), that run code in one of `files` (resolved paths): the last is
    where the original error happened."""
    frames: list[traceback.FrameSummary] = []
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        frames += [
            f for f in traceback.extract_tb(cause.__traceback__) if _resolved(f.filename) in files
        ]
        cause = cause.__cause__ or cause.__context__
    return frames


def _resolved(filename: str) -> str:
    return filename if filename.startswith("<") else str(Path(filename).resolve())


def raised_in(exc: BaseException, source: str | None) -> str:
    """' (at file:line)' of the innermost traceback frame in `source`, or '' if none is."""
    frames = frames_in(exc, {_resolved(source)}) if source else []
    return f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""


def explained(exc: BaseException, message: str | None = None) -> str:
    """`message` (keras_message(exc) by default), followed by the Keras 3 spelling when a
    Keras 2 API failed."""
    message = keras_message(exc) if message is None else message
    hint = keras2_hint(exc)
    return f"{message.rstrip('.')}.{hint}" if hint else message


# Terminal control sequences: CSI (colours, cursor moves: ESC [ ... final byte) and OSC
# (titles, links: ESC ] ... BEL or ESC \\), then any other lone escape or C1 introducer.
_TERMINAL_CODES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?|[\x80-\x9f]"
)


def plain(text: str) -> str:
    """`text` without terminal control sequences (Keras bolds the message of an error raised
    in a layer's call), as it goes into a file."""
    return _TERMINAL_CODES.sub("", text)


def keras_message(exc: BaseException) -> str:
    """A Keras/TensorFlow exception as one line: no ANSI styling, no call-argument dump."""
    text = plain(str(exc))
    text = re.sub(r"^Exception encountered when calling [\w.]+\(\)\.", "", text.strip())
    text = text.split("Arguments received by", 1)[0]
    return " ".join(text.split())


# Keras 2 modules that Keras 3 removed -> what to write instead.
_KERAS2_MODULES = {
    "keras.engine": "keras.layers.Layer, keras.Model and keras.Input (from keras import layers)",
    "keras.layers.core": "keras.layers (e.g. keras.layers.Dense)",
    "keras.layers.merge": "keras.layers (Concatenate, Add, ...)",
    "keras.legacy": "the Keras 3 classes of the same name in keras.layers / keras.optimizers",
    "keras.utils.np_utils": "keras.utils.to_categorical",
    "keras.wrappers": "the scikeras package",
    "keras.optimizers.legacy": "keras.optimizers (e.g. keras.optimizers.Adam)",
}


def keras2_hint(exc: BaseException) -> str:
    """' Keras 3 spells it ...' for an error that comes from a removed Keras 2 API, else ''."""
    import sys

    if isinstance(exc, ModuleNotFoundError) and exc.name:
        for old, new in _KERAS2_MODULES.items():
            if exc.name == old or exc.name.startswith(old + "."):
                return f" '{exc.name}' is Keras 2's; Keras 3 has {new} instead."
    text = str(exc)
    match = re.search(
        r"(?:no attribute|cannot import name) '(\w+)'.*?'(?:keras|tensorflow)[\w.]*backend'", text
    ) or re.search(r"'(?:keras|tensorflow)[\w.]*backend' has no attribute '(\w+)'", text)
    if match:
        name = match.group(1)
        ops = getattr(sys.modules.get("keras"), "ops", None)
        if ops is not None and hasattr(ops, name):
            return (
                f" keras.backend.{name} (K.{name}) is Keras 2's; Keras 3 spells it "
                f"keras.ops.{name}."
            )
        return (
            f" keras.backend.{name} (K.{name}) is Keras 2's and Keras 3 has no such function; "
            "the backend-neutral operations are in keras.ops."
        )
    return ""
