"""Where a run writes: fixed before plugins load, and never inside another run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kinit_cli.cli import cli
from kinit_cli.storage import rundir
from tests.conftest import ROOT

DIGITS = (ROOT / "configs" / "digits.yaml").read_text()


def _config(tmp_path, callback: str) -> str:
    """configs/digits.yaml with one callback, written into tmp_path."""
    path = tmp_path / "digits.yaml"
    text = DIGITS.replace(
        "  batch_size: 32\n", f"  batch_size: 32\n  callbacks:\n    - {callback}\n"
    )
    assert text != DIGITS
    path.write_text(text)
    return str(path)


@pytest.fixture
def wander(tmp_path, monkeypatch):
    """(home, elsewhere): the test stands in home, where wander.py, a plugin, moves the
    process to elsewhere as it is imported."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    (home / "wander.py").write_text(f"import os\nos.chdir({str(elsewhere)!r})\n")
    monkeypatch.chdir(home)
    return home, elsewhere


@pytest.mark.slow  # trains for seconds
def test_a_plugin_that_changes_directory_does_not_move_the_run(runner, wander):
    home, elsewhere = wander
    config = _config(home, "{class_name: CSVLogger, config: {filename: log.csv}}")
    result = runner.invoke(
        cli,
        ["train", config, "--plugin", "wander.py", "--set", "train.epochs=1", "-o", "run"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    run = home / "run"
    assert result.stdout.rstrip().splitlines()[-1] == f"Run saved in {run}"
    assert json.loads((run / rundir.METRICS).read_text())["status"] == "completed"
    assert (run / "log.csv").read_text().startswith("epoch,")
    assert list(elsewhere.iterdir()) == []


def test_a_plugin_that_changes_directory_does_not_move_the_schema(runner, wander):
    home, elsewhere = wander
    result = runner.invoke(cli, ["schema", "--plugin", "wander.py", "-o", "kinit.schema.json"])
    assert result.exit_code == 0, result.output
    assert result.stderr == "Wrote the config schema to kinit.schema.json\n"
    assert "$schema" in json.loads((home / "kinit.schema.json").read_text())
    assert list(elsewhere.iterdir()) == []


def test_a_plugin_that_changes_directory_does_not_move_the_plot(runner, wander):
    home, elsewhere = wander
    digits = str(ROOT / "configs" / "digits.yaml")
    args = ["inspect-weights", digits, "--plugin", "wander.py", "--plot", "w.png"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().splitlines()[-1] == f"Histograms written to {home / 'w.png'}"
    assert (home / "w.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    ("callback", "key"),
    [("TensorBoard", "log_dir"), ("CSVLogger", "filename")],
)
def test_a_callback_path_inside_another_run_is_refused(runner, tmp_path, callback, key):
    config, other, target = _into_another_run(tmp_path, callback, key)
    new = tmp_path / "new"
    result = runner.invoke(cli, ["train", config, "--set", "train.epochs=1", "-o", str(new)])
    assert result.exit_code == 2
    assert result.stderr == _inside_another_run(config, callback, key, other, target)
    assert not new.exists() and not target.exists()
    assert sorted(p.name for p in other.iterdir()) == [rundir.MARKER]
    assert (other / rundir.MARKER).read_text() == '{"pid": null}\n'


@pytest.mark.parametrize(
    ("callback", "key"),
    [("TensorBoard", "log_dir"), ("CSVLogger", "filename")],
)
def test_validate_refuses_a_callback_path_inside_a_run_as_train_does(
    runner, tmp_path, callback, key
):
    config, other, target = _into_another_run(tmp_path, callback, key)
    result = runner.invoke(cli, ["validate", config])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == _inside_another_run(config, callback, key, other, target)
    assert not target.exists()
    assert sorted(p.name for p in other.iterdir()) == [rundir.MARKER]


def _into_another_run(tmp_path: Path, callback: str, key: str) -> tuple[str, Path, Path]:
    """(config, other, target): a config whose callback writes to `target`, inside `other`,
    a folder with kinit's marker."""
    other = tmp_path / "other"
    other.mkdir()
    (other / rundir.MARKER).write_text('{"pid": null}\n')
    target = other / "logs"
    config = _config(tmp_path, f"{{class_name: {callback}, config: {{{key}: {target}}}}}")
    return config, other, target


def _inside_another_run(config: str, callback: str, key: str, other: Path, target: Path) -> str:
    """The refusal train and validate both give, at the callback's key."""
    lines = Path(config).read_text().splitlines()
    line = next(i for i, t in enumerate(lines, 1) if callback in t)
    column = lines[line - 1].index(str(target)) + 1
    return (
        f"error: {config}:{line}:{column}: train.callbacks[0].config.{key}: {target} is "
        f"inside the kinit run {other}, which this run must not write into (that run's "
        "--overwrite and --resume would then refuse or remove its files); name a folder "
        "outside it, or a relative path (it goes in this run's directory)\n"
    )


@pytest.mark.slow
def test_a_resumed_run_keeps_writing_its_callback_file_inside_itself(runner, tmp_path):
    run = tmp_path / "run"
    log = run / "log.csv"
    config = _config(
        tmp_path, f"{{class_name: CSVLogger, config: {{filename: {log}, append: true}}}}"
    )
    first = runner.invoke(cli, ["train", config, "--set", "train.epochs=1", "-o", str(run), "-q"])
    assert first.exit_code == 0, first.output
    result = runner.invoke(cli, ["train", "--resume", str(run), "--set", "train.epochs=2", "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads((run / rundir.METRICS).read_text())["status"] == "completed"
    assert [row.split(",")[0] for row in log.read_text().splitlines()] == ["epoch", "0", "1"]
