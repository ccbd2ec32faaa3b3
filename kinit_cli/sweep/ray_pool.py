"""`kinit sweep --cluster ray`: the sweep's trials as Ray tasks, on the Ray cluster at
RAY_ADDRESS, or on a Ray instance started here for the sweep (on this machine's loopback
address only) and stopped after it. A task runs one of worker.py's functions, as a local
pool's worker process does; Ray keeps its worker processes between tasks, so Keras is
imported once per worker there too.

Ray is an optional extra (`pip install 'kinit[ray]'`), imported here only.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from kinit_cli.errors import UsageError
from kinit_cli.runtime import backend as backend_mod

INSTALL = "pip install 'kinit[ray]'"
# A trial's task gives back a small outcome: the object store needs little of the memory
# the trials need (Ray's least is 75 MiB).
OBJECT_STORE_BYTES = 256 * 2**20


def require() -> Any:
    """The ray module; UsageError naming the extra when it is not installed."""
    if not os.environ.get("RAY_ADDRESS"):
        # Read when Ray is imported: bind the instance to 127.0.0.1 (Ray otherwise takes
        # the machine's network address) and send no usage statistics.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise UsageError(f"--cluster ray needs Ray, an optional extra: {INSTALL}") from None
    return ray


class RayPool:
    """Trials as Ray tasks of one CPU each, `jobs` at a time on a local instance."""

    def __init__(self, jobs: int, backend: str) -> None:
        self.workers = jobs
        self._backend = backend
        address = os.environ.get("RAY_ADDRESS")
        ray = require()
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
            if address:
                ray.init(address=address, **quiet)
            else:
                # Its workers run this interpreter in this process's environment, so they
                # import this same kinit.
                ray.init(
                    num_cpus=jobs,
                    include_dashboard=False,
                    object_store_memory=OBJECT_STORE_BYTES,
                    **quiet,
                )
        self._task = ray.remote(num_cpus=1, max_retries=0)(_call)
        self._lock = threading.Lock()
        self._running: set[Any] = set()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """`fn(*args)` as a Ray task. A task Ray cancelled before it ran comes back as a
        cancelled Future; one cancelled while it ran stops as worker.run stops on Ctrl-C
        and gives back its own outcome (an interrupted trial)."""
        ref = self._task.remote(self._backend, fn, *args)
        with self._lock:
            self._running.add(ref)
        future: Future[Any] = Future()

        def settle(done: Future[Any]) -> None:
            with self._lock:
                self._running.discard(ref)
            try:
                future.set_result(done.result())
            except self._ray.exceptions.TaskCancelledError:
                # Cancelled, and said so to concurrent.futures.wait() (cancel() alone is not).
                future.cancel()
                future.set_running_or_notify_cancel()
            except BaseException as exc:  # the task's failure, as a local pool gives it
                future.set_exception(exc)

        ref.future().add_done_callback(settle)
        return future

    def interrupt(self) -> None:
        """Cancel every task: a running one gets a KeyboardInterrupt, as a worker process
        gets one SIGINT, and ends its trial as an interrupted run."""
        with self._lock:
            running = list(self._running)
        for ref in running:
            self._ray.cancel(ref)

    def shutdown(self) -> None:
        """Disconnect from the cluster, or stop the instance started for the sweep; a Ray
        that was already running in this process is left as it was."""
        if self._started:
            self._ray.shutdown()


def _call(backend: str, fn: Callable[..., Any], *args: Any) -> Any:
    """A task: the sweep's backend chosen in the Ray worker before Keras is imported, as
    worker.start_local chooses it in a local pool's worker, then `fn(*args)`."""
    backend_mod.use(backend)
    return fn(*args)
