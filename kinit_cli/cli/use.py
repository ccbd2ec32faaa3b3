"""kinit predict and kinit evaluate: a trained run (or a .keras file) used on data."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kinit_cli.cli.options import (
    KinitCommand,
    backend_option,
    debug_option,
    json_option,
    make_trust,
    memory_check_option,
    output_option,
    overwrite_option,
    plugin_option,
    stack,
    trust_notes,
    trust_option,
    unsafe_option,
    wide_option,
)
from kinit_cli.errors import UsageError

FORMATS = ("csv", "jsonl", "npy")

# How a TARGET is read: the trust flags inspect-weights has, and the backend.
_target_options = stack(
    debug_option,
    backend_option,
    plugin_option,
    trust_option,
    unsafe_option,
    memory_check_option,
    click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        metavar="N",
        help="Examples per model call (default: as many as fit in 16 MiB of input, at most "
        "1,024, at least the run's train.batch_size).",
    ),
)


@click.command("predict", cls=KinitCommand)
@click.argument("target")
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@output_option("Write the predictions to FILE (default: CSV or JSON lines on stdout).", "FILE")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="csv (default; or by -o's suffix): the id, the predicted class and one prob_ column "
    "per class; jsonl: one object per line; npy: the raw outputs (needs -o).",
)
@overwrite_option("Let -o replace an existing file.")
@_target_options
@json_option
def predict(
    target: str,
    inputs: tuple[str, ...],
    output: str | None,
    fmt: str | None,
    overwrite: bool,
    backend: str | None,
    plugins: tuple[str, ...],
    trust_plugins: bool,
    unsafe: bool,
    batch_size: int | None,
    as_json: bool,
) -> None:
    """Predict INPUT with TARGET, a run directory or a saved .keras model. INPUT: a table
    (.csv, .tsv, .csv.gz, .parquet; the label column may be there or not), an image folder,
    image files, or NumPy arrays (.npy, or .npz with x or x_test)."""
    from kinit_cli.inference import predict as core
    from kinit_cli.inference.inputs import open_input
    from kinit_cli.inference.runs import load
    from kinit_cli.output import evaluation, render
    from kinit_cli.registry.plugins import entry_point_notes

    out_path = Path(output).absolute() if output else None  # before plugins load: they may chdir
    fmt = core.format_of(out_path, fmt)
    if as_json and out_path is None:
        raise UsageError("--json prints a summary on stdout: give -o FILE for the predictions")
    core.check_output(out_path, fmt, overwrite)
    trust = make_trust(plugins, trust_plugins, unsafe)
    run = load(target, trust, backend)
    source = open_input(inputs, run)
    options = core.PredictOptions(out_path, fmt, batch_size, overwrite)
    err = render.console(stderr=True)
    with evaluation.progress(err, source.rows, "predicting") as advance:
        summary = core.predict(run, source, options, sys.stdout, advance)
    notes = entry_point_notes() + trust_notes(trust) + evaluation.predict_notes(summary)
    render.warnings(notes, err)
    if as_json:
        render.print_json(summary.document)
    elif out_path is not None:
        evaluation.predicted(summary, err)


@click.command("evaluate", cls=KinitCommand)
@click.argument("target")
@click.argument("data", required=False)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    metavar="FILE.png",
    help="Draw the confusion matrix (needs kinit[plot]).",
)
@overwrite_option("Let --plot replace an existing file.")
@_target_options
@wide_option
@json_option
def evaluate(
    target: str,
    data: str | None,
    plot: str | None,
    overwrite: bool,
    backend: str | None,
    plugins: tuple[str, ...],
    trust_plugins: bool,
    unsafe: bool,
    batch_size: int | None,
    wide: bool,
    as_json: bool,
) -> None:
    """Evaluate TARGET (a run directory or a .keras model) on DATA, labelled as predict's
    INPUT, or without DATA on the run's own test split: its loss and metrics, and for a
    classifier the confusion matrix and each class's precision, recall and F1."""
    from kinit_cli.inference import evaluate as core
    from kinit_cli.inference.runs import load
    from kinit_cli.output import evaluation, render
    from kinit_cli.registry.plugins import entry_point_notes

    plot_path = None
    if plot:
        from kinit_cli.output import plot as plotting

        plot_path = Path(plot).absolute()  # before plugins load: they may chdir
        plotting.check(plot_path, overwrite)
    trust = make_trust(plugins, trust_plugins, unsafe)
    run = load(target, trust, backend)
    source = core.open_data(run, data)
    err = render.console(stderr=True)
    with evaluation.progress(err, source.rows, "evaluating") as advance:
        result = core.evaluate(run, source, batch_size, advance)
    if plot_path is not None:
        if result.confusion is None:
            raise UsageError("--plot draws a classifier's confusion matrix; this is a regression")
        plotting.confusion(result.classes, result.confusion, plot_path, overwrite)
        err.print(f"Confusion matrix written to {plot_path}")
    render.warnings(entry_point_notes() + trust_notes(trust) + list(result.notes), err)
    if as_json:
        render.print_json(result.document)
    else:
        evaluation.evaluation(result, render.console(), wide=wide)
