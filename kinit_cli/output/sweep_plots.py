"""`kinit sweep --plot` and `kinit compare --plot`: the groups of a comparison side by side,
each a colour, averaged over its seeds with the standard error shown: learning curves,
each layer's activation std at initialisation (a log scale, so that a signal that dies or
explodes through the depth shows at a glance, as in Glorot & Bengio 2010 and He et al.
2015), and how far training moved each kernel.

matplotlib is an optional extra (`pip install 'kinit[plot]'`); it is imported here only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kinit_cli.errors import UsageError
from kinit_cli.output.plot import pyplot, save, whole_epochs
from kinit_cli.output.tables import middle

Groups = Sequence[tuple[str, Sequence[Any]]]  # (label, RunRecords)

# A folder's figures, by the panels each holds.
LEARNING_CURVES = "learning-curves.png"
ACTIVATIONS = "activations-init.png"
WEIGHT_CHANGE = "weight-change.png"
FIGURES = (LEARNING_CURVES, ACTIVATIONS, WEIGHT_CHANGE)
# history.csv columns that are neither the loss nor a metric.
NOT_METRICS = ("epoch", "loss", "learning_rate", "lr")
LABEL_WIDTH = 72  # characters of a group's label in a legend
DPI = 150


@dataclass(frozen=True)
class Series:
    """One group's mean over its runs at each x, with the standard error (nan where fewer
    than two runs have a value) and how many runs each point averages."""

    x: np.ndarray
    mean: np.ndarray
    se: np.ndarray
    n: np.ndarray


# Suffixes that name a file, not a folder: --plot draws PNG files only.
_NOT_FOLDERS = {".pdf", ".svg", ".eps", ".jpg", ".jpeg", ".gif", ".tif", ".tiff", ".txt"}


def check(path: Path, overwrite: bool = False, can_overwrite: bool = True) -> None:
    """UsageError unless the figures can be written at `path` (a .png file, or a folder
    that does not hold them yet): before a sweep starts, not after it ran.
    `can_overwrite`: the command has --overwrite to suggest."""
    pyplot()
    if path.suffix.lower() in _NOT_FOLDERS and not path.is_dir():
        raise UsageError(
            f"--plot {path}: kinit draws PNG files; give FILE.png (one figure) or a folder"
        )
    if path.suffix.lower() == ".png":
        if not path.parent.is_dir():
            raise UsageError(f"--plot {path}: the folder {path.parent} does not exist")
        targets = [path]
    else:
        if path.exists() and not path.is_dir():
            raise UsageError(f"--plot {path} is a file: give a folder, or a FILE.png")
        targets = [path / name for name in FIGURES]
    taken = [t for t in targets if t.exists() or t.is_symlink()]
    if taken and not overwrite:
        names = ", ".join(str(t) for t in taken)
        raise UsageError(
            f"{names} already exist{'s' * (len(taken) == 1)}; choose another --plot path"
            + (" or add --overwrite" if can_overwrite else "")
        )


def sweep_figures(groups: Groups, path: Path, overwrite: bool = False) -> list[Path]:
    """Draw the groups' figures: into one PNG when `path` ends in .png (the panels stacked),
    else into the folder `path` (created) as learning-curves.png, activations-init.png and
    weight-change.png. A figure whose data no run recorded is left out (e.g. no
    activations-init.json without train.weight_history). Returns the files written."""
    check(path, overwrite)
    if path.suffix.lower() == ".png":
        built = [(path, figure(groups, FIGURES))]
    else:
        path.mkdir(parents=True, exist_ok=True)
        built = [(path / name, figure(groups, (name,))) for name in FIGURES]
    written = []
    for target, fig in built:
        if fig is None:
            continue
        save(fig, target, dpi=DPI, bbox_inches="tight")
        written.append(target)
    return written


def figure(groups: Groups, names: Sequence[str]) -> Any:
    """One matplotlib figure of the panels of the figures `names` that have data, with one
    legend for all below them; None when none has."""
    plt = pyplot()
    panels = [p for name in names for p in PANELS[name](groups)]
    if not panels:
        return None
    cols = min(2, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(5.6 * cols, 3.9 * rows + 0.25 * len(groups)),
        squeeze=False,
        layout="constrained",
    )
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, draw in zip(axes.flat, panels, strict=False):
        draw(ax)
        ax.grid(True, alpha=0.3, linewidth=0.6)
        ax.tick_params(labelsize=8)
    _legend(fig, groups)
    return fig


def _legend(fig: Any, groups: Groups) -> None:
    """One entry per group (its colour, label and runs), under the panels."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=_colour(i), marker="o", linewidth=2) for i in range(len(groups))
    ]
    labels = [
        f"{middle(label or 'all runs', LABEL_WIDTH)}  (n={sum(r.completed for r in runs)})"
        for label, runs in groups
    ]
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=1 if max(map(len, labels)) > 40 else min(3, len(labels)),
        fontsize=8,
        frameon=False,
    )


