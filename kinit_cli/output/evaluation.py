"""What predict and evaluate print: the progress of a prediction (stderr), predict's summary
line, and evaluate's metrics, confusion matrix and class scores as tables."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from kinit_cli.output.tables import Column, number, print_fitted

REFRESH_S = 0.2  # redrawn from the caller's thread at most this often (as training's bar)
MATRIX_CLASSES = 30  # a confusion matrix of more classes is left to --json and --plot


@contextmanager
def progress(console: Console, total: int, what: str) -> Iterator[Any]:
    """A bar of examples done on `console` (stderr) while the block runs, on a terminal
    only; yields the function told how many more are done."""
    if not console.is_terminal:
        yield lambda n: None
        return
    bar = Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        auto_refresh=False,
    )
    task = bar.add_task("", total=total, rate="")
    start = last = time.perf_counter()
    done = 0

    def advance(n: int) -> None:
        nonlocal done, last
        done += n
        now = time.perf_counter()
        if now - last >= REFRESH_S or done >= total:
            last = now
            rate = f"{done / max(now - start, 1e-9):,.0f} examples/s"
            bar.update(task, completed=done, rate=rate, refresh=True)

    with bar:
        yield advance


def predicted(summary: Any, out: Console) -> None:
    """predict's line on stderr: how many examples, where they went, and the classes."""
    where = summary.output or "stdout"
    line = f"predicted {summary.rows:,} examples of {summary.input} with {summary.target}"
    line += f" -> {where} ({summary.format})"
    out.print(Text(line), soft_wrap=True)
    if summary.counts:
        counts = ", ".join(f"{name}: {n:,}" for name, n in summary.counts.items())
        out.print(Text(f"predicted classes: {counts}"), soft_wrap=True)


def predict_notes(summary: Any) -> list[str]:
    """What the predictions went through that the user may not expect."""
    notes = list(summary.notes)
    if summary.softmax:
        notes.append(
            "the model's outputs are not probabilities (a from_logits loss, or rows that do "
            "not sum to 1): the prob_ columns are their softmax (sigmoid for one unit)"
        )
    for column, n in summary.unseen.items():
        rows = "1 row holds" if n == 1 else f"{n:,} rows hold"
        notes.append(
            f"column {column!r}: {rows} a value training never saw (encoded as none of the "
            "known values)"
        )
    return notes


def evaluation(result: Any, out: Console, wide: bool = False) -> None:
    """The metrics, then for a classifier the confusion matrix and the class scores."""
    out.print(Text(f"{result.target} on {result.data}: {result.examples:,} examples"))
    rows = [{"Metric": "loss", "Value": number(result.loss)}] if result.loss is not None else []
    rows += [{"Metric": k, "Value": number(v)} for k, v in result.metrics.items()]
    if result.accuracy is not None and "accuracy" not in result.metrics:
        rows.append({"Metric": "accuracy", "Value": number(result.accuracy)})
    if rows:
        columns = [Column("Metric", 100, "left"), Column("Value", 100)]
        print_fitted("Metrics", columns, rows, out, wide)
    if result.confusion is None:
        return
    classes = list(result.classes)
    if len(classes) <= MATRIX_CLASSES:
        confusion_table(classes, result.confusion, out, wide)
    else:
        out.print(Text(f"({len(classes)} classes: the confusion matrix is in --json and --plot)"))
    class_table(result, out, wide)


def confusion_table(classes: list[str], confusion: Any, out: Console, wide: bool) -> None:
    """Rows: the true class; columns: the predicted one."""
    columns = [Column("true \\ predicted", 100, "left")]
    columns += [Column(name, 90) for name in classes]
    rows = [
        {"true \\ predicted": name} | {c: f"{int(n):,}" for c, n in zip(classes, row, strict=True)}
        for name, row in zip(classes, confusion.tolist(), strict=True)
    ]
    print_fitted("Confusion matrix", columns, rows, out, wide)


def class_table(result: Any, out: Console, wide: bool) -> None:
    names = ("Precision", "Recall", "F1", "Support")
    columns = [Column("Class", 100, "left"), *(Column(n, 100) for n in names)]
    scores = list(result.per_class.items()) + [
        (f"{name} avg", s) for name, s in result.averages.items()
    ]
    rows = [
        {
            "Class": name,
            "Precision": number(s.precision),
            "Recall": number(s.recall),
            "F1": number(s.f1),
            "Support": f"{s.support:,}",
        }
        for name, s in scores
    ]
    print_fitted("Per class", columns, rows, out, wide)
