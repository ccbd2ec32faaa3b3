"""`distribute:` the strategy a run trains under, and the devices it uses: tf.distribute's
on TensorFlow, keras.distribution's DataParallel on JAX, one device on torch.

`devices: [cpu:0, cpu:1]` splits the CPU into that many logical devices (TensorFlow's
logical device configuration), so `mirrored` can be tried on any machine. That has to
happen before TensorFlow starts its runtime, which is why the trainer calls `strategy()`
before it builds anything.

`multi_worker_mirrored` takes its cluster from the standard `TF_CONFIG` variable, or from a
`cluster:` section that becomes it. TensorFlow waits for every peer without end while the
strategy is made, so kinit bounds that wait itself (`timeout`), and bounds every
collective with TensorFlow's own communication timeout.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from kinit_cli.config.fields import is_address
from kinit_cli.errors import BackendError, DeviceError, DistributeError, KinitError, PeerError
from kinit_cli.runtime import backend
from kinit_cli.runtime.imports import keras, tensorflow

# What each strategy runs on.
TF_STRATEGIES = ("mirrored", "multi_worker_mirrored")


@dataclass(frozen=True)
class Cluster:
    """The tasks of a multi-worker run and this process's place among them."""

    jobs: dict[str, list[str]]  # task type -> addresses, as in TF_CONFIG
    task_type: str
    index: int
    source: str  # "TF_CONFIG" or "distribute.cluster"

    @property
    def workers(self) -> int:
        return sum(len(a) for a in self.jobs.values())

    @property
    def is_chief(self) -> bool:
        """The one task that writes outputs: the chief, else worker 0 (TensorFlow's rule)."""
        if "chief" in self.jobs:
            return self.task_type == "chief"
        return self.index == 0

    @property
    def address(self) -> str:
        return self.jobs[self.task_type][self.index]


@dataclass
class Distribution:
    name: str
    strategy: Any
    devices: list[str] = field(default_factory=list)
    cluster: Cluster | None = None

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)

    @property
    def is_chief(self) -> bool:
        return self.cluster is None or self.cluster.is_chief


@dataclass(frozen=True)
class KerasDistribution:
    """A keras.distribution layout (JAX's DataParallel) in the place of a tf.distribute
    strategy: the same scope() and replica count; or one device (`layout` None)."""

    layout: Any = None
    num_replicas_in_sync: int = 1

    def scope(self) -> Any:
        return nullcontext() if self.layout is None else self.layout.scope()


def configure(
    backend_name: str, device: str, strategy_name: str, devices: Sequence[str] | None
) -> None:
    """What has to be set before JAX or torch start (their device lists are fixed then):
    --device cpu hides the GPUs, and `data_parallel` over cpu:0, cpu:1, ... splits the CPU
    into that many XLA host devices. TensorFlow's are set through tf.config instead."""
    if backend_name == "tensorflow":
        return
    if backend_name == "jax":
        if device == "cpu":
            os.environ["JAX_PLATFORMS"] = "cpu"
        cpus = [_device_name(d) for d in devices or []]
        count = [int(n.split(":")[1]) + 1 for n in cpus if n.startswith("CPU:")]
        if count and strategy_name == "data_parallel":
            if "jax" in sys.modules:
                raise DistributeError("cannot split the CPU into devices now: JAX has started")
            os.environ["JAX_PLATFORMS"] = "cpu"
            flag = f"--xla_force_host_platform_device_count={max(count)}"
            os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()
    elif backend_name == "torch" and device == "cpu":
        os.environ["KERAS_TORCH_DEVICE"] = "cpu"


def select_devices(device: str) -> list[str]:
    """Make only the asked-for devices visible; return their names (`CPU:0`, `GPU:0`, ...)."""
    name = backend.current()
    if name != "tensorflow":
        return _other_devices(name, device)
    tf = tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        seen = ", ".join(d.name for d in tf.config.list_physical_devices()) or "nothing"
        raise DeviceError(
            f"--device gpu: TensorFlow sees no GPU (it sees: {seen}). Install GPU support "
            "with `pip install 'kinit[gpu]'` (NVIDIA driver required), or use --device cpu."
        )
    if device == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
    kinds = ("CPU",) if device == "cpu" or not gpus else ("GPU",)
    return [
        d.name.removeprefix("/physical_device:")
        for k in kinds
        for d in tf.config.list_physical_devices(k)
    ]


