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
from rich.table import Table
from rich.text import Text

from kinit_cli.errors import KinitError, plain
from kinit_cli.output.tables import number
from kinit_cli.storage import strictjson


def console(stderr: bool = False) -> Console:
    """A Console on stdout or stderr; rich drops colour for NO_COLOR and non-terminals.

    stderr carries messages, which must not be hard-wrapped mid-sentence.
    """
    stream = sys.stderr if stderr else sys.stdout
    # Piped output has no width to follow; 160 columns keeps the weight tables unwrapped.
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 160
    return Console(file=stream, highlight=False, soft_wrap=stderr, width=width)


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
    table = Table(
        "Metric", *[s.capitalize() for s in splits], title="Results", title_justify="left"
    )
    for n in names:
        table.add_row(n, *[number(metrics[s].get(n)) for s in splits])
    out.print(table)
