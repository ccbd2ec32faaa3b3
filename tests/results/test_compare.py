"""kinit compare on real runs: grouped by the initializer they differ in, each mean that of
its runs' metrics.json, the --json document's shape, a sweep directory's trials grouped by
their settings with a failed trial counted, --plot's call, and bad targets refused."""

from __future__ import annotations

import json
import math
import shutil
import sys
import types
from pathlib import Path

import pytest
import yaml
from scipy import stats

from kinit_cli.cli import cli
from kinit_cli.storage import sweepdir
from tests.results.conftest import INITIALIZERS, KEY


def _test_metrics(run: Path) -> dict[str, float]:
    return json.loads((run / "metrics.json").read_text())["test"]


def _compare(runner, *args: str, columns: int = 200):
    result = runner.invoke(cli, ["compare", *args], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.slow  # digits_runs trains for seconds
def test_compare_groups_runs_by_initializer(runner, digits_runs):
    result = _compare(runner, *map(str, digits_runs), "--json")
    doc = json.loads(result.stdout)
    assert doc["keys"] == [KEY] and doc["baseline"] == 0
    expected = [yaml.safe_load(text) for text in INITIALIZERS]
    assert [g["settings"] for g in doc["groups"]] == [{KEY: value} for value in expected]
    by_group = [digits_runs[0::2], digits_runs[1::2]]  # trained seed by seed
    for group, runs in zip(doc["groups"], by_group, strict=True):
        assert group["runs"] == [str(r) for r in runs]
        assert group["failed"] == 0
        assert set(group) == {
            "settings", "runs", "metrics", "failed", "incomplete", "difference", "train_loss", "epochs",
            "seconds_per_trial", "kernels",
        }  # fmt: skip
        for name in ("accuracy", "loss"):
            values = [_test_metrics(r)[name] for r in runs]
            metric = group["metrics"][name]
            assert set(metric) == {"mean", "se", "n", "min", "max"}
            assert metric["n"] == 2
            assert metric["mean"] == pytest.approx(sum(values) / 2)
            assert metric["se"] == pytest.approx(abs(values[0] - values[1]) / 2)
            assert (metric["min"], metric["max"]) == (min(values), max(values))
        assert group["epochs"]["mean"] == 1
    assert doc["groups"][0]["difference"] == {}
    base, other = ([_test_metrics(r)["accuracy"] for r in runs] for runs in by_group)
    diff = doc["groups"][1]["difference"]["accuracy"]
    assert diff["diff"] == pytest.approx(sum(other) / 2 - sum(base) / 2)
    assert diff["p"] == pytest.approx(stats.ttest_ind(other, base, equal_var=False).pvalue)


@pytest.mark.slow  # digits_runs trains for seconds
def test_compare_kernels_hold_init_std_and_theory(runner, digits_runs):
    doc = json.loads(_compare(runner, *map(str, digits_runs), "--json").stdout)
    kernels = {k["path"]: k for k in doc["groups"][0]["kernels"]}
    assert list(kernels) == ["dense/kernel", "dense_1/kernel", "dense_2/kernel"]
    stds = [
        next(v["std"] for v in json.loads((r / "weights-init.json").read_text())["variables"]
             if v["path"] == "dense/kernel")
        for r in digits_runs[0::2]
    ]  # fmt: skip
    first = kernels["dense/kernel"]
    assert first["initializer"] == "GlorotUniform"
    assert first["init_std"]["mean"] == pytest.approx(sum(stds) / 2)
    assert first["theory_std"] == pytest.approx(math.sqrt(2 / (64 + 128)))
    assert doc["groups"][1]["kernels"][0]["theory_std"] == pytest.approx(0.05)


@pytest.mark.slow  # digits_runs trains for seconds
def test_compare_table_at_80_columns(runner, digits_runs):
    result = _compare(runner, *map(str, digits_runs), columns=80)
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    accuracy = [_test_metrics(r)["accuracy"] for r in digits_runs[0::2]]
    text = result.stdout
    assert "kernel_initializer" in text and "glorot_uniform" in text and "RandomNormal" in text
    assert f"{sum(accuracy) / 2:.4g} ± {abs(accuracy[0] - accuracy[1]) / 2:.2g}" in text
    assert "baseline" in text and "dense_2/kernel" in text


def _sweep(tmp_path: Path, runs: list[Path]) -> Path:
    """A sweep directory holding copies of the runs as its trials, and one trial that
    failed before its run directory existed."""
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / sweepdir.SWEEP).write_text("config: digits.yaml\n")
    trials = []
    for i, run in enumerate(runs):
        shutil.copytree(run, sweep / f"t{i}")
        combination = i % 2
        settings = {KEY: yaml.safe_load(INITIALIZERS[combination])}
        trials.append(
            {"name": f"t{i}", "combination": combination, "settings": settings,
             "seed": 1 + i // 2, "status": "completed", "error": None}
        )  # fmt: skip
    trials.append(
        {"name": "t4", "combination": 0, "settings": trials[0]["settings"], "seed": 3,
         "status": "failed", "error": "PluginError: no such initializer"}
    )  # fmt: skip
    (sweep / sweepdir.TRIALS).write_text(json.dumps({"trials": trials}))
    return sweep


@pytest.mark.slow  # digits_runs trains for seconds
def test_compare_a_sweep_groups_its_trials_and_counts_the_failed(runner, digits_runs, tmp_path):
    sweep = _sweep(tmp_path, digits_runs)
    doc = json.loads(_compare(runner, str(sweep), "--json").stdout)
    assert doc["keys"] == [KEY]
    base, other = doc["groups"]
    assert base["runs"] == [str(sweep / name) for name in ("t0", "t2", "t4")]
    assert (base["metrics"]["accuracy"]["n"], base["failed"]) == (2, 1)
    assert (other["metrics"]["accuracy"]["n"], other["failed"]) == (2, 0)
    values = [_test_metrics(r)["accuracy"] for r in digits_runs[1::2]]
    assert other["metrics"]["accuracy"]["mean"] == pytest.approx(sum(values) / 2)
    text = _compare(runner, str(sweep), columns=100).stdout
    assert "1 failed" in text
    assert "#1 t4 failed: PluginError: no such initializer" in " ".join(text.split())


@pytest.mark.slow  # digits_runs trains for seconds
def test_compare_plot_hands_the_groups_to_the_figures(runner, digits_runs, monkeypatch, tmp_path):
    calls = []

    def sweep_figures(groups, path, overwrite=False):
        calls.append((groups, path, overwrite))
        return [path / "learning-curves.png"]

    fake = types.ModuleType("kinit_cli.output.sweep_plots")
    fake.sweep_figures = sweep_figures  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kinit_cli.output.sweep_plots", fake)
    out = tmp_path / "figures"
    doc = json.loads(_compare(runner, *map(str, digits_runs), "--json", "--plot", str(out)).stdout)
    ((groups, path, overwrite),) = calls
    assert path == out and overwrite is False
    assert [label for label, _ in groups] == [
        "kernel_initializer=glorot_uniform",
        "kernel_initializer={class_name: RandomNormal, config: {stddev: 0.05}}",
    ]
    assert [[r.run_dir for r in runs] for _, runs in groups] == [
        digits_runs[0::2],
        digits_runs[1::2],
    ]
    assert doc["plots"] == [str(out / "learning-curves.png")]


@pytest.mark.slow  # digits_runs trains for seconds
def test_compare_names_each_run_once(runner, digits_runs):
    doc = json.loads(_compare(runner, str(digits_runs[0]), str(digits_runs[0]), "--json").stdout)
    assert doc["keys"] == [] and doc["groups"][0]["runs"] == [str(digits_runs[0])]
    assert doc["groups"][0]["metrics"]["accuracy"]["se"] is None


@pytest.mark.parametrize("kind", ["missing", "plain folder", "empty sweep"])
def test_compare_refuses_what_is_no_run(runner, tmp_path, kind):
    target = tmp_path / "target"
    if kind != "missing":
        target.mkdir()
    if kind == "empty sweep":
        (target / sweepdir.SWEEP).write_text("config: digits.yaml\n")
    result = runner.invoke(cli, ["compare", str(target)], env={"COLUMNS": "1000"})
    assert result.exit_code == 2
    if kind == "empty sweep":
        message = f"error: nothing to compare: {target} holds no run yet\n"
    else:
        message = (
            f"error: {target} is neither a kinit run directory nor a sweep directory (a run "
            "has .kinit-run, a sweep sweep.yaml)\n"
        )
    assert result.output == message
