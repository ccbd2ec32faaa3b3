"""kinit inspect-weights: the report on a target's weights, as tables or one JSON document."""

from __future__ import annotations

from pathlib import Path

import click

from kinit_cli.cli.options import (
    KinitCommand,
    config_options,
    json_option,
    make_trust,
    memory_check_option,
    overwrite_option,
    stack,
    trust_notes,
    trust_option,
    unsafe_option,
    wide_option,
)

# What inspect-weights shows and reads.
_shown_options = stack(
    click.option("--layer", metavar="GLOB", help="Only variables whose path or layer matches."),
    click.option("--trainable-only", is_flag=True, help="Only trainable variables."),
    click.option(
        "--check",
        is_flag=True,
        help="Compare each variable with its initializer's theory; exit 1 on a FAIL.",
    ),
    click.option(
        "--against",
        metavar="OTHER",
        help="Compare with another target: relative change and cosine per variable.",
    ),
    click.option(
        "--activations",
        is_flag=True,
        help="Push one batch through the model (config TARGET): per-layer output mean and std, "
        "per-weight gradient norms.",
    ),
    click.option(
        "--plot",
        type=click.Path(dir_okay=False),
        metavar="FILE.png",
        help="Draw per-variable histograms with the theoretical density, and a run's "
        "weight history where it has one (needs kinit[plot]).",
    ),
    overwrite_option("Let --plot replace an existing file."),
    click.option(
        "--values",
        metavar="GLOB",
        help="Print the values of the variables whose path or layer matches "
        "(as NumPy prints them).",
    ),
    click.option("--full", is_flag=True, help="With --values: every value, not NumPy's summary."),
    unsafe_option,
)


@click.command("inspect-weights", cls=KinitCommand)
@click.argument("target")
@config_options
@trust_option
@memory_check_option
@_shown_options
@wide_option
@json_option
def inspect_weights(
    target: str,
    overrides: tuple[str, ...],
    plugins: tuple[str, ...],
    backend: str | None,
    trust_plugins: bool,
    layer: str | None,
    trainable_only: bool,
    check: bool,
    against: str | None,
    activations: bool,
    plot: str | None,
    overwrite: bool,
    values: str | None,
    full: bool,
    unsafe: bool,
    wide: bool,
    as_json: bool,
) -> None:
    """Statistics of every weight of TARGET: a config (built, not trained), a saved .keras
    model, a run directory, or a .weights.h5 checkpoint in a run directory."""
    from kinit_cli.output import render, weight_tables
    from kinit_cli.registry.plugins import entry_point_notes
    from kinit_cli.weights.report import InspectOptions, inspect

    if plot:
        from kinit_cli.output import plot as plotting

        plotting.check(Path(plot), overwrite)
        plot = str(Path(plot).absolute())  # before plugins load: they may chdir
    trust = make_trust(plugins, trust_plugins, unsafe)
    options = InspectOptions(
        layer=layer,
        trainable_only=trainable_only,
        check=check,
        against=against,
        activations=activations,
        plot=plot,
        values=values,
        full=full,
        backend=backend,
    )
    report = inspect(target, overrides, trust, options)
    if plot:
        plotting.histograms(report.panels, Path(plot), overwrite, history=report.weight_history)
    notes = entry_point_notes() + trust_notes(trust) + report.notes
    render.warnings(notes, render.console(stderr=True))
    if as_json:
        render.print_json(report.document)
    else:
        weight_tables.inspection(report, render.console(), wide=wide)
    if report.failed:
        raise click.exceptions.Exit(1)
