"""The `kinit` command line: parse, call one core function, render. The only place that exits.

Nothing here imports TensorFlow at module level, so `kinit --help` stays instant; each
command imports the core it needs when it runs.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import click

from kinit_cli.cli.config import CATALOG, export_config, schema_command, validate
from kinit_cli.cli.inspect import inspect_weights
from kinit_cli.cli.options import DEBUG, TRUST, debug_option
from kinit_cli.cli.results import compare
from kinit_cli.cli.sweep import sweep
from kinit_cli.cli.train import train
from kinit_cli.cli.use import evaluate, predict
from kinit_cli.errors import Interrupted, KinitError
from kinit_cli.runtime.versions import KINIT


class KinitGroup(click.Group):
    """Renders every KinitError once, with its exit status; tracebacks only with --debug."""

    def invoke(self, ctx: click.Context) -> Any:
        from kinit_cli.output import render

        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KinitError as exc:
            if ctx.meta.get(DEBUG):
                raise
            trust = ctx.meta.get(TRUST)
            if trust is not None:  # code it let run before the failure is still owed a word
                render.warnings(trust.notes(), render.console(stderr=True))
            render.error(exc, render.console(stderr=True))
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            if ctx.meta.get(DEBUG):
                raise
            render.error(Interrupted("interrupted by SIGINT"), render.console(stderr=True))
            ctx.exit(Interrupted.exit_code)
        except Exception as exc:
            if ctx.meta.get(DEBUG):
                raise
            render.unexpected(exc, render.console(stderr=True))
            ctx.exit(1)


@click.group(cls=KinitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(KINIT, prog_name="kinit")
@debug_option
def cli() -> None:
    """Train Keras models from YAML configs and see what is inside their weights."""


for _command in [validate, schema_command, export_config, train, inspect_weights, *CATALOG]:
    cli.add_command(_command)
for _command in (predict, evaluate, sweep, compare):
    cli.add_command(_command)


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
