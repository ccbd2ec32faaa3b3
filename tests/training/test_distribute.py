"""tf.distribute: mirrored training over logical CPU devices and multi-worker training with
real worker processes on 127.0.0.1, in subprocesses; cluster descriptions in-process.

Logical devices and the cluster must be configured before TensorFlow's runtime starts, so
these runs cannot share the test process (where TensorFlow is already running).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kinit_cli.errors import DistributeError
from kinit_cli.training.distribute import tf_config
from tests.conftest import DIGITS, KINIT, kinit


def kinit_train(out: Path, *args: str) -> subprocess.CompletedProcess:
    return kinit("train", DIGITS, "--set", "train.epochs=3", "-q", "--output", str(out), *args)


@pytest.mark.slow
def test_mirrored_over_two_logical_cpus_matches_one_device(tmp_path):
    one = kinit_train(tmp_path / "one")
    two = kinit_train(
        tmp_path / "two", "--set", "distribute={strategy: mirrored, devices: [cpu:0, cpu:1]}"
    )
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    m1, m2 = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("one", "two"))
    assert (m1["strategy"], m1["num_replicas"]) == ("default", 1)
    assert (m2["strategy"], m2["num_replicas"], m2["devices"]) == (
        "mirrored",
        2,
        ["CPU:0", "CPU:1"],
    )
    assert abs(m1["test"]["accuracy"] - m2["test"]["accuracy"]) <= 0.03
    w1, w2 = (
        json.loads((tmp_path / n / "weights-final.json").read_text())["variables"]
        for n in ("one", "two")
    )
    for a, b in zip(w1, w2, strict=True):
        assert a["path"] == b["path"]
        assert b["l2"] == pytest.approx(a["l2"], rel=0.02), a["path"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            "distribute={strategy: mirrored, devices: [gpu:0]}",
            "error: distribute.devices: GPU:0 does not exist; TensorFlow sees ",
        ),
        (
            "distribute={strategy: mirrored, devices: [tpu:0]}",
            "error: distribute.devices: 'tpu:0' is not a device name; expected cpu:N or gpu:N",
        ),
        (
            "distribute={strategy: default, devices: [cpu:0, cpu:1]}",
            "error: distribute.devices lists several devices but the strategy is default",
        ),
        (
            "distribute.strategy=multi_worker_mirrored",
            "error: distribute.strategy multi_worker_mirrored needs the cluster: set TF_CONFIG",
        ),
        (
            "distribute={strategy: mirrored, cluster: {workers: ['127.0.0.1:1'], index: 0}}",
            "error: distribute.cluster is set but the strategy is mirrored",
        ),
    ],
)
def test_bad_distribution_settings(tmp_path, setting, message, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    result = kinit_train(tmp_path / "bad", "--set", setting)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert not (tmp_path / "bad").exists()


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_worker(index: int, ports: list[int], out: Path, *args: str) -> subprocess.Popen:
    """One `kinit train` worker of a cluster on 127.0.0.1, with its own TF_CONFIG."""
    tf_config = {
        "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
        "task": {"type": "worker", "index": index},
    }
    scratch = out.parent / f"tmp{index}"
    scratch.mkdir(exist_ok=True)
    return subprocess.Popen(
        [str(KINIT), "train", DIGITS, "-q", "--output", str(out), "--strategy",
         "multi_worker_mirrored", "--set", "distribute.timeout=20", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**quiet_env(), "TF_CONFIG": json.dumps(tf_config), "TMPDIR": str(scratch)},
    )  # fmt: skip


def quiet_env() -> dict[str, str]:
    """This environment without the TensorFlow log level an in-process test may have left
    (kinit sets its own only where none is set): the workers log as a user's would."""
    return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


@contextmanager
def two_workers_past_one_epoch(tmp_path: Path) -> Iterator[list[subprocess.Popen]]:
    """Two workers set to train 500 epochs, handed over once they have finished one together;
    both are stopped and reaped afterwards."""
    ports = free_ports(2)
    args = ("--set", "train.epochs=500")
    workers = [start_worker(i, ports, tmp_path / f"out{i}", *args) for i in (0, 1)]
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "out0" / "backup").exists():
            chief = workers[0]
            assert time.monotonic() < deadline and chief.poll() is None, chief.stderr.read()
            time.sleep(0.5)
        yield workers
    finally:
        for w in workers:
            w.kill()
            w.communicate()  # reaps the process and closes its pipes


