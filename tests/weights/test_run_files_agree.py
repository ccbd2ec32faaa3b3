"""A run's files are checked against each other: a model.keras swapped for another model is
said, and --check never passes it against the run's record of another model."""

from __future__ import annotations

import json
import shutil

import pytest

from kinit_cli.cli import cli
from tests.storage.test_rundir import DIGITS, EPOCHS


@pytest.mark.slow
def test_a_swapped_model_file_is_said_and_never_checked_against_the_record(runner, tmp_path):
    run, other = tmp_path / "run", tmp_path / "other"
    one = ["--set", "train.epochs=1", "-q"]
    wider = ["--set", "model.layers[0].config.units=32"]
    for out, extra in ((run, []), (other, wider)):
        made = runner.invoke(cli, ["train", DIGITS, *EPOCHS, *one, *extra, "-o", str(out)])
        assert made.exit_code == 0, made.output
    honest = runner.invoke(cli, ["inspect-weights", str(run), "--check", "--json"])
    assert honest.exit_code == 0
    assert json.loads(honest.stdout)["check_summary"]["pass"] == 6
    shutil.copy(other / "model.keras", run / "model.keras")
    result = runner.invoke(cli, ["inspect-weights", str(run), "--check", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    shapes = {v["path"]: v["shape"] for v in document["variables"]}
    assert shapes["dense/kernel"] == [64, 32]  # what the file holds, said as such
    assert document["check_summary"] == {
        "pass": 0,
        "warn": 0,
        "fail": 0,
        "loaded": 0,
        "not_checkable": 6,
    }
    assert all("initial" not in v for v in document["variables"])
    assert " ".join(result.stderr.split()) == (
        f"warning: {run / 'model.keras'} and {run / 'weights-init.json'} disagree: "
        "dense/kernel is (64, 32) in the first and (64, 128) in the second (3 variables "
        "differ): the model file is not the one this run trained. Shown: "
        f"{run / 'model.keras'}'s values, without the run's record of its initial weights "
        "(nor --check of them)"
    )


@pytest.mark.slow
def test_a_model_file_from_another_seed_is_said_and_never_checked_as_the_runs(runner, tmp_path):
    run, other = tmp_path / "run", tmp_path / "other"
    one = ["--set", "train.epochs=1", "-q"]
    for out, seed in ((run, "42"), (other, "7")):
        made = runner.invoke(cli, ["train", DIGITS, *EPOCHS, *one, "--seed", seed, "-o", str(out)])
        assert made.exit_code == 0, made.output
    mine = (run / "model.keras").read_bytes()
    honest = runner.invoke(cli, ["inspect-weights", str(run), "--check", "--json"])
    assert honest.exit_code == 0
    assert honest.stderr == ""
    assert json.loads(honest.stdout)["check_summary"]["pass"] == 6
    shutil.copy(other / "model.keras", run / "model.keras")
    assert (run / "model.keras").read_bytes() != mine
    result = runner.invoke(cli, ["inspect-weights", str(run), "--check", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    theirs = json.loads((other / "weights-final.json").read_text())["variables"]
    shown = [(v["path"], v["sha256"]) for v in document["variables"]]
    assert shown == [(v["path"], v["sha256"]) for v in theirs]  # the file's values
    assert all("initial" not in v for v in document["variables"])
    assert document["check_summary"] == {
        "pass": 0,
        "warn": 0,
        "fail": 0,
        "loaded": 0,
        "not_checkable": 6,
    }
    assert {v["provenance"]["detail"] for v in document["variables"]} == {""}  # no epochs
    assert " ".join(result.stderr.split()) == (
        f"warning: {run / 'model.keras'} and {run / 'weights-final.json'} disagree: "
        "dense/kernel's values in the first are not the ones the second records (their "
        "SHA-256 differs; 6 variables differ): the model file is not the one this run "
        "trained. Shown: "
        f"{run / 'model.keras'}'s values, without the run's records of its weights (nor "
        "--check of them)"
    )


@pytest.mark.slow  # trains for seconds
def test_a_damaged_weights_final_leaves_out_only_the_comparison(runner, tmp_path):
    run = tmp_path / "run"
    args = ["train", DIGITS, *EPOCHS, "--set", "train.epochs=1", "-q", "-o", str(run)]
    assert runner.invoke(cli, args).exit_code == 0
    (run / "weights-final.json").write_text("{}")
    result = runner.invoke(cli, ["inspect-weights", str(run), "--json"])
    assert result.exit_code == 0, result.output
    assert all("initial" in v for v in json.loads(result.stdout)["variables"])
    assert " ".join(result.stderr.split()) == (
        f"warning: {run / 'weights-final.json'} cannot be read back: `variables` is missing; "
        f"shown without the check that {run / 'model.keras'} holds the values the run trained"
    )
