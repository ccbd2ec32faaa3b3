"""kinit train: a run planned, then trained in its run directory with a live display."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kinit_cli.cli.options import (
    KinitCommand,
    config_options,
    json_option,
    make_trust,
    memory_check_option,
    output_option,
    overwrite_option,
    stack,
    trust_notes,
    trust_option,
    wide_option,
)
from kinit_cli.config.choices import STRATEGIES
from kinit_cli.errors import KinitError

if TYPE_CHECKING:
    from kinit_cli.training.plan import Plan
    from kinit_cli.training.trainer import TrainResult


# Where and how the run goes.
_run_options = stack(
    click.option(
        "--device",
        type=click.Choice(["auto", "cpu", "gpu"]),
        default="auto",
        show_default=True,
        help="auto uses a GPU when TensorFlow sees one.",
    ),
    click.option(
        "--seed",
        type=click.IntRange(0, 2**32 - 1),  # NumPy's seeds are unsigned 32-bit integers
        help="Seed for Python, NumPy and Keras (overrides seed:).",
    ),
    output_option("Run directory (default: runs/<name>-<timestamp>).", file=False),
    overwrite_option("Allow a non-empty --output directory."),
    click.option(
        "--resume",
        type=click.Path(exists=True, file_okay=False),
        metavar="RUN_DIR",
        help="Continue an interrupted run from its last full epoch.",
    ),
    click.option(
        "--strategy",
        type=click.Choice(STRATEGIES),
        help="Distribution strategy (overrides distribute.strategy): tf.distribute's on "
        "tensorflow, data_parallel on jax.",
    ),
)


@click.command(cls=KinitCommand)
@click.argument("config_file", metavar="[CONFIG]", required=False, type=click.Path())
@config_options
@trust_option
@memory_check_option
@_run_options
@click.option("--quiet", "-q", is_flag=True, help="Print only the final results.")
@wide_option
@json_option
def train(
    config_file: str | None,
    overrides: tuple[str, ...],
    plugins: tuple[str, ...],
    backend: str | None,
    trust_plugins: bool,
    device: str,
    seed: int | None,
    output: str | None,
    overwrite: bool,
    resume: str | None,
    strategy: str | None,
    quiet: bool,
    wide: bool,
    as_json: bool,
) -> None:
    """Train the model CONFIG describes, evaluate it, and keep the run in a run directory.

    Shows the weight statistics at initialization, a live progress display, the test
    metrics, and the statistics after training with how far each weight moved.
    """
    from kinit_cli.output import render, weight_tables
    from kinit_cli.training.plan import TrainOptions, UpToDate, plan

    trust = make_trust(plugins, trust_plugins)
    options = TrainOptions(
        device=device,
        seed=seed,
        output=output,
        overwrite=overwrite,
        resume=resume,
        strategy=strategy,
        backend=backend,
    )
    run = plan(config_file, overrides, trust, options)
    out = render.console()
    if isinstance(run, UpToDate):
        render.print_json(run.document) if as_json else out.print(run.message)
        return
    render.warnings(run.notes() + trust_notes(trust), render.console(stderr=True))
    result = _fit(run, quiet, wide, as_json)
    if as_json:
        render.print_json(result.document)
        return
    if not quiet:
        weight_tables.weight_stats(
            result.final_report, "Weights after training", out, result.changes, wide=wide
        )
    render.metrics_table(result.metrics, out)
    out.print(result.saved_in)


def _fit(run: Plan, quiet: bool, wide: bool, as_json: bool) -> TrainResult:
    """The planned run trained and finished in its run directory: the header and the
    initial weights first (not with --quiet or --json), the progress on stderr (not with
    --quiet)."""
    from kinit_cli.output import plot, render, weight_tables
    from kinit_cli.training.trainer import Trainer

    out, err = render.console(), render.console(stderr=True)
    with Trainer(run, figures=plot.history_figure) as trainer:
        if not (quiet or as_json):
            render.run_header(run.header(), out)
            weight_tables.weight_stats(
                run.initial_report, "Weights at initialization", out, wide=wide
            )
        callbacks = []
        if not quiet:
            from kinit_cli.output.progress import ProgressDisplay

            t = run.prepared.settings.train
            callbacks.append(
                ProgressDisplay(
                    err,
                    epochs=t.epochs,
                    steps=run.steps_per_epoch,
                    batch_size=t.batch_size,
                    samples=len(run.data.x_train),
                    epoch_line=err.print,
                )
            )
        try:
            trainer.fit(callbacks)
            return trainer.finish()
        except KinitError:
            if as_json and trainer.document is not None:
                render.print_json(trainer.document)  # the run's record says how it ended
            raise
