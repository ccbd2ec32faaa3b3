"""The `kinit` command line: parse, call one core function, render. The only place that exits.

Nothing here imports TensorFlow at module level, so `kinit --help` stays instant; each
command imports the core it needs when it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from kinit_cli import __version__
from kinit_cli.errors import KinitError
from kinit_cli.registry import KINDS

_DEBUG = "kinit.debug"


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        from kinit_cli import backend

        ctx.meta[_DEBUG] = True
        backend.show_native_logs = True
    return value


def debug_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--debug",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_debug,
        help="Show Python tracebacks and TensorFlow's own logs.",
    )(f)


class KinitGroup(click.Group):
    """Renders every KinitError once, with its exit status; tracebacks only with --debug."""

    def invoke(self, ctx: click.Context) -> Any:
        from kinit_cli import render

        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KinitError as exc:
            if ctx.meta.get(_DEBUG):
                raise
            render.error(exc, render.console(stderr=True))
            ctx.exit(exc.exit_code)
        except Exception as exc:
            if ctx.meta.get(_DEBUG):
                raise
            render.unexpected(exc, render.console(stderr=True))
            ctx.exit(1)


@click.group(cls=KinitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kinit")
@debug_option
def cli() -> None:
    """Train Keras models from YAML configs and see what is inside their weights."""


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
    return debug_option(f)


@cli.command()
@click.argument("config_file", metavar="CONFIG", type=click.Path(dir_okay=True))
@config_options
@click.option(
    "--print-config",
    is_flag=True,
    help="Print the resolved config (overrides and defaults applied) as YAML.",
)
def validate(
    config_file: str, overrides: tuple[str, ...], plugins: tuple[str, ...], print_config: bool
) -> None:
    """Validate CONFIG, load its plugins and build its model (without training).

    Prints the layers, output shapes, parameter counts and the initializer of every
    weight; exits 2 with every problem found when the config is invalid.
    """
    from kinit_cli import render
    from kinit_cli.config import dump
    from kinit_cli.prepare import prepare

    prepared = prepare(config_file, overrides, plugins)
    if print_config:
        click.echo(dump(prepared.resolved), nl=False)
        return
    out = render.console()
    loaded = [p.spec for p in prepared.plugins if not p.spec.startswith("kinit_cli.")]
    out.print(
        f"{config_file}: valid" + (f"; plugins loaded: {', '.join(loaded)}" if loaded else "")
    )
    render.model_summary(prepared.built, f"Model '{prepared.built.model.name}'", out)


def _catalog_command(kind: str, plural: str) -> click.Command:
    @click.argument("name", required=False)
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
    @click.option(
        "--plugin",
        "plugins",
        multiple=True,
        metavar="MODULE_OR_FILE",
        help="Load a plugin (dotted module or .py file) first; repeatable.",
    )
    @debug_option
    def command(name: str | None, as_json: bool, plugins: tuple[str, ...]) -> None:
        from pathlib import Path

        from kinit_cli import render
        from kinit_cli.registry import Registry, describe, load_plugins

        load_plugins(plugins, base_dir=Path.cwd())
        registry = Registry()
        if name:
            item = describe(registry.resolve(kind, name))
            render.print_json(item) if as_json else render.catalog_detail(item, render.console())
            return
        items = [describe(e) for e in registry.catalog(kind)]
        if as_json:
            render.print_json(items)
        else:
            render.catalog(kind, items, render.console())

    command.__doc__ = (
        f"List every {kind} a config can name (Keras and plugins), or show NAME in detail.\n\n"
        f"Shows canonical names, aliases, where each comes from, constructor parameters with "
        f"defaults and the first docstring line."
    )
    return click.command(f"list-{plural}")(command)


for _kind in KINDS.values():
    cli.add_command(_catalog_command(_kind.name, _kind.plural))


def main() -> None:
    cli(prog_name="kinit")
