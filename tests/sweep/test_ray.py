"""kinit sweep --cluster ray: the same trials as Ray tasks, on a local Ray instance the
sweep starts on 127.0.0.1 and stops; without Ray, one message and nothing written."""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import wait

import pytest

from kinit_cli.sweep import run as sweep_run
from kinit_cli.sweep.spec import Trial
from kinit_cli.sweep.worker import TrialJob
from tests.conftest import DIGITS
from tests.sweep.conftest import KEY, sweep

GRID = f"{KEY}=[glorot_uniform, he_normal]"


@pytest.fixture
def local_ray(monkeypatch):
    """No cluster named: the pool starts its own instance, on 127.0.0.1. (The variables it
    sets, undone afterwards, are read when Ray is imported: before the first import.)"""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    pytest.importorskip("ray")


@pytest.mark.slow
def test_a_sweep_on_a_local_ray_instance(local_ray, tmp_path):
    import ray

    folder = tmp_path / "sweep"
    code, out, err = sweep(
        DIGITS,
        "--set",
        "train.epochs=1",
        "--grid",
        GRID,
        "--seeds",
        "1",
        "--jobs",
        "2",
        "--cluster",
        "ray",
        "-o",
        str(folder),
        "--json",
    )
    assert code == 0, err
    trials = json.loads((folder / "trials.json").read_text())["trials"]
    assert [(t["name"], t["status"]) for t in trials] == [
        ("1-glorot_uniform-seed1", "completed"),
        ("2-he_normal-seed1", "completed"),
    ]
    document = json.loads(out)
    assert [g["settings"] for g in document["groups"]] == [
        {KEY: "glorot_uniform"},
        {KEY: "he_normal"},
    ]
    for group, trial in zip(document["groups"], trials, strict=True):
        metrics = json.loads((folder / trial["name"] / "metrics.json").read_text())
        assert group["runs"] == [str(folder / trial["name"])]
        assert group["metrics"]["accuracy"]["n"] == 1
        assert group["metrics"]["accuracy"]["mean"] == pytest.approx(metrics["test"]["accuracy"])
    assert not ray.is_initialized()  # the instance it started is stopped


@pytest.mark.slow
def test_interrupt_cancels_the_tasks_and_the_sweep_records_them_interrupted(local_ray):
    import ray

    from kinit_cli.sweep.ray_pool import RayPool

    def busy(seconds: float) -> str:
        """Python code that runs a while (an interrupt is seen between bytecodes, as
        Keras's training loop sees it between steps); sent to Ray by value."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.05)
        return "ran to its end"

    pool = RayPool(1, "tensorflow")
    try:
        assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
        running = pool.submit(busy, 60)
        queued = pool.submit(busy, 60)  # one CPU: it waits for the first
        time.sleep(3)
        pool.interrupt()
        done, _ = wait([running, queued], timeout=30)
        assert done == {running, queued}
    finally:
        pool.shutdown()
    assert not ray.is_initialized()
    trial = Trial("1-a-seed1", None, 1)  # type: ignore[arg-type]
    job = TrialJob(spec=None, combination=None, trial=trial)  # type: ignore[arg-type]
    assert running.cancelled() and queued.cancelled()
    for future in (running, queued):
        outcome = sweep_run._outcome(future, job)
        assert (outcome.name, outcome.status) == ("1-a-seed1", "interrupted")


def test_without_ray_the_message_names_the_extra_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    folder = tmp_path / "sweep"
    code, out, err = sweep(DIGITS, "--grid", GRID, "--cluster", "ray", "-o", str(folder))
    assert code == 2
    assert err == "error: --cluster ray needs Ray, an optional extra: pip install 'kinit[ray]'\n"
    assert out == "" and not folder.exists()
