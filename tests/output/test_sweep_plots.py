"""--plot of sweep and compare: the groups' learning curves, activation std at
initialisation and kernel change, each group averaged over its runs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kinit_cli.cli import cli
from kinit_cli.errors import UsageError
from kinit_cli.output import sweep_plots
from kinit_cli.results.records import RunRecord
from tests.conftest import DIGITS

PNG = b"\x89PNG\r\n\x1a\n"
SHAPES = {"dense/kernel": [64, 8], "dense/bias": [8], "dense_1/kernel": [8, 10]}


def record(seed: int, scale: float, status: str = "completed", history: bool = True) -> RunRecord:
    """A run of a two-layer model whose numbers are `scale` times the seed's."""
    rows = [
        {"epoch": e, "loss": scale * (2 - e) + seed, "accuracy": 0.5 + 0.1 * e, "val_loss": 1.0}
        for e in range(2)
    ]
    changes = {"dense/kernel": 0.1 * scale * seed, "dense/bias": 9.0, "dense_1/kernel": 0.5}
    weight_history = [
        {"epoch": e, "path": p, "mean": 0.0, "std": 0.1, "l2": 1.0, "relative_change": c * e}
        for e in (0, 1, 2)
        for p, c in changes.items()
    ]
    layers = [
        {"name": "dense", "class_name": "Dense", "mean": 0.0, "std": scale * seed},
        {"name": "dense_1", "class_name": "Dense", "mean": 0.0, "std": 0.01 * scale},
    ]
    return RunRecord(
        run_dir=Path(f"run-{scale}-{seed}"),
        name=f"run-{scale}-{seed}",
        config={},
        seed=seed,
        status=status,
        history=rows,
        weights_init={p: {"shape": s} for p, s in SHAPES.items()},
        weight_history=weight_history if history else [],
        activations={"batch_size": 32, "layers": layers},
    )


GROUPS = [
    ("kernel_initializer=glorot_uniform", [record(1, 1.0), record(2, 1.0)]),
    ("kernel_initializer=he_normal", [record(1, 2.0), record(2, 2.0), record(3, 2.0, "failed")]),
]


@pytest.fixture
def figure():
    made = []

    def make(groups, names=sweep_plots.FIGURES):
        fig = sweep_plots.figure(groups, names)
        made.append(fig)
        return fig

    yield make
    plt = sweep_plots.pyplot()
    for fig in made:
        if fig is not None:
            plt.close(fig)


def panels(fig) -> dict[str, object]:
    return {ax.get_title(): ax for ax in fig.axes if ax.get_title()}


def test_one_figure_holds_every_panel_and_one_legend_naming_each_group(figure):
    fig = figure(GROUPS)
    assert list(panels(fig)) == [
        "loss",
        "accuracy",
        "Activation std at initialisation",
        "Kernel change over training",
    ]
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "kernel_initializer=glorot_uniform  (n=2)",
        "kernel_initializer=he_normal  (n=2)",  # the failed run is not counted
    ]


def test_learning_curves_are_the_mean_over_completed_runs_with_a_standard_error_band(figure):
    loss = panels(figure(GROUPS))["loss"]
    # Each group: training and validation; then the grey key to the line styles.
    lines = loss.get_lines()
    assert [line.get_linestyle() for line in lines] == ["-", "--", "-", "--", "-", "--"]
    assert [line.get_color() for line in lines[:4]] == ["C0", "C0", "C1", "C1"]
    np.testing.assert_allclose(lines[0].get_xdata(), [1, 2])  # epochs counted from 1
    # glorot: loss = (2 - e) + seed, seeds 1 and 2: mean 3.5 then 2.5, se 0.5 both.
    np.testing.assert_allclose(lines[0].get_ydata(), [3.5, 2.5])
    np.testing.assert_allclose(lines[2].get_ydata(), [5.5, 3.5])  # he_normal, scale 2
    band = loss.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() == pytest.approx(2.0) and band[:, 1].max() == pytest.approx(4.0)
    # Validation loss is the same in every run: no spread, no band beyond the line.
    assert loss.get_xlabel() == "epoch"
    assert loss.get_legend() is not None


def test_activations_are_drawn_per_layer_on_a_log_scale(figure):
    ax = panels(figure(GROUPS))["Activation std at initialisation"]
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["dense", "dense_1"]
    assert ax.get_xlabel() == "layer output (first training batch, 32 examples)"
    means = [c.lines[0].get_ydata() for c in ax.containers]
    np.testing.assert_allclose(means[0], [1.5, 0.01])
    np.testing.assert_allclose(means[1], [3.0, 0.02])


def test_weight_change_shows_kernels_only_at_the_last_epoch(figure):
    ax = panels(figure(GROUPS))["Kernel change over training"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["dense/kernel", "dense_1/kernel"]
    means = [c.lines[0].get_ydata() for c in ax.containers]
    np.testing.assert_allclose(means[0], [0.3, 1.0])  # 0.1 * seed * 2 epochs, mean of 1, 2
    np.testing.assert_allclose(means[1], [0.6, 1.0])


def test_a_folder_gets_a_figure_each_and_figures_without_data_are_left_out(tmp_path):
    written = sweep_plots.sweep_figures(GROUPS, tmp_path / "plots")
    assert written == [tmp_path / "plots" / name for name in sweep_plots.FIGURES]
    assert all(p.read_bytes().startswith(PNG) for p in written)
    without = [(label, [record(1, 1.0, history=False)]) for label, _ in GROUPS]
    written = sweep_plots.sweep_figures(without, tmp_path / "fewer")
    assert [p.name for p in written] == ["learning-curves.png", "activations-init.png"]


def test_existing_figures_are_kept_unless_overwrite(tmp_path):
    target = tmp_path / "all.png"
    target.write_bytes(b"mine")
    with pytest.raises(UsageError, match=f"^{target} already exists; choose another --plot"):
        sweep_plots.sweep_figures(GROUPS, target)
    assert target.read_bytes() == b"mine"
    assert sweep_plots.sweep_figures(GROUPS, target, overwrite=True) == [target]
    assert target.read_bytes().startswith(PNG)
    a_file = tmp_path / "plots"
    a_file.write_text("x")
    with pytest.raises(UsageError, match="is a file: give a folder, or a FILE.png"):
        sweep_plots.sweep_figures(GROUPS, a_file)


def test_without_matplotlib_the_message_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(UsageError, match=r"pip install 'kinit\[plot\]'"):
        sweep_plots.sweep_figures(GROUPS, tmp_path / "plots")
    assert not (tmp_path / "plots").exists()


@pytest.mark.slow
def test_sweep_plot_draws_the_three_figures(tmp_path):
    grid = "model.layers[0].config.kernel_initializer=[glorot_uniform, he_normal]"
    args = ["sweep", DIGITS, "--set", "train.epochs=1", "--grid", grid, "--seeds", "1"]
    plots = tmp_path / "plots"
    result = CliRunner().invoke(
        cli, [*args, "--jobs", "2", "-o", str(tmp_path / "sweep"), "--plot", str(plots), "-q"]
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in plots.iterdir())
    assert names == ["activations-init.png", "learning-curves.png", "weight-change.png"]
    assert all((plots / n).read_bytes().startswith(PNG) for n in names)
    assert f"Figure written to {plots / 'learning-curves.png'}" in result.stderr
