"""Running a planned run (plan.py) in its run directory: the directory created or claimed,
fit() with the backup and the safe stop, finish() with the evaluation, the run's files and
the result. Nothing here prints.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kinit_cli.config import source as config_mod
from kinit_cli.data import image_pipeline, images, pipeline
from kinit_cli.errors import (
    KinitError,
    NoStepTrained,
    PluginCodeError,
    TrainingDiverged,
    TrainingInterrupted,
    WriteError,
    explained,
    plain,
)
from kinit_cli.registry import tf_ops
from kinit_cli.registry.plugins import plugin_failure
from kinit_cli.runtime.imports import tensorflow
from kinit_cli.storage import ownership, rundir
from kinit_cli.training import records as run_records
from kinit_cli.training.plan import Plan, steps, steps_per_call
from kinit_cli.weights import stats

# Draws a run's history (history.csv's rows) into the file it is given.
Figures = Callable[[list[dict[str, Any]], Path], None]


@dataclass
class TrainResult:
    """A finished run: its metrics.json and the final weights against the initial ones."""

    run_dir: Path
    metrics: dict[str, Any]
    chief: bool = True
    final_report: list[stats.VariableStats] = field(default_factory=list)
    changes: dict[str, stats.Change] = field(default_factory=dict)

    @property
    def saved_in(self) -> str:
        if self.chief:
            return f"Run saved in {self.run_dir}"
        return "Run saved by the chief worker (this worker writes no run directory)"

    @property
    def document(self) -> dict[str, Any]:
        """train --json's one document."""
        return {
            "run_dir": str(self.run_dir),
            "metrics": self.metrics,
            "weights_final": stats.report_json(self.final_report)["variables"],
            "relative_change": {p: c.relative for p, c in self.changes.items()},
            # The same definition as inspect-weights --against, the initial weights as A.
            "changes": {
                p: {"change": c.absolute, "relative_change": c.relative, "cosine": c.cosine}
                for p, c in self.changes.items()
            },
        }


