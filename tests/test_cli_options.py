"""The shared options: each declared once, and the switches a command holds while it runs."""

from __future__ import annotations

import click
import pytest

from kinit_cli.cli import cli
from kinit_cli.cli.options import KinitCommand, debug_option, memory_check_option, stack
from kinit_cli.runtime import switches
from kinit_cli.runtime.switches import Switches


@pytest.fixture
def probe(monkeypatch):
    """A command of kinit's group that records the Switches it runs with."""
    seen: list[Switches] = []

    @click.command("probe", cls=KinitCommand)
    @stack(debug_option, memory_check_option)
    def command() -> None:
        seen.append(switches.current())

    monkeypatch.setitem(cli.commands, "probe", command)
    monkeypatch.delenv("KINIT_DEBUG", raising=False)
    return seen


@pytest.mark.parametrize(
    ("args", "held"),
    [
        (["probe"], Switches()),
        (["probe", "--ignore-memory-check"], Switches(ignore_memory_check=True)),
        (["probe", "--debug"], Switches(debug=True)),
        (["--debug", "probe", "--ignore-memory-check"], Switches(True, True)),
    ],
)
def test_a_command_holds_the_switches_of_its_flags_while_it_runs(runner, probe, args, held):
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert probe == [held]
    assert switches.current() == Switches()  # nothing sticks to the next invocation


def test_kinit_debug_turns_debug_on_without_the_flag(runner, probe, monkeypatch):
    monkeypatch.setenv("KINIT_DEBUG", "1")
    assert runner.invoke(cli, ["probe"]).exit_code == 0
    assert probe == [Switches(debug=True)]


def test_stack_applies_options_in_the_order_written():
    @click.command()
    @stack(click.option("--b"), click.option("--a"))
    def command(a: str, b: str) -> None: ...

    assert [p.name for p in command.params] == ["b", "a"]


def test_each_shared_option_is_declared_once_with_one_help_text():
    helps: dict[str, set[str]] = {}
    for command in cli.commands.values():
        for param in command.params:
            if isinstance(param, click.Option) and param.name in ("plugins", "as_json", "wide"):
                helps.setdefault(param.name, set()).add(param.help or "")
    assert helps == {
        "plugins": {"Load a plugin (dotted module or .py file); repeatable."},
        "as_json": {"Print one JSON document on stdout."},
        "wide": {"Every table column, however wide the table gets."},
    }


MODEL = (
    "model:\n"
    "  input_shape: [4]\n"
    "  layers:\n"
    "    - {class_name: Dense, config: {units: 3, name: d}}\n"
    "compile: {loss: mse}\n"
)


def test_backend_reaches_an_init_from_config_read_once_keras_runs(runner, write):
    # Keras runs on tensorflow in this process; the source asks for another backend, and
    # --backend, which the config's backend: gives way to, holds for the source too.
    write("src.yaml", "backend: jax\nseed: 1\n" + MODEL)
    main = write("main.yaml", "seed: 2\ninit_from: {source: src.yaml}\n" + MODEL)
    result = runner.invoke(cli, ["validate", str(main), "--backend", "tensorflow"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{main}: valid on backend tensorflow\n")
    result = runner.invoke(cli, ["validate", str(main)])
    assert result.exit_code == 2
    assert "backend jax was asked for, but Keras already runs on tensorflow" in " ".join(
        result.stderr.split()
    )
