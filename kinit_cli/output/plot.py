"""`--plot FILE.png`: inspect-weights' grid of per-variable histograms with their theory
(and, for a run that recorded them, its kernels over training), evaluate's confusion
matrix, and the history.png of every run.

matplotlib is an optional extra (`pip install 'kinit[plot]'`); it is imported here only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kinit_cli.errors import UsageError
from kinit_cli.output.tables import middle
from kinit_cli.storage.rundir import replacing

MAX_POINTS = 1_000_000  # values drawn per histogram: an even stride through larger variables


def density(theory: Any, x: np.ndarray) -> np.ndarray | None:
    """The theoretical probability density on `x`, for the distributions that have one."""
    if theory is None or theory.std in (None, 0) or theory.mean is None:
        return None
    kind = theory.distribution
    if kind == "uniform" and theory.low is not None and theory.high is not None:
        inside = (x >= theory.low) & (x <= theory.high)
        return np.where(inside, 1.0 / (theory.high - theory.low), 0.0)
    # A plugin's hook gives moments, not a shape: only a normal one (kurtosis 3) is drawn.
    if kind == "normal" or (kind == "custom" and theory.kurtosis == 3.0 and theory.low is None):
        return _normal(x, theory.mean, theory.std)
    if kind == "truncated_normal" and theory.low is not None and theory.high is not None:
        # The normal before truncation, renormalised over the support the theory gives.
        sigma = theory.scale if theory.scale else theory.std
        mass = 0.5 * (
            math.erf((theory.high - theory.mean) / (sigma * math.sqrt(2)))
            - math.erf((theory.low - theory.mean) / (sigma * math.sqrt(2)))
        )
        inside = (x >= theory.low) & (x <= theory.high)
        return np.where(inside, _normal(x, theory.mean, sigma) / mass, 0.0)
    return None


def _normal(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def check(path: Path, overwrite: bool = False) -> None:
    """UsageError unless `path` can take the plot: before any weight is read."""
    pyplot()
    if path.suffix.lower() != ".png":
        raise UsageError(f"--plot writes a PNG image: give a FILE.png, not {path}")
    if not path.parent.is_dir():
        raise UsageError(f"--plot {path}: the folder {path.parent} does not exist")
    if path.exists() and not overwrite:
        raise UsageError(f"{path} already exists; choose another --plot file or add --overwrite")


def pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(
            "--plot needs matplotlib, an optional extra: pip install 'kinit[plot]'"
        ) from None
    return plt


def save(fig: Any, path: Path, **savefig: Any) -> None:
    """The figure written to `path` through a temporary file (never half a PNG), then
    closed, whatever happened."""
    try:
        with replacing(path, ".png") as tmp:
            fig.savefig(tmp, **savefig)
    finally:
        pyplot().close(fig)


def histograms(
    items: Sequence[Any],
    path: Path,
    overwrite: bool = False,
    history: Sequence[dict[str, Any]] = (),
) -> None:
    """Draw one panel per variable (weights.report.Panel: title, values, theory or None,
    caption) into one PNG, written atomically. The legend stays short and inside its axes;
    the theory's full description, or why none is drawn, is the caption under each plot.
    `history` (weight-history.csv's rows): two more panels, each variable's std and
    relative change against the epoch."""
    check(path, overwrite)
    plt = pyplot()
    extra = 2 if history else 0
    cols = min(3, len(items) + extra) or 1
    rows = max(1, math.ceil((len(items) + extra) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(items) + extra :]:
        ax.axis("off")
    for ax, item in zip(axes.flat, items, strict=False):
        _histogram(ax, item)
    if history:
        series = weight_series(history)
        _over_epochs(axes.flat[len(items)], series, "std", "std over training")
        title = "relative change ||w - w0|| / ||w0||"
        _over_epochs(axes.flat[len(items) + 1], series, "relative_change", title)
    fig.tight_layout()
    save(fig, path, dpi=110)


def weight_series(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """weight-history.csv's rows as one series per variable path: `epoch` and each
    statistic, in epoch order."""
    out: dict[str, dict[str, list[float]]] = {}
    for row in sorted(rows, key=lambda r: r["epoch"]):
        series = out.setdefault(row["path"], {})
        for key, value in row.items():
            if key != "path":
                series.setdefault(key, []).append(float(value))
    return out


def _over_epochs(ax: Any, series: dict[str, dict[str, list[float]]], key: str, title: str) -> None:
    for name, s in series.items():
        ax.plot(s["epoch"], s[key], marker="o", markersize=2.5, linewidth=1.2, label=name)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("epoch (0: initial values)", fontsize=7)
    whole_epochs(ax)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="best", framealpha=0.8)


def _histogram(ax: Any, item: Any) -> None:
    """One variable's panel of histograms()."""
    import textwrap

    title, values, theory, caption = item.title, item.values, item.theory, item.caption
    flat = values.reshape(-1)
    flat = flat[:: max(1, flat.size // MAX_POINTS)]
    flat = flat[np.isfinite(flat)].astype(np.float64)
    ax.set_title(middle(title, 48), fontsize=9)
    if caption:
        ax.set_xlabel(textwrap.fill(caption, 56), fontsize=7)
    ax.tick_params(labelsize=7)
    if flat.size == 0:
        ax.text(0.5, 0.5, "no finite values", ha="center", transform=ax.transAxes)
        return
    if flat.min() == flat.max():
        ax.axvline(flat[0], color="C0", linewidth=3)
        ax.set_xlim(flat[0] - 1, flat[0] + 1)
        ax.set_yticks([])
        every = f"every value = {flat[0]:.4g}" + (f"; {caption}" if caption else "")
        ax.set_xlabel(textwrap.fill(every, 56), fontsize=7)
        return
    ax.hist(flat, bins=60, density=True, color="C0", alpha=0.75, label="values")
    x = np.linspace(flat.min(), flat.max(), 400)
    expected = density(theory, x)
    if expected is not None:
        ax.plot(x, expected, color="C3", linewidth=1.5, label="theory")
        ax.legend(fontsize=7, loc="best", framealpha=0.8)


def confusion(
    classes: Sequence[str], matrix: np.ndarray, path: Path, overwrite: bool = False
) -> None:
    """`evaluate --plot`: the confusion matrix as a heat map (rows: the true class, columns:
    the predicted one), each cell's count written in it while the classes are few enough
    to read them, written atomically."""
    check(path, overwrite)
    plt = pyplot()
    n = len(classes)
    side = min(18.0, max(4.0, 0.45 * n + 2.5))
    fig, ax = plt.subplots(figsize=(side, side * 0.9))
    shown = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    ticks = np.arange(n)
    labels = [middle(str(c), 16) for c in classes]
    ax.set_xticks(ticks, labels, rotation=90 if n > 10 else 0, fontsize=8)
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix ({int(matrix.sum()):,} examples)")
    if n <= 30:
        high = matrix.max() / 2 if matrix.size else 0
        for (i, j), count in np.ndenumerate(matrix):
            color = "white" if count > high else "black"
            ax.text(j, i, f"{count:,}", ha="center", va="center", color=color, fontsize=7)
    fig.tight_layout()
    save(fig, path, dpi=110)


def history_figure(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """A run's history.png: the loss and each metric against the epoch, training and
    validation (`val_`) on the same axes, one panel each, written atomically over any
    earlier one. Without matplotlib nothing is drawn: the curves are in history.csv."""
    try:
        plt = pyplot()
    except UsageError:
        return
    names = [k for k in dict.fromkeys(k for r in rows for k in r) if k != "epoch"]
    quantities = sorted({n.removeprefix("val_") for n in names}, key=lambda n: (n != "loss", n))
    cols = min(3, len(quantities)) or 1
    grid = max(1, math.ceil(len(quantities) / cols))
    fig, axes = plt.subplots(grid, cols, figsize=(4.4 * cols, 3.2 * grid), squeeze=False)
    for ax in axes.flat[len(quantities) :]:
        ax.axis("off")
    for ax, name in zip(axes.flat, quantities, strict=False):
        for key, label in ((name, "training"), (f"val_{name}", "validation")):
            points = [(r["epoch"] + 1, r[key]) for r in rows if key in r]
            if points:
                x, y = zip(*points, strict=True)
                ax.plot(x, y, marker="o", markersize=3, linewidth=1.4, label=label)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        whole_epochs(ax)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="best", framealpha=0.8)
    fig.tight_layout()
    save(fig, path, dpi=100)


def whole_epochs(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
