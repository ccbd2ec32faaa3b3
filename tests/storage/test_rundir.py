"""The run directory keeps what users made: --overwrite, the lock, callback paths, atomic
backups on a full disk, resuming after SIGKILL and resuming a completed run."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import keras
import pytest
from click.testing import CliRunner

from kinit_cli.cli import cli
from kinit_cli.errors import WriteError
from kinit_cli.storage import rundir
from tests.conftest import DIGITS, KINIT, RUN_FILES, kinit, kinit_env, train

EPOCHS = ["--set", "train.batch_size=16"]


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `folder` (hidden ones too) with its bytes and modification time."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> Path:
    """An uninterrupted 4-epoch run: what every resumed run below must end as (in-process:
    a run in a process of its own ends the same, as the tests marked slow show)."""
    out = tmp_path_factory.mktemp("full") / "run"
    done = train(CliRunner(), *EPOCHS, "--set", "train.epochs=4", "-q", "-o", str(out))
    assert done.exit_code == 0, done.output
    return out


def same_run(run: Path, full: Path) -> None:
    """The same weights, history and metrics as the uninterrupted run (times aside)."""
    assert (run / "weights-final.json").read_bytes() == (full / "weights-final.json").read_bytes()
    assert (run / "history.csv").read_text() == (full / "history.csv").read_text()
    a, b = (json.loads((r / "metrics.json").read_text()) for r in (run, full))
    for key in ("status", "train", "validation", "test", "epochs", "seed", "data"):
        assert a[key] == b[key], key


@pytest.mark.slow
def test_resume_of_a_completed_run_with_its_epochs_changes_nothing(runner, tmp_path, full_run):
    before = snapshot(full_run)
    result = runner.invoke(cli, ["train", "--resume", str(full_run)])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"{full_run} has trained all the epochs it was asked for; nothing to do (add --set "
        "train.epochs=N to train it further)\n"
    )
    assert snapshot(full_run) == before


@pytest.mark.slow
def test_a_completed_run_continues_to_the_longer_run(runner, tmp_path, full_run):
    run = tmp_path / "run"
    assert train(runner, *EPOCHS, "--set", "train.epochs=2", "-q", "-o", str(run)).exit_code == 0
    result = runner.invoke(cli, ["train", "--resume", str(run), "--set", "train.epochs=4", "-q"])
    assert result.exit_code == 0, result.output
    same_run(run, full_run)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["initial_epoch"] == 2 and len(metrics["epoch_seconds"]) == 2
    # The run's config now says what it was last asked for: a plain --resume is up to date.
    assert "epochs: 4" in (run / "config.yaml").read_text()
    again = runner.invoke(cli, ["train", "--resume", str(run), "-q"])
    assert "nothing to do" in again.stdout


@pytest.mark.slow
def test_a_config_given_with_resume_may_ask_for_more_epochs(runner, tmp_path, full_run):
    run = tmp_path / "run"
    assert train(runner, *EPOCHS, "--set", "train.epochs=2", "-q", "-o", str(run)).exit_code == 0
    longer = tmp_path / "longer.yaml"
    text = (run / "config.yaml").read_text()
    assert "epochs: 2\n" in text
    longer.write_text(text.replace("epochs: 2\n", "epochs: 4\n"))
    result = runner.invoke(cli, ["train", str(longer), "--resume", str(run), "-q"])
    assert result.exit_code == 0, result.output
    same_run(run, full_run)
    assert "epochs: 4\n" in (run / "config.yaml").read_text()


def test_resume_refuses_fewer_epochs_and_options_that_do_not_apply(runner, full_run):
    before = snapshot(full_run)
    fewer = runner.invoke(cli, ["train", "--resume", str(full_run), "--set", "train.epochs=2"])
    assert fewer.exit_code == 2
    assert fewer.stderr == (
        f"error: --resume {full_run}: the run has trained 4 epochs, and train.epochs=2 asks "
        "for fewer; give train.epochs=4 or more\n"
    )
    given = runner.invoke(
        cli, ["train", "--resume", str(full_run), "--seed", "1", "-o", "elsewhere"]
    )
    assert given.exit_code == 2
    assert given.stderr == (
        f"error: --resume continues {full_run} in place, with its own seed; --output and "
        "--seed cannot be given with it\n"
    )
    assert snapshot(full_run) == before


def test_overwrite_leaves_a_folder_kinit_did_not_make_alone(runner, tmp_path):
    out = tmp_path / "mine"
    (out / "backup").mkdir(parents=True)
    (out / "backup" / "thesis.tex").write_text("years of work")
    (out / "config.yaml").write_text("my own config")
    before = snapshot(out)
    result = train(runner, *EPOCHS, "--set", "train.epochs=1", "-o", str(out), "--overwrite")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --overwrite replaces only a run directory kinit made, and {out} is not one "
        "(it has no .kinit-run, nor a metrics.json kinit wrote); it holds: backup, config.yaml. "
        "Give another --output.\n"
    )
    assert snapshot(out) == before
    # A metrics.json of the user's own does not make the folder kinit's.
    (out / "metrics.json").write_text('{"my": "results"}')
    before = snapshot(out)
    again = train(runner, *EPOCHS, "--set", "train.epochs=1", "-o", str(out), "--overwrite")
    assert again.exit_code == 2 and "is not one" in again.stderr
    assert snapshot(out) == before
    plain = train(runner, *EPOCHS, "--set", "train.epochs=1", "-o", str(out))
    assert plain.stderr == (
        f"error: run directory {out} already exists, is not empty and is not a kinit run (kinit "
        "never writes into a folder it did not make); give another --output\n"
    )
    resumed = runner.invoke(cli, ["train", "--resume", str(out)])
    assert resumed.stderr == (
        f"error: --resume {out}: not a kinit run directory (it has no .kinit-run, nor a "
        "metrics.json kinit wrote)\n"
    )


@pytest.mark.slow
def test_overwrite_replaces_kinit_files_only(runner, tmp_path):
    out = tmp_path / "run"
    csv_logger = "train.callbacks=[{class_name: CSVLogger, config: {filename: log.csv}}]"
    first = train(
        runner, *EPOCHS, "--set", "train.epochs=2", "--set", csv_logger, "-q", "-o", str(out)
    )
    assert first.exit_code == 0, first.output
    assert (out / "log.csv").exists()
    (out / "notes.txt").write_text("mine")
    refused = train(runner, *EPOCHS, "--set", "train.epochs=1", "-q", "-o", str(out), "--overwrite")
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"error: --overwrite replaces only the files kinit writes, and {out} holds others: "
        "notes.txt. Move them away, or give another --output.\n"
    )
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2
    (out / "notes.txt").unlink()
    # The callback's file is the old run's (the marker recorded it): replaced with the rest.
    again = train(runner, *EPOCHS, "--set", "train.epochs=1", "-q", "-o", str(out), "--overwrite")
    assert again.exit_code == 0, again.output
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 1
    assert sorted(p.name for p in out.iterdir()) == RUN_FILES


@pytest.mark.slow
def test_a_second_run_on_a_directory_in_use_is_refused(tmp_path):
    out = tmp_path / "run"
    args = [str(KINIT), "train", DIGITS, "-q", "-o", str(out), "--overwrite"]
    first = subprocess.Popen(
        [*args, "--set", "train.epochs=100000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=kinit_env(),
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and first.poll() is None:
        if (out / "backup").exists():  # training has begun, with the lock held
            break
        time.sleep(0.05)
    second = kinit(*args[1:], "--set", "train.epochs=1")
    first.send_signal(signal.SIGINT)  # the first run ends as an interrupted run does
    _, stderr = first.communicate(timeout=300)
    assert second.returncode == 2
    assert second.stderr.splitlines()[-1] == (
        f"error: run directory {out} is in use by kinit process {first.pid}; wait for it to "
        "finish, or give another --output"
    )
    assert first.returncode == 130, stderr
    metrics = json.loads((out / "metrics.json").read_text())
    done = json.loads((out / "backup" / "training_metadata.json").read_text())["epoch"]
    assert metrics["status"] == "interrupted" and metrics["epochs"] == done >= 1
    assert "epochs: 100000" in (out / "config.yaml").read_text()


@pytest.mark.parametrize(
    ("filename", "message"),
    [
        (
            "../../../victim.csv",
            "'../../../victim.csv' leads out of the run directory; relative paths are taken "
            "inside it (give an absolute path to write elsewhere)",
        ),
        (
            "config.yaml",
            "'config.yaml' is a file kinit writes in the run directory; give the callback its "
            "own name",
        ),
        (
            "backup/log.csv",
            "'backup/log.csv' is a file kinit writes in the run directory; give the callback its "
            "own name",
        ),
        (".", "'.' is the run directory; give the callback its own name"),
    ],
)
def test_callback_files_stay_inside_the_run_directory(runner, tmp_path, filename, message):
    out = tmp_path / "a" / "b" / "run"
    callbacks = f"train.callbacks=[{{class_name: CSVLogger, config: {{filename: '{filename}'}}}}]"
    result = train(runner, *EPOCHS, "--set", callbacks, "-o", str(out))
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --set {callbacks}: train.callbacks[0].config.filename: {message}\n"
    )
    assert not out.exists() and not (tmp_path / "victim.csv").exists()


@pytest.mark.slow
def test_an_absolute_callback_file_is_replaced_only_with_overwrite(runner, tmp_path):
    victim = tmp_path / "victim.csv"
    victim.write_text("keep me")
    callbacks = f"train.callbacks=[{{class_name: CSVLogger, config: {{filename: {victim}}}}}]"
    result = train(
        runner, *EPOCHS, "--set", "train.epochs=1", "--set", callbacks, "-o", str(tmp_path / "r")
    )
    assert result.exit_code == 2
    assert result.stderr.endswith(
        f"train.callbacks[0].config.filename: {victim} already exists, and kinit does not "
        "replace a file outside the run directory unless --overwrite is given; name a new file, "
        "or a relative path (it goes in the run directory)\n"
    )
    assert victim.read_text() == "keep me"
    args = ["--set", "train.epochs=1", "--set", callbacks, "-o", str(tmp_path / "r"), "-q"]
    assert train(runner, *EPOCHS, *args, "--overwrite").exit_code == 0
    assert victim.read_text().splitlines()[0] == "epoch,accuracy,loss,val_accuracy,val_loss"


def test_run_names_never_leave_runs():
    for name, safe in [("../../escaped", "escaped"), ("/etc/x", "etc_x"), ("a b", "a_b")]:
        path = rundir.default_path(name)
        assert path.parent == Path("runs") and path.name.startswith(f"{safe}-"), name


def test_an_output_that_cannot_be_made_is_one_message(runner, tmp_path):
    (tmp_path / "file").write_text("")
    result = train(runner, *EPOCHS, "--set", "train.epochs=1", "-o", str(tmp_path / "file" / "run"))
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: not a directory creating the run directory {tmp_path / 'file' / 'run'}\n"
    )


def test_a_failed_write_names_the_file_and_leaves_the_old_one(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("complete")
    with pytest.raises(WriteError) as caught, rundir.replacing(target, ".tmp") as tmp:
        Path(tmp).write_text("half")
        # What h5py raises on a full disk: the errno is only in the text.
        raise RuntimeError("file write failed: errno = 28, error message = 'No space left'")
    assert str(caught.value) == f"no space left on device writing {target}"
    assert target.read_text() == "complete"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
    with pytest.raises(WriteError, match=f"^no such file or directory writing {tmp_path}/no/x$"):
        rundir.write_text(tmp_path / "no" / "x", "text")


def _tmpfs(path: Path, size: str) -> None:
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")


@pytest.mark.slow
def test_a_full_disk_stops_at_the_last_complete_backup(tmp_path, full_run):
    disk = tmp_path / "disk"
    _tmpfs(disk, "400k")  # room for one backup of the digits model, not for a second
    try:
        run = disk / "run"
        full = kinit("train", DIGITS, *EPOCHS, "--set", "train.epochs=4", "-q", "-o", str(run))
        assert full.returncode == 1
        assert full.stderr.splitlines()[-1].startswith(
            f"error: no space left on device writing {run}/backup/epoch-00002.weights.h5 (it "
            "needs about "
        )
        assert full.stderr.splitlines()[-1].endswith(
            f"; the last complete backup is epoch 1: continue with kinit train --resume {run}"
        )
        assert sorted(p.name for p in (run / "backup").iterdir()) == [
            "epoch-00001.weights.h5",
            "training_metadata.json",
        ]
        # The failure is in metrics.json too, with the epochs the backup keeps.
        failed = json.loads((run / "metrics.json").read_text())
        assert failed["status"] == "failed" and failed["epochs"] == 1
        assert failed["error"].startswith("no space left on device writing")
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        resumed = kinit("train", "--resume", str(run), "-q")
        assert resumed.returncode == 0, resumed.stderr
        same_run(run, full_run)
    finally:
        subprocess.run(["umount", str(disk)], check=False)


@pytest.mark.slow
def test_sigkill_then_resume_ends_as_the_uninterrupted_run(tmp_path, full_run):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [str(KINIT), "train", DIGITS, *EPOCHS, "--set", "train.epochs=4", "-q", "-o", str(run)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=kinit_env(),
    )
    meta = run / "backup" / "training_metadata.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if meta.exists() and json.loads(meta.read_text())["epoch"] >= 1:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "metrics.json").exists()
    resumed = kinit("train", "--resume", str(run), "-q")
    assert resumed.returncode == 0, resumed.stderr
    same_run(run, full_run)


def test_callback_paths_are_checked_at_validate_too(runner):
    callbacks = "train.callbacks=[{class_name: CSVLogger, config: {filename: ../log.csv}}]"
    result = runner.invoke(cli, ["validate", DIGITS, "--set", callbacks])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --set {callbacks}: train.callbacks[0].config.filename: '../log.csv' leads out "
        "of the run directory; relative paths are taken inside it (give an absolute path to "
        "write elsewhere)\n"
    )


def test_a_config_without_a_loss_is_refused_before_the_run_directory(runner, write, tmp_path):
    config = write(
        "noloss.yaml",
        """\
        data: {name: digits}
        model:
          input_shape: [64]
          layers: [{class_name: Dense, config: {units: 10, activation: softmax}}]
        compile:
          optimizer: adam
        """,
    )
    result = runner.invoke(cli, ["train", str(config), "-o", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {config}:6:3: compile: no loss to train with: give compile.loss (e.g. "
        "sparse_categorical_crossentropy for class ids), or have the model add its own with "
        "add_loss()\n"
    )
    assert not (tmp_path / "run").exists()


def test_a_run_that_fails_while_training_says_so_in_metrics(runner, write, tmp_path):
    write(
        "flaky.py",
        """\
        import tensorflow as tf
        from tensorflow import keras


        class Flaky(keras.layers.Layer):
            def __init__(self):
                super().__init__()

            def call(self, inputs, training=None):
                if training:
                    raise ValueError("only at inference")
                return inputs
        """,
    )
    config = write(
        "flaky.yaml",
        """\
        plugins: [flaky.py]
        data: {name: digits}
        model:
          input_shape: [64]
          layers:
            - {class_name: Flaky}
            - {class_name: Dense, config: {units: 10, activation: softmax}}
        compile: {optimizer: adam, loss: sparse_categorical_crossentropy}
        """,
    )
    out = tmp_path / "run"
    result = runner.invoke(cli, ["train", str(config), "-o", str(out), "-q"])
    assert result.exit_code == 1
    line = 11
    expected = (
        f"{tmp_path / 'flaky.py'}:{line}: training failed in plugin code (call): ValueError: "
        "only at inference"
    )
    assert result.stderr.splitlines()[-1] == f"error: {expected}"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == {
        "status": "failed",
        "error": expected,
        "epochs": 0,
        "initial_epoch": 0,
        "seed": metrics["seed"],
    }


@pytest.mark.slow
def test_dropout_masks_resume_where_they_left_off(runner, write, tmp_path):
    """Dropout's random generator state is in the backup (save_weights leaves it out), so a
    resumed run draws the masks the uninterrupted one draws."""
    config = write(
        "dropout.yaml",
        """\
        seed: 7
        deterministic: true
        data: {name: digits}
        model:
          input_shape: [64]
          layers:
            - {class_name: Dense, config: {units: 32, activation: relu}}
            - {class_name: Dropout, config: {rate: 0.3}}
            - {class_name: Dense, config: {units: 10, activation: softmax}}
        compile: {optimizer: adam, loss: sparse_categorical_crossentropy}
        train: {epochs: 3, batch_size: 64}
        """,
    )
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert runner.invoke(cli, ["train", str(config), "-q", "-o", str(whole)]).exit_code == 0
    first = ["train", str(config), "-q", "-o", str(cut), "--set", "train.epochs=1"]
    assert runner.invoke(cli, first).exit_code == 0
    meta = json.loads((cut / "backup" / "training_metadata.json").read_text())
    assert len(meta["generators"]) == 1 and len(meta["generators"][0]) == 2
    result = runner.invoke(cli, ["train", "--resume", str(cut), "--set", "train.epochs=3", "-q"])
    assert result.exit_code == 0, result.output
    assert (cut / "weights-final.json").read_bytes() == (whole / "weights-final.json").read_bytes()
    assert (cut / "history.csv").read_text() == (whole / "history.csv").read_text()


@pytest.mark.slow
def test_overwrite_checks_every_file_under_the_run(runner, tmp_path):
    """A file of the user's inside backup/ or a callback's folder, one whose name fits a
    callback's filename pattern, or a link: each is in the way, and nothing is deleted."""
    out = tmp_path / "run"
    callbacks = (
        "train.callbacks=[{class_name: TensorBoard, config: {log_dir: tb}}, "
        "{class_name: ModelCheckpoint, config: {filepath: 'ck-{epoch:02d}.keras'}}]"
    )
    first = train(
        runner, *EPOCHS, "--set", "train.epochs=2", "--set", callbacks, "-q", "-o", str(out)
    )
    assert first.exit_code == 0, first.output
    recorded = json.loads((out / ".kinit-run").read_text())["callback_files"]
    assert {"tb", "ck-01.keras", "ck-02.keras"} <= set(recorded)
    mine = tmp_path / "mine"
    mine.mkdir()
    (out / "backup" / "mine.txt").write_text("mine")
    (out / "tb" / "my-notes.txt").write_text("mine")
    (out / "ck-notes.keras").write_text("mine")
    (out / "link").symlink_to(mine)
    before = snapshot(out)
    result = train(runner, *EPOCHS, "--set", "train.epochs=1", "-q", "-o", str(out), "--overwrite")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --overwrite replaces only the files kinit writes, and {out} holds others: "
        "backup/mine.txt, ck-notes.keras, link, tb/my-notes.txt. Move them away, or give "
        "another --output.\n"
    )
    assert snapshot(out) == before and (out / "link").is_symlink()
    for extra in ("backup/mine.txt", "tb/my-notes.txt", "ck-notes.keras", "link"):
        (out / extra).unlink()
    again = train(runner, *EPOCHS, "--set", "train.epochs=1", "-q", "-o", str(out), "--overwrite")
    assert again.exit_code == 0, again.output
    assert not (out / "tb").exists() and not (out / "ck-01.keras").exists()


