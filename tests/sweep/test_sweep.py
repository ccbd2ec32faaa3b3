"""kinit sweep: the trials, what they record, the summary, resume, failures, bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from kinit_cli.cli import cli
from kinit_cli.storage import checkpoint
from tests.conftest import DIGITS, DIGITS_PATHS, ROOT
from tests.sweep.conftest import KEY, sweep

pytestmark = pytest.mark.slow

SCALED = {"class_name": "ScaledNormal", "config": {"scale": 2.0}}
TRIALS = [
    "1-glorot_uniform-seed1",
    "1-glorot_uniform-seed2",
    "2-ScaledNormal-seed1",
    "2-ScaledNormal-seed2",
]


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _sha(run: Path, record: str) -> dict[str, str]:
    return {v["path"]: v["sha256"] for v in _json(run / record)["variables"]}


def test_every_trial_is_a_run_with_its_settings_and_seed(digits_sweep):
    folder = digits_sweep["dir"]
    trials = _json(folder / "trials.json")["trials"]
    assert [t["name"] for t in trials] == TRIALS
    assert [t["status"] for t in trials] == ["completed"] * 4
    assert [t["seed"] for t in trials] == [1, 2, 1, 2]
    assert [t["settings"] for t in trials] == [{KEY: "glorot_uniform"}] * 2 + [{KEY: SCALED}] * 2
    for trial in trials:
        config = yaml.safe_load((folder / trial["name"] / "config.yaml").read_text())
        assert config["seed"] == trial["seed"]
        assert (
            config["model"]["layers"][0]["config"]["kernel_initializer"] == trial["settings"][KEY]
        )
        assert config["train"]["epochs"] == 1
        metrics = _json(folder / trial["name"] / "metrics.json")
        assert (metrics["status"], metrics["seed"]) == ("completed", trial["seed"])
    recorded = yaml.safe_load((folder / "sweep.yaml").read_text())
    assert recorded["config"] == Path(DIGITS).read_text()
    assert recorded["grid"] == [{"key": KEY, "values": ["glorot_uniform", SCALED]}]
    assert (recorded["seeds"], recorded["set"]) == ([1, 2], ["train.epochs=1"])


def test_the_summary_groups_the_trials_and_averages_their_metrics(digits_sweep):
    folder, document = digits_sweep["dir"], digits_sweep["document"]
    groups = document["groups"]
    assert [g["settings"] for g in groups] == [{KEY: "glorot_uniform"}, {KEY: SCALED}]
    for group, names in zip(groups, (TRIALS[:2], TRIALS[2:]), strict=True):
        assert group["runs"] == [str(folder / n) for n in names]
        accuracy = [_json(folder / n / "metrics.json")["test"]["accuracy"] for n in names]
        stats = group["metrics"]["accuracy"]
        assert stats["n"] == 2
        assert stats["mean"] == pytest.approx(np.mean(accuracy))
        assert stats["se"] == pytest.approx(np.std(accuracy, ddof=1) / np.sqrt(2))
        assert (stats["min"], stats["max"]) == (
            pytest.approx(min(accuracy)),
            pytest.approx(max(accuracy)),
        )
    rows = (folder / "summary.csv").read_text().splitlines()
    assert len(rows) == 3 and KEY in rows[0]


def test_a_trial_is_the_run_kinit_train_makes_with_its_settings_and_seed(
    digits_sweep, plugin_file, tmp_path
):
    """Same initial and trained weights, bit for bit, as a fresh `kinit train`: the worker
    that ran other trials first (and checked the combinations) leaves no trace in a trial."""
    run = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        [
            "train",
            DIGITS,
            "-q",
            "--plugin",
            str(plugin_file),
            "--set",
            "train.epochs=1",
            "--set",
            f"{KEY}={json.dumps(SCALED)}",
            "--seed",
            "2",
            "-o",
            str(run),
        ],
    )
    assert result.exit_code == 0, result.stderr
    trial = digits_sweep["dir"] / "2-ScaledNormal-seed2"
    for record in ("weights-init.json", "weights-final.json"):
        assert list(_sha(trial, record)) == DIGITS_PATHS
        assert _sha(trial, record) == _sha(run, record)


def _files(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_resume_runs_only_the_missing_trial_and_leaves_the_others_untouched(digits_sweep, tmp_path):
    folder = tmp_path / "sweep"
    shutil.copytree(digits_sweep["dir"], folder)
    shutil.rmtree(folder / TRIALS[3])
    before = {name: _files(folder / name) for name in TRIALS[:3]}
    code, out, err = sweep("--resume", str(folder), "--jobs", "1", "--json")
    assert code == 0, err
    assert {name: _files(folder / name) for name in TRIALS[:3]} == before
    trials = _json(folder / "trials.json")["trials"]
    assert [t["status"] for t in trials] == ["completed"] * 4
    # Trained again from the same seed: the same weights as the first time.
    original = digits_sweep["dir"] / TRIALS[3]
    assert _sha(folder / TRIALS[3], "weights-final.json") == _sha(original, "weights-final.json")
    assert json.loads(out)["groups"][1]["metrics"]["accuracy"]["n"] == 2


FAILING_CALLBACK = """\
from tensorflow import keras


