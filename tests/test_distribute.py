"""tf.distribute: mirrored training over logical CPU devices, in real subprocesses.

Logical devices must be configured before TensorFlow's runtime starts, so these runs cannot
share the test process (where TensorFlow is already running).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KINIT = Path(sys.executable).parent / "kinit"
DIGITS = str(ROOT / "configs" / "digits.yaml")


def kinit_train(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(KINIT), "train", DIGITS, "--set", "train.epochs=3", "-q", "--output", str(out), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=300,
    )


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
            "error: distribute.strategy multi_worker_mirrored is not available yet in kinit",
        ),
    ],
)
def test_bad_distribution_settings(tmp_path, setting, message):
    result = kinit_train(tmp_path / "bad", "--set", setting)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert not (tmp_path / "bad").exists()
