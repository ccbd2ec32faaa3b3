"""Runs set side by side: one group per combination of settings, each test metric as a mean
over seeds with its standard error, the difference from the first group (the baseline)
with Welch's t-test, and what the initializers drew and training did to each kernel.

The standard error is the sample standard deviation (n - 1) over sqrt(n); with one run it
is unknown (None), and so are the difference's standard error and p-value.
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kinit_cli.errors import UsageError
from kinit_cli.results import grouping
from kinit_cli.results.records import RunRecord, collect
from kinit_cli.storage import rundir

# What a run that ended without a result recorded (an interrupted or missing one has
# not ended yet: --resume continues it).
FAILED = ("failed", "diverged")


@dataclass(frozen=True)
class Estimate:
    """A quantity measured once per run: its mean, standard error (None for n < 2), n and
    range."""

    mean: float
    se: float | None
    n: int
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Estimate | None:
        """The estimate from the runs' values; None when there are none."""
        if not values:
            return None
        n = len(values)
        mean = math.fsum(values) / n
        se = None
        if n > 1:
            var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
            se = math.sqrt(var / n)
        return cls(mean=mean, se=se, n=n, min=min(values), max=max(values))

    def document(self) -> dict[str, Any]:
        return {"mean": self.mean, "se": self.se, "n": self.n, "min": self.min, "max": self.max}


@dataclass(frozen=True)
class Difference:
    """A group's mean minus the baseline's, its standard error sqrt(se_g² + se_b²), and
    Welch's two-sided t-test p-value (None where either side has fewer than two runs)."""

    diff: float
    se: float | None
    p: float | None

    @classmethod
    def between(cls, group: Sequence[float], baseline: Sequence[float]) -> Difference:
        g, b = Estimate.of(group), Estimate.of(baseline)
        assert g is not None and b is not None
        diff = _rounded_off(g.mean - b.mean, g.mean, b.mean)
        if g.se is None or b.se is None:
            return cls(diff, None, None)
        return cls(diff, math.hypot(g.se, b.se), welch_p(group, baseline))

    def document(self) -> dict[str, Any]:
        return {"diff": self.diff, "se": self.se, "p": self.p}


# Metrics are float32 sums: two means of the same values in another order differ by a few
# float32 rounding steps, which is no difference.
FLOAT32_STEPS = 8 * 2.0**-23


def _rounded_off(diff: float, a: float, b: float) -> float:
    return 0.0 if abs(diff) <= FLOAT32_STEPS * max(abs(a), abs(b)) else diff


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Welch's two-sided t-test p-value; None where it is undefined (no spread at all)."""
    from scipy import stats  # its import costs a quarter second: only where a test is due

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # zero variance: nan, said as None
        p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return p if math.isfinite(p) else None


@dataclass(frozen=True)
class Kernel:
    """One kernel (a variable of two or more dimensions) across a group's runs: its initial
    std against the std its initializer's theory gives, and how far training moved it."""

    path: str
    initializer: str | None  # the recorded class name; None for an initial value
    init_std: Estimate
    theory_std: float | None
    relative_change: Estimate | None  # ||w - w0|| / ||w0|| at the last recorded epoch

    def document(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "initializer": self.initializer,
            "init_std": self.init_std.document(),
            "theory_std": self.theory_std,
            "relative_change": _doc(self.relative_change),
        }