def test_a_run_stopped_after_its_last_backup_finishes_on_resume(runner, tmp_path, full_run):
    """Killed after the last epoch's backup, before model.keras: --resume trains nothing and
    writes what the run lacked."""
    run = tmp_path / "run"
    shutil.copytree(full_run, run)
    for name in ("model.keras", "metrics.json", "weights-final.json"):
        (run / name).unlink()
    result = runner.invoke(cli, ["train", "--resume", str(run), "-q"])
    assert result.exit_code == 0, result.output
    same_run(run, full_run)
    assert json.loads((run / "metrics.json").read_text())["epoch_seconds"] == []


@pytest.mark.slow
def test_sigterm_exits_143(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [str(KINIT), "train", DIGITS, "--set", "train.epochs=100000", "-q", "-o", str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=kinit_env(),
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (run / "backup").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert "interrupted by SIGTERM;" in stderr


def test_ctrl_c_before_training_is_one_line_and_130(runner, monkeypatch):
    from kinit_cli.model import sources

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sources, "prepare", interrupted)
    result = runner.invoke(cli, ["validate", DIGITS])
    assert (result.exit_code, result.stderr) == (130, "error: interrupted by SIGINT\n")


def test_names_that_only_look_like_kinit_files_are_in_the_way(runner, full_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(full_run, run)
    shutil.copy(run / "backup" / "training_metadata.json", run / "backup" / "meta.json.orig")
    (run / "backup" / "epoch-00004.weights.h5.keep").write_text("mine")
    (run / ".config.yaml.notes").write_text("mine")
    before = snapshot(run)
    result = train(runner, *EPOCHS, "--set", "train.epochs=1", "-q", "-o", str(run), "--overwrite")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --overwrite replaces only the files kinit writes, and {run} holds others: "
        ".config.yaml.notes, backup/epoch-00004.weights.h5.keep, backup/meta.json.orig. Move "
        "them away, or give another --output.\n"
    )
    assert snapshot(run) == before


CALLBACKS = (
    "train.callbacks=[{class_name: TensorBoard, config: {log_dir: tb}}, "
    "{class_name: ModelCheckpoint, config: {filepath: 'ck-{epoch:02d}.keras'}}]"
)


@pytest.mark.slow
def test_files_added_before_a_resume_stay_the_users(runner, tmp_path):
    out = tmp_path / "run"
    first = train(
        runner, *EPOCHS, "--set", "train.epochs=1", "--set", CALLBACKS, "-q", "-o", str(out)
    )
    assert first.exit_code == 0, first.output
    (out / "ck-notes.keras").write_text("mine")
    (out / "tb" / "notes.txt").write_text("mine")
    resumed = runner.invoke(cli, ["train", "--resume", str(out), "--set", "train.epochs=2", "-q"])
    assert resumed.exit_code == 0, resumed.output
    assert (out / "ck-02.keras").exists()
    result = train(runner, *EPOCHS, "--set", "train.epochs=1", "-q", "-o", str(out), "--overwrite")
    assert result.exit_code == 2
    assert "holds others: ck-notes.keras, tb/notes.txt." in result.stderr
    # As a killed run leaves its marker (no record of its callbacks' files): their paths
    # count as theirs, but a format field matches only what it can produce.
    marker = json.loads((out / ".kinit-run").read_text())
    for key in ("callback_files", "recorded", "not_ours"):
        marker.pop(key, None)
    (out / ".kinit-run").write_text(json.dumps(marker))
    (out / "tb" / "notes.txt").unlink()
    result = train(runner, *EPOCHS, "--set", "train.epochs=1", "-q", "-o", str(out), "--overwrite")
    assert result.exit_code == 2
    assert "holds others: ck-notes.keras." in result.stderr


def test_an_output_inside_a_run_directory_is_refused(runner, full_run):
    inner = full_run / "backup" / "x"
    result = train(runner, *EPOCHS, "--set", "train.epochs=1", "-q", "-o", str(inner))
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --output {inner} is inside the run directory {full_run}; give a folder "
        "outside it\n"
    )
    assert not inner.exists()


