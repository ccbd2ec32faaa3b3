"""What a run writes about itself: metrics.json's record of how it ran and ended, and the
config.yaml that reruns it. Functions of the plan and of what training measured."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kinit_cli.config import source as config_mod
from kinit_cli.config.settings import Settings
from kinit_cli.data.splits import Splits
from kinit_cli.registry.plugins import absolute
from kinit_cli.registry.trust import not_replaced
from kinit_cli.runtime import backend
from kinit_cli.runtime.versions import versions
from kinit_cli.training import distribute
from kinit_cli.training.plan import Plan, steps_per_call


def metrics(
    plan: Plan,
    status: str,
    rows: list[dict[str, Any]],
    test: dict[str, float] | None,
    fit_seconds: float,
    epoch_seconds: dict[int, float],
) -> dict[str, Any]:
    """metrics.json: the outcome, the last epoch's metrics and the test set's (`test`, None
    for an interrupted run), the times, and what the run ran on."""
    metrics: dict[str, Any] = {"status": status, **_last_epoch(rows)}
    if test is not None:
        metrics["test"] = test
    new = [r for r in rows if r["epoch"] >= plan.initial_epoch]
    samples = len(new) * len(plan.data.x_train)
    distribution, train = plan.distribution, plan.settings.train
    metrics.update(
        {
            "epochs": len(rows),
            "initial_epoch": plan.initial_epoch,
            "wall_time_s": round(fit_seconds, 3),
            # The epochs kept in `new` only: an epoch cut short is not one trained.
            "epoch_seconds": [round(epoch_seconds[r["epoch"]], 3) for r in new],
            "samples_per_second": round(samples / fit_seconds, 1)
            if fit_seconds > 0 and samples
            else None,
            "seed": plan.seed,
            "devices": plan.devices,
            "backend": plan.settings.backend,
            # What the config left to the backend, as it ran.
            "steps_per_execution": steps_per_call(plan.settings, distribution.replicas),
            "jit_compile": backend.setting(plan.settings, "jit_compile"),
            "strategy": distribution.name,
            "num_replicas": distribution.replicas,
            "per_replica_batch_size": train.batch_size / distribution.replicas,
            **_cluster(distribution),
            "data": _data(plan.data),
            "versions": versions(),
        }
    )
    return metrics


def _last_epoch(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The last epoch's training metrics, and its validation metrics where there are any."""
    if not rows:
        return {}
    last = rows[-1]
    out: dict[str, Any] = {
        "train": {k: v for k, v in last.items() if k != "epoch" and not k.startswith("val_")}
    }
    validation = {k[4:]: v for k, v in last.items() if k.startswith("val_")}
    if validation:
        out["validation"] = validation
    return out


def _data(data: Splits) -> dict[str, Any]:
    """The data's name, source and sizes, and its class names where it named them (a table,
    an image folder)."""
    out = {"name": data.name, "source": data.source, **data.sizes}
    prep = data.preprocessing
    if prep is not None and prep.class_names is not None:
        out["classes"] = list(prep.class_names)
    return out


def _cluster(distribution: distribute.Distribution) -> dict[str, Any]:
    cluster = distribution.cluster
    if cluster is None:
        return {}
    return {
        "cluster": {
            "workers": cluster.workers,
            "task": {"type": cluster.task_type, "index": cluster.index},
            "is_chief": cluster.is_chief,
            "from": cluster.source,
        }
    }


def portable(settings: Settings, config: config_mod.Config, user: Sequence[str]) -> dict[str, Any]:
    """The config, defaults filled in, with file paths made absolute, so the run dir's copy
    reruns as is, and with every plugin the run used (`user`: --plugin's, absolute already),
    so that --resume and the run's readers find its classes. `data:` as the user wrote it
    (the keys given, no defaults for a source they did not name)."""
    base_dir = config.base_dir
    out = settings.document()  # a copy
    written = config.data.get("data") if isinstance(config.data, dict) else None
    out["data"] = {k: v for k, v in out["data"].items() if k in (written or {})}
    # A run's plugin that the user's copy stood for (--resume --plugin) was not used.
    plugins = [absolute(p, base_dir) for p in not_replaced(out["plugins"], user)]
    out["plugins"] = list(dict.fromkeys([*plugins, *user]))
    if out["data"].get("path"):
        out["data"]["path"] = str((base_dir / out["data"]["path"]).resolve())
    if out.get("init_from"):
        out["init_from"]["source"] = str((base_dir / out["init_from"]["source"]).resolve())
    return out
