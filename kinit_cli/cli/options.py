"""The options several commands share, each declared once, and the command's one Trust."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from kinit_cli.config.choices import BACKENDS

if TYPE_CHECKING:
    from kinit_cli.registry.trust import Trust

DEBUG = "kinit.debug"
TRUST = "kinit.trust"


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        from kinit_cli.runtime import imports

        ctx.meta[DEBUG] = True
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


def _set_memory_check(_ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    from kinit_cli.runtime import memory

    memory.ignored = value  # every invocation: a flag given once does not stick
    return value


memory_check_option = _setting_flag(
    "--ignore-memory-check",
    _set_memory_check,
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
