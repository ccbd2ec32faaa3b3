"""The `kinit` command line: parse, call one core function, render. The only place that exits.

Nothing here imports TensorFlow at module level, so `kinit --help` stays instant; each
command imports the core it needs when it runs.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kinit_cli.config.choices import BACKENDS, STRATEGIES
from kinit_cli.errors import Interrupted, KinitError
from kinit_cli.registry.registration import KINDS
from kinit_cli.runtime.versions import KINIT

if TYPE_CHECKING:
    from kinit_cli.registry.trust import Trust

_DEBUG = "kinit.debug"
_TRUST = "kinit.trust"


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        from kinit_cli.runtime import imports

        ctx.meta[_DEBUG] = True
        imports.show_native_logs = True
    return value


def _setting_flag(name: str, setter: Callable[..., bool], help: str) -> Any:
    """A flag read before the other options that sets process state (setter: click's
    callback) instead of reaching the command as an argument."""
    return click.option(
        name, is_flag=True, expose_value=False, is_eager=True, callback=setter, help=help
    )


debug_option = _setting_flag(
    "--debug", _set_debug, "Show Python tracebacks and TensorFlow's own logs."
)


class KinitGroup(click.Group):
    """Renders every KinitError once, with its exit status; tracebacks only with --debug."""

    def invoke(self, ctx: click.Context) -> Any:
        from kinit_cli.output import render

        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KinitError as exc:
            if ctx.meta.get(_DEBUG):
                raise
            trust = ctx.meta.get(_TRUST)
            if trust is not None:  # code it let run before the failure is still owed a word
                render.warnings(trust.notes(), render.console(stderr=True))
            render.error(exc, render.console(stderr=True))
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            if ctx.meta.get(_DEBUG):
                raise
            render.error(Interrupted("interrupted by SIGINT"), render.console(stderr=True))
            ctx.exit(Interrupted.exit_code)
        except Exception as exc:
            if ctx.meta.get(_DEBUG):
                raise
            render.unexpected(exc, render.console(stderr=True))
            ctx.exit(1)


@click.group(cls=KinitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(KINIT, prog_name="kinit")
@debug_option
def cli() -> None:
    """Train Keras models from YAML configs and see what is inside their weights."""


def _set_memory_check(_ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    from kinit_cli.runtime import memory

    memory.ignored = value  # every invocation: a flag given once does not stick
    return value


# For the commands that build a config's model.
memory_check_option = _setting_flag(
    "--ignore-memory-check",
    _set_memory_check,
    "Build or read a model even when its weights, or the sizes a file declares, look too "
    "large for this machine's memory.",
)


def _set_backend(_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    from kinit_cli.runtime import backend

    backend.requested = value  # every invocation: chosen before anything imports Keras


backend_option = click.option(
    "--backend",
    type=click.Choice(BACKENDS, case_sensitive=False),
    expose_value=False,
    is_eager=True,
    callback=_set_backend,
    help="Keras backend (overrides the config's backend: and KERAS_BACKEND).",
)


trust_option = click.option(
    "--trust-plugins",
    "trust_plugins",
    is_flag=True,
    help="Import the plugins a run or an init_from source names (their code runs): only "
    "for files you trust.",
)


def _trust(plugins: tuple[str, ...], trusted: bool, unsafe: bool = False) -> Trust:
    """The command's one Trust (registry/trust.py), kept where an error can still warn of
    the code it let run."""
    from kinit_cli.registry.trust import Trust

    trust = Trust(plugins, trusted, unsafe)
    click.get_current_context().meta[_TRUST] = trust
    return trust


def _trust_notes(trust: Trust) -> list[str]:
    """The warnings for the code `trust` let run, said once: not again if the command fails."""
    click.get_current_context().meta.pop(_TRUST, None)
    return trust.notes()


def config_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--set and --plugin, shared by every command that takes a config."""
    f = click.option(
        "--plugin",
        "plugins",
        multiple=True,
        metavar="MODULE_OR_FILE",
        help="Load a plugin (dotted module or .py file); repeatable.",
    )(f)
    f = click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="KEY.PATH=VALUE",
        help="Override a config value (parsed as YAML), e.g. train.epochs=1; repeatable.",
    )(f)
    return debug_option(backend_option(f))


