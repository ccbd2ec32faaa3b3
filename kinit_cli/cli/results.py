"""kinit compare: finished runs and sweeps side by side, grouped by the settings in which
they differ."""

from __future__ import annotations

from pathlib import Path

import click

from kinit_cli.cli.options import KinitCommand, json_option, overwrite_option, wide_option


@click.command("compare", cls=KinitCommand)
@click.argument("targets", nargs=-1, required=True, metavar="RUN_OR_SWEEP...")
@click.option(
    "--plot",
    type=click.Path(),
    metavar="DIR_OR_FILE.png",
    help="Draw learning curves, activation std at initialisation and weight change per group "
    "(a folder of figures, or one .png; needs kinit[plot]).",
)
@overwrite_option("Let --plot replace existing figures.")
@wide_option
@json_option
def compare(
    targets: tuple[str, ...], plot: str | None, overwrite: bool, wide: bool, as_json: bool
) -> None:
    """Compare run directories and sweeps: one row per combination of the config settings
    in which they differ (seeds aside; a sweep's trials by their grid settings), each test
    metric as mean ± standard error over the runs, and its difference from the baseline,
    the group of the first run named, with Welch's t-test."""
    from kinit_cli.output import render, summary_tables
    from kinit_cli.results.summary import compare as summarize

    summary = summarize(targets)
    render.warnings(
        [note for g in summary.groups for r in g.runs for note in r.notes],
        render.console(stderr=True),
    )
    figures: list[Path] = []
    if plot:
        from kinit_cli.output.sweep_plots import sweep_figures

        groups = [(g.label, g.runs) for g in summary.groups]
        figures = sweep_figures(groups, Path(plot), overwrite=overwrite)
    if as_json:
        document = summary.document()
        if plot:
            document["plots"] = [str(p) for p in figures]
        render.print_json(document)
        return
    summary_tables.render(summary, render.console(), wide=wide)
    for path in figures:
        render.console(stderr=True).print(f"Figure written to {path}", soft_wrap=True)
