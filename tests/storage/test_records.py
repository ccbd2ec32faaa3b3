"""What a run recorded is never lost or faked: a failed continuation keeps the completed
record, a backup that cannot be restored refuses --resume, and every file kinit reads back
is checked, with one message naming it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kinit_cli.cli import cli
from kinit_cli.errors import RecordError
from kinit_cli.storage import checkpoint, ownership, rundir
from tests.conftest import DIGITS_PATHS, train
from tests.storage.test_rundir import DIGITS, EPOCHS, kinit, snapshot

# Callbacks that fail, or send the process a Ctrl-C, at the end of the second epoch while
# their flag file exists.
FLAKY = """\
import os
import signal
from pathlib import Path

import keras


class FailAtTwo(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1 and Path(__file__).with_name("fail.flag").exists():
            raise RuntimeError("epoch two went wrong")


class CtrlCAtTwo(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1 and Path(__file__).with_name("fail.flag").exists():
            os.kill(os.getpid(), signal.SIGINT)
"""


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory) -> Path:
    """A completed 2-epoch run, copied by each test that changes it."""
    out = tmp_path_factory.mktemp("two") / "run"
    # In-process (a run trained in a process of its own ends the same: tests/storage/test_rundir.py).
    done = train(CliRunner(), *EPOCHS, "--set", "train.epochs=2", "-q", "-o", str(out))
    assert done.exit_code == 0, done.output
    return out


def copy(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


def completed_with(runner, write, tmp_path, callback):
    """A completed 1-epoch run with the `callback` of FLAKY, its flag file set."""
    write("flaky.py", FLAKY)
    write("fail.flag", "")
    out = tmp_path / "run"
    plugin = f"plugins=[{tmp_path / 'flaky.py'}]"
    callbacks = f"train.callbacks=[{callback}]"
    first = runner.invoke(
        cli,
        ["train", DIGITS, *EPOCHS, "--set", plugin, "--set", callbacks, "-q", "-o", str(out)]
        + ["--set", "train.epochs=1"],
    )
    assert first.exit_code == 0, first.output
    return out


@pytest.mark.slow
def test_a_failed_continuation_keeps_the_completed_record(runner, write, tmp_path):
    out = completed_with(runner, write, tmp_path, "FailAtTwo")
    completed = json.loads((out / "metrics.json").read_text())
    model = (out / "model.keras").read_bytes()
    failed = runner.invoke(cli, ["train", "--resume", str(out), "--set", "train.epochs=3", "-q"])
    assert failed.exit_code == 1
    assert "training failed in plugin code" in failed.stderr
    assert "RuntimeError: epoch two went wrong" in failed.stderr
    record = json.loads((out / "metrics.json").read_text())
    attempt = record.pop("continuation")
    assert record == completed  # test metrics, versions and the model file's record kept
    assert record["status"] == "completed" and record["test"]["accuracy"] > 0.5
    assert attempt == {
        "status": "failed",
        "error": failed.stderr.splitlines()[-1].removeprefix("error: "),
        "epochs": 1,
        "initial_epoch": 1,
        "seed": completed["seed"],
    }
    assert (out / "model.keras").read_bytes() == model
    (tmp_path / "fail.flag").unlink()
    again = runner.invoke(cli, ["train", "--resume", str(out), "-q"])
    assert again.exit_code == 0, again.output
    done = json.loads((out / "metrics.json").read_text())
    assert done["status"] == "completed" and done["epochs"] == 3
    assert "continuation" not in done


@pytest.mark.slow
def test_an_interrupted_continuation_keeps_the_completed_record(runner, write, tmp_path):
    out = completed_with(runner, write, tmp_path, "CtrlCAtTwo")
    completed = json.loads((out / "metrics.json").read_text())
    stopped = runner.invoke(cli, ["train", "--resume", str(out), "--set", "train.epochs=3", "-q"])
    assert stopped.exit_code == 130
    record = json.loads((out / "metrics.json").read_text())
    attempt = record.pop("continuation")
    assert record == completed
    assert attempt["status"] == "interrupted" and attempt["epochs"] == 2
    (tmp_path / "fail.flag").unlink()
    again = runner.invoke(cli, ["train", "--resume", str(out), "-q"])
    assert again.exit_code == 0, again.output
    done = json.loads((out / "metrics.json").read_text())
    assert (done["status"], done["epochs"], "continuation" in done) == ("completed", 3, False)


@pytest.mark.slow
def test_a_backup_that_does_not_fit_fails_the_continuation_only(runner, two_epochs, tmp_path):
    run = copy(two_epochs, tmp_path)
    completed = json.loads((run / "metrics.json").read_text())
    other = tmp_path / "other"
    made = kinit(
        "train", DIGITS, *EPOCHS, "--set", "train.epochs=2", "-q", "-o", str(other),
        "--set", "model.layers[0].config.units=32",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    backup = run / "backup" / "epoch-00002.weights.h5"
    shutil.copy(other / "backup" / "epoch-00002.weights.h5", backup)
    result = runner.invoke(cli, ["train", "--resume", str(run), "--set", "train.epochs=3", "-q"])
    assert result.exit_code == 2
    # Keras's own message holds every value of the variable and a list of objects.
    message = (
        f"cannot restore the backup {backup} into the run's model: the layer dense's kernel "
        "is (64, 32) in the backup and (64, 128) in the model"
    )
    assert result.stderr == f"error: {message}\n"
    record = json.loads((run / "metrics.json").read_text())
    attempt = record.pop("continuation")
    assert record == completed
    assert (attempt["status"], attempt["error"]) == ("failed", message)


def test_an_unfit_backup_without_shapes_keeps_kerass_first_sentence():
    dump = (
        "A total of 2 objects could not be loaded. Example error message for object "
        "<Adam>:\n\nsomething else, value=[[0.1 0.2]\n [0.3 0.4]]>\n\nList of objects that "
        "could not be loaded:\n[<Adam>, <Dense name=d>]"
    )
    assert checkpoint.unfit(ValueError(dump)) == (
        "A total of 2 objects could not be loaded. Example error message for object <Adam>: "
        "something else"
    )


def test_a_resume_without_the_backups_weights_refuses(runner, two_epochs, tmp_path):
    run = copy(two_epochs, tmp_path)
    missing = run / "backup" / "epoch-00002.weights.h5"
    missing.unlink()
    before = snapshot(run)
    result = runner.invoke(cli, ["train", "--resume", str(run), "--set", "train.epochs=4", "-q"])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --resume {run}: {run / 'backup' / 'training_metadata.json'} cannot be read "
        f"back: the weights and optimizer state after epoch 2 it names, {missing}, are "
        "missing; put the file back as the run left it, or start the run again\n"
    )
    assert snapshot(run) == before


METADATA_DAMAGE = [
    ({"weights": "epoch-00002.weights.h5"}, "`epoch` is missing"),
    (
        {"epoch": "two", "weights": "epoch-00002.weights.h5"},
        "`epoch` must be a whole number of 0 or more; it is 'two'",
    ),
    (
        {"epoch": -5, "weights": "epoch-00002.weights.h5"},
        "`epoch` must be a whole number of 0 or more; it is -5",
    ),
    ([2], "the file must be a mapping; it is a list"),
    (
        {"epoch": 2, "weights": "../../elsewhere.weights.h5"},
        "`weights` must name a file beside it; it is '../../elsewhere.weights.h5'",
    ),
    (
        {"epoch": 2, "weights": "epoch-00002.weights.h5", "history": [{"loss": 1.0}]},
        "`epoch` is missing in `history[0]`",
    ),
]


@pytest.mark.parametrize(("content", "reason"), METADATA_DAMAGE)
def test_a_damaged_backup_metadata_is_one_message(runner, two_epochs, tmp_path, content, reason):
    run = copy(two_epochs, tmp_path)
    meta = run / "backup" / "training_metadata.json"
    meta.write_text(json.dumps(content))
    before = snapshot(run)
    result = runner.invoke(cli, ["train", "--resume", str(run), "--set", "train.epochs=4", "-q"])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --resume {run}: {meta} cannot be read back: {reason}; put the file back as "
        "the run left it, or start the run again\n"
    )
    assert snapshot(run) == before


def test_truncated_metadata_is_one_message(tmp_path):
    (tmp_path / "training_metadata.json").write_text('{"epoch": 2, "wei')
    with pytest.raises(RecordError) as caught:
        checkpoint.read(tmp_path)
    assert str(caught.value).startswith(
        f"{tmp_path / 'training_metadata.json'} cannot be read back: it is not JSON ("
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"variables": [{"path": "dense/ker', "it is not JSON ("),
        ("{}", "`variables` is missing"),
        ("[]", "the file must be a mapping; it is a list"),
        ('{"variables": [{"shape": [64, 128]}]}', "`path` is missing in `variables[0]`"),
    ],
)
def test_a_damaged_weights_init_degrades_inspect_only(
    runner, two_epochs, tmp_path, content, reason
):
    run = copy(two_epochs, tmp_path)
    (run / "weights-init.json").write_text(content)
    result = runner.invoke(cli, ["inspect-weights", str(run), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [v["path"] for v in document["variables"]] == DIGITS_PATHS
    assert all("initial" not in v for v in document["variables"])
    warning = " ".join(result.stderr.split())
    assert f"{run / 'weights-init.json'} cannot be read back: {reason}" in warning
    assert (
        "shown without it: the initial values, the initializers and init_from sources "
        "recorded when the run built its model, and --check of its initial weights"
    ) in warning


def test_a_damaged_metrics_json_refuses_resume_naming_it(runner, two_epochs, tmp_path):
    run = copy(two_epochs, tmp_path)
    (run / "metrics.json").write_text('{"status": "completed", "epochs": "2"}')
    result = runner.invoke(cli, ["train", "--resume", str(run), "--set", "train.epochs=4", "-q"])
    assert result.exit_code == 2
    reason = (
        f"{run / 'metrics.json'} cannot be read back: `epochs` must be a whole number of 0 or "
        "more; it is '2'"
    )
    assert result.stderr == (
        f"error: --resume {run}: {reason}; put the file back as the run left it, or start the "
        "run again\n"
    )
    inspected = runner.invoke(cli, ["inspect-weights", str(run), "--json"])
    assert inspected.exit_code == 0, inspected.output
    assert [v["path"] for v in json.loads(inspected.stdout)["variables"]] == DIGITS_PATHS
    assert " ".join(inspected.stderr.split()) == (
        f"warning: {reason}; shown without the number of epochs the run trained"
    )


def test_a_damaged_marker_refuses_resume_and_overwrite(runner, two_epochs, tmp_path):
    run = copy(two_epochs, tmp_path)
    (run / ".kinit-run").write_text('{"pid": 1, "not_ours": "everything"}')
    before = snapshot(run)
    reason = "`not_ours` must be a list; it is 'everything'"
    resumed = runner.invoke(cli, ["train", "--resume", str(run), "--set", "train.epochs=4"])
    assert resumed.exit_code == 2
    assert resumed.stderr == f"error: {run / '.kinit-run'} cannot be read back: {reason}\n"
    overwrite = runner.invoke(cli, ["train", DIGITS, "-q", "-o", str(run), "--overwrite"])
    assert overwrite.exit_code == 2
    assert overwrite.stderr == resumed.stderr
    assert snapshot(run) == before
    assert ownership.marker(run) == {}  # not trusted where it decides nothing


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "epoch,loss\ntwo,1.0\n",
            "line 2: `epoch` must be a whole number of 0 or more; it is 'two'",
        ),
        ("epoch,loss\n-5,1.0\n", "line 2: `epoch` must be a whole number of 0 or more; it is '-5'"),
        ("epoch,loss\n0,high\n", "line 2: `loss` must be a number; it is 'high'"),
        ("epoch,loss\n0,1.0,3\n", "line 2 has more values than the header"),
    ],
)
def test_a_damaged_history_is_one_message(tmp_path, text, reason):
    path = tmp_path / "history.csv"
    path.write_text(text)
    with pytest.raises(RecordError) as caught:
        rundir.read_history(path)
    assert str(caught.value) == f"{path} cannot be read back: {reason}"


def test_a_side_file_that_is_a_device_is_not_read(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "weights-init.json").symlink_to("/dev/zero")
    with pytest.raises(RecordError) as caught:
        rundir.initial_weights(run)
    assert str(caught.value) == (
        f"{run / 'weights-init.json'} cannot be read back: it is not a regular file"
    )


def test_generator_states_that_do_not_fit_are_one_message(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dropout(0.5)])
    model.compile(optimizer="sgd", loss="mse")
    weights = tmp_path / "epoch-00001.weights.h5"
    model.save_weights(weights)
    with pytest.raises(RecordError) as caught:
        checkpoint.restore(checkpoint.State(1, weights, None, [[1, 2, 3]]), model)
    # The generator's name takes Keras's process-wide counter: seed_generator, _1, ...
    generator = model.layers[0].seed_generator.state.path
    assert str(caught.value) == (
        f"{tmp_path / 'training_metadata.json'} cannot be read back: a random generator's "
        f"state has 3 values where the model's {generator} holds 2"
    )
    assert generator.startswith("seed_generator") and generator.endswith("/seed_generator_state")


def edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, **changes}))


def refused_resume(runner, run: Path, reason: str) -> None:
    """--resume refuses with `reason`, trains nothing and changes no file."""
    before = snapshot(run)
    result = runner.invoke(cli, ["train", "--resume", str(run), "--set", "train.epochs=3", "-q"])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --resume {run}: {reason}; put the file back as the run left it, or start the "
        "run again\n"
    )
    assert snapshot(run) == before


@pytest.mark.parametrize("epoch", [1, 99])
def test_an_edited_backup_epoch_contradicts_its_weights(runner, two_epochs, tmp_path, epoch):
    run = copy(two_epochs, tmp_path)
    meta = run / "backup" / "training_metadata.json"
    edit_json(meta, epoch=epoch)
    assert len(json.loads(meta.read_text())["history"]) == 2
    weights = run / "backup" / "epoch-00002.weights.h5"
    reason = (
        f"{meta} cannot be read back: `epoch` is {epoch}, but the weights it names, {weights}, "
        "are epoch 2's"
    )
    refused_resume(runner, run, reason)


def test_an_edited_backup_epoch_contradicts_its_history(runner, two_epochs, tmp_path):
    run = copy(two_epochs, tmp_path)
    meta = run / "backup" / "training_metadata.json"
    (run / "backup" / "epoch-00002.weights.h5").rename(run / "backup" / "epoch-00001.weights.h5")
    edit_json(meta, epoch=1, weights="epoch-00001.weights.h5")
    reason = f"{meta} cannot be read back: `epoch` is 1, but its `history` holds 2 epochs"
    refused_resume(runner, run, reason)


def test_metrics_counting_more_epochs_than_the_backup_is_refused(runner, two_epochs, tmp_path):
    run = copy(two_epochs, tmp_path)
    meta = run / "backup" / "training_metadata.json"
    (run / "backup" / "epoch-00002.weights.h5").rename(run / "backup" / "epoch-00001.weights.h5")
    history = json.loads(meta.read_text())["history"][:1]
    edit_json(meta, epoch=1, weights="epoch-00001.weights.h5", history=history)
    reason = (
        f"{run / 'metrics.json'} cannot be read back: `epochs` is 2, but the backup {meta} "
        "holds 1 epoch"
    )
    refused_resume(runner, run, reason)


def test_a_failed_record_counting_epochs_without_a_backup_is_refused(runner, two_epochs, tmp_path):
    run = copy(two_epochs, tmp_path)
    (run / "metrics.json").write_text('{"status": "failed", "error": "x", "epochs": 2}')
    shutil.rmtree(run / "backup")
    reason = (
        f"{run / 'metrics.json'} cannot be read back: `epochs` is 2, but the backup "
        f"{run / 'backup' / 'training_metadata.json'} holds none"
    )
    refused_resume(runner, run, reason)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"status": "completed", "test": 5}, "`epochs` is missing"),
        ({"test": 5}, "`test` must be a mapping; it is 5"),
        ({"test": {"loss": "low"}}, "`test.loss` must be a number; it is 'low'"),
        ({"versions": {"kinit": 3}}, "`versions.kinit` must be text; it is 3"),
        ({"model_file": None}, "`model_file` must be text; it is None"),
    ],
)
def test_a_completed_record_must_hold_what_kinit_writes(
    runner, two_epochs, tmp_path, record, reason
):
    run = copy(two_epochs, tmp_path)
    if "status" in record:
        (run / "metrics.json").write_text(json.dumps(record))
    else:
        edit_json(run / "metrics.json", **record)
    refused_resume(runner, run, f"{run / 'metrics.json'} cannot be read back: {reason}")


def test_an_empty_marker_does_not_make_files_kinits(runner, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / ".kinit-run").write_text("")
    (out / "config.yaml").write_text("my own config\n")
    (out / "model.keras").write_bytes(b"my own model")
    before = snapshot(out)
    args = ["train", DIGITS, *EPOCHS, "--set", "train.epochs=1", "-q", "-o", str(out)]
    result = runner.invoke(cli, [*args, "--overwrite"])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {out / '.kinit-run'} cannot be read back: it is empty, so it does not show "
        "the files beside it are kinit's; --overwrite replaces none of them. Move them away, "
        "or give another --output\n"
    )
    assert snapshot(out) == before


@pytest.mark.slow
def test_an_empty_marker_alone_is_overwritten(runner, tmp_path):
    out = tmp_path / "begun"
    out.mkdir()
    (out / ".kinit-run").write_text("")
    args = ["train", DIGITS, *EPOCHS, "--set", "train.epochs=1", "-q", "-o", str(out)]
    result = runner.invoke(cli, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "metrics.json").read_text())["status"] == "completed"
