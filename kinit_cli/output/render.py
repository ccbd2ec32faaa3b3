"""Output on the console: the streams, JSON documents, errors and warnings, and a run's
header and results; plain data in, text out (tables of weights: weight_tables.py; the
catalog behind list-*: catalog.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from kinit_cli.errors import KinitError, plain
from kinit_cli.output.tables import Column, number, print_fitted
from kinit_cli.storage import strictjson

# What COLUMNS may set: narrower output is unreadable (tables fall back to one block per
# row well above this), and a wider one only costs memory in rich's line buffers.
MIN_WIDTH, MAX_WIDTH = 20, 4096
PIPED_WIDTH = 160  # piped output has no width to follow: the weight tables stay unwrapped


def console(stderr: bool = False) -> Console:
    """A Console on stdout or stderr; rich drops colour for NO_COLOR and non-terminals.

    stderr carries messages, which must not be hard-wrapped mid-sentence.
    """
    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, highlight=False, soft_wrap=stderr, width=width(stream))


def width(stream: Any) -> int:
    """The width to print at: COLUMNS when it is a number (held between MIN_WIDTH and
    MAX_WIDTH), else the terminal's, else PIPED_WIDTH. Always given to rich, which would
    otherwise take COLUMNS=0 as a width of nothing and print no line at all."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isascii() and columns.isdigit() and int(columns) > 0:
        return min(max(int(columns), MIN_WIDTH), MAX_WIDTH)
    try:
        if not stream.isatty():
            return PIPED_WIDTH
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):  # no stream, or one closed under us
        return PIPED_WIDTH
    # A terminal that reports no size (some containers' pseudo-terminals): rich's default.
    return min(max(columns, MIN_WIDTH), MAX_WIDTH) if columns > 0 else 80


class PipeSafe:
    """A standard stream whose reader may leave (`kinit ... | head -1`): after a broken pipe
    the rest goes to os.devnull, so the command still finishes (a run is still trained and
    written) instead of failing on its next line of output."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            self._to_nowhere()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_nowhere()

    def _to_nowhere(self) -> None:
        _devnull_onto(self._stream.fileno())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def guard_streams() -> None:
    """stdout and stderr made safe to print on, once per process: a closed one (`>&-`,
    `2>&-`: Python sets it to None) goes to os.devnull, so the command runs and its output
    goes nowhere, and no file kinit opens later takes its descriptor (where TensorFlow's
    own logging would write into it); a broken pipe ends in os.devnull too (PipeSafe)."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        stream = getattr(sys, name)
        if isinstance(stream, PipeSafe):
            continue
        if stream is None:
            _devnull_onto(fd)
            stream = os.fdopen(fd, "w", encoding="utf-8", errors="replace", closefd=False)
        setattr(sys, name, PipeSafe(stream))


def _devnull_onto(fd: int) -> None:
    null = os.open(os.devnull, os.O_WRONLY)
    if null != fd:
        os.dup2(null, fd)
        os.close(null)


def print_json(data: Any, out: Console | None = None) -> None:
    """Exactly one JSON document on stdout, nothing else; strict (null for NaN and infinities)."""
    (out.file if out else sys.stdout).write(strictjson.dumps(data, indent=2, default=str) + "\n")


def error(exc: KinitError, out: Console) -> None:
    """The error's own lines (KinitError.lines): 'error:' in red, or the whole first line
    when it heads the lines below it (a ConfigError's count of problems)."""
    first, *rest = exc.lines()
    if rest:
        out.print(Text(first, style="bold red"))
    else:
        head = "error: "
        out.print(Text(head, style="bold red") + Text(first.removeprefix(head)))
    for line in rest:
        out.print(Text(line))


def warnings(lines: Sequence[str], out: Console) -> None:
    """One 'warning:' line each (stderr): things that work, but not the way the user may think."""
    for line in lines:
        out.print(Text("warning: ", style="bold yellow") + Text(line))


def unexpected(exc: BaseException, out: Console) -> None:
    out.print(
        Text("error: ", style="bold red")
        + Text(
            f"{type(exc).__name__}: {plain(str(exc))}\n(an unexpected failure: run again with "
            "--debug for the traceback)"
        )
    )


def run_header(info: dict[str, Any], out: Console) -> None:
    """`run: … · devices: … · seed: …`, broken between items, never inside one."""
    lines, line = [], ""
    for item in (f"{k}: {v}" for k, v in info.items()):
        joined = f"{line} · {item}" if line else item
        if line and cell_len(joined) > out.width:
            lines.append(line)
            joined = item
        line = joined
    lines.append(line)
    for text in lines:
        out.print(Text(text), soft_wrap=True)


def metrics_table(metrics: dict[str, Any], out: Console) -> None:
    """Final metrics per split (train, validation, test)."""
    splits = [s for s in ("train", "validation", "test") if s in metrics]
    names: list[str] = []
    for s in splits:
        names += [n for n in metrics[s] if n not in names]
    columns = [Column(name, 100, "left") for name in ("Metric", *map(str.capitalize, splits))]
    rows = [
        {"Metric": n} | {s.capitalize(): number(metrics[s].get(n)) for s in splits} for n in names
    ]
    print_fitted("Results", columns, rows, out, wide=False)
