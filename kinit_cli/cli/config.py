"""validate, schema and export-config: a config checked, the schema editors read, a saved
model's config written back; and the list-* commands over the catalog."""

from __future__ import annotations

from pathlib import Path

import click

from kinit_cli.cli.options import (
    KinitCommand,
    backend_option,
    config_options,
    debug_option,
    json_option,
    make_trust,
    memory_check_option,
    output_option,
    overwrite_option,
    plugin_option,
    trust_notes,
    trust_option,
)
from kinit_cli.registry.registration import KINDS


@click.command(cls=KinitCommand)
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
    backend: str | None,
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

    trust = make_trust(plugins, trust_plugins)
    prepared = prepare(config_file, overrides, trust, callbacks=True, requested=backend)
    if print_config:
        render.warnings(trust_notes(trust), render.console(stderr=True))
        click.echo(dump(prepared.settings.document()), nl=False)
        return
    out = render.console()
    out.print(prepared.verdict(config_file))
    render.warnings(prepared.notes() + trust_notes(trust), render.console(stderr=True))
    weight_tables.model_summary(prepared.built, f"Model '{prepared.built.model.name}'", out)


def _catalog_command(kind: str, plural: str) -> click.Command:
    @click.argument("name", required=False)
    @json_option
    @plugin_option
    @backend_option
    @debug_option
    def command(
        name: str | None, as_json: bool, plugins: tuple[str, ...], backend: str | None
    ) -> None:
        from kinit_cli.output import catalog, render
        from kinit_cli.registry.catalog import Registry
        from kinit_cli.registry.plugins import entry_point_notes, load_plugins
        from kinit_cli.registry.signatures import describe

        if backend:
            from kinit_cli.runtime.backend import use

            use(backend)  # before the plugins import Keras
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
    return click.command(f"list-{plural}", cls=KinitCommand)(command)


CATALOG = [_catalog_command(kind.name, kind.plural) for kind in KINDS.values()]


@click.command("schema", cls=KinitCommand)
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
@output_option("Write the schema to FILE instead of stdout (e.g. kinit.schema.json).", "FILE")
@overwrite_option("Let --output replace a file that is not a kinit schema.")
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
    trust = make_trust(plugins, trust_plugins)
    document = json_schema.generate(plugins, config_files, trust)
    render.warnings(entry_point_notes() + trust_notes(trust), render.console(stderr=True))
    if output is None:
        render.print_json(document)
        return
    json_schema.write(target or Path(output), document, overwrite)
    render.console(stderr=True).print(f"Wrote the config schema to {output}")


@click.command("export-config", cls=KinitCommand)
@click.argument("model_file", metavar="MODEL.keras", type=click.Path(dir_okay=True))
@output_option("Write the config to FILE.yaml instead of stdout.", "FILE.yaml")
@overwrite_option("Let --output replace an existing file.")
@memory_check_option
@debug_option
def export_config(model_file: str, output: str | None, overwrite: bool) -> None:
    """Write the kinit config that rebuilds a saved model: its architecture (model:) and its
    compile settings (compile:), from the file's own config.json."""
    from kinit_cli.model import export
    from kinit_cli.output import render

    content = export.document(Path(model_file))
    if output is None:
        click.echo(content, nl=False)
        return
    export.write(Path(output), content, overwrite)
    render.console(stderr=True).print(f"Wrote the config of {model_file} to {output}")
