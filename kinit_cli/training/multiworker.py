"""Training and evaluation under MultiWorkerMirroredStrategy, where `model.fit` fails.

Keras 3's `fit` and `evaluate` stop under `tf.distribute.MultiWorkerMirroredStrategy`
(keras-team/keras issue 20585): before the first step they reduce a batch of the
distributed data with `strategy.reduce`, which cannot convert the workers' per-replica
values. This module is the loop `fit` would run, with the same parts: Keras's own
`train_step` and `test_step` run on every replica by `strategy.run`, the gradients summed
across workers by the optimizer's all-reduce, the metrics read through their
synchronised variables, and the callbacks driven through Keras's `CallbackList`.

Every worker must run the same collectives in the same order, or the cluster deadlocks.
So each step also all-reduces a small vector of stop requests (a signal on any worker, a
non-finite loss on any replica): every worker learns of a stop at the same step, and the
metrics are read only at epoch boundaries, which every worker reaches together.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from kinit_cli.data.pipeline import ReplicaShare
from kinit_cli.errors import PeerError
from kinit_cli.runtime import compat
from kinit_cli.runtime.imports import keras, tensorflow
from kinit_cli.training.distribute import Distribution

DatasetFn = Callable[[ReplicaShare], Any]

# Slots of the stop vector every step all-reduces.
_SIGINT, _SIGTERM, _NONFINITE = range(3)


class Loop:
    """fit/evaluate for one model under a multi-worker strategy."""

    def __init__(self, model: Any, distribution: Distribution) -> None:
        tf, strategy = tensorflow(), distribution.strategy
        self.model = model
        self.strategy = strategy
        cluster = distribution.cluster
        self.where = f"{cluster.task_type} {cluster.index}" if cluster else "this worker"
        train_one, test_one = _compiled(model.train_step, model), _compiled(model.test_step, model)

        def replica(batch: Any, wanted: Any) -> tuple[Any, Any]:
            logs = train_one(batch)
            bad = tf.cast(~tf.math.is_finite(logs["loss"]), tf.float32)
            flags = tf.tensor_scatter_nd_add(wanted, [[_NONFINITE]], [bad])
            context = tf.distribute.get_replica_context()
            return logs, context.all_reduce(tf.distribute.ReduceOp.SUM, flags)

        @tf.function
        def train_step(iterator: Any, wanted: Any) -> tuple[Any, Any]:
            out = strategy.run(replica, args=(next(iterator), wanted))
            return tf.nest.map_structure(lambda v: strategy.experimental_local_results(v)[0], out)

        @tf.function
        def test_step(iterator: Any) -> None:
            strategy.run(test_one, args=(next(iterator),))

        self._train_step, self._test_step = train_step, test_step

    def distribute(self, make: DatasetFn) -> Any:
        """Each worker's pipeline yields its replicas' pieces of every global batch."""

        def per_worker(context: Any) -> Any:
            local = context.num_replicas_in_sync // context.num_input_pipelines
            pieces = ReplicaShare(
                context.num_replicas_in_sync, context.input_pipeline_id * local, local
            )
            return make(pieces)

        return self.strategy.distribute_datasets_from_function(per_worker)

    def build(self, batch: tuple[Any, Any]) -> None:
        """Create the optimizer's and the metrics' variables in the strategy's scope, from one
        local batch (what `fit` does with a reduced one)."""
        with self.strategy.scope():
            compat.symbolic_build(self.model, batch)

    def fit(
        self,
        train: DatasetFn,
        steps_per_epoch: int,
        initial_epoch: int,
        epochs: int,
        validation: DatasetFn | None,
        validation_steps: int,
        callbacks: Sequence[Any],
        stop_requested: Callable[[], int | None],
        on_stop: Callable[[int], None],
    ) -> None:
        """Train from `initial_epoch` to `epochs`, as `model.fit` with those callbacks.

        `train` makes one epoch's batches per iteration (see pipeline.train_dataset).

        `stop_requested` returns the signal this worker received, if any; `on_stop(signum)`
        is called on every worker when any of them received one.
        """
        with self.peers():
            tf = tensorflow()
            model = self.model
            callback_list = keras().callbacks.CallbackList(
                list(callbacks), model=model, epochs=epochs, steps=steps_per_epoch, verbose=0
            )
            dataset = self.distribute(train)
            validation_data = None if validation is None else self.distribute(validation)
            model.stop_training = False
            callback_list.on_train_begin()
            initial_epoch = compat.initial_epoch(model) or initial_epoch
            epoch_logs: dict[str, float] = {}
            for epoch in range(initial_epoch, epochs):
                model.reset_metrics()
                callback_list.on_epoch_begin(epoch)
                iterator = iter(dataset)  # after on_epoch_begin: the epoch's own order
                agreed = False  # every worker stops at this step, in this epoch
                for step in range(steps_per_epoch):
                    callback_list.on_train_batch_begin(step)
                    signum = stop_requested()
                    wanted = [signum == signal.SIGINT, signum == signal.SIGTERM, False]
                    logs, stops = self._train_step(iterator, tf.constant(wanted, tf.float32))
                    stops = stops.numpy()
                    logs = _floats(logs)
                    if stops[_NONFINITE] > 0:
                        logs["loss"] = float("nan")  # the guards stop on it, on every worker
                    if signum is None and (stops[_SIGINT] > 0 or stops[_SIGTERM] > 0):
                        on_stop(signal.SIGINT if stops[_SIGINT] > 0 else signal.SIGTERM)
                    agreed = bool(stops.any())
                    callback_list.on_train_batch_end(step, logs)
                    if agreed or _own_decision(model, stop_requested):
                        break
                epoch_logs = self._results()
                if validation_data is not None:
                    val = self._evaluate(validation_data, validation_steps)
                    epoch_logs.update({f"val_{k}": v for k, v in val.items()})
                callback_list.on_epoch_end(epoch, epoch_logs)
                if agreed or _own_decision(model, stop_requested):
                    break
            if epochs > initial_epoch:
                model.optimizer.finalize_variable_values(model.trainable_weights)
            callback_list.on_train_end(epoch_logs)

    def evaluate(self, make: DatasetFn, steps: int) -> dict[str, float]:
        """The metrics over the whole data set, as `model.evaluate(return_dict=True)`."""
        with self.peers():
            return self._evaluate(self.distribute(make), steps)

    def _evaluate(self, dataset: Any, steps: int) -> dict[str, float]:
        self.model.reset_metrics()
        iterator = iter(dataset)
        for _ in range(steps):
            self._test_step(iterator)
        return self._results()

    def _results(self) -> dict[str, float]:
        # Reading the metrics in cross-replica context all-reduces them across workers.
        return _floats(self.model.get_metrics_result())

    @contextmanager
    def peers(self) -> Iterator[None]:
        """A lost peer, wherever a collective meets it (a step, reading the metrics, saving
        the synchronised variables in a backup or the model), becomes a PeerError."""
        tf = tensorflow()
        try:
            yield
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as exc:
            raise PeerError(_peer_message(self.where, exc)) from exc
        except (tf.errors.CancelledError, tf.errors.AbortedError, tf.errors.InternalError) as e:
            text = str(e).lower()
            if "collective" not in text and "peer" not in text:
                raise
            raise PeerError(_peer_message(self.where, e)) from e


def _compiled(step: Callable[[Any], Any], model: Any) -> Callable[[Any], Any]:
    """The per-replica step, compiled by XLA when the model was compiled with jit_compile (as
    Keras's own trainer compiles it)."""
    if not model.jit_compile:
        return step
    return tensorflow().function(step, jit_compile=True, reduce_retracing=True)


def _own_decision(model: Any, stop_requested: Callable[[], int | None]) -> bool:
    """A stop a callback asked for (EarlyStopping and the like decide alike on every worker,
    from the same metrics). A signal seen here only stops the next step, for everyone."""
    return bool(model.stop_training) and stop_requested() is None


# Lines of TensorFlow's collective errors that say what happened to the peer.
_CAUSES = ("unhealthy", "connection", "deadline", "timed out", "timeout", "unavailable")


def _peer_message(where: str, exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    cause = next(
        (line for line in lines if any(word in line.lower() for word in _CAUSES)),
        type(exc).__name__,
    )
    return (
        f"{where} lost contact with the other workers (a worker stopped, or did not answer "
        f"within distribute.timeout): {cause}"
    )


def _floats(logs: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in logs.items():
        if isinstance(value, dict):
            out.update(_floats(value))
        else:
            out[key] = float(value)
    return out
