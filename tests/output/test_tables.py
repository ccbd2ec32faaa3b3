"""Tables that fit: at 80, 100 and 120 columns no number is split and no column vanishes
unannounced; --wide keeps every column."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from kinit_cli.output import catalog, render, weight_tables
from kinit_cli.output.tables import Column, fitted, middle, print_fitted, shortened
from kinit_cli.weights.report import InspectOptions, inspect
from tests.conftest import ROOT

CONFIGS = ROOT / "configs"
# inspect-weights' Weights table for a float32, all-trainable model without a run record.
WEIGHT_COLUMNS = ["Variable", "Shape", "Initializer", "Fans", "Mean", "Std", "Min", "Max"]
WEIGHT_COLUMNS += ["L2", "σmax", "Zeros", "NaN", "Histogram"]
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]\d+)?")


def _console(width: int) -> Console:
    return Console(file=io.StringIO(), width=width, color_system=None, highlight=False)


def _cells(text: str) -> list[list[str]]:
    """The data rows of every table in `text`, as stripped cell texts."""
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in text.splitlines()
        if line.startswith("│")
    ]


@pytest.fixture(scope="module")
def digits_result():
    return inspect(str(CONFIGS / "mnist.yaml"), options=InspectOptions(check=True))


@pytest.mark.parametrize("width", [80, 100, 120])
def test_inspection_fits_and_says_what_it_left_out(digits_result, width):
    out = _console(width)
    weight_tables.inspection(digits_result, out)
    text = out.file.getvalue()
    assert max(len(line) for line in text.splitlines()) <= width
    # The header names the config (its path wraps with the checkout's length), then says
    # the values are fresh, all of them.
    lines = text.splitlines()
    at = lines.index("values: 4 initializer")
    title = f"{CONFIGS / 'mnist.yaml'} (built, not trained)"
    assert "".join("".join(lines[:at]).split()) == "".join(title.split())
    weights = text.split("Weights")[1].split("Totals")[0]
    rows = [row for row in _cells(weights) if row[0]]  # not a wrapped cell's next line
    assert [row[0] for row in rows] == [
        "simple_dense/kernel",
        "simple_dense/bias",
        "dense/kernel",
        "dense/bias",
    ]
    header = next(line for line in weights.splitlines() if line.startswith("┃"))
    shown = [h.strip() for h in header.strip("┃").split("┃")]
    # Every number shown is whole: each cell equals the report's value, never a piece of it.
    keys = {"Mean": "mean", "Std": "std", "Min": "min", "Max": "max", "L2": "l2"}
    for row, v in zip(rows, digits_result.document["variables"], strict=True):
        for column, cell in zip(shown, row, strict=True):
            if column in keys:
                assert cell == f"{v[keys[column]]:.4g}", (width, column, cell)
    note = re.search(
        r"\((\d+) columns? left out at (\d+) columns: ([^;]+);", " ".join(text.split())
    )
    all_columns = set(WEIGHT_COLUMNS)
    if set(shown) == all_columns:
        assert note is None
    else:
        assert note is not None and int(note.group(2)) == width
        assert set(note.group(3).split(", ")) == all_columns - set(shown)
    assert shown[:2] == ["Variable", "Shape"] and "Mean" in shown and "Std" in shown
    assert text.rstrip().splitlines()[-1] == "4 pass, 0 warn, 0 fail, 0 not checkable"


def test_wide_keeps_every_column(digits_result):
    out = _console(80)
    weight_tables.inspection(digits_result, out, wide=True)
    text = out.file.getvalue()
    header = next(line for line in text.split("Weights")[1].splitlines() if line.startswith("┃"))
    assert [h.strip() for h in header.strip("┃").split("┃")] == WEIGHT_COLUMNS
    assert "left out" not in text


def test_columns_go_by_priority_and_paths_shorten_in_the_middle():
    columns = [
        Column("Variable", 100, "left", shorten=True),
        Column("Mean", 90),
        Column("Histogram", 20, "left"),
        Column("Fans", 30),
    ]
    rows = [
        {
            "Variable": "encoder/blocks.0/attention/kernel",
            "Mean": "-0.001234",
            "Histogram": "▁▂▃▅▇█▇▅▃▂▁▁▁▁▁▁",
            "Fans": "64/128",
        }
    ]
    table, left_out = fitted("t", columns, rows, 40)
    assert left_out == ["Histogram", "Fans"]
    out = _console(40)
    out.print(table)
    # The path gives way before the mean does, its longest segments shortened first.
    assert _cells(out.file.getvalue()) == [[shortened(rows[0]["Variable"], 24), "-0.001234"]]
    short = shortened(rows[0]["Variable"], 24)
    assert short == "en…er/bl….0/at…on/kernel" and len(short) == 24  # every segment's ends kept
    table, left_out = fitted("t", columns, rows, 30)
    assert left_out == ["Histogram", "Fans", "Mean"]
    assert middle("abcdefghij", 5) == "ab…ij"


def test_a_column_goes_with_the_one_it_needs():
    columns = [
        Column("Name", 100, "left"),
        Column("accuracy", 100),
        Column("loss", 90),
        Column("Δ loss", 80, needs="loss"),
    ]
    rows = [{"Name": "a", "accuracy": "0.9", "loss": "0.1234567890123", "Δ loss": "+0.1"}]
    # "loss" is left out for its width; the narrow "Δ loss" would fit, but not without it.
    assert fitted("t", columns, rows, 30)[1] == ["Δ loss", "loss"]
    assert fitted("t", columns, rows, 38)[1] == ["Δ loss"]
    assert fitted("t", columns, rows, 60)[1] == []


def test_run_header_breaks_between_items():
    out = _console(60)
    render.run_header(
        {
            "run": "runs/digits-mlp-20261201-101500",
            "devices": "CPU:0",
            "seed": 42,
            "data": "scikit-learn digits (bundled, 1,797 images)",
        },
        out,
    )
    assert out.file.getvalue().splitlines() == [
        "run: runs/digits-mlp-20261201-101500 · devices: CPU:0",
        "seed: 42 · data: scikit-learn digits (bundled, 1,797 images)",
    ]


@pytest.mark.parametrize("width", [80, 120])
def test_catalog_fits(width):
    from kinit_cli.registry.catalog import Registry
    from kinit_cli.registry.plugins import load_plugins
    from kinit_cli.registry.signatures import describe

    load_plugins([])
    items = [describe(e) for e in Registry().catalog("initializer")]
    out = _console(width)
    catalog.catalog("initializer", items, out)
    lines = out.file.getvalue().splitlines()
    assert max(len(line) for line in lines) <= width
    names = [row[0] for row in _cells("\n".join(lines)) if row[0]]
    assert "GlorotUniform" in names and "ExampleRandomNormal" in names
    # Parameters are never cut inside a default value.
    assert any("seed=None," in line for line in lines)


def test_shortened_paths_stay_distinct():
    paths = [
        f"tower/residual_tower_blocks.{b}/projection_layers.{p}/kernel"
        for b in (0, 1)
        for p in (0, 1)
    ]
    rows = [{"Variable": p, "Mean": "0.1234"} for p in paths]
    columns = [Column("Variable", 100, "left", shorten=True), Column("Mean", 90)]
    for width in (40, 50, 60):
        table, left_out = fitted("t", columns, rows, width)
        out = _console(width)
        out.print(table)
        shown = [row[0] for row in _cells(out.file.getvalue())]
        assert len(set(shown)) == 4 and left_out == [], (width, shown)
        assert all(s.endswith("/kernel") for s in shown)


def test_cells_are_data_never_markup():
    """A value read from someone's run (a plugin path in brackets) is shown as it is."""
    out = Console(width=80, record=True)
    columns = [Column("plugins", 100, "left"), Column("n", 100)]
    print_fitted("", columns, [{"plugins": "[/tmp/evil.py]", "n": "[bold]1"}], out, False)
    text = out.export_text()
    assert "[/tmp/evil.py]" in text and "[bold]1" in text