class UploadMetrics(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise RuntimeError("the metrics server is unreachable")
"""


def test_a_failing_trial_is_recorded_and_the_others_complete(tmp_path):
    plugin = tmp_path / "upload.py"
    plugin.write_text(FAILING_CALLBACK)
    folder = tmp_path / "sweep"
    code, out, err = sweep(
        DIGITS,
        "--plugin",
        str(plugin),
        "--set",
        "train.epochs=1",
        "--grid",
        "train.callbacks=[[], [UploadMetrics]]",
        "--seeds",
        "1",
        "--jobs",
        "2",
        "-o",
        str(folder),
        "--json",
    )
    assert code == 1, err
    trials = _json(folder / "trials.json")["trials"]
    assert [(t["name"], t["status"]) for t in trials] == [
        ("1-empty-seed1", "completed"),
        ("2-UploadMetrics-seed1", "failed"),
    ]
    assert "the metrics server is unreachable" in trials[1]["error"]
    assert "1 of 2 trials failed" in err and "2-UploadMetrics-seed1" in err
    groups = json.loads(out)["groups"]
    assert [
        (g["failed"], g["metrics"]["accuracy"]["n"] if g["metrics"] else 0) for g in groups
    ] == [
        (0, 1),
        (1, 0),
    ]


def test_a_grid_value_that_does_not_resolve_stops_the_sweep_before_anything_is_written(
    tmp_path,
):
    folder = tmp_path / "sweep"
    code, out, err = sweep(
        DIGITS, "--grid", f"{KEY}=[he_normal, no_such_init]", "--seeds", "1", "-o", str(folder)
    )
    assert code == 2
    assert f'--grid {KEY}="no_such_init"' in err and "unknown initializer 'no_such_init'" in err
    assert 'he_normal"' not in err  # the combination that passes is not named
    assert not folder.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", "train.epoch=[1, 2]"], "Did you mean 'epochs'"),
        (["--grid", f"{KEY}=he_normal"], "the values must be a YAML list"),
        (["--grid", "seed=[1, 2]"], "give the seeds with --seeds"),
        (
            ["--grid", "train.epochs=[1]", "--seeds", "0"],
            "--seeds 0: a sweep needs at least one seed",
        ),
        (["--grid", "train.epochs=[1, 1]"], "1 is listed twice"),
        (
            ["--grid", "train.epoch=[1, 2, 3]"],
            "--grid train.epoch=[...]: train.epoch: unknown key 'epoch'",
        ),
        (["--grid", "train.epochs=[1]", "--plot", "figures.txt"], "kinit draws PNG files"),
    ],
)
def test_bad_grids_and_seeds_are_refused_before_any_worker_starts(tmp_path, args, message):
    folder = tmp_path / "sweep"
    code, out, err = sweep(DIGITS, *args, "-o", str(folder))
    assert (code, out) == (2, "")
    assert message in err
    assert err.count(message) == 1  # once, whatever the values of the axis
    assert "Traceback" not in err
    assert not folder.exists()


def test_a_folder_holding_something_else_is_refused_and_kept(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    code, _, err = sweep(DIGITS, "--grid", "train.epochs=[1]", "-o", str(folder))
    assert code == 2 and "holds files that are not a sweep's" in err
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert (folder / "notes.txt").read_text() == "keep me"


def test_resume_of_a_folder_that_is_not_a_sweep_is_refused(tmp_path):
    code, out, err = sweep("--resume", str(tmp_path))
    assert code == 2 and "is not a sweep directory" in err and "sweep.yaml" in err
    assert list(tmp_path.iterdir()) == []


def test_resume_takes_no_new_settings(digits_sweep):
    code, _, err = sweep("--resume", str(digits_sweep["dir"]), "--grid", "train.epochs=[2]")
    assert code == 2 and "--grid cannot be given with it" in err


SLOW_CALLBACK = """\
import time
from tensorflow import keras


class Slow(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        time.sleep(0.4)
"""


def test_ctrl_c_interrupts_the_running_trial_and_resume_continues_it(tmp_path):
    plugin = tmp_path / "slow.py"
    plugin.write_text(SLOW_CALLBACK)
    folder = tmp_path / "sweep"
    args = [
        DIGITS,
        "--plugin",
        str(plugin),
        "--set",
        "train.epochs=6",
        "--set",
        "train.callbacks=[Slow]",
        "--grid",
        f"{KEY}=[glorot_uniform, he_normal]",
        "--seeds",
        "1",
        "--jobs",
        "1",
        "-o",
        str(folder),
    ]
    first = folder / "1-glorot_uniform-seed1"
    # A shell without job control starts a background job with SIGINT ignored: restore it.
    process = subprocess.Popen(
        [sys.executable, "-m", "kinit_cli", "sweep", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if first.is_dir() and checkpoint.completed_epochs(first) >= 1:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, err = process.communicate(timeout=120)
    assert process.returncode == 130, err.decode()
    assert f"kinit sweep --resume {folder}" in err.decode()
    trials = _json(folder / "trials.json")["trials"]
    assert [t["status"] for t in trials] == ["interrupted", "pending"]
    assert _json(first / "metrics.json")["status"] == "interrupted"
    # The summary of what finished: the other combination's trial never started.
    assert "1 not run" in stdout.decode()
    code, out, err = sweep("--resume", str(folder), "--jobs", "1")
    assert code == 0, err
    assert [t["status"] for t in _json(folder / "trials.json")["trials"]] == ["completed"] * 2
    metrics = _json(first / "metrics.json")
    assert metrics["epochs"] == 6 and metrics["initial_epoch"] >= 1  # continued, not redone


TABLE_CONFIG = """\
seed: 5
data: {path: flowers.csv, label: species}
model:
  input_shape: [4]
  layers:
    - {class_name: Dense, config: {units: 8, activation: relu}}
    - {class_name: Dense, config: {units: 3, activation: softmax}}
compile:
  optimizer: {class_name: Adam, config: {learning_rate: 0.01}}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
train: {epochs: 2, batch_size: 16}
"""


def test_a_sweep_trains_on_the_users_own_table(tmp_path):
    """The config's relative data path is the config's, wherever the sweep is started;
    every trial records how it prepared the table, as `kinit train` does."""
    from tests.training.test_own_data import SPECIES, write_table

    write_table(tmp_path / "flowers.csv")
    (tmp_path / "model.yaml").write_text(TABLE_CONFIG)
    folder = tmp_path / "sweep"
    code, out, err = sweep(
        str(tmp_path / "model.yaml"),
        "--grid",
        "compile.optimizer.config.learning_rate=[0.01, 0.05]",
        "--seeds",
        "2",
        "-o",
        str(folder),
        "--json",
    )
    assert code == 0, err
    groups = json.loads(out)["groups"]
    rates = [g["settings"]["compile.optimizer.config.learning_rate"] for g in groups]
    assert rates == [0.01, 0.05]
    assert [g["metrics"]["accuracy"]["n"] for g in groups] == [2, 2]
    for run in (Path(r) for g in groups for r in g["runs"]):
        prep = _json(run / "preprocessing.json")
        assert prep["class_names"] == list(SPECIES)
        assert _json(run / "split.json")["seed"] == _json(run / "metrics.json")["seed"]
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert config["data"]["path"] == str(tmp_path / "flowers.csv")