@cli.command()
@click.argument("config_file", metavar="CONFIG", type=click.Path(dir_okay=True))
@config_options
@trust_option
@memory_check_option
@click.option(
    "--print-config",
    is_flag=True,
    help="Print the resolved config (overrides and defaults applied) as YAML.",
)
def validate(
    config_file: str,
    overrides: tuple[str, ...],
    plugins: tuple[str, ...],
    trust_plugins: bool,
    print_config: bool,
) -> None:
    """Validate CONFIG, load its plugins and build its model (without training).

    Prints the layers, output shapes, parameter counts and the initializer of every
    weight; exits 2 with every problem found when the config is invalid.
    """
    from kinit_cli.config.source import dump
    from kinit_cli.model.sources import prepare
    from kinit_cli.output import render, weight_tables

    trust = _trust(plugins, trust_plugins)
    prepared = prepare(config_file, overrides, trust, callbacks=True)
    if print_config:
        render.warnings(_trust_notes(trust), render.console(stderr=True))
        click.echo(dump(prepared.settings.document()), nl=False)
        return
    out = render.console()
    out.print(prepared.verdict(config_file))
    render.warnings(prepared.notes() + _trust_notes(trust), render.console(stderr=True))
    weight_tables.model_summary(prepared.built, f"Model '{prepared.built.model.name}'", out)


plugin_option = click.option(
    "--plugin",
    "plugins",
    multiple=True,
    metavar="MODULE_OR_FILE",
    help="Load a plugin (dotted module or .py file) first; repeatable.",
)


def _catalog_command(kind: str, plural: str) -> click.Command:
    @click.argument("name", required=False)
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
    @plugin_option
    @backend_option
    @debug_option
    def command(name: str | None, as_json: bool, plugins: tuple[str, ...]) -> None:
        from kinit_cli.output import catalog, render
        from kinit_cli.registry.catalog import Registry
        from kinit_cli.registry.plugins import entry_point_notes, load_plugins
        from kinit_cli.registry.signatures import describe

        load_plugins(plugins, base_dir=Path.cwd())
        render.warnings(entry_point_notes(), render.console(stderr=True))
        registry = Registry()
        if name:
            item = describe(registry.resolve(kind, name))
            render.print_json(item) if as_json else catalog.catalog_detail(item, render.console())
            return
        items = [describe(e) for e in registry.catalog(kind)]
        if as_json:
            render.print_json(items)
        else:
            catalog.catalog(kind, items, render.console())

    command.__doc__ = (
        f"List every {kind} a config can name (Keras and plugins), or show NAME in detail.\n\n"
        f"Shows canonical names, aliases, where each comes from, constructor parameters with "
        f"defaults and the first docstring line."
    )
    return click.command(f"list-{plural}")(command)


for _kind in KINDS.values():
    cli.add_command(_catalog_command(_kind.name, _kind.plural))


def output_file_option(metavar: str, help: str) -> Any:
    """--output/-o for the commands that print one document or write it to a file."""
    return click.option(
        "--output", "-o", type=click.Path(dir_okay=False), metavar=metavar, help=help
    )


