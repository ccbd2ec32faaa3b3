"""kinit train: real training on the bundled digits, the run directory, determinism, resume."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time

import keras
import numpy as np
import pytest

from kinit_cli.cli import cli
from tests.conftest import DIGITS, DIGITS_PATHS, KINIT, MNIST_LIKE, RUN_FILES, train


@pytest.mark.slow
def test_digits_run_directory_holds_everything(runner, tmp_path):
    out = tmp_path / "run"
    result = train(runner, "--set", "train.epochs=3", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == RUN_FILES
    assert sorted(p.name for p in (out / "backup").iterdir()) == [
        "epoch-00003.weights.h5",
        "training_metadata.json",
    ]
    umask = os.umask(0)
    os.umask(umask)
    # Written through temporary files, yet readable as files written with open() are.
    files = [p for p in [*out.iterdir(), *(out / "backup").iterdir()] if p.is_file()]
    assert {(p.stat().st_mode & 0o777) for p in files} == {0o666 & ~umask}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["seed"] == 42
    assert metrics["data"] == {
        "name": "digits",
        "source": metrics["data"]["source"],
        "train": 1294,
        "validation": 143,
        "test": 360,
    }
    assert set(metrics["test"]) == {"loss", "accuracy"}
    assert metrics["test"]["accuracy"] > 0.85
    assert set(metrics["train"]) == {"loss", "accuracy"} and set(metrics["validation"]) == {
        "loss",
        "accuracy",
    }
    assert metrics["epochs"] == 3 and metrics["devices"] == ["CPU:0"]
    # One time per epoch trained; what the fit spent outside the epochs is the rest.
    seconds = metrics["epoch_seconds"]
    assert len(seconds) == 3 and all(isinstance(t, float) and t > 0 for t in seconds)
    assert sum(seconds) <= metrics["wall_time_s"]
    assert set(metrics["versions"]) == {"python", "tensorflow", "keras", "kinit"}
    with (out / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert list(rows[0]) == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert float(rows[2]["loss"]) < float(rows[0]["loss"])
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    assert [layer.name for layer in model.layers] == ["dense", "dense_1", "dense_2"]
    final = json.loads((out / "weights-final.json").read_text())
    assert [v["path"] for v in final["variables"]] == DIGITS_PATHS
    np.testing.assert_allclose(
        final["variables"][0]["mean"], float(np.mean(model.layers[0].kernel.numpy())), rtol=1e-6
    )
    # The printed report: initial and final weight tables, then the results.
    assert "Weights at initialization" in result.stdout
    assert "devices: CPU:0" in result.stdout and "strategy: default, 1 replica" in result.stdout
    assert (metrics["strategy"], metrics["num_replicas"], metrics["per_replica_batch_size"]) == (
        "default",
        1,
        32,
    )
    assert "Weights after training" in result.stdout
    assert "HeNormal()" in result.stdout and "Rel. change" in result.stdout
    assert "epoch 3/3" in result.stderr


@pytest.mark.slow
def test_same_seed_and_determinism_give_identical_weights(runner, tmp_path):
    for name in ("a", "b"):
        result = train(
            runner, "--set", "train.epochs=2", "--output", str(tmp_path / name), "--quiet"
        )
        assert result.exit_code == 0, result.output
    for report in ("weights-init.json", "weights-final.json"):
        a = (tmp_path / "a" / report).read_bytes()
        assert a == (tmp_path / "b" / report).read_bytes()
    other = train(
        runner, "--set", "train.epochs=2", "--output", str(tmp_path / "c"), "--quiet", "--seed", "7"
    )
    assert other.exit_code == 0
    assert (tmp_path / "c" / "weights-init.json").read_bytes() != (
        tmp_path / "a" / "weights-init.json"
    ).read_bytes()


@pytest.mark.slow
def test_json_output_is_one_document(runner, tmp_path):
    result = train(runner, "--set", "train.epochs=1", "--output", str(tmp_path / "r"), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["run_dir"] == str(tmp_path / "r")
    assert doc["metrics"]["test"]["accuracy"] > 0.5
    assert sorted(doc["relative_change"]) == sorted(v["path"] for v in doc["weights_final"])
    assert all(0 < c < 10 for c in [doc["relative_change"]["dense/kernel"]])
    # One definition of change: train's (A = the initial weights) is inspect-weights
    # --against with the run's own config, which rebuilds them, as the TARGET.
    run = tmp_path / "r"
    against = runner.invoke(
        cli, ["inspect-weights", str(run / "config.yaml"), "--against", str(run), "--json"]
    )
    assert against.exit_code == 0, against.output
    rows = {r["path"]: r for r in json.loads(against.stdout)["against"]["variables"]}
    assert sorted(rows) == sorted(doc["changes"])
    for path, moved in doc["changes"].items():
        for key in ("change", "relative_change", "cosine"):
            expected = None if moved[key] is None else pytest.approx(moved[key], rel=1e-12)
            assert rows[path][key] == expected, (path, key)
    assert doc["changes"]["dense/bias"]["relative_change"] is None  # zero reference
    table = runner.invoke(cli, ["inspect-weights", str(run / "config.yaml"), "--against", str(run)])
    bias = [line for line in table.stdout.splitlines() if line.startswith("│ dense/bias")][-1]
    assert f"|Δ| {doc['changes']['dense/bias']['change']:.4g}" in bias
    assert "Rel. change: ||B - A|| / ||A|| with A = the target" in table.stdout


@pytest.mark.slow  # trains for seconds
def test_non_finite_loss_stops_and_keeps_good_weights(runner, tmp_path):
    out = tmp_path / "nan"
    result = train(
        runner,
        "--set",
        "compile.optimizer={class_name: SGD, config: {learning_rate: 1.0e+12}}",
        "--set",
        "train.epochs=3",
        "--output",
        str(out),
        "-q",
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the loss became nan at epoch 1, step ")
    assert "non-finite values in: dense/kernel" in result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "diverged"
    assert metrics["epoch_seconds"] == []  # the first epoch was cut short: none trained
    model = keras.saving.load_model(out / "model.keras")
    assert all(np.isfinite(w.numpy()).all() for w in model.weights)


def test_gpu_requested_without_one(runner):
    result = train(runner, "--device", "gpu")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --device gpu: TensorFlow sees no GPU (it sees: ")
    assert "pip install 'kinit[gpu]'" in result.stderr


@pytest.mark.slow
def test_resume_refuses_changes_other_than_epochs(runner, tmp_path):
    out = tmp_path / "run"
    assert train(runner, "--set", "train.epochs=1", "--output", str(out), "-q").exit_code == 0
    result = runner.invoke(
        cli, ["train", "--resume", str(out), "--set", "train.batch_size=64", "--set", "seed=3"]
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: --resume {out}: only train.epochs may change when resuming; these differ:",
        "  seed: 42 in the run, 3 now",
        "  train.batch_size: 32 in the run, 64 now",
    ]


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_uninterrupted_weights(tmp_path):
    args = ["--set", "train.epochs=8", "--set", "train.batch_size=8", "-q"]
    env = {**os.environ, "COLUMNS": "200"}
    full = subprocess.run(
        [str(KINIT), "train", DIGITS, *args, "--output", str(tmp_path / "full")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert full.returncode == 0, full.stderr
    run = tmp_path / "cut"
    proc = subprocess.Popen(
        [str(KINIT), "train", DIGITS, *args, "--output", str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    meta = run / "backup" / "training_metadata.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if meta.exists() and json.loads(meta.read_text() or "{}").get("epoch", 0) >= 2:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted by SIGINT;" in stderr and f"kinit train --resume {run}" in stderr
    cut = json.loads((run / "metrics.json").read_text())
    assert cut["status"] == "interrupted"
    done = json.loads(meta.read_text())["epoch"]
    assert 2 <= done < 8
    assert len(cut["epoch_seconds"]) == done  # the epoch the signal cut short has no time
    resumed = subprocess.run(
        [str(KINIT), "train", "--resume", str(run), "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["initial_epoch"] == done and metrics["epochs"] == 8
    # Only the epochs this run trained are timed.
    assert len(metrics["epoch_seconds"]) == 8 - done
    assert sum(metrics["epoch_seconds"]) <= metrics["wall_time_s"]
    assert (run / "weights-final.json").read_bytes() == (
        tmp_path / "full" / "weights-final.json"
    ).read_bytes()
    with (run / "history.csv").open() as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == [str(e) for e in range(8)]
    # Kept, so that the completed run can go on with more epochs.
    assert json.loads(meta.read_text())["epoch"] == 8


@pytest.mark.slow
def test_config_callbacks_write_into_the_run_directory(runner, tmp_path):
    out = tmp_path / "cb"
    callbacks = (
        "train.callbacks=[{class_name: TensorBoard, config: {log_dir: tb, histogram_freq: 1}},"
        " {class_name: CSVLogger, config: {filename: log.csv}},"
        " {class_name: EarlyStopping, config: {monitor: loss, patience: 0, min_delta: 10.0}}]"
    )
    result = train(
        runner, "--set", "train.epochs=5", "--set", callbacks, "--output", str(out), "-q"
    )
    assert result.exit_code == 0, result.output
    # With an impossible min_delta, the first epoch sets the baseline and the second stops.
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2
    assert (out / "log.csv").read_text().splitlines()[0].startswith("epoch,accuracy,loss")
    events = list((out / "tb" / "train").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 1000  # histograms of every weight


def test_unknown_callback_is_a_config_error(runner):
    result = train(runner, "--set", "train.callbacks=[EarlyStoping]")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: --set train.callbacks=[EarlyStoping]: train.callbacks[0]: unknown callback "
        "'EarlyStoping'. Did you mean 'EarlyStopping'?"
    )


@pytest.mark.slow
def test_mixed_precision_keeps_the_output_in_float32(runner, tmp_path):
    out = tmp_path / "mixed"
    result = train(
        runner,
        "--set",
        "train.precision=mixed_bfloat16",
        "--set",
        "train.epochs=1",
        "--output",
        str(out),
        "-q",
    )
    assert result.exit_code == 0, result.output
    model = keras.saving.load_model(out / "model.keras")
    assert [layer.dtype_policy.name for layer in model.layers] == [
        "mixed_bfloat16",
        "mixed_bfloat16",
        "float32",
    ]
    assert keras.mixed_precision.dtype_policy().name == "float32"  # restored afterwards


@pytest.mark.slow
def test_plugin_callback_from_the_config(runner, write, tmp_path):
    write(
        "epoch_log.py",
        """\
        import json
        import keras
        from kinit_cli import register_callback


        @register_callback(package="cb_test")
        class EpochLog(keras.callbacks.Callback):
            \"\"\"Writes the epochs it saw to a JSON file.\"\"\"

            def __init__(self, filename="epochs.json"):
                super().__init__()
                self.filename, self.seen = filename, []

            def on_epoch_end(self, epoch, logs=None):
                self.seen.append([epoch, round(float(logs["loss"]), 6)])

            def on_train_end(self, logs=None):
                with open(self.filename, "w") as f:
                    json.dump(self.seen, f)
        """,
    )
    out = tmp_path / "run"
    result = train(
        runner,
        "--plugin",
        str(tmp_path / "epoch_log.py"),
        "--set",
        "train.epochs=2",
        "--set",
        "train.callbacks=[{class_name: EpochLog, config: {filename: seen.json}}]",
        "--output",
        str(out),
        "-q",
    )
    assert result.exit_code == 0, result.output
    seen = json.loads((out / "seen.json").read_text())
    with (out / "history.csv").open() as f:
        losses = [round(float(r["loss"]), 6) for r in csv.DictReader(f)]
    assert seen == [[0, losses[0]], [1, losses[1]]]


@pytest.mark.slow
def test_steps_per_execution_trains_the_same_weights(runner, tmp_path):
    for spe in (1, 8):
        result = train(
            runner,
            "--set",
            "train.epochs=2",
            "--set",
            f"train.steps_per_execution={spe}",
            "--output",
            str(tmp_path / str(spe)),
            "-q",
        )
        assert result.exit_code == 0, result.output
    final = [json.loads((tmp_path / str(s) / "weights-final.json").read_text()) for s in (1, 8)]
    assert [v["sha256"] for v in final[0]["variables"]] == [
        v["sha256"] for v in final[1]["variables"]
    ]
    # Every epoch ends on its own last batch: the per-epoch losses and validation metrics
    # match too (an execution that ran on into the next epoch's batches would move them).
    histories = [(tmp_path / str(s) / "history.csv").read_text() for s in (1, 8)]
    assert histories[0] == histories[1]


@pytest.mark.slow
def test_uint8_pixels_train_the_same_weights_as_their_float32_values(runner, write, tmp_path):
    # uint8 pixels stay uint8 in memory and each batch is divided in the pipeline: the
    # weights must not differ by a bit from training on the floats NumPy divides up front.
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (300, 8), dtype=np.uint8)
    y = (x[:, 0] > x[:, 1]).astype(np.int64) + (x[:, 2] > 127)
    floats = x.astype(np.float32) / 255
    np.savez(tmp_path / "u8.npz", x_train=x[:240], y_train=y[:240], x_test=x[240:], y_test=y[240:])
    np.savez(
        tmp_path / "f32.npz",
        x_train=floats[:240],
        y_train=y[:240],
        x_test=floats[240:],
        y_test=y[240:],
    )
    config = str(write("c.yaml", MNIST_LIKE))
    for name in ("u8", "f32"):
        result = runner.invoke(
            cli,
            ["train", config, "--seed", "5", "--output", str(tmp_path / name), "-q"]
            + ["--set", f"data.path={tmp_path / name}.npz", "--set", "data.validation_split=0.2"]
            + ["--set", "train.epochs=2", "--set", "train.batch_size=32"],
        )
        assert result.exit_code == 0, result.output
    final = [json.loads((tmp_path / n / "weights-final.json").read_text()) for n in ("u8", "f32")]
    assert [v["sha256"] for v in final[0]["variables"]] == [
        v["sha256"] for v in final[1]["variables"]
    ]
    histories = [(tmp_path / n / "history.csv").read_text() for n in ("u8", "f32")]
    assert histories[0] == histories[1] and len(histories[0].splitlines()) == 3
    tests = [json.loads((tmp_path / n / "metrics.json").read_text())["test"] for n in ("u8", "f32")]
    assert tests[0] == tests[1]


def test_progress_display_draws_from_the_batch_hook_only(monkeypatch):
    """On a terminal the bar draws without rich's refresh thread, and the last call of an
    epoch (steps_per_execution 2 over 3 batches: batch index 3) never counts past its end."""
    import io

    from rich.console import Console

    from kinit_cli.output import progress

    monkeypatch.setattr(progress, "REFRESH_S", 0.0)
    console = Console(file=io.StringIO(), force_terminal=True, width=100, color_system=None)
    lines: list[str] = []
    display = progress.ProgressDisplay(
        console, epochs=1, steps=3, batch_size=4, samples=10, epoch_line=lines.append
    )
    completed: list[int] = []
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(3)])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", steps_per_execution=2)

    def record(batch, logs):
        assert display.progress.live._refresh_thread is None
        completed.append(int(display.progress.tasks[-1].completed))

    model.fit(
        np.zeros((10, 1), np.float32),
        np.zeros(10, np.int64),
        batch_size=4,
        callbacks=[display, keras.callbacks.LambdaCallback(on_train_batch_end=record)],
        verbose=0,
    )
    assert completed == [2, 3]
    assert len(lines) == 1 and lines[0].startswith("epoch 1/1  loss ")
    assert "samples/s" in console.file.getvalue()


@pytest.mark.slow
def test_a_signal_between_epochs_keeps_every_finished_epoch(tmp_path):
    """A signal handled after an epoch's backup, before the next epoch begins, cuts no epoch
    short: the history keeps the epochs the backup holds."""
    from kinit_cli.errors import TrainingInterrupted
    from kinit_cli.training.plan import TrainOptions, plan
    from kinit_cli.training.trainer import Trainer

    trainer = Trainer(
        plan(DIGITS, ["train.epochs=4"], [], TrainOptions(output=str(tmp_path / "run")))
    )
    trainer.start()
    at_second_end = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: epoch == 1 and trainer.guard.interrupt(signal.SIGINT)
    )
    trainer.fit([at_second_end])
    with pytest.raises(TrainingInterrupted, match="2 of 4 epochs are saved"):
        trainer.finish()
    with (tmp_path / "run" / "history.csv").open() as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["0", "1"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(metrics["epoch_seconds"]) == 2


def test_progress_line_of_an_epoch_cut_short_says_so():
    import io

    from rich.console import Console

    from kinit_cli.output import progress

    console = Console(file=io.StringIO(), width=100, color_system=None)
    lines: list[str] = []
    display = progress.ProgressDisplay(
        console, epochs=2, steps=3, batch_size=4, samples=10, epoch_line=lines.append
    )
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(3)])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")

    def stop(batch, logs):
        if batch == 1:
            model.stop_training = True

    model.fit(
        np.zeros((10, 1), np.float32),
        np.zeros(10, np.int64),
        batch_size=4,
        epochs=2,
        callbacks=[keras.callbacks.LambdaCallback(on_train_batch_end=stop), display],
        verbose=0,
    )
    assert lines == ["epoch 1/2  stopped after 2 of 3 steps (not kept)"]
