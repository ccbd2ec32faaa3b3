"""Output at any COLUMNS: 0, 1, negative and non-numeric values fall back to a usable width,
and where the columns that always stay do not fit, each row becomes a block of lines."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from kinit_cli.cli import cli
from kinit_cli.output import render, weight_tables
from kinit_cli.output.tables import Column, number, print_fitted
from kinit_cli.weights.report import inspect
from tests.conftest import ROOT


def _console(width: int) -> Console:
    return Console(file=io.StringIO(), width=width, color_system=None, highlight=False)


@pytest.mark.parametrize(
    ("columns", "width"),
    [
        (None, render.PIPED_WIDTH),
        ("0", render.PIPED_WIDTH),
        ("-3", render.PIPED_WIDTH),
        ("abc", render.PIPED_WIDTH),
        ("", render.PIPED_WIDTH),
        ("1", render.MIN_WIDTH),
        ("30", 30),
        ("99999999999999", render.MAX_WIDTH),
    ],
)
def test_columns_gives_a_usable_width(monkeypatch, columns, width):
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert render.width(io.StringIO()) == width
    assert render.console().width == width


@pytest.mark.parametrize("command", ["validate", "train"])
@pytest.mark.parametrize("columns", ["0", "1", "-3", "abc", "30", "99999999999999"])
def test_errors_print_at_any_columns(runner, tmp_path, columns, command):
    missing = tmp_path / "missing.yaml"
    result = runner.invoke(cli, [command, str(missing)], env={"COLUMNS": columns})
    assert result.exit_code == 2
    assert result.output == f"error: {missing}: config file not found\n"


@pytest.mark.parametrize("columns", ["0", "1", "30"])
def test_list_prints_at_any_columns(runner, columns):
    from kinit_cli.registry.catalog import Registry

    # Keras's 30, and whatever a library an earlier test imported registered (keras_hub's).
    known = len(Registry().catalog("activation"))
    result = runner.invoke(cli, ["list-activations"], env={"COLUMNS": columns})
    assert result.exit_code == 0
    assert known >= 30
    assert "relu" in result.output and f"{known} activations" in " ".join(result.output.split())


@pytest.fixture(scope="module")
def digits_result():
    return inspect(str(ROOT / "configs" / "mnist.yaml"))


@pytest.mark.parametrize("width", [20, 30, 40])
def test_narrow_weights_keep_path_shape_mean_and_std(digits_result, width):
    out = _console(width)
    weight_tables.inspection(digits_result, out)
    text = out.file.getvalue()
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    lines = [line.strip() for line in text.splitlines()]
    for v in digits_result.document["variables"]:
        block = lines[lines.index(v["path"]) :]
        assert block[1] == f"Shape: ({', '.join(map(str, v['shape']))})"
        assert f"Mean: {number(v['mean'])}" in block[:14]
        assert f"Std: {number(v['std'])}" in block[:14]
    assert "left out" not in text and "…" not in text
    total = lines[lines.index("total") :]
    assert total[1:5] == [
        "Params: 407,050",
        "Trainable: 407,050",
        "Non-trainable: 0",
        "Bytes: 1,628,200",
    ]


def test_validate_at_30_columns_keeps_whole_numbers(runner):
    config = str(ROOT / "configs" / "mnist.yaml")
    result = runner.invoke(cli, ["validate", config], env={"COLUMNS": "30"})
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    simple = lines.index("simple_dense")
    assert lines[simple + 1 : simple + 4] == [
        "Class: SimpleDense",
        "Output shape: (None, 512)",
        "Params: 401,920",
    ]
    assert "1,…" not in result.output and "Par…" not in result.output
    assert "Total params: 407,050" in " ".join(result.output.split())


def test_results_fall_back_to_one_block_per_metric():
    out = _console(20)
    render.metrics_table({"train": {"loss": 0.1234567}, "test": {"loss": 1234567.0}}, out)
    assert [line.rstrip() for line in out.file.getvalue().splitlines()] == [
        "Results",
        "loss",
        "  Train: 0.1235",
        "  Test: 1.235e+06",
    ]


def test_a_value_too_long_beside_its_name_goes_below_it_whole():
    columns = [Column("Variable", 100, "left"), Column("Shape", 100)]
    columns += [Column("Histogram", 20, "left"), Column("Rel. change", 100)]
    row = {
        "Variable": "dense_2/bias",
        "Shape": "(10)",
        "Histogram": "▁▃▃▃█       ▃▆▁",
        "Rel. change": "|Δ| 0.06409",
    }
    out = _console(22)
    print_fitted("Weights", columns, [row], out, wide=False)
    assert [line.rstrip() for line in out.file.getvalue().splitlines()] == [
        "Weights",
        "dense_2/bias",
        "  Shape: (10)",
        "  Histogram:",
        "    ▁▃▃▃█       ▃▆▁",
        "  Rel. change:",
        "    |Δ| 0.06409",
    ]
