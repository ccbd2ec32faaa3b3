"""A run's files are checked against each other: a model.keras swapped for another model is
said, and --check never passes it against the run's record of another model."""

from __future__ import annotations

import json
import shutil

from kinit_cli.cli import cli
from tests.storage.test_rundir import DIGITS, EPOCHS


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
