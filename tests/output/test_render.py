"""Rendering on a fixed-width console: what people read, compared as text."""

from __future__ import annotations

import io

from rich.console import Console

from kinit_cli.errors import ConfigError, PeerError, Problem
from kinit_cli.output import render


def text_console(width: int = 100) -> Console:
    return Console(file=io.StringIO(), width=width, color_system=None, highlight=False)


def output(out: Console) -> str:
    return out.file.getvalue()


def test_the_results_table_has_a_column_per_split():
    out = text_console(width=60)
    metrics = {
        "train": {"loss": 0.1234567, "accuracy": 0.97},
        "validation": {"loss": 0.2},
        "test": {"loss": 0.25, "accuracy": 0.9444444},
    }
    render.metrics_table(metrics, out)
    assert [line.rstrip() for line in output(out).splitlines()] == [
        "Results",
        "┏━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━┓",
        "┃ Metric   ┃ Train  ┃ Validation ┃ Test   ┃",
        "┡━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━┩",
        "│ loss     │ 0.1235 │ 0.2        │ 0.25   │",
        "│ accuracy │ 0.97   │ n/a        │ 0.9444 │",
        "└──────────┴────────┴────────────┴────────┘",
    ]


def test_errors_render_their_own_lines():
    out = text_console()
    problems = [
        Problem("expected an integer, got 'zero'", "train.epochs", "c.yaml", 7, 11),
        Problem(
            "unknown layer 'Dens'; did you mean 'Dense'?",
            "model.layers[0].class_name",
            "c.yaml",
            4,
            17,
        ),
    ]
    render.error(ConfigError(problems), out)
    assert output(out) == (
        "error: 2 problems:\n"
        "  c.yaml:4:17: model.layers[0].class_name: unknown layer 'Dens'; did you mean "
        "'Dense'?\n"
        "  c.yaml:7:11: train.epochs: expected an integer, got 'zero'\n"
    )
    out = text_console()
    render.error(PeerError("the cluster did not form within 20 s"), out)
    assert output(out) == "error: the cluster did not form within 20 s\n"
    assert PeerError("x").lines() == ["error: x"]


def test_an_unexpected_error_is_printed_without_terminal_codes():
    """Keras bolds an error raised in a layer's call; stderr may be a log file."""
    out = text_console()
    render.unexpected(ValueError("\x1b[1m'my dense' is not a valid scope name\x1b[0m"), out)
    assert output(out) == (
        "error: ValueError: 'my dense' is not a valid scope name\n"
        "(an unexpected failure: run again with --debug for the traceback)\n"
    )


def test_plain_removes_every_terminal_control_sequence():
    from kinit_cli.errors import plain

    text = "\x1b[1;31mred\x1b[0m \x1b]8;;http://x\x07link\x1b]8;;\x07 \x1b[2K\x9bdone"
    assert plain(text) == "red link done"