@dataclass(frozen=True)
class Group:
    """The runs that share one combination of settings (seeds aside)."""

    settings: dict[str, Any]
    runs: tuple[RunRecord, ...]
    metrics: dict[str, Estimate]  # test metrics by name, over the completed runs
    train_loss: Estimate | None  # the last epoch's training loss
    epochs: Estimate | None
    seconds: Estimate | None  # wall time per run
    failed: int  # runs that ended without a result: failed or diverged
    incomplete: int  # runs not (yet) run to their end: interrupted, or missing
    difference: dict[str, Difference]  # from the baseline; {} for the baseline itself
    kernels: tuple[Kernel, ...]

    @property
    def label(self) -> str:
        return grouping.label(self.settings)

    @property
    def completed(self) -> tuple[RunRecord, ...]:
        return tuple(r for r in self.runs if r.completed)

    def document(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "runs": [str(r.run_dir) for r in self.runs],
            "metrics": {name: e.document() for name, e in self.metrics.items()},
            "failed": self.failed,
            "incomplete": self.incomplete,
            "difference": {name: d.document() for name, d in self.difference.items()},
            "train_loss": _doc(self.train_loss),
            "epochs": _doc(self.epochs),
            "seconds_per_trial": _doc(self.seconds),
            "kernels": [k.document() for k in self.kernels],
        }


@dataclass(frozen=True)
class Summary:
    """Every group, the first one the baseline the others are compared with."""

    keys: tuple[str, ...]  # the settings that tell the groups apart
    groups: tuple[Group, ...]

    def document(self) -> dict[str, Any]:
        return {
            "keys": list(self.keys),
            "baseline": 0,
            "groups": [g.document() for g in self.groups],
        }


def _doc(estimate: Estimate | None) -> dict[str, Any] | None:
    return estimate.document() if estimate is not None else None


def compare(targets: Sequence[str | Path]) -> Summary:
    """The summary of the runs and sweeps the targets name (each run once); UsageError when
    they hold no run."""
    records, seen = [], set()
    for record in collect(targets):
        where = record.run_dir.resolve()
        if where not in seen:
            seen.add(where)
            records.append(record)
    if not records:
        raise UsageError(f"nothing to compare: {', '.join(map(str, targets))} holds no run yet")
    return summarize(records)


def summarize(records: Sequence[RunRecord]) -> Summary:
    """Group the runs by the settings that differ (grouping.settings_of), in the order they
    first appear, and measure each group."""
    keys, settings = grouping.settings_of(records)
    members: list[tuple[dict[str, Any], list[RunRecord]]] = []
    for record, these in zip(records, settings, strict=True):
        group = next((m for s, m in members if grouping.same(s, these)), None)
        if group is None:
            members.append((these, group := []))
        group.append(record)
    baseline = _test_values(members[0][1]) if members else {}
    groups = tuple(
        _group(these, runs, baseline if i else None) for i, (these, runs) in enumerate(members)
    )
    return Summary(keys=keys, groups=groups)


def _group(
    settings: dict[str, Any],
    runs: list[RunRecord],
    baseline: dict[str, list[float]] | None,
) -> Group:
    done = [r for r in runs if r.completed]
    values = _test_values(runs)
    difference = {}
    if baseline is not None:
        difference = {
            name: Difference.between(v, baseline[name])
            for name, v in values.items()
            if baseline.get(name)
        }
    return Group(
        settings=settings,
        runs=tuple(runs),
        metrics={name: e for name, v in values.items() if (e := Estimate.of(v))},
        train_loss=Estimate.of([x for r in done if (x := _train_loss(r)) is not None]),
        epochs=Estimate.of([r.metrics["epochs"] for r in done if "epochs" in r.metrics]),
        seconds=Estimate.of([_number(s) for r in done if (s := r.metrics.get("wall_time_s"))]),
        failed=sum(r.status in FAILED for r in runs),
        incomplete=sum(not r.completed and r.status not in FAILED for r in runs),
        difference=difference,
        kernels=_kernels(runs),
    )


def _number(value: Any) -> float:
    """A number from a record; nan for a missing or null one (strictjson's non-finite)."""
    return float(value) if isinstance(value, int | float) else math.nan


def _test_values(runs: Sequence[RunRecord]) -> dict[str, list[float]]:
    """Each test metric's values over the completed runs, names in first-appearance order."""
    out: dict[str, list[float]] = {}
    for r in runs:
        if r.completed:
            for name, value in (r.metrics.get("test") or {}).items():
                out.setdefault(name, []).append(_number(value))
    return out