@cli.command("schema")
@plugin_option
@click.option(
    "--config",
    "config_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Also load the plugins: that config names (relative to its folder); repeatable.",
)
@trust_option
@output_file_option("FILE", "Write the schema to FILE instead of stdout (e.g. kinit.schema.json).")
@click.option(
    "--overwrite", is_flag=True, help="Let --output replace a file that is not a kinit schema."
)
@debug_option
def schema_command(
    plugins: tuple[str, ...],
    config_files: tuple[str, ...],
    trust_plugins: bool,
    output: str | None,
    overwrite: bool,
) -> None:
    """Print the JSON Schema of kinit configs, for YAML editors (completion and checks).

    It names every class a config can use (Keras built-ins, aliases and the loaded
    plugins) and each class's constructor arguments. Point an editor at it with the
    modeline `# yaml-language-server: $schema=../kinit.schema.json` (see README.md).
    """

    from kinit_cli.output import render
    from kinit_cli.registry import json_schema
    from kinit_cli.registry.plugins import entry_point_notes

    target = Path(output).absolute() if output else None  # before plugins: they may chdir
    trust = _trust(plugins, trust_plugins)
    document = json_schema.generate(plugins, config_files, trust)
    render.warnings(entry_point_notes() + _trust_notes(trust), render.console(stderr=True))
    if output is None:
        render.print_json(document)
        return
    json_schema.write(target or Path(output), document, overwrite)
    render.console(stderr=True).print(f"Wrote the config schema to {output}")


@cli.command("export-config")
@click.argument("model_file", metavar="MODEL.keras", type=click.Path(dir_okay=True))
@output_file_option("FILE.yaml", "Write the config to FILE.yaml instead of stdout.")
@click.option("--overwrite", is_flag=True, help="Let --output replace an existing file.")
@memory_check_option
@debug_option
def export_config(model_file: str, output: str | None, overwrite: bool) -> None:
    """Write the kinit config that rebuilds a saved model: its architecture (model:) and its
    compile settings (compile:), from the file's own config.json."""
    from kinit_cli.model import export
    from kinit_cli.output import render

    content = export.text(export.export(Path(model_file)), Path(model_file))
    if output is None:
        click.echo(content, nl=False)
        return
    export.write(Path(output), content, overwrite)
    render.console(stderr=True).print(f"Wrote the config of {model_file} to {output}")


# How long the command's end waits for threads it did not start before it exits anyway.
THREAD_GRACE_S = 1.0


def main() -> None:
    """The `kinit` command: its output safe on closed streams and broken pipes, and its end
    not held up by a thread a plugin left running (Python would wait for it forever)."""
    from kinit_cli.output import render

    render.guard_streams()
    try:
        cli(prog_name="kinit")
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    left = _threads_left(THREAD_GRACE_S)
    if not left:
        sys.exit(code)
    names = ", ".join(repr(t.name) for t in left)
    one = len(left) == 1
    what = f"a plugin's thread ({names}) was" if one else f"plugin threads ({names}) were"
    them = "it" if one else "them"
    render.warnings(
        [f"{what} still running when the command was done; kinit exits without waiting for {them}"],
        render.console(stderr=True),
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if code is None else code if isinstance(code, int) else 1)


def _threads_left(grace: float) -> list[threading.Thread]:
    """The threads Python would wait for at exit (not daemons) still alive after `grace`
    seconds in all: kinit starts none, so they are a plugin's."""
    deadline = time.monotonic() + grace
    left = []
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            left.append(thread)
    return left


@cli.command()
@click.argument("config_file", metavar="[CONFIG]", required=False, type=click.Path())
@config_options
@trust_option
@memory_check_option
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "gpu"]),
    default="auto",
    show_default=True,
    help="auto uses a GPU when TensorFlow sees one.",
)
@click.option(
    "--seed",
    type=click.IntRange(0, 2**32 - 1),  # NumPy's seeds are unsigned 32-bit integers
    help="Seed for Python, NumPy and Keras (overrides seed:).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False),
    help="Run directory (default: runs/<name>-<timestamp>).",
)
@click.option("--overwrite", is_flag=True, help="Allow a non-empty --output directory.")
@click.option(
    "--resume",
    type=click.Path(exists=True, file_okay=False),
    metavar="RUN_DIR",
    help="Continue an interrupted run from its last full epoch.",
)
@click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    help="Distribution strategy (overrides distribute.strategy): tf.distribute's on "
    "tensorflow, data_parallel on jax.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only the final results.")