def _other_devices(name: str, device: str) -> list[str]:
    """select_devices on JAX or torch: their accelerators, else the CPU."""
    if name == "jax":
        import jax

        found = [f"{d.platform.upper()}:{d.id}" for d in jax.devices()]
        gpus = [d for d in found if d.startswith("GPU:")]
    else:
        keras()
        import torch

        count = torch.cuda.device_count() if device != "cpu" else 0
        gpus = [f"GPU:{i}" for i in range(count)]
        found = gpus or ["CPU:0"]
    if device == "gpu" and not gpus:
        raise DeviceError(
            f"--device gpu: {name} sees no GPU (it sees: {', '.join(found)}). Install its "
            f"GPU build ({backend.GPU_INSTALL[name]}), or use "
            "--device cpu."
        )
    return gpus if gpus and device != "cpu" else [d for d in found if d.startswith("CPU")][:1]


def strategy(
    name: str,
    devices: Sequence[str] | None,
    cluster: dict[str, Any] | None = None,
    timeout: float = 120,
) -> Distribution:
    """Configure logical devices if asked, then make the strategy."""
    running = backend.current()
    if running != "tensorflow" or name == "data_parallel":
        return _keras_distribution(running, name, devices, cluster)
    tf = tensorflow()
    if name == "multi_worker_mirrored":
        return _multi_worker(tf, devices, cluster, timeout)
    if cluster is not None:
        raise DistributeError(
            f"distribute.cluster is set but the strategy is {name}; a cluster is for "
            "strategy: multi_worker_mirrored"
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


def _keras_distribution(
    running: str, name: str, devices: Sequence[str] | None, cluster: dict[str, Any] | None
) -> Distribution:
    """The strategies of the JAX and torch backends: one device, or (JAX) DataParallel over
    the local devices or the listed ones, through keras.distribution."""
    if name in TF_STRATEGIES or cluster is not None:
        raise BackendError(
            f"distribute.strategy {name} is a tf.distribute strategy: it runs on backend "
            f"tensorflow, not {running}"
            + ("; on jax, data_parallel trains on several devices" if running == "jax" else "")
        )
    if name == "data_parallel" and running != "jax":
        raise BackendError(
            f"distribute.strategy data_parallel is JAX's (keras.distribution.DataParallel), "
            f"not {running}'s; "
            + ("use mirrored on tensorflow" if running == "tensorflow" else "use backend: jax")
        )
    names = [_device_name(d) for d in devices or []]
    if name == "default":
        if len(names) > 1:
            raise DistributeError(
                "distribute.devices lists several devices but the strategy is default (one "
                "device); use strategy: data_parallel"
            )
        return Distribution(name, KerasDistribution(), names)
    import jax

    by_name = {f"{d.platform.upper()}:{d.id}": d for d in jax.devices()}
    missing = [d for d in names if d not in by_name]
    if missing:
        raise DistributeError(
            f"distribute.devices: {', '.join(missing)} does not exist; JAX sees "
            f"{', '.join(by_name)}"
        )
    chosen = [by_name[d] for d in names] if names else list(by_name.values())
    layout = keras().distribution.DataParallel(devices=chosen)
    # Keras's JAX trainer lays out each batch by the global distribution, not a scope.
    keras().distribution.set_distribution(layout)
    used = [f"{d.platform.upper()}:{d.id}" for d in chosen]
    return Distribution(name, KerasDistribution(layout, len(chosen)), used)


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


def tf_config(environ: dict[str, str], section: dict[str, Any] | None) -> Cluster:
    """The cluster from `TF_CONFIG` or the `cluster:` section (exactly one of them)."""
    text = environ.get("TF_CONFIG", "").strip()
    if text and section is not None:
        raise DistributeError(
            "the cluster is given twice: by the TF_CONFIG environment variable and by "
            "distribute.cluster; remove one"
        )
    if section is not None:
        return _cluster(
            {
                "cluster": {"worker": section["workers"]},
                "task": {"type": "worker", "index": section["index"]},
            },
            "distribute.cluster",
        )
    if not text:
        raise DistributeError(
            "distribute.strategy multi_worker_mirrored needs the cluster: set TF_CONFIG (for "
            'example {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": '
            '{"type": "worker", "index": 0}}) or add distribute.cluster with workers and index'
        )
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DistributeError(
            f"TF_CONFIG is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    return _cluster(value, "TF_CONFIG")


def _cluster(value: Any, source: str) -> Cluster:
    def bad(what: str) -> DistributeError:
        return DistributeError(f"{source}: {what}")

    if not isinstance(value, dict) or not isinstance(value.get("cluster"), dict):
        raise bad('expected an object with "cluster" (task type -> addresses) and "task"')
    jobs = value["cluster"]
    for job, addresses in jobs.items():
        if job not in ("chief", "worker"):
            raise bad(
                f'task type "{job}" is not used by multi_worker_mirrored; expected "chief" '
                'and "worker"'
            )
        if not isinstance(addresses, list) or not addresses:
            raise bad(f'"{job}" must be a non-empty list of host:port addresses')
        for address in addresses:
            if not is_address(address):
                raise bad(f"{address!r} in {job!r} is not a host:port address")
    if len(jobs.get("chief", [])) > 1:
        raise bad(f"at most one chief, got {len(jobs['chief'])}")
    if not jobs:
        raise bad('"cluster" lists no worker')
    task = value.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise bad('expected "task": {"type": "worker", "index": N} for this process')
    kind, index = task["type"], task["index"]
    if kind not in jobs:
        raise bad(f'task type "{kind}" is not in the cluster ({", ".join(jobs)})')
    if not isinstance(index, int) or isinstance(index, bool):
        raise bad(f"task index must be an integer, got {index!r}")
    if not 0 <= index < len(jobs[kind]):
        raise bad(
            f"task index {index} is out of range: the cluster has {len(jobs[kind])} "
            f"{kind} task(s), indices 0 to {len(jobs[kind]) - 1}"
        )
    return Cluster({k: list(v) for k, v in jobs.items()}, kind, index, source)


def _multi_worker(
    tf: Any, devices: Sequence[str] | None, section: dict[str, Any] | None, timeout: float
) -> Distribution:
    if devices:
        raise DistributeError(
            "distribute.devices is for mirrored; under multi_worker_mirrored each worker "
            "uses all its visible GPUs, or its CPU (--device cpu)"
        )
    cluster = tf_config(dict(os.environ), section)
    os.environ["TF_CONFIG"] = json.dumps(
        {"cluster": cluster.jobs, "task": {"type": cluster.task_type, "index": cluster.index}}
    )
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout)
    waiting = PeerError(
        f"the cluster did not form within {timeout:g} s (distribute.timeout): this is "
        f"{cluster.task_type} {cluster.index} at {cluster.address}, waiting for "
        f"{', '.join(a for t in cluster.jobs.values() for a in t if a != cluster.address)}. "
        "Start every worker with the same cluster and its own index, and check that the "
        "addresses are reachable."
    )
    with deadline(timeout, waiting):
        made = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    used = [d.rsplit("device:", 1)[-1] for d in made.extended.worker_devices]
    return Distribution("multi_worker_mirrored", made, used, cluster)


# The watchdog runs in a process of its own: while TensorFlow waits for the cluster, the
# main thread may sit in C++ code holding the interpreter lock, and then no Python thread,
# timer or signal handler of this process runs until the wait ends. It asks first (SIGUSR1,
# whose handler raises the error for the CLI to report, exit status 1); a process that
# cannot answer within GRACE seconds gets the same words written for it, and SIGKILL (137).
GRACE = 5.0
_WATCHDOG = """
import os, signal, sys, time
parent, message = int(sys.argv[1]), sys.argv[4]
seconds, grace = float(sys.argv[2]), float(sys.argv[3])
time.sleep(seconds)
os.kill(parent, signal.SIGUSR1)
end = time.monotonic() + grace
while time.monotonic() < end:
    time.sleep(0.05)
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        sys.exit(0)
sys.stderr.write(message)
sys.stderr.flush()
os.kill(parent, signal.SIGKILL)
"""


@contextmanager
def deadline(seconds: float, error: KinitError, grace: float = GRACE) -> Iterator[None]:
    """Raise `error` if the block has not finished within `seconds`, even from inside
    TensorFlow's C++ runtime, which no Python timer interrupts (see _WATCHDOG)."""

    def expired(signum: int, frame: Any) -> None:
        raise error

    previous = signal.signal(signal.SIGUSR1, expired)
    text = "".join(line + "\n" for line in error.lines())
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(seconds), str(grace), text],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        watchdog.kill()
        watchdog.wait()
        signal.signal(signal.SIGUSR1, previous)
