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

from kinit_cli.errors import KinitError
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
        if stream.isatty():
            return min(max(os.get_terminal_size(stream.fileno()).columns, MIN_WIDTH), MAX_WIDTH)
    except (AttributeError, ValueError, OSError):  # no stream, or one closed under us
        pass
    return PIPED_WIDTH


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
            f"{type(exc).__name__}: {exc}\n(an unexpected failure: run again with --debug for "
            "the traceback)"
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