class Trainer:
    """One planned run in its run directory: start(), fit(callbacks), finish(), close();
    as a context manager, start() on entry and close() on exit."""

    def __init__(self, plan: Plan, figures: Figures | None = None) -> None:
        self.plan = plan
        # Draws history.png from the history's rows once they are final (the command passes
        # output.plot's: training does not import output); a failure there fails no run.
        self.figures = figures
        self.lock: ownership.RunLock | None = None  # held from start() to close()
        # They subclass Keras's Callback, so Keras comes with them: imported for a run only.
        from kinit_cli.training import callbacks as callbacks_mod

        self.backup = callbacks_mod.EpochBackup(plan.run_dir, plan.initial_epoch)
        self.guard = callbacks_mod.SafeStop(self.backup)
        self.timer = callbacks_mod.EpochTimer()
        # tf.data on TensorFlow; NumPy batches on JAX and torch, which need no TensorFlow,
        # except for image files, which tf.data decodes on every backend (image_pipeline.py).
        self.tf_data = plan.settings.backend == "tensorflow" or plan.data.files
        # The epoch the training dataset yields next: set by EpochOrder as each one begins.
        if self.tf_data:
            self.epoch = tensorflow().Variable(plan.initial_epoch, dtype="int64", trainable=False)
        else:
            from kinit_cli.data import batches  # a Keras PyDataset: Keras comes with it

            self.batches = batches
            self.epoch = batches.EpochCounter(plan.initial_epoch)
        self.fit_seconds = 0.0
        # The metrics.json this run last wrote: a failed run's document under --json.
        self.record: dict[str, Any] | None = None

    @property
    def run_dir(self) -> Path:
        return self.plan.run_dir

    @property
    def document(self) -> dict[str, Any] | None:
        """train --json's document of a run that stopped with an error: its metrics.json."""
        if self.record is None:
            return None
        return {"run_dir": str(self.run_dir), "metrics": self.record}

    def __enter__(self) -> Trainer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Create (or, resuming, claim) the run directory and write its first files."""
        plan = self.plan
        if plan.options.resume:
            self.lock = ownership.RunLock(self.run_dir)
            try:
                self.lock.claim()
            except BaseException:
                self.lock.release()
                self.lock = None
                raise
            # The run's config says how many epochs it was last asked for.
            self._write_config()
            return
        replace = plan.options.overwrite or not plan.distribution.is_chief
        self.lock = ownership.create(self.run_dir, replace, plan.callback_files)
        try:
            rundir.write_json(
                self.run_dir / rundir.WEIGHTS_INIT, stats.report_json(plan.initial_report)
            )
            self._write_data_records()
            self._write_config()
        except WriteError as exc:
            # Nothing trained yet: leave nothing behind, so the same command can rerun.
            self.lock.abandon()
            self.lock = None
            raise WriteError(f"{exc}; the run did not start, and left nothing") from exc

    def _write_data_records(self) -> None:
        """preprocessing.json, and split.json where the run drew its own test part."""
        data = self.plan.data
        if data.preprocessing is not None:
            rundir.write_json(self.run_dir / rundir.PREPROCESSING, data.preprocessing.document())
        if data.split is not None:
            rundir.write_json(self.run_dir / rundir.SPLIT, data.split.document())

    def _write_config(self) -> None:
        config = self.plan.prepared.config
        rundir.write_text(
            self.run_dir / rundir.CONFIG,
            config_mod.dump(
                run_records.portable(self.plan.settings, config, self.plan.user_plugins)
            ),
        )

    def fit(self, callbacks: Sequence[Any] = ()) -> None:
        """Train from the last saved epoch to `train.epochs`, stopping cleanly on a signal."""
        from kinit_cli.training.callbacks import EpochOrder

        # The backup comes after the config's callbacks, so it holds what they change at an
        # epoch's end (ReduceLROnPlateau's learning rate); the timer comes last, so an
        # epoch's time includes what the others do at its end: costs every epoch pays again.
        every = [
            EpochOrder(self.epoch),
            self.guard,
            *self.plan.callbacks,
            *callbacks,
            *self._weight_history(),
            self.backup,
            self.timer,
        ]
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        start = time.perf_counter()
        with tf_ops.cut_gradients_fail(self.plan.built.model):
            try:
                self._run_epochs(every)
            except WriteError as exc:
                failure = self._with_backup(exc)
                self._record_failure(failure)
                raise failure from exc
            except (SystemExit, KeyboardInterrupt) as exc:
                failure = self._exit_in_code(exc)
                if failure is None:
                    raise  # a second Ctrl-C: stop now, as promised
                self._record_failure(failure)
                raise failure from exc
            except Exception as exc:
                failure = exc if isinstance(exc, KinitError) else plugin_failure(exc, "training")
                failure = failure or self._image_failure(exc)
                self._record_failure(failure or exc)
                if failure is None:
                    raise
                if failure is exc:
                    raise
                raise failure from exc
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)
        self.fit_seconds = time.perf_counter() - start
        self._check_steps()

    def _weight_history(self) -> list[Any]:
        """The WeightHistory callback when train.weight_history asks for it. It comes before
        the backup, so an epoch's rows are written before the backup that makes the epoch
        count: a crash in between leaves rows --resume drops, never a backed-up epoch
        without its rows. (The backup itself holds no weight history: the rows are in the
        run directory, and nothing in the training state depends on them.)"""
        plan = self.plan
        if not plan.settings.train.weight_history:
            return []
        from kinit_cli.training.callbacks import WeightHistory

        batch = plan.data.x_train[: plan.settings.train.batch_size]
        probe = plan.data.model_input(batch) if plan.initial_epoch == 0 else None
        return [
            WeightHistory(
                self.run_dir,
                plan.built.weights,
                plan.initial_arrays,
                plan.initial_epoch,
                self.backup,
                probe,
            )
        ]

    def _run_epochs(self, every: list[Any]) -> None:
        """The epochs left, through the multi-worker loop where there is one, model.fit
        otherwise; none left, the backup's state put back."""
        plan = self.plan
        train = plan.settings.train
        model = plan.built.model
        validation = self._validation_data if plan.data.x_val is not None else None
        if plan.initial_epoch < train.epochs and plan.loop is not None:
            plan.loop.fit(
                self._train_data,
                plan.steps_per_epoch,
                plan.initial_epoch,
                train.epochs,
                validation,
                steps(plan.data.x_val, train.batch_size),
                every,
                stop_requested=lambda: self.guard.interrupted,
                on_stop=self.guard.interrupt,
            )
        elif plan.initial_epoch < train.epochs:
            model.fit(
                self._train_data(),
                epochs=train.epochs,
                initial_epoch=plan.initial_epoch,
                shuffle=False,  # the dataset is already shuffled, per epoch and seed
                validation_data=validation() if validation else None,
                callbacks=every,
                verbose=0,
            )
        else:
            # Every epoch is in the backup already (a run stopped after its last one,
            # before its final files): restore that state, and finish.
            self.backup.set_model(model)
            self.backup.on_train_begin()

    def _exit_in_code(self, exc: SystemExit | KeyboardInterrupt) -> KinitError | None:
        """What a sys.exit() or a KeyboardInterrupt raised during training is: None for the
        KeyboardInterrupt of a second Ctrl-C (the first one set `guard.interrupted`, and
        _stop_on_the_next gave the next Python's default handler); otherwise code's, a
        plugin's where one is on the traceback, and a failure of the run either way."""
        if isinstance(exc, KeyboardInterrupt) and self.guard.interrupted is not None:
            return None
        failure = plugin_failure(exc, "training")
        if failure is not None:
            return failure
        return PluginCodeError(
            f"training failed: {type(exc).__name__} was raised by code during training, not "
            "by a signal"
        )

    def _check_steps(self) -> None:
        """Fail a run whose epochs ran no training step (Keras ends an epoch whose data gave
        no batch with a warning only): recording it completed would keep untrained weights
        as a trained model."""
        train = self.plan.settings.train
        if self.plan.initial_epoch >= train.epochs or self.guard.steps:
            return
        if self.guard.interrupted is not None or self.guard.failed:
            return
        failure = NoStepTrained(
            f"no training step ran in epochs {self.plan.initial_epoch + 1} to {train.epochs} "
            f"({len(self.plan.data.x_train)} training examples, batch_size "
            f"{train.batch_size}, steps_per_execution "
            f"{steps_per_call(self.plan.settings, self.plan.distribution.replicas)}): Keras "
            "ended each epoch without a batch, so nothing was trained"
        )
        self._record_failure(failure)
        raise failure

    def _record_failure(self, exc: BaseException) -> None:
        """metrics.json of a run that failed while training: what happened, and the epochs
        its backup keeps (which --resume goes on from once the cause is fixed); beside the
        record of a completed run this one continued (rundir.record_outcome)."""
        if self.plan.scratch is not None:
            return
        if isinstance(exc, KinitError):
            message = plain(str(exc))
        else:  # Keras's message, without its colour codes and argument dump
            message = f"{type(exc).__name__}: {explained(exc)}"
        metrics = {
            "status": "failed",
            "error": message,
            "epochs": self.backup.epochs,
            "initial_epoch": self.plan.initial_epoch,
            "seed": self.plan.seed,
        }
        self.record = metrics
        with contextlib.suppress(WriteError):
            rundir.record_outcome(self.run_dir, metrics)
            if self.lock is not None:
                self.lock.record()

    def _train_data(self, pieces: pipeline.ReplicaShare | None = None) -> Any:
        train, d = self.plan.settings.train, self.plan.data
        shuffle = self.plan.settings.data.shuffle
        common = (d.x_train, d.y_train, train.batch_size, self.plan.seed, shuffle, self.epoch)
        if d.files:
            return image_pipeline.train_dataset(*common, *self._image_format(), pieces)
        if not self.tf_data:
            return self.batches.train_batches(*common, d.scale, self.plan.distribution.replicas)
        return pipeline.train_dataset(*common, pieces, d.scale)

    def _image_failure(self, exc: BaseException) -> KinitError | None:
        """The image file TensorFlow failed to decode, named (it changed after the header
        check, or its data is damaged past its header); None for any other error."""
        d = self.plan.data
        if not d.files:
            return None
        paths = [x for x in (d.x_train, d.x_val, d.x_test) if x is not None]
        return images.failed_file(exc, list(np.concatenate(paths)), self._image_format()[0])

    def _image_format(self) -> tuple[Any, float | None, bool]:
        """(ImageFormat, scale, flatten) of an image folder's batches."""
        prep = self.plan.data.preprocessing
        assert prep is not None and prep.images is not None
        return prep.images, prep.scale, prep.flatten

    def _eval_data(self, x: Any, y: Any, pieces: pipeline.ReplicaShare | None) -> Any:
        """One pass over (x, y) in order: validation and test."""
        d, batch = self.plan.data, self.plan.settings.train.batch_size
        if d.files:
            return image_pipeline.eval_dataset(x, y, batch, *self._image_format(), pieces)
        if not self.tf_data:
            pad = self.plan.distribution.replicas
            return self.batches.eval_batches(x, y, batch, d.scale, pad)
        return pipeline.eval_dataset(x, y, batch, pieces, d.scale)

    def _validation_data(self, pieces: pipeline.ReplicaShare | None = None) -> Any:
        return self._eval_data(self.plan.data.x_val, self.plan.data.y_val, pieces)

    def _test_metrics(self) -> dict[str, float]:
        d, batch = self.plan.data, self.plan.settings.train.batch_size

        def dataset(pieces: pipeline.ReplicaShare | None = None) -> Any:
            return self._eval_data(d.x_test, d.y_test, pieces)

        if self.plan.loop is not None:
            return self.plan.loop.evaluate(dataset, steps(d.x_test, batch))
        try:
            test = self.plan.built.model.evaluate(dataset(), return_dict=True, verbose=0)
        except Exception as exc:
            failure = self._image_failure(exc)
            if failure is None:
                raise
            raise failure from exc
        return {key: float(v) for key, v in test.items()}

    def _on_signal(self, signum: int, frame: Any) -> None:
        _stop_on_the_next(signum)
        self.guard.interrupt(signum)

    def close(self) -> None:
        """Release the run directory; remove a non-chief worker's private folder (the
        chief's run directory stays)."""
        if self.lock is not None:
            self.lock.release()
        if self.plan.scratch is not None:
            shutil.rmtree(self.plan.scratch, ignore_errors=True)

    def finish(self) -> TrainResult:
        """Evaluate, write the run directory, and report; raise if the run did not complete.

        A first SIGINT or SIGTERM while the run's files are written is let pass: training is
        over, and stopping half-way through them would leave a run --resume must finish; a
        second one stops at once, as during training.
        """
        previous = {
            s: signal.signal(s, self._while_finishing) for s in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            with self.plan.loop.peers() if self.plan.loop is not None else contextlib.nullcontext():
                return self._finish()
        except WriteError as exc:
            raise self._with_backup(exc) from exc
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _while_finishing(self, signum: int, frame: Any) -> None:
        _stop_on_the_next(signum)

    def _with_backup(self, exc: WriteError) -> WriteError:
        """A failed write, with what the run still has to go on from."""
        done = self.backup.epochs
        resumable = (self.run_dir / rundir.CONFIG).exists()
        then = f": continue with kinit train --resume {self.run_dir}" if resumable else ""
        return WriteError(f"{exc}; the last complete backup is epoch {done}{then}")

    def _finish(self) -> TrainResult:
        """Write the run's files (history, final weights, model, metrics.json), then return
        the result of a completed run or raise what stopped it."""
        plan = self.plan
        # Finished epochs are those the backup holds: one cut short is not, and a signal
        # that lands after an epoch's backup but before the next epoch cuts none.
        rows = self.backup.rows
        rundir.write_history(self.run_dir / rundir.HISTORY, rows)
        status, bad = self._outcome()
        metrics = self._metrics(status, rows)
        final_report: list[stats.VariableStats] = []
        changes: dict[str, stats.Change] = {}
        if status == "interrupted":  # the model file is not this attempt's: keep its record
            rundir.record_outcome(self.run_dir, metrics)
        else:
            final = stats.values(plan.built.weights)
            final_report = stats.report(plan.built.weights, final)
            changes = {p: stats.change(plan.initial_arrays[p], final[p]) for p in final}
            metrics["model_file"] = self._save(plan.built.model)
            rundir.write_json(self.run_dir / rundir.WEIGHTS_FINAL, stats.report_json(final_report))
            rundir.write_json(self.run_dir / rundir.METRICS, metrics)
        self.record = metrics
        if self.lock is not None:
            self.lock.record()
        self._draw(rows)
        self._check_completed(status, metrics, bad, bool(rows))
        return TrainResult(
            self.run_dir,
            metrics,
            plan.distribution.is_chief,
            final_report=final_report,
            changes=changes,
        )

    def _draw(self, rows: list[dict[str, Any]]) -> None:
        """history.png from the run's final history, where there is a figure hook, an epoch
        to draw and a run directory to keep it; the figure is a view of history.csv, so
        whatever stops it leaves the run as it is."""
        if self.figures is None or not rows or self.plan.scratch is not None:
            return
        with contextlib.suppress(Exception):
            self.figures(rows, self.run_dir / rundir.HISTORY_PLOT)

    def _outcome(self) -> tuple[str, list[str]]:
        """completed, interrupted, or diverged: then the paths of the weights that went
        non-finite, and the last good weights put back in the model."""
        guard = self.guard
        if guard.failed:
            bad = [
                w.path
                for w in self.plan.built.weights
                if not np.isfinite(np.asarray(w.variable.numpy())).all()
            ]
            self.plan.built.model.set_weights(guard.good)
            return "diverged", bad
        if guard.interrupted is not None:
            return "interrupted", []
        return "completed", []

    def _metrics(self, status: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """metrics.json (records.metrics), the test set evaluated unless interrupted."""
        test = self._test_metrics() if status != "interrupted" else None
        return run_records.metrics(
            self.plan, status, rows, test, self.fit_seconds, self.timer.seconds
        )

    def _check_completed(
        self, status: str, metrics: dict[str, Any], bad: list[str], any_epoch: bool
    ) -> None:
        """Raise for a run that diverged or was interrupted, once its files are written:
        what happened, where its weights are, and how to go on."""
        guard, train = self.guard, self.plan.settings.train
        chief = self.plan.distribution.is_chief
        if status == "diverged":
            epoch, step, loss = guard.failed
            saved = self.run_dir / metrics["model_file"]
            kept = f"kept in {saved}" if chief else "kept by the chief worker"
            which = (
                "after the last full epoch" if any_epoch else "at initialization (no epoch ended)"
            )
            raise TrainingDiverged(
                f"the loss became {loss} at epoch {epoch + 1}, step {step + 1}; non-finite "
                f"values in: {', '.join(bad) or 'no weight (the loss alone)'}. The weights "
                f"{which} were {kept}."
            )
        if status == "interrupted":
            done = self.backup.epochs
            if not chief:
                then = "The chief worker keeps the run."
            elif self.plan.loop is not None:
                then = f"They are in {self.run_dir}; a multi-worker run cannot be resumed."
            else:
                then = f"Continue with: kinit train --resume {self.run_dir}"
            raise TrainingInterrupted(
                f"interrupted by {signal.Signals(guard.interrupted).name}; {done} of "
                f"{train.epochs} epochs are saved. {then}",
                guard.interrupted,
            )

    def _save(self, model: Any) -> str:
        """model.keras when Keras can reload it; otherwise the weights alone, which kinit
        puts back into the model it rebuilds from the run's config.yaml. Returns the name."""
        if not self.plan.built.unsaveable:
            try:
                rundir.save_model(model, self.run_dir / rundir.MODEL)
                return rundir.MODEL
            except WriteError:
                raise
            except Exception:  # a class Keras cannot serialize after all: keep the weights
                pass
        rundir.save_weights(model, self.run_dir / rundir.WEIGHTS)
        return rundir.WEIGHTS


def _stop_on_the_next(signum: int) -> None:
    """Give the next such signal the default behaviour: stop now, whatever the state."""
    signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
