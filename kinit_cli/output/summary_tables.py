"""The comparison of runs as tables (compare, and a sweep's end): one row per group of
settings with its test metrics over seeds and its difference from the baseline, then each
kernel's initial std against its theory and how far training moved it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from kinit_cli.output.tables import Column, number, print_fitted
from kinit_cli.results import grouping

if TYPE_CHECKING:
    from kinit_cli.results.summary import Difference, Estimate, Group, Summary

NOTE = (
    "mean ± standard error over seeds, (min–max) below; Δ: difference from #1 ± its "
    "standard error, p: Welch's t-test (two-sided); n < 2 gives no standard error or p"
)
CHANGE_NOTE = "Rel. change: ||w - w0|| / ||w0|| at the last epoch (weight-history.csv)"
NO_CHANGE = "Rel. change: none recorded (runs trained with train.weight_history: true have it)"


def render(summary: Summary, console: Console, wide: bool = False) -> None:
    """The main table, what did not complete, then the weights table."""
    if not summary.groups:
        console.print("No runs to compare.")
        return
    _main(summary, console, wide)
    _not_completed(summary, console)
    _kernels(summary, console, wide)


def _main(summary: Summary, out: Console, wide: bool) -> None:
    short = grouping.short_keys(summary.keys)
    names: list[str] = []
    for g in summary.groups:
        names += [n for n in g.metrics if n not in names]
    columns = [Column("#", 100), *(Column(short[k], 100, "left", wrap=True) for k in summary.keys)]
    columns.append(Column("n", 100))
    for i, name in enumerate(names):
        # The first metric and its difference are what the table is for: they always stay.
        columns.append(Column(name, 100 if i == 0 else 90))
        columns.append(Column(f"Δ {name}", 100 if i == 0 else 85, needs=name))
    columns += [Column("Train loss", 70), Column("s/trial", 60), Column("Epochs", 50)]
    rows = [_main_row(i, g, summary.keys, short, names) for i, g in enumerate(summary.groups)]
    print_fitted("Comparison (test metrics)", columns, rows, out, wide)
    out.print(NOTE)


def _main_row(
    i: int, g: Group, keys: tuple[str, ...], short: dict[str, str], names: list[str]
) -> dict[str, str]:
    row = {"#": str(i + 1)} | {short[k]: grouping.flow(g.settings.get(k)) for k in keys}
    row["n"] = "\n".join(
        [str(len(g.completed))]
        + ([f"{g.failed} failed"] if g.failed else [])
        + ([f"{g.incomplete} not run"] if g.incomplete else [])
    )
    for name in names:
        row[name] = estimate_cell(g.metrics.get(name))
        row[f"Δ {name}"] = "baseline" if i == 0 else difference_cell(g.difference.get(name))
    row["Train loss"] = number(g.train_loss.mean) if g.train_loss else ""
    row["s/trial"] = number(g.seconds.mean, 3) if g.seconds else ""
    row["Epochs"] = number(g.epochs.mean) if g.epochs else ""
    return row


def estimate_cell(e: Estimate | None) -> str:
    """'0.9123 ± 0.0042' over '(0.9051–0.9187)'; the mean alone for one run."""
    if e is None:
        return ""
    if e.se is None:
        return number(e.mean)
    return f"{number(e.mean)} ± {number(e.se, 2)}\n({number(e.min)}–{number(e.max)})"


def difference_cell(d: Difference | None) -> str:
    """'+0.0123 ± 0.0050' over 'p=0.031'."""
    if d is None:
        return ""
    diff = f"{d.diff:+.4g}"
    if d.se is None:
        return f"{diff}\nn < 2"
    p = "n/a" if d.p is None else f"{d.p:.2g}"
    return f"{diff} ± {number(d.se, 2)}\np={p}"


def _not_completed(summary: Summary, out: Console) -> None:
    """Each run that did not complete, in its group, with its status and error."""
    for i, g in enumerate(summary.groups):
        for r in g.runs:
            if not r.completed:
                error = f": {r.error.splitlines()[0]}" if r.error else ""
                line = f"#{i + 1} {r.name} {r.status}{error} ({r.run_dir})"
                out.print(Text(line), soft_wrap=True)


def _kernels(summary: Summary, out: Console, wide: bool) -> None:
    rows = []
    for i, g in enumerate(summary.groups):
        for k in g.kernels:
            rows.append(
                {
                    "#": str(i + 1),
                    "Kernel": k.path,
                    "Initializer": (k.initializer or "(initial value)").rpartition(">")[2],
                    "Init std": estimate_cell(k.init_std).split("\n")[0],
                    "Theory": number(k.theory_std),
                    "Rel. change": estimate_cell(k.relative_change).split("\n")[0],
                }
            )
    if not rows:
        return
    changed = any(row["Rel. change"] for row in rows)
    columns = [
        Column("#", 100),
        Column("Kernel", 100, "left", shorten=True),
        Column("Initializer", 60, "left", wrap=True),
        Column("Init std", 100),
        Column("Theory", 95),
    ]
    if changed:
        columns.append(Column("Rel. change", 98))
    print_fitted("Kernels: initial std (mean ± se) against theory", columns, rows, out, wide)
    out.print(CHANGE_NOTE if changed else NO_CHANGE)