@pytest.mark.slow
def test_a_run_that_cannot_start_leaves_nothing(tmp_path):
    disk = tmp_path / "disk"
    _tmpfs(disk, "8k")
    try:
        run = disk / "run"
        first = kinit("train", DIGITS, "--set", "train.epochs=1", "-q", "-o", str(run))
        assert first.returncode == 1
        assert first.stderr.splitlines()[-1].startswith("error: no space left on device writing")
        assert first.stderr.splitlines()[-1].endswith("; the run did not start, and left nothing")
        assert not run.exists()
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        again = kinit("train", DIGITS, "--set", "train.epochs=1", "-q", "-o", str(run))
        assert again.returncode == 0, again.stderr
    finally:
        subprocess.run(["umount", str(disk)], check=False)


@pytest.mark.slow
def test_a_signal_after_an_epochs_last_step_keeps_that_epoch(tmp_path):
    from kinit_cli.errors import TrainingInterrupted
    from kinit_cli.training.plan import TrainOptions, plan
    from kinit_cli.training.trainer import Trainer

    trainer = Trainer(
        plan(DIGITS, ["train.epochs=4"], [], TrainOptions(output=str(tmp_path / "run")))
    )
    trainer.start()
    last = trainer.plan.steps_per_epoch - 1
    epochs: list[int] = []
    at_last_step = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: epochs.append(epoch),
        on_train_batch_end=lambda batch, logs: (
            # Keras numbers a last partial execution past the end (47 of 41 steps, by 8s).
            epochs[-1] == 1 and batch >= last and trainer.guard.interrupt(signal.SIGINT)
        ),
    )
    trainer.fit([at_last_step])
    with pytest.raises(TrainingInterrupted, match="2 of 4 epochs are saved"):
        trainer.finish()
    trainer.close()
