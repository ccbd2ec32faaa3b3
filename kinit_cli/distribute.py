"""`distribute:` the tf.distribute strategy a run trains under, and the devices it uses.

`devices: [cpu:0, cpu:1]` splits the CPU into that many logical devices (TensorFlow's
logical device configuration), so `mirrored` can be tried on any machine. That has to
happen before TensorFlow starts its runtime, which is why the trainer calls `strategy()`
before it builds anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kinit_cli.errors import KinitError

STRATEGIES = ("default", "mirrored", "multi_worker_mirrored")


class DistributeError(KinitError):
    """A strategy or device set that cannot be made on this machine."""

    exit_code = 2


@dataclass
class Distribution:
    name: str
    strategy: Any
    devices: list[str] = field(default_factory=list)

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)


def strategy(name: str, devices: list[str] | None) -> Distribution:
    """Configure logical devices if asked, then make the strategy."""
    from kinit_cli.backend import tensorflow

    tf = tensorflow()
    if name == "multi_worker_mirrored":
        raise DistributeError(
            "distribute.strategy multi_worker_mirrored is not available yet in kinit: Keras "
            "3's model.fit fails under it (keras-team/keras issue 20585); use mirrored on one "
            "machine"
        )
    names = [_device_name(d) for d in devices or []]
    cpus = [int(n.split(":")[1]) for n in names if n.startswith("CPU:")]
    if cpus:
        _split_cpu(tf, max(cpus) + 1)
    known = {d.name.removeprefix("/device:") for d in tf.config.list_logical_devices()}
    missing = [d for d in names if d not in known]
    if missing:
        raise DistributeError(
            f"distribute.devices: {', '.join(missing)} does not exist; TensorFlow sees "
            f"{', '.join(sorted(known))}. Name CPUs as cpu:0, cpu:1, ... to split the CPU "
            "into logical devices."
        )
    if name == "default":
        if len(names) > 1:
            raise DistributeError(
                "distribute.devices lists several devices but the strategy is default (one "
                "device); use strategy: mirrored"
            )
        return Distribution(name, tf.distribute.get_strategy(), names or [])
    chosen = [f"/{d}" for d in names] or None
    mirrored = tf.distribute.MirroredStrategy(devices=chosen)
    used = [d.rsplit("device:", 1)[-1] for d in mirrored.extended.worker_devices]
    return Distribution(name, mirrored, used)


def _device_name(text: str) -> str:
    m = re.fullmatch(r"/?(?:device:)?(cpu|gpu):(\d+)", text.strip(), re.IGNORECASE)
    if not m:
        raise DistributeError(
            f"distribute.devices: {text!r} is not a device name; expected cpu:N or gpu:N"
        )
    return f"{m.group(1).upper()}:{m.group(2)}"


def _split_cpu(tf: Any, count: int) -> None:
    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == count:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError as exc:
        raise DistributeError(
            f"cannot split the CPU into {count} logical devices now: TensorFlow has already "
            f"started ({exc})"
        ) from exc