def _colour(index: int) -> str:
    return f"C{index % 10}"


def _series(per_run: Sequence[dict[Any, float]], order: Sequence[Any]) -> Series:
    """The mean, standard error and count at each key of `order` over the runs' values."""
    mean, se, n = [], [], []
    for key in order:
        values = np.array([v[key] for v in per_run if key in v and np.isfinite(v[key])])
        n.append(values.size)
        mean.append(values.mean() if values.size else np.nan)
        se.append(values.std(ddof=1) / math.sqrt(values.size) if values.size > 1 else np.nan)
    return Series(np.arange(len(order)), np.array(mean), np.array(se), np.array(n))


def _band(ax: Any, series: Series, x: np.ndarray, colour: str, **line: Any) -> None:
    """The mean as a line, ±1 standard error as a shaded band around it."""
    ax.plot(x, series.mean, color=colour, **line)
    low, high = series.mean - series.se, series.mean + series.se
    if np.isfinite(series.se).any():
        ax.fill_between(x, low, high, color=colour, alpha=0.18, linewidth=0)


# Learning curves ---------------------------------------------------------------------------


def _curve_panels(groups: Groups) -> list[Callable[[Any], None]]:
    """The loss, and the first metric, against the epoch: training solid, validation dashed."""
    names = [k for r in _completed(groups) for row in r.history for k in row]
    quantities = ["loss"] if "loss" in names else []
    metrics = [n for n in dict.fromkeys(names) if n not in NOT_METRICS and not n.startswith("val_")]
    quantities += metrics[:1]
    return [lambda ax, q=q: _curves(ax, groups, q) for q in quantities]


def _completed(groups: Groups) -> list[Any]:
    return [r for _, runs in groups for r in runs if r.completed]


def _curves(ax: Any, groups: Groups, quantity: str) -> None:
    styles = (("", "-", "training"), ("val_", "--", "validation"))
    shown = set()
    for index, (_, runs) in enumerate(groups):
        for prefix, style, _what in styles:
            per_run = [
                {
                    row["epoch"]: row[prefix + quantity]
                    for row in r.history
                    if prefix + quantity in row
                }
                for r in runs
                if r.completed
            ]
            epochs = sorted({e for v in per_run for e in v})
            if not epochs:
                continue
            shown.add(prefix)
            series = _series(per_run, epochs)
            x = np.array(epochs) + 1  # history.csv counts epochs from 0
            _band(ax, series, x, _colour(index), linestyle=style, linewidth=1.6)
    ax.set_title(quantity.replace("_", " "), fontsize=10)
    ax.set_xlabel("epoch", fontsize=9)
    ax.set_ylabel(f"{quantity} (mean ± SE over seeds)", fontsize=9)
    whole_epochs(ax)
    if len(shown) > 1:  # which line is which, in grey: the colours are the groups'
        ax.plot([], [], color="0.35", linestyle="-", label="training")
        ax.plot([], [], color="0.35", linestyle="--", label="validation")
        ax.legend(fontsize=8, loc="best", framealpha=0.8)


# Activations at initialisation -------------------------------------------------------------


