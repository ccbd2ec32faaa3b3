"""The summary on run records built in code: exact means, standard errors and Welch's
p-values, the grouping by settings, failed runs counted, summary.csv, and the tables at 80
columns and with --wide."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from scipy import stats

from kinit_cli.output import summary_tables
from kinit_cli.results import grouping
from kinit_cli.results.records import RunRecord
from kinit_cli.results.summary import Difference, Estimate, summarize, write_csv

HE = {"class_name": "HeNormal", "config": {"seed": None}}
NORMAL = {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 0.05}}
KEY = "model.layers[0].config.kernel_initializer"


def config(initializer: Any, seed: int, lr: float = 0.002) -> dict[str, Any]:
    return {
        "name": f"run-{seed}",
        "seed": seed,
        "model": {
            "input_shape": [64],
            "layers": [
                {"class_name": "Dense", "config": {"units": 8, "kernel_initializer": initializer}},
                {"class_name": "Dense", "config": {"units": 10}},
            ],
        },
        "compile": {"optimizer": {"class_name": "Adam", "config": {"learning_rate": lr}}},
    }


def record(
    name: str,
    cfg: dict[str, Any],
    accuracy: float | None = None,
    status: str = "completed",
    settings: dict[str, Any] | None = None,
    folder: str = "runs",
    kernel_std: float = 0.17,
    change: float | None = None,
) -> RunRecord:
    """A run as its files would record it: test accuracy and loss, one kernel."""
    metrics: dict[str, Any] = {"status": status}
    if status == "completed":
        metrics |= {
            "test": {"accuracy": accuracy, "loss": 1 - accuracy},
            "train": {"loss": 2 * (1 - accuracy)},
            "epochs": 3,
            "wall_time_s": 1.5,
        }
    initializer = cfg["model"]["layers"][0]["config"]["kernel_initializer"]
    spec = {"class_name": "HeNormal", "config": {}} if initializer == "he_normal" else initializer
    weights_init = {
        "dense/kernel": {"path": "dense/kernel", "shape": [64, 8], "std": kernel_std,
                         "initializer": spec},
        "dense/bias": {"path": "dense/bias", "shape": [8], "std": 0.0, "initializer": None},
    }  # fmt: skip
    history = []
    if change is not None:
        history = [
            {"epoch": e, "path": "dense/kernel", "relative_change": change * e / 3}
            for e in range(4)
        ]
    return RunRecord(
        run_dir=Path(folder) / name,
        name=name,
        config=cfg,
        seed=cfg["seed"],
        status=status,
        error="boom" if status == "failed" else None,
        metrics=metrics,
        weights_init=weights_init,
        weight_history=history,
        settings=settings,
    )


def test_estimate_mean_se_and_range():
    e = Estimate.of([0.9, 0.8, 0.85, 0.95])
    assert e.mean == pytest.approx(0.875)
    assert e.se == pytest.approx(math.sqrt(((0.025**2 + 0.075**2) * 2) / 3) / 2)
    assert (e.n, e.min, e.max) == (4, 0.8, 0.95)
    assert e.document() == {"mean": e.mean, "se": e.se, "n": 4, "min": 0.8, "max": 0.95}
    one = Estimate.of([0.7])
    assert (one.mean, one.se, one.n) == (0.7, None, 1)
    assert Estimate.of([]) is None


def test_difference_is_welch():
    a, b = [0.91, 0.93, 0.92, 0.95], [0.88, 0.90, 0.86]
    d = Difference.between(a, b)
    ea, eb = Estimate.of(a), Estimate.of(b)
    assert d.diff == pytest.approx(ea.mean - eb.mean)
    assert d.se == pytest.approx(math.sqrt(ea.se**2 + eb.se**2))
    # Welch by hand: t = diff / se, Welch–Satterthwaite degrees of freedom.
    va, vb = ea.se**2, eb.se**2
    df = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 2)
    assert d.p == pytest.approx(2 * stats.t.sf(abs(d.diff / d.se), df))
    assert d.p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert Difference.between([0.9], b) == Difference(0.9 - eb.mean, None, None)
    # No spread on either side: the test is undefined, not an error.
    assert Difference.between([0.5, 0.5], [0.5, 0.5]).p is None


def test_runs_group_by_the_key_they_differ_in_dict_against_string():
    runs = [
        record("a1", config("he_normal", 1), 0.9),
        record("b1", config(NORMAL, 1), 0.8),
        record("a2", config("he_normal", 2), 0.92),
        record("b2", config(NORMAL, 2), 0.84),
    ]
    summary = summarize(runs)
    assert summary.keys == (KEY,)
    assert [g.settings for g in summary.groups] == [{KEY: "he_normal"}, {KEY: NORMAL}]
    assert [[r.name for r in g.runs] for g in summary.groups] == [["a1", "a2"], ["b1", "b2"]]
    base, other = summary.groups
    assert base.metrics["accuracy"].mean == pytest.approx(0.91)
    assert base.metrics["accuracy"].se == pytest.approx(0.01)
    assert other.metrics["loss"].mean == pytest.approx(0.18)
    assert base.difference == {}
    assert other.difference["accuracy"].diff == pytest.approx(-0.09)
    expected = stats.ttest_ind([0.8, 0.84], [0.9, 0.92], equal_var=False).pvalue
    assert other.difference["accuracy"].p == pytest.approx(expected)
    assert base.train_loss.mean == pytest.approx(0.18)
    assert (base.epochs.mean, base.seconds.mean) == (3, 1.5)
    assert base.label == "kernel_initializer=he_normal"
    assert other.label == (
        "kernel_initializer={class_name: RandomNormal, config: {mean: 0.0, stddev: 0.05}}"
    )


def test_dicts_differ_at_their_leaves_and_several_keys_make_groups():
    wide = {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 0.1}}
    runs = [
        record("a", config(NORMAL, 1, lr=0.01), 0.9),
        record("b", config(wide, 1, lr=0.01), 0.8),
        record("c", config(NORMAL, 2, lr=0.001), 0.7),
    ]
    summary = summarize(runs)
    lr = "compile.optimizer.config.learning_rate"
    assert summary.keys == (f"{KEY}.config.stddev", lr)
    assert [g.settings for g in summary.groups] == [
        {f"{KEY}.config.stddev": 0.05, lr: 0.01},
        {f"{KEY}.config.stddev": 0.1, lr: 0.01},
        {f"{KEY}.config.stddev": 0.05, lr: 0.001},
    ]
    assert summary.groups[2].label == "stddev=0.05, learning_rate=0.001"


def test_same_tail_keeps_the_keys_apart():
    keys = ["model.layers[0].config.units", "model.layers[1].config.units", "train.epochs"]
    assert grouping.short_keys(keys) == {
        keys[0]: "layers[0].config.units",
        keys[1]: "layers[1].config.units",
        "train.epochs": "epochs",
    }


def test_a_sweeps_trials_go_by_their_settings_and_failed_ones_count():
    grid = {KEY: "he_normal"}, {KEY: NORMAL}
    runs = [
        record("t0", config("he_normal", 1), 0.9, settings=grid[0], folder="sweep"),
        record("t1", config(NORMAL, 1), 0.8, settings=grid[1], folder="sweep"),
        record("t2", config("he_normal", 2), 0.94, settings=grid[0], folder="sweep"),
        record("t3", config(NORMAL, 2), status="failed", settings=grid[1], folder="sweep"),
    ]
    summary = summarize(runs)
    assert summary.keys == (KEY,)
    base, other = summary.groups
    assert (len(base.completed), base.failed) == (2, 0)
    assert (len(other.completed), other.failed) == (1, 1)
    assert other.metrics["accuracy"] == Estimate(0.8, None, 1, 0.8, 0.8)
    assert other.difference["accuracy"] == Difference(pytest.approx(-0.12), None, None)
    doc = summary.document()
    assert doc["groups"][1]["runs"] == [str(Path("sweep/t1")), str(Path("sweep/t3"))]
    assert doc["groups"][1]["failed"] == 1
    assert doc["groups"][1]["difference"]["accuracy"]["se"] is None


def test_kernels_against_theory_and_their_change():
    runs = [
        record("a1", config("he_normal", 1), 0.9, kernel_std=0.17, change=0.3),
        record("a2", config("he_normal", 2), 0.9, kernel_std=0.18, change=0.5),
        record("b1", config(NORMAL, 1), 0.8, kernel_std=0.05),
    ]
    base, other = summarize(runs).groups
    (kernel,) = base.kernels  # the bias (one dimension) is no kernel
    assert kernel.path == "dense/kernel" and kernel.initializer == "HeNormal"
    assert kernel.init_std.mean == pytest.approx(0.175)
    assert kernel.theory_std == pytest.approx(math.sqrt(2 / 64))
    assert kernel.relative_change.mean == pytest.approx(0.4)
    assert kernel.relative_change.se == pytest.approx(0.1)
    assert other.kernels[0].theory_std == pytest.approx(0.05)
    assert other.kernels[0].relative_change is None
    assert kernel.document()["relative_change"]["n"] == 2


def test_summary_csv(tmp_path):
    runs = [
        record("a1", config("he_normal", 1), 0.9),
        record("a2", config("he_normal", 2), 0.92),
        record("b1", config(NORMAL, 1), 0.8),
        record("b2", config(NORMAL, 2), status="failed"),
    ]
    summary = summarize(runs)
    path = tmp_path / "summary.csv"
    write_csv(summary, path)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    per = ("mean", "se", "min", "max", "diff", "diff_se", "p")
    assert list(rows[0]) == [
        KEY,
        "n",
        "failed",
        "incomplete",
        *(f"{m}_{w}" for m in ("accuracy", "loss") for w in per),
        "train_loss",
        "epochs",
        "seconds_per_trial",
    ]
    assert rows[0][KEY] == "he_normal"
    assert rows[1][KEY] == "{class_name: RandomNormal, config: {mean: 0.0, stddev: 0.05}}"
    assert [(row["n"], row["failed"]) for row in rows] == [("2", "0"), ("1", "1")]
    assert float(rows[0]["accuracy_mean"]) == pytest.approx(0.91)
    assert float(rows[0]["accuracy_se"]) == pytest.approx(0.01)
    assert rows[0]["accuracy_diff"] == rows[0]["accuracy_p"] == ""  # the baseline
    assert float(rows[1]["accuracy_diff"]) == pytest.approx(-0.11)
    assert rows[1]["accuracy_se"] == rows[1]["accuracy_diff_se"] == rows[1]["accuracy_p"] == ""
    assert float(rows[1]["train_loss"]) == pytest.approx(0.4)
    assert (rows[1]["epochs"], rows[1]["seconds_per_trial"]) == ("3.0", "1.5")


def _render(summary, width: int, wide: bool = False) -> str:
    out = Console(file=io.StringIO(), width=width, color_system=None, highlight=False)
    summary_tables.render(summary, out, wide=wide)
    return out.file.getvalue()


def _four_groups():
    lrs = (0.002, 0.0005)
    return summarize(
        [
            record(f"{i}{s}", config(init, s, lr), 0.9 - 0.01 * i + 0.003 * s, change=0.2)
            for s in (1, 2, 3)
            for i, (init, lr) in enumerate((a, b) for a in ("he_normal", NORMAL) for b in lrs)
        ]
    )


def test_tables_read_at_80_columns():
    summary = _four_groups()
    text = _render(summary, 80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "kernel_initializer" in text and "learning_rate" in text
    assert "0.906 ± 0.0017" in text  # group 1: 0.903, 0.906, 0.909
    assert "(0.903–0.909)" in text
    assert "baseline" in text and "Δ accuracy" in text
    assert "-0.03 ± 0.0024" in text  # group 4 against group 1
    assert "p=" in text
    assert "dense/kernel" in text and "0.1768" in text  # He's theory for 64 inputs
    assert "--wide shows every column" in text


def test_tables_with_wide_show_every_column():
    text = _render(_four_groups(), 80, wide=True)
    for header in ("loss", "Δ loss", "Train loss", "s/trial", "Epochs", "Initializer"):
        assert header in text
    assert "left out" not in text
    # A long value wraps at its spaces (at 36 columns, as every wrapping column of kinit's).
    assert "{class_name: RandomNormal, config:" in text and "{mean: 0.0, stddev: 0.05}}" in text


def test_tables_name_what_did_not_complete():
    runs = [
        record("a1", config("he_normal", 1), 0.9),
        record("b1", config(NORMAL, 1), status="failed"),
    ]
    text = _render(summarize(runs), 100)
    assert "1 failed" in text
    assert f"#2 b1 failed: boom ({Path('runs/b1')})" in text


def test_weight_history_and_names_do_not_make_runs_differ():
    """A sweep's trial records its weights; the same run trained without it is the same
    setting, and groups with it."""
    recorded = config("he_normal", 1) | {"name": "trial", "train": {"weight_history": True}}
    plain = config("he_normal", 2) | {"name": "mine", "train": {}}
    other = config(NORMAL, 1) | {"train": {"weight_history": True}}
    summary = summarize(
        [record("t", recorded, 0.9), record("r", plain, 0.92), record("o", other, 0.8)]
    )
    assert summary.keys == (KEY,)
    assert [[r.name for r in g.runs] for g in summary.groups] == [["t", "r"], ["o"]]
    assert recorded["train"] == {"weight_history": True}  # the record itself is untouched


def test_a_difference_of_float32_rounding_is_none():
    same = [0.9333333134651184, 0.949999988079071]
    d = Difference.between(list(reversed(same)), same)
    assert (d.diff, d.p) == (0.0, 1.0)
    assert Difference.between([0.95, 0.96], [0.94, 0.95]).diff == pytest.approx(0.01)


def test_interrupted_and_missing_runs_are_not_run_and_failed_ones_failed():
    runs = [
        record("a", config("he_normal", 1), 0.9),
        record("b", config("he_normal", 2), status="interrupted"),
        record("c", config("he_normal", 3), status="missing"),
        record("d", config("he_normal", 4), status="failed"),
        record("e", config("he_normal", 5), status="diverged"),
    ]
    (group,) = summarize(runs).groups
    assert (len(group.completed), group.failed, group.incomplete) == (1, 2, 2)
    assert group.document()["incomplete"] == 2
