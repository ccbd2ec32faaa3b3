"""kinit sweep: one config trained over a grid of settings and several seeds, summarised."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from kinit_cli.cli.options import (
    KinitCommand,
    config_options,
    json_option,
    make_trust,
    memory_check_option,
    output_option,
    trust_notes,
    trust_option,
    wide_option,
)

if TYPE_CHECKING:
    from rich.console import Console

    from kinit_cli.results.summary import Summary
    from kinit_cli.sweep.run import SweepRequest, SweepResult

CLUSTERS = ("local", "ray")


@click.command("sweep", cls=KinitCommand)
@click.argument("config_file", metavar="[CONFIG]", required=False, type=click.Path())
@click.option(
    "--grid",
    multiple=True,
    metavar="KEY=[V1, V2, ...]",
    help="A config key (as --set names it) and the values it takes, a YAML list whose "
    "values may be {class_name, config} mappings; several --grid make every combination. "
    "See the examples above.",
)
@click.option(
    "--seeds",
    metavar="N|S1,S2,...",
    help="Seeds for every combination: N for 1 to N, or a list (default: 3).",
)
@config_options
@trust_option
@memory_check_option
@output_option("The sweep's folder, new or empty (default: sweeps/<name>-<timestamp>).", file=False)
@click.option(
    "--resume",
    type=click.Path(exists=True, file_okay=False),
    metavar="SWEEP_DIR",
    help="Run what an interrupted sweep left: its missing, interrupted and failed trials "
    "(completed ones are never touched).",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    help="Trials at a time (default: what the machine's cores and memory allow).",
)
@click.option(
    "--cluster",
    type=click.Choice(CLUSTERS),
    default="local",
    show_default=True,
    help="local: worker processes here; ray: Ray tasks (RAY_ADDRESS, or a local Ray), "
    "needs kinit[ray].",
)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "gpu"]), default="auto", show_default=True
)
@click.option(
    "--plot",
    type=click.Path(),
    metavar="DIR_OR_FILE",
    help="Draw learning curves, activations at initialisation and weight change per "
    "combination (a .png file, or a folder of them; needs kinit[plot]).",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary.")
@wide_option
@json_option
def sweep(
    config_file: str | None,
    grid: tuple[str, ...],
    seeds: str | None,
    overrides: tuple[str, ...],
    plugins: tuple[str, ...],
    backend: str | None,
    trust_plugins: bool,
    output: str | None,
    resume: str | None,
    jobs: int | None,
    cluster: str,
    device: str,
    plot: str | None,
    quiet: bool,
    wide: bool,
    as_json: bool,
) -> None:
    """Train CONFIG once per combination of the --grid values and per seed, each trial a
    run directory in the sweep's folder (exactly the run `kinit train --set KEY=VALUE
    --seed S` makes, recording its weights through training), and summarise: each test
    metric's mean and standard error per combination, its difference from the first
    combination with Welch's t-test, and how each kernel started and moved.

    \b
    Examples:
      kinit sweep model.yaml --seeds 5 \\
        --grid 'model.layers[0].config.kernel_initializer=[glorot_uniform, he_normal]'
      kinit sweep model.yaml --seeds 1,7,9 \\
        --grid 'model.layers[0].config.kernel_initializer=[he_normal,
                {class_name: MyInit, config: {scale: 2}}]' \\
        --grid 'compile.optimizer.config.learning_rate=[0.001, 0.01]'
      kinit sweep --resume sweeps/model-20261206-120000

    Every combination is checked before anything is written. Exit status: 0 when every
    trial completed (or diverged: a result), 1 when a trial failed (the others' results
    stand), 2 for bad input, 130 after Ctrl-C (continue with --resume)."""
    from kinit_cli.output import render
    from kinit_cli.sweep import run as core

    plot_path = _plot_path(plot)
    trust = make_trust(plugins, trust_plugins)
    request = core.SweepRequest(
        config_file,
        overrides,
        grid,
        seeds,
        core.SweepOptions(output, resume, jobs, cluster),
        plugins,
        trust_plugins,
        backend,
        device,
    )
    result = _run(request, quiet, as_json)
    render.warnings(trust_notes(trust), render.console(stderr=True))
    _show(result, plot_path, wide, as_json)
    if result.failure is not None:
        raise result.failure


def _run(request: SweepRequest, quiet: bool, as_json: bool) -> SweepResult:
    """The sweep, its header and notes on stderr as it starts, and (without --quiet) a line
    for each trial as it ends under a bar of the trials done."""
    from kinit_cli.output import render
    from kinit_cli.output.sweep_progress import TrialProgress
    from kinit_cli.sweep import run as core

    err = render.console(stderr=True)
    shown: list[TrialProgress] = []

    def on_start(plan: core.SweepPlan) -> None:
        if not (quiet or as_json):
            render.run_header(plan.header, err)
        render.warnings(list(plan.notes), err)
        if not quiet:
            shown.append(TrialProgress(err, len(plan.todo)).__enter__())

    def on_event(event: core.Event) -> None:
        o = event.outcome
        for progress in shown:
            progress.done(o.name, o.status, o.error, o.test, o.seconds)

    try:
        return core.sweep(request, on_start, on_event)
    finally:
        for progress in shown:
            progress.__exit__()


def _show(result: SweepResult, plot_path: Path | None, wide: bool, as_json: bool) -> None:
    """The summary: its figures, then its tables (or its --json document)."""
    from kinit_cli.output import render, summary_tables

    err = render.console(stderr=True)
    summary = result.summary
    figures = _draw(summary, plot_path, err) if plot_path is not None else []
    if as_json:
        document = {"sweep_dir": str(result.sweep_dir), **summary.document()}
        if plot_path is not None:
            document["plots"] = [str(f) for f in figures]
        render.print_json(document)
        return
    summary_tables.render(summary, render.console(), wide=wide)
    render.console().print(f"Sweep saved in {result.sweep_dir}")


def _plot_path(plot: str | None) -> Path | None:
    if plot is None:
        return None
    from kinit_cli.output import sweep_plots

    path = Path(plot).absolute()
    sweep_plots.check(path, can_overwrite=False)  # before the sweep runs, not after
    return path


def _draw(summary: Summary, path: Path, err: Console) -> list[Path]:
    from kinit_cli.output import sweep_plots

    groups = [(g.label, g.runs) for g in summary.groups]
    written = sweep_plots.sweep_figures(groups, path)
    for file in written:
        err.print(f"Figure written to {file}", soft_wrap=True)
    return written