@pytest.mark.slow
def test_two_workers_train_together_and_only_the_chief_writes(tmp_path):
    ports = free_ports(2)
    log = tmp_path / "shared" / "log.csv"  # an absolute path: only the chief writes it
    log.parent.mkdir()
    callbacks = f"train.callbacks=[{{class_name: CSVLogger, config: {{filename: '{log}'}}}}]"
    args = ("--set", "train.epochs=3", "--set", callbacks)
    workers = [start_worker(i, ports, tmp_path / f"out{i}", *args) for i in (0, 1)]
    outputs = [w.communicate(timeout=300) for w in workers]
    for w, (_, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err
    one = kinit_train(tmp_path / "one")
    assert one.returncode == 0, one.stderr

    assert not (tmp_path / "out1").exists()  # the other worker writes nothing of its own
    assert list((tmp_path / "tmp1").iterdir()) == []  # and removes its private folder
    assert "Run saved by the chief worker" in outputs[1][0]
    assert log.read_text().splitlines()[0] == "epoch,accuracy,loss,val_accuracy,val_loss"
    assert [line.split(",")[0] for line in log.read_text().splitlines()[1:]] == ["0", "1", "2"]
    m = json.loads((tmp_path / "out0" / "metrics.json").read_text())
    assert (m["strategy"], m["num_replicas"], m["epochs"]) == ("multi_worker_mirrored", 2, 3)
    assert len(m["epoch_seconds"]) == 3  # the loop drives the epoch timer as fit does
    assert m["cluster"] == {
        "workers": 2,
        "task": {"type": "worker", "index": 0},
        "is_chief": True,
        "from": "TF_CONFIG",
    }
    # Both replicas together see the batches one device sees: the same training, up to
    # the order of floating-point sums.
    single = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert m["test"]["accuracy"] == pytest.approx(single["test"]["accuracy"], abs=0.01)
    assert m["test"]["loss"] == pytest.approx(single["test"]["loss"], rel=1e-3)
    w_multi, w_one = (
        json.loads((tmp_path / n / "weights-final.json").read_text())["variables"]
        for n in ("out0", "one")
    )
    for a, b in zip(w_multi, w_one, strict=True):
        assert a["path"] == b["path"]
        assert a["l2"] == pytest.approx(b["l2"], rel=1e-3), a["path"]


@pytest.mark.slow
def test_mixed_precision_and_xla_under_both_strategies(tmp_path):
    """mixed_float16 with XLA: mirrored over two logical CPUs and two workers of one
    replica each run the same computation, so they end on the same numbers."""
    fast = ("--set", "train.precision=mixed_float16", "--set", "train.jit_compile=true")
    epochs = ("--set", "train.epochs=3")
    ports = free_ports(2)
    workers = [start_worker(i, ports, tmp_path / f"out{i}", *fast, *epochs) for i in (0, 1)]
    for w in workers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
    mirrored = kinit_train(
        tmp_path / "mirrored",
        *fast,
        "--set",
        "distribute={strategy: mirrored, devices: [cpu:0, cpu:1]}",
    )
    assert mirrored.returncode == 0, mirrored.stderr
    m, w = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("mirrored", "out0"))
    assert (m["num_replicas"], w["num_replicas"], w["per_replica_batch_size"]) == (2, 2, 16)
    assert m["test"]["accuracy"] >= 0.9
    assert w["test"]["loss"] == pytest.approx(m["test"]["loss"], rel=1e-3)
    assert w["test"]["accuracy"] == pytest.approx(m["test"]["accuracy"], abs=0.01)


@pytest.mark.slow
def test_a_worker_that_dies_stops_the_other_with_a_clear_error(tmp_path):
    with two_workers_past_one_epoch(tmp_path) as (chief, other):
        other.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        _, err = chief.communicate(timeout=120)
        waited = time.monotonic() - killed
    assert chief.returncode == 1
    assert err.startswith("error: worker 0 lost contact with the other workers"), err
    assert "Traceback" not in err and "E0000" not in err
    assert waited < 100  # bounded by distribute.timeout and the heartbeats, not a hang