def _train_loss(record: RunRecord) -> float | None:
    """The training loss at the run's last epoch."""
    loss = (record.metrics.get("train") or {}).get("loss")
    if loss is None and record.history:
        loss = record.history[-1].get("loss")
    return None if loss is None else _number(loss)


def _kernels(runs: Sequence[RunRecord]) -> tuple[Kernel, ...]:
    """Per kernel (in the first run's order): the runs' initial std (weights-init.json),
    the theory's std for its initializer and shape, and the completed runs' relative change
    at the last epoch of weight-history.csv."""
    paths: list[str] = []
    for r in runs:
        paths += [p for p, v in r.weights_init.items() if len(v["shape"]) > 1 and p not in paths]
    out = []
    for path in paths:
        recorded = [r.weights_init[path] for r in runs if path in r.weights_init]
        spec = recorded[0].get("initializer")
        init_std = Estimate.of([_number(v.get("std")) for v in recorded])
        assert init_std is not None
        out.append(
            Kernel(
                path=path,
                initializer=spec["class_name"] if spec else None,
                init_std=init_std,
                theory_std=_theory_std(spec, recorded[0]["shape"]),
                relative_change=Estimate.of(
                    [x for r in runs if r.completed and (x := _last_change(r, path)) is not None]
                ),
            )
        )
    return tuple(out)


def _theory_std(spec: dict[str, Any] | None, shape: Sequence[int]) -> float | None:
    """The std the initializer's theory gives for the shape (weights/theory.py); None when
    it has none (an initializer whose plugin is not loaded: compare runs no plugin code)."""
    if spec is None:
        return None
    from kinit_cli.weights.theory import theory_for  # imports Keras: only where kernels are

    # Only the name and arguments: a record is data, and its other keys (a `module`) are
    # not for Keras to act on.
    theory = theory_for(
        {"class_name": spec["class_name"], "config": spec.get("config") or {}}, tuple(shape)
    )
    return theory.std if theory is not None else None


def _last_change(record: RunRecord, path: str) -> float | None:
    rows = [row for row in record.weight_history if row["path"] == path]
    return max(rows, key=lambda row: row["epoch"])["relative_change"] if rows else None


def csv_columns(summary: Summary) -> list[str]:
    """summary.csv's header: the settings, n, failed, per test metric its mean, se, min,
    max and difference from the baseline (diff, diff_se, p), then the rest."""
    names: list[str] = []
    for g in summary.groups:
        names += [n for n in g.metrics if n not in names]
    per_metric = ("mean", "se", "min", "max", "diff", "diff_se", "p")
    return [
        *summary.keys,
        "n",
        "failed",
        "incomplete",
        *(f"{name}_{what}" for name in names for what in per_metric),
        "train_loss",
        "epochs",
        "seconds_per_trial",
    ]


def csv_rows(summary: Summary) -> list[dict[str, Any]]:
    """One row per group (settings as YAML flow text; empty where a value is unknown)."""
    rows = []
    for g in summary.groups:
        row: dict[str, Any] = {k: grouping.flow(v) for k, v in g.settings.items()}
        row |= {"n": len(g.completed), "failed": g.failed, "incomplete": g.incomplete}
        for name, e in g.metrics.items():
            row |= {f"{name}_{k}": v for k, v in e.document().items() if k != "n"}
            d = g.difference.get(name)
            if d is not None:
                row |= {f"{name}_diff": d.diff, f"{name}_diff_se": d.se, f"{name}_p": d.p}
        for key, e in (("train_loss", g.train_loss), ("epochs", g.epochs)):
            row[key] = e.mean if e is not None else None
        row["seconds_per_trial"] = g.seconds.mean if g.seconds is not None else None
        rows.append({k: _cell(v) for k, v in row.items()})
    return rows


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return repr(value) if isinstance(value, float) else value


def write_csv(summary: Summary, path: Path) -> None:
    """summary.csv: one row per group, as csv_columns() lists (written whole, atomically)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=csv_columns(summary), lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(summary))
    rundir.write_text(path, out.getvalue())
