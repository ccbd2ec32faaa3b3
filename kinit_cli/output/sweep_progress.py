"""A sweep's progress on stderr, drawn in the sweep's own process, which never imports Keras
(its workers do)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.text import Text


class TrialProgress:
    """A sweep's progress on stderr: a bar of the trials done, and a line for each trial as
    it ends (its outcome, its test metrics or its error, its training time)."""

    def __init__(self, out: Console, total: int) -> None:
        self.progress = Progress(
            "trials", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=out
        )
        self.task = self.progress.add_task("trials", total=total)

    def __enter__(self) -> TrialProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def done(
        self,
        name: str,
        status: str,
        error: str | None,
        test: dict[str, float],
        seconds: float | None,
    ) -> None:
        if status == "completed":
            parts = ["  ".join(f"{k} {v:.4f}" for k, v in test.items())] if test else []
            if seconds is not None:
                parts.append(f"trained in {seconds:.1f} s")
            detail = " · ".join(parts)
        else:
            detail = (error or "").splitlines()[0] if error else ""
        mark = "[green]✓[/]" if status == "completed" else "[red]✗[/]"
        line = Text.from_markup(f"{mark} {name} [bold]{status}[/]")
        if detail:
            line.append(f"  {detail}")
        self.progress.console.print(line, soft_wrap=True)
        self.progress.advance(self.task)
