"""A run directory is someone else's data: kinit never writes, truncates or deletes through a
symbolic link in it, and refuses such a run naming the link."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kinit_cli.cli import cli
from tests.conftest import train
from tests.storage.test_rundir import DIGITS, EPOCHS, snapshot

LINK_MESSAGE = (
    "where kinit writes: {links}. kinit never writes, truncates or deletes through a link in a "
    "run directory; put the files themselves there, or give another run directory\n"
)


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory) -> Path:
    """A completed 1-epoch run, copied by each test that changes it."""
    out = tmp_path_factory.mktemp("one") / "run"
    # In-process (a run trained in a process of its own ends the same: tests/storage/test_rundir.py).
    done = train(CliRunner(), *EPOCHS, "--set", "train.epochs=1", "-q", "-o", str(out))
    assert done.exit_code == 0, done.output
    return out


def copy(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(run, target, symlinks=True)
    return target


def resume(runner, run: Path, *args: str):
    return runner.invoke(cli, ["train", "--resume", str(run), "--set", "train.epochs=2", *args])


def refusal(option: str, run: Path, links: str) -> str:
    return f"error: {option} {run}: the run directory has a symbolic link " + LINK_MESSAGE.format(
        links=links
    )


@pytest.mark.slow
def test_a_marker_linked_to_a_file_outside_is_refused_and_left_alone(runner, one_epoch, tmp_path):
    run = copy(one_epoch, tmp_path)
    outside = tmp_path / "notes.txt"
    outside.write_bytes(b"my notes\n")
    (run / ".kinit-run").unlink()
    (run / ".kinit-run").symlink_to(outside)
    before = snapshot(run)
    result = resume(runner, run, "-q")
    assert result.exit_code == 2
    assert result.stderr == refusal("--resume", run, f".kinit-run -> {outside}")
    assert outside.read_bytes() == b"my notes\n"
    assert snapshot(run) == before


@pytest.mark.parametrize("how", ["--resume", "--overwrite"])
def test_a_dangling_marker_link_creates_nothing(runner, one_epoch, tmp_path, how):
    run = copy(one_epoch, tmp_path)
    target = tmp_path / "elsewhere" / "marker"
    target.parent.mkdir()
    (run / ".kinit-run").unlink()
    (run / ".kinit-run").symlink_to(target)
    if how == "--resume":
        result = resume(runner, run, "-q")
        option = "--resume"
    else:
        args = ["train", DIGITS, *EPOCHS, "--set", "train.epochs=1", "-q", "-o", str(run), how]
        result = runner.invoke(cli, args)
        option = "--output"
    assert result.exit_code == 2
    assert result.stderr == refusal(option, run, f".kinit-run -> {target}")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_a_backup_linked_to_a_users_folder_is_never_written_or_emptied(runner, one_epoch, tmp_path):
    run = copy(one_epoch, tmp_path)
    mine = tmp_path / "mymodels"
    shutil.move(run / "backup", mine)
    (mine / "mymodel.weights.h5").write_bytes(b"the user's weights")
    (run / "backup").symlink_to(mine)
    before = snapshot(mine)
    result = resume(runner, run, "-q")
    assert result.exit_code == 2
    assert result.stderr == refusal("--resume", run, f"backup -> {mine}")
    assert (mine / "mymodel.weights.h5").read_bytes() == b"the user's weights"
    assert snapshot(mine) == before
    overwrite = runner.invoke(cli, ["train", DIGITS, *EPOCHS, "-q", "-o", str(run), "--overwrite"])
    assert overwrite.exit_code == 2
    assert overwrite.stderr == refusal("--output", run, f"backup -> {mine}")
    assert snapshot(mine) == before


@pytest.mark.slow  # trains for seconds
def test_a_link_inside_backup_or_a_callback_folder_is_refused(runner, tmp_path):
    out = tmp_path / "run"
    tb = "train.callbacks=[{class_name: TensorBoard, config: {log_dir: tb}}]"
    first = runner.invoke(
        cli,
        ["train", DIGITS, *EPOCHS, "--set", "train.epochs=1", "--set", tb, "-q", "-o", str(out)],
    )
    assert first.exit_code == 0, first.output
    outside = tmp_path / "logs"
    outside.mkdir()
    (out / "tb" / "mine").symlink_to(outside)
    (out / "backup" / "old.weights.h5").symlink_to(outside / "w.h5")
    result = resume(runner, out, "-q")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --resume {out}: the run directory has symbolic links "
        + LINK_MESSAGE.format(
            links=f"backup/old.weights.h5 -> {outside / 'w.h5'}, tb/mine -> {outside}"
        )
    )
    assert list(outside.iterdir()) == []


def test_a_users_own_link_beside_the_run_does_not_stop_a_resume(runner, one_epoch, tmp_path):
    """A link among the user's entries is theirs: kinit neither follows nor touches it."""
    run = copy(one_epoch, tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    (run / "notes").symlink_to(notes)
    result = resume(runner, run, "-q")
    assert result.exit_code == 0, result.output
    assert (run / "notes").is_symlink() and notes.read_text() == "mine"


def test_a_run_directory_that_is_itself_a_link_is_followed(runner, one_epoch, tmp_path):
    """`runs/latest -> runs/digits-...`: the link names the run; a dangling one is refused."""
    run = copy(one_epoch, tmp_path)
    latest = tmp_path / "latest"
    latest.symlink_to(run)
    result = resume(runner, latest, "-q")
    assert result.exit_code == 0, result.output
    assert '"epochs": 2' in (run / "metrics.json").read_text()
    dangling = tmp_path / "new"
    dangling.symlink_to(tmp_path / "nowhere")
    made = runner.invoke(cli, ["train", DIGITS, *EPOCHS, "-q", "-o", str(dangling)])
    assert made.exit_code == 2
    assert made.stderr == (
        f"error: --output {dangling} is a symbolic link to {tmp_path / 'nowhere'}, which does "
        "not exist; kinit makes no run directory through a link: give the folder itself\n"
    )
    assert not (tmp_path / "nowhere").exists()


def test_a_marker_that_is_not_a_file_is_refused(runner, one_epoch, tmp_path):
    run = copy(one_epoch, tmp_path)
    (run / ".kinit-run").unlink()
    os.mkfifo(run / ".kinit-run")
    result = resume(runner, run, "-q")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {run / '.kinit-run'} cannot be read back: it is not a regular file\n"
    )