def _activation_panels(groups: Groups) -> list[Callable[[Any], None]]:
    if not any(r.activations and r.activations.get("layers") for r in _completed(groups)):
        return []
    return [lambda ax: _activations(ax, groups)]


def _activations(ax: Any, groups: Groups) -> None:
    """Each layer's output std over the first training batch, at initialisation: the mean
    over the group's completed runs (the n the legend gives), ±1 SE."""
    records = [r for r in _completed(groups) if r.activations]
    layers = list(dict.fromkeys(x["name"] for r in records for x in r.activations["layers"]))
    for index, (_, runs) in enumerate(groups):
        per_run = [
            {x["name"]: x["std"] for x in r.activations["layers"] if x["std"] > 0}
            for r in runs
            if r.completed and r.activations
        ]
        if not per_run:
            continue
        _errorbar(ax, index, _series(per_run, layers), "o")
    ax.set_yscale("log")
    _layer_ticks(ax, layers)
    batch = max((r.activations.get("batch_size", 0) for r in records), default=0)
    ax.set_title("Activation std at initialisation", fontsize=10)
    ax.set_xlabel(f"layer output (first training batch, {batch} examples)", fontsize=9)
    ax.set_ylabel("std of the layer's output (log)", fontsize=9)


def _errorbar(ax: Any, index: int, series: Series, marker: str) -> None:
    """A group's means ±1 SE per layer, in its colour."""
    ax.errorbar(
        series.x,
        series.mean,
        yerr=np.nan_to_num(series.se),
        color=_colour(index),
        marker=marker,
        markersize=4,
        linewidth=1.6,
        capsize=3,
    )


def _layer_ticks(ax: Any, names: Sequence[str]) -> None:
    turn = len(names) > 6 or max(map(len, names), default=0) > 14
    ax.margins(x=0.08)
    ax.set_xticks(
        range(len(names)),
        [middle(n, 28) for n in names],
        rotation=35 if turn else 0,
        ha="right" if turn else "center",
        fontsize=8,
    )


# Weight change -------------------------------------------------------------------------------


def _change_panels(groups: Groups) -> list[Callable[[Any], None]]:
    if not _kernels(groups):
        return []
    return [lambda ax: _change(ax, groups)]


def _kernels(groups: Groups) -> list[str]:
    """The paths of the kernels (variables of rank 2 or more, as the summary counts them)
    that the completed runs' weight-history.csv follows, in its order."""
    ranks = {p: len(v["shape"]) for r in _completed(groups) for p, v in r.weights_init.items()}
    paths = [row["path"] for r in _completed(groups) for row in r.weight_history]
    return [p for p in dict.fromkeys(paths) if ranks.get(p, 0) >= 2]


def _change(ax: Any, groups: Groups) -> None:
    """Each kernel's ||W - W0|| / ||W0|| after its run's last epoch, the mean over the
    group's completed runs ±1 SE: which layers training rewrote, which it hardly touched."""
    kernels = _kernels(groups)
    for index, (_, runs) in enumerate(groups):
        per_run = [_last_change(r.weight_history) for r in runs if r.completed]
        per_run = [v for v in per_run if v]
        if not per_run:
            continue
        _errorbar(ax, index, _series(per_run, kernels), "s")
    _layer_ticks(ax, kernels)
    ax.set_ylim(bottom=0)
    ax.set_title("Kernel change over training", fontsize=10)
    ax.set_xlabel("kernel", fontsize=9)
    ax.set_ylabel("‖W − W₀‖ / ‖W₀‖ after the last epoch", fontsize=9)


def _last_change(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Each variable's relative change at the last epoch weight-history.csv holds for it."""
    last: dict[str, tuple[int, float]] = {}
    for row in rows:
        if row["epoch"] >= last.get(row["path"], (-1, 0.0))[0]:
            last[row["path"]] = (row["epoch"], row["relative_change"])
    return {path: change for path, (_, change) in last.items()}


PANELS: dict[str, Callable[[Groups], list[Callable[[Any], None]]]] = {
    LEARNING_CURVES: _curve_panels,
    ACTIVATIONS: _activation_panels,
    WEIGHT_CHANGE: _change_panels,
}
