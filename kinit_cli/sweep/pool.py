"""Where a sweep's trials run: a pool of local worker processes (the default), or Ray
(ray_pool.py). Both take module-level functions of worker.py and give back
concurrent.futures Futures, so the sweep waits on either the same way."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Protocol

from kinit_cli.runtime import memory
from kinit_cli.sweep import worker

# What one worker process takes: TensorFlow's runtime (about 0.8 GB measured) and a model
# of the size kinit's tests and examples train, with room to spare.
WORKER_BYTES = 3 * 2**30 // 2


class Pool(Protocol):
    workers: int

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]: ...

    def interrupt(self) -> None:
        """Ask every trial running to stop, as one Ctrl-C stops `kinit train`."""

    def shutdown(self) -> None:
        """Stop the workers once what runs has ended; nothing new starts."""


def default_jobs(trials: int) -> int:
    """As many workers as the machine has cores and memory for, and trials to give them."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    available = memory.available_bytes()
    by_memory = max(1, available // WORKER_BYTES) if available else cores or 1
    return max(1, min(cores or 1, by_memory, trials))


class LocalPool:
    """Worker processes started fresh (spawn: never a fork of a process that may hold
    threads), each importing Keras once and running one trial after another."""

    def __init__(self, workers: int, backend: str) -> None:
        self.workers = workers
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=worker.start_local,
            initargs=(backend,),
        )

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        return self._executor.submit(fn, *args)

    def interrupt(self) -> None:
        # The workers are in process groups of their own (worker.start_local): a terminal's
        # Ctrl-C reaches this process only, which passes exactly one on.
        for child in multiprocessing.active_children():
            if child.pid is not None:
                try:
                    os.kill(child.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