@click.option("--wide", is_flag=True, help="Every table column, however wide the table gets.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def train(
    config_file: str | None,
    overrides: tuple[str, ...],
    plugins: tuple[str, ...],
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
    from kinit_cli.training.trainer import Trainer

    trust = _trust(plugins, trust_plugins)
    run = plan(
        config_file,
        overrides,
        trust,
        TrainOptions(device, seed, output, overwrite, resume, strategy),
    )
    out, err = render.console(), render.console(stderr=True)
    if isinstance(run, UpToDate):
        render.print_json(run.document) if as_json else out.print(run.message)
        return
    render.warnings(run.notes() + _trust_notes(trust), err)
    tables = not (quiet or as_json)
    with Trainer(run) as trainer:
        if tables:
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
                    t.epochs,
                    run.steps_per_epoch,
                    t.batch_size,
                    len(run.data.x_train),
                    lambda line: err.print(line),
                )
            )
        try:
            trainer.fit(callbacks)
            result = trainer.finish()
        except KinitError:
            if as_json and trainer.document is not None:
                render.print_json(trainer.document)  # the run's record says how it ended
            raise
    if as_json:
        render.print_json(result.document)
        return
    if tables:
        weight_tables.weight_stats(
            result.final_report, "Weights after training", out, result.changes, wide=wide
        )
    render.metrics_table(result.metrics, out)
    out.print(result.saved_in)


@cli.command("inspect-weights")
@click.argument("target")
@config_options
@trust_option
@memory_check_option
@click.option("--layer", metavar="GLOB", help="Only variables whose path or layer matches.")
@click.option("--trainable-only", is_flag=True, help="Only trainable variables.")
@click.option(
    "--check",
    is_flag=True,
    help="Compare each variable with its initializer's theory; exit 1 on a FAIL.",
)
@click.option(
    "--against",
    metavar="OTHER",
    help="Compare with another target: relative change and cosine per variable.",
)
@click.option(
    "--activations",
    is_flag=True,
    help="Push one batch through the model (config TARGET): per-layer output mean and std, "
    "per-weight gradient norms.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    metavar="FILE.png",
    help="Draw per-variable histograms with the theoretical density (needs kinit[plot]).",
)
@click.option("--overwrite", is_flag=True, help="Let --plot replace an existing file.")
@click.option(
    "--values",
    metavar="GLOB",
    help="Print the values of the variables whose path or layer matches (as NumPy prints them).",
)
@click.option("--full", is_flag=True, help="With --values: every value, not NumPy's summary.")
@click.option(
    "--unsafe-deserialization",
    "unsafe",
    is_flag=True,
    help="Load the Python code a .keras file holds (a Lambda layer): only for files you trust.",
)
@click.option("--wide", is_flag=True, help="Every table column, however wide the table gets.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def inspect_weights(
    target: str,
    overrides: tuple[str, ...],
    plugins: tuple[str, ...],
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
    from kinit_cli.weights.report import inspect

    if plot:
        from kinit_cli.output import plot as plotting

        plotting.check(Path(plot), overwrite)
        plot = str(Path(plot).absolute())  # before plugins load: they may chdir
    trust = _trust(plugins, trust_plugins, unsafe)
    report = inspect(
        target,
        overrides,
        trust,
        layer=layer,
        trainable_only=trainable_only,
        check=check,
        against=against,
        activations=activations,
        plot=plot,
        values=values,
        full=full,
    )
    if plot:
        plotting.histograms(report.panels, Path(plot), overwrite)
    notes = entry_point_notes() + _trust_notes(trust) + report.loaded.notes
    render.warnings(notes, render.console(stderr=True))
    if as_json:
        render.print_json(report.document)
    else:
        weight_tables.inspection(report, render.console(), wide=wide)
    if report.failed:
        raise click.exceptions.Exit(1)
