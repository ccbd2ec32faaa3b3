"""The options several commands share, each declared once; the command class that holds
their Switches; and the command's one Trust."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from kinit_cli.config.choices import BACKENDS
from kinit_cli.runtime import switches
from kinit_cli.runtime.switches import Switches

if TYPE_CHECKING:
    from kinit_cli.registry.trust import Trust

DEBUG = "kinit.debug"
TRUST = "kinit.trust"
_IGNORE_MEMORY = "kinit.ignore_memory_check"


class KinitCommand(click.Command):
    """A command that holds its Switches (runtime/switches.py), made once from its flags,
    while it runs."""

    def invoke(self, ctx: click.Context) -> Any:
        made = Switches(
            ignore_memory_check=bool(ctx.meta.get(_IGNORE_MEMORY)),
            debug=bool(ctx.meta.get(DEBUG)) or switches.current().debug,
        )
        with switches.using(made):
            return super().invoke(ctx)


def _switch_flag(name: str, key: str, help: str) -> Any:
    """A flag that reaches the command's Switches rather than its arguments; given to the
    group or to the command, it holds (ctx.meta is the invocation's, shared by both)."""

    def record(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        if value:
            ctx.meta[key] = True
        return value

    return click.option(
        name, is_flag=True, expose_value=False, is_eager=True, callback=record, help=help
    )


debug_option = _switch_flag("--debug", DEBUG, "Show Python tracebacks and TensorFlow's own logs.")
memory_check_option = _switch_flag(
    "--ignore-memory-check",
    _IGNORE_MEMORY,
    "Build or read a model even when its weights, or the sizes a file declares, look too "
    "large for this machine's memory.",
)


# The command passes it to whatever reads a config or imports Keras first.
backend_option = click.option(
    "--backend",
    type=click.Choice(BACKENDS, case_sensitive=False),
    help="Keras backend (overrides the config's backend: and KERAS_BACKEND).",
)
trust_option = click.option(
    "--trust-plugins",
    "trust_plugins",
    is_flag=True,
    help="Import the plugins a run or an init_from source names (their code runs): only "
    "for files you trust.",
)
unsafe_option = click.option(
    "--unsafe-deserialization",
    "unsafe",
    is_flag=True,
    help="Load the Python code a .keras file holds (a Lambda layer): only for files you trust.",
)
plugin_option = click.option(
    "--plugin",
    "plugins",
    multiple=True,
    metavar="MODULE_OR_FILE",
    help="Load a plugin (dotted module or .py file); repeatable.",
)
set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY.PATH=VALUE",
    help="Override a config value (parsed as YAML), e.g. train.epochs=1; repeatable.",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document on stdout."
)
wide_option = click.option(
    "--wide", is_flag=True, help="Every table column, however wide the table gets."
)


def overwrite_option(help: str) -> Any:
    """--overwrite: what it lets the command replace differs per command."""
    return click.option("--overwrite", is_flag=True, help=help)


def output_option(help: str, metavar: str | None = None, file: bool = True) -> Any:
    """--output/-o: a file for the commands that write one document, a folder for train."""
    path = click.Path(dir_okay=False) if file else click.Path(file_okay=False)
    return click.option("--output", "-o", type=path, metavar=metavar, help=help)


def stack(*options: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """One decorator applying `options` as if each were written above the function, in order
    (so --help lists them in that order)."""

    def apply(f: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            f = option(f)
        return f

    return apply


# --set and --plugin, shared by every command that takes a config.
config_options = stack(debug_option, backend_option, set_option, plugin_option)


def make_trust(plugins: tuple[str, ...], trusted: bool, unsafe: bool = False) -> Trust:
    """The command's one Trust (registry/trust.py), kept where an error can still warn of
    the code it let run."""
    from kinit_cli.registry.trust import Trust

    trust = Trust(plugins, trusted, unsafe)
    click.get_current_context().meta[TRUST] = trust
    return trust


def trust_notes(trust: Trust) -> list[str]:
    """The warnings for the code `trust` let run, said once: not again if the command fails."""
    click.get_current_context().meta.pop(TRUST, None)
    return trust.notes()