@pytest.mark.slow
def test_ctrl_c_on_the_chief_stops_every_worker_at_the_same_step(tmp_path):
    with two_workers_past_one_epoch(tmp_path) as (chief, other):
        chief.send_signal(signal.SIGINT)
        (_, chief_err), (_, other_err) = chief.communicate(60), other.communicate(60)
    assert (chief.returncode, other.returncode) == (130, 130), (chief_err, other_err)
    metrics = json.loads((tmp_path / "out0" / "metrics.json").read_text())
    done = metrics["epochs"]
    assert metrics["status"] == "interrupted" and 1 <= done < 500
    assert chief_err.startswith(
        f"error: interrupted by SIGINT; {done} of 500 epochs are saved. They are in "
    ), chief_err
    assert other_err.startswith("error: interrupted by SIGINT; "), other_err
    assert other_err.rstrip().endswith("The chief worker keeps the run.")


@pytest.mark.slow
def test_a_cluster_that_never_forms_ends_with_a_clear_error(tmp_path):
    ports = free_ports(2)
    alone = start_worker(0, ports, tmp_path / "out0", "--set", "distribute.timeout=5")
    _, err = alone.communicate(timeout=120)
    assert alone.returncode == -signal.SIGKILL  # stopped by kinit's watchdog
    assert err.startswith(
        "error: the cluster did not form within 5 s (distribute.timeout): this is worker 0 "
        f"at 127.0.0.1:{ports[0]}, waiting for 127.0.0.1:{ports[1]}."
    ), err
    assert not (tmp_path / "out0").exists()


def test_cluster_section_becomes_tf_config():
    cluster = tf_config({}, {"workers": ["10.0.0.1:2222", "10.0.0.2:2222"], "index": 1})
    assert cluster.jobs == {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}
    assert (cluster.task_type, cluster.index, cluster.workers) == ("worker", 1, 2)
    assert (cluster.is_chief, cluster.address, cluster.source) == (
        False,
        "10.0.0.2:2222",
        "distribute.cluster",
    )


def test_tf_config_with_a_chief():
    text = json.dumps(
        {
            "cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]},
            "task": {"type": "worker", "index": 0},
        }
    )
    cluster = tf_config({"TF_CONFIG": text}, None)
    assert (cluster.workers, cluster.is_chief, cluster.source) == (3, False, "TF_CONFIG")
    chief = tf_config({"TF_CONFIG": text.replace('"worker", "index"', '"chief", "index"')}, None)
    assert chief.is_chief


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"cluster": {"worker": ["a:1"]', "TF_CONFIG is not valid JSON: Expecting ',' delimiter"),
        ("[]", 'TF_CONFIG: expected an object with "cluster"'),
        (
            '{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}',
            "TF_CONFIG: task index 2 is out of range: the cluster has 2 worker task(s), "
            "indices 0 to 1",
        ),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
            'TF_CONFIG: task type "chief" is not in the cluster (worker)',
        ),
        (
            '{"cluster": {"worker": ["a:1"], "ps": ["b:1"]}, "task": {"type": "worker", '
            '"index": 0}}',
            'TF_CONFIG: task type "ps" is not used by multi_worker_mirrored',
        ),
        (
            '{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}',
            "TF_CONFIG: 'a' in 'worker' is not a host:port address",
        ),
        ('{"cluster": {"worker": ["a:1"]}}', 'TF_CONFIG: expected "task": {"type": "worker"'),
    ],
)
def test_bad_tf_config(text, message):
    with pytest.raises(DistributeError) as info:
        tf_config({"TF_CONFIG": text}, None)
    assert str(info.value).startswith(message), str(info.value)


def test_cluster_given_twice():
    with pytest.raises(DistributeError, match="the cluster is given twice"):
        tf_config({"TF_CONFIG": "{}"}, {"workers": ["a:1"], "index": 0})


def test_the_watchdog_asks_first_and_the_error_is_raised_for_the_cli():
    from kinit_cli.errors import PeerError
    from kinit_cli.training.distribute import deadline

    with pytest.raises(PeerError, match="^the cluster did not form$"):
        with deadline(0.2, PeerError("the cluster did not form"), grace=30):
            time.sleep(60)  # a wait the process can leave: the handler raises in it
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL


def test_a_process_that_cannot_answer_gets_the_errors_lines_written_for_it():
    # SIGUSR1 blocked stands for TensorFlow holding the interpreter in its C++ wait.
    code = (
        "import signal, time\n"
        "from kinit_cli.errors import PeerError\n"
        "from kinit_cli.training.distribute import deadline\n"
        "with deadline(0.2, PeerError('the cluster did not form'), grace=0.5):\n"
        "    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})\n"
        "    time.sleep(60)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL
    assert done.stderr == "error: the cluster did not form\n"
