"""`kinit train`: seeds, compile, fit, evaluate, the run directory, resuming (its checks in
resume.py; devices and strategies in distribute.py).

The work is split into steps (`Trainer.setup`, `fit`, `finish`) so the command can show
the initial weights before training starts, while this module never prints.
"""

from __future__ import annotations

import contextlib
import math
import platform
import random
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kinit_cli.config import schema
from kinit_cli.config import source as config_mod
from kinit_cli.data import datasets as data_mod
from kinit_cli.data import pipeline
from kinit_cli.data.labels import check_labels
from kinit_cli.errors import ConfigError, KinitError, UsageError, WriteError
from kinit_cli.model import portability
from kinit_cli.registry.plugins import is_file, plugin_failure
from kinit_cli.runtime.imports import keras, tensorflow
from kinit_cli.storage import checkpoint, ownership, rundir
from kinit_cli.training import distribute, resume
from kinit_cli.weights import stats


class TrainingInterrupted(KinitError):
    """Training was stopped by a signal; the last full epoch is saved for --resume. Exits
    128 + the signal's number, as a shell reports a process the signal ended (130 for
    SIGINT, 143 for SIGTERM)."""

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.exit_code = 128 + int(signum)


class TrainingDiverged(KinitError):
    """The loss became NaN or infinite."""


@dataclass
class TrainOptions:
    device: str = "auto"
    seed: int | None = None
    output: str | None = None
    overwrite: bool = False
    resume: str | None = None
    strategy: str | None = None  # --strategy: overrides distribute.strategy


@dataclass
class TrainResult:
    run_dir: Path
    status: str  # completed | interrupted | diverged
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    final_report: list[stats.VariableStats] = field(default_factory=list)
    changes: dict[str, stats.Change] = field(default_factory=dict)


class Trainer:
    """One training run, step by step: setup(), fit(callbacks), finish()."""

    def __init__(
        self,
        config_path: str | None,
        overrides: Sequence[str],
        plugins: Sequence[str],
        options: TrainOptions,
    ) -> None:
        self.config_path = config_path
        self.overrides = list(overrides)
        self.plugins = list(plugins)
        self.options = options
        self._scratch: Path | None = None  # a non-chief worker's private run directory
        self.lock: ownership.RunLock | None = None
        self.up_to_date = False  # --resume of a run that has all its epochs: nothing to do

    def setup(self) -> None:
        """Load everything, build the model, create the run directory; nothing trained yet."""
        from kinit_cli.model.build import build
        from kinit_cli.model.sources import compile_arguments, prepare

        k, tf = keras(), tensorflow()
        opts = self.options
        if opts.resume:
            given = [
                f
                for f, v in (
                    ("--output", opts.output),
                    ("--seed", opts.seed),
                    ("--overwrite", opts.overwrite),
                )
                if v
            ]
            if given:
                raise UsageError(
                    f"--resume continues {opts.resume} in place, with its own seed; "
                    f"{' and '.join(given)} cannot be given with it"
                )
            self.run_dir = Path(opts.resume)
            saved = resume.saved_config(self.run_dir, self.config_path, self.overrides)
            source, overrides = saved.file, resume.epoch_overrides(self.overrides)
            self.up_to_date = resume.up_to_date(
                self.run_dir, schema.validate(saved)["train"]["epochs"]
            )
            if self.up_to_date:
                return
        else:
            if self.config_path is None:
                raise UsageError("give a CONFIG file, or --resume RUN_DIR")
            source, overrides = self.config_path, self.overrides
        # Visible and logical devices can only be set before TensorFlow's runtime starts,
        # and building an optimizer starts it: read the config's own structure first.
        section = schema.validate(config_mod.load(source, overrides))["distribute"]
        self.devices = distribute.select_devices(opts.device)
        strategy_name = opts.strategy or section["strategy"]
        if opts.resume and strategy_name == "multi_worker_mirrored":
            raise UsageError(
                "--resume is not available under multi_worker_mirrored: only the chief keeps "
                "a backup; start the run again, or resume it on one machine"
            )
        self.distribution = distribute.strategy(
            strategy_name, section["devices"], section["cluster"], section["timeout"]
        )
        if self.distribution.devices:
            self.devices = self.distribution.devices
        self.prepared = prepare(source, overrides, self.plugins, build=False)
        config, resolved = self.prepared.config, self.prepared.resolved
        if opts.seed is not None and not opts.resume:
            resolved["seed"] = opts.seed
        if resolved["seed"] is None:
            resolved["seed"] = random.SystemRandom().randrange(2**31)
        self.seed = int(resolved["seed"])
        k.utils.set_random_seed(self.seed)
        if resolved["deterministic"]:
            tf.config.experimental.enable_op_determinism()
        train = resolved["train"]
        # Layers take the global dtype policy when they are made and keep it: set it for
        # the build only, so nothing else in the process changes precision.
        previous = k.mixed_precision.dtype_policy()
        k.mixed_precision.set_dtype_policy(train["precision"])
        scope = self.distribution.strategy.scope()
        try:
            with scope:  # variables, optimizer and metrics belong to the strategy
                self.built = build(config, resolved, self.prepared.registry, training=True)
        finally:
            k.mixed_precision.set_dtype_policy(previous)
        self.prepared.built = self.built
        model = self.built.model
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise UsageError(
                f"kinit train feeds one input and one output; the model has "
                f"{len(model.inputs)} inputs and {len(model.outputs)} outputs"
            )
        self.data = data_mod.load(
            resolved["data"], tuple(model.inputs[0].shape[1:]), self.seed, config.base_dir
        )
        args = self.prepared.compile_args
        check_labels(self.data, model, args.get("loss"), args.get("metrics", ()))
        if not self.distribution.is_chief:
            # Other workers write what the callbacks write too, into a folder of their own
            # that is removed at the end: nothing that could collide with the chief's.
            self.run_dir = self._scratch = Path(tempfile.mkdtemp(prefix="kinit-worker-"))
        elif not opts.resume:
            self.run_dir = (
                Path(opts.output) if opts.output else rundir.default_path(resolved["name"])
            )
        self.callbacks = self._config_callbacks()
        with self.distribution.strategy.scope():  # the optimizer belongs to the strategy
            arguments = compile_arguments(config, resolved, self.prepared.registry)
            # The compile config goes into model.keras too: a loss or schedule Keras cannot
            # reload makes the whole file unloadable.
            self.built.unsaveable += portability.check_objects(_compiled_objects(arguments))
            model.compile(
                **arguments,
                steps_per_execution=_steps_per_execution(train, self.distribution.replicas),
                jit_compile=train["jit_compile"],
            )
            if "loss" not in arguments:
                self._require_loss(model)
        self.loop = None
        if self.distribution.name == "multi_worker_mirrored":
            from kinit_cli.training.multiworker import Loop

            self.loop = Loop(model, self.distribution)
            batch = train["batch_size"]
            d = self.data
            self.loop.build((d.model_input(d.x_train[:batch]), d.y_train[:batch]))
        self.initial_arrays = stats.values(self.built.weights)
        self.initial_report = stats.report(self.built.weights, self.initial_arrays)
        self.prepared.duplicates = stats.duplicates(self.initial_report, self.initial_arrays)
        if opts.resume:
            self.lock = ownership.RunLock(self.run_dir)
            self.lock.claim()
        else:
            self.lock = ownership.create(
                self.run_dir, opts.overwrite or not self.distribution.is_chief, self.callback_files
            )
            try:
                rundir.write_json(
                    self.run_dir / rundir.WEIGHTS_INIT, stats.report_json(self.initial_report)
                )
                self._write_config(resolved, config.base_dir)
            except WriteError as exc:
                # Nothing trained yet: leave nothing behind, so the same command can rerun.
                self.lock.abandon()
                self.lock = None
                raise WriteError(f"{exc}; the run did not start, and left nothing") from exc
        if opts.resume:
            # The run's config says how many epochs it was last asked for.
            self._write_config(resolved, config.base_dir)
        self.initial_epoch = checkpoint.completed_epochs(self.run_dir)

    def _write_config(self, resolved: dict[str, Any], base_dir: Path) -> None:
        rundir.write_text(
            self.run_dir / rundir.CONFIG, config_mod.dump(_portable(resolved, base_dir))
        )

    def _require_loss(self, model: Any) -> None:
        """A model compiled without a loss trains only when it makes its own (add_loss, or a
        compute_loss of its own): find out on two examples now, before the run directory
        exists, rather than from Keras's error in the first step."""
        d = self.data
        x = d.model_input(d.x_train[:2])
        try:
            model.compute_loss(x=x, y=d.y_train[:2], y_pred=model(x, training=False))
        except ValueError as exc:
            if "No loss to compute" not in str(exc):
                raise
            message = (
                "no loss to train with: give compile.loss (e.g. sparse_categorical_crossentropy "
                "for class ids), or have the model add its own with add_loss()"
            )
            raise ConfigError([self.prepared.config.problem(("compile",), message)]) from None

    @property
    def resolved(self) -> dict[str, Any]:
        return self.prepared.resolved

    @property
    def steps_per_epoch(self) -> int:
        return _steps(self.data.x_train, self.resolved["train"]["batch_size"])

    def _config_callbacks(self) -> list[Any]:
        from kinit_cli.registry.specs import FAILED, SpecBuilder

        config = self.prepared.config
        builder = SpecBuilder(self.prepared.registry, config)
        out, problems = [], []
        self.callback_files: list[str] = []
        for i, spec in enumerate(self.resolved["train"]["callbacks"]):
            where = ("train", "callbacks", i)
            if self._scratch is not None:
                spec = _in_private_dir(spec, self._scratch)
            else:
                placed = rundir.callback_paths(
                    spec, self.run_dir, self.options.overwrite or bool(self.options.resume)
                )
                spec = placed.spec
                self.callback_files += placed.files
                problems += [config.problem(where + key, text) for key, text in placed.problems]
            callback = builder.build("callback", spec, where, keep_builtin_names=False)
            if callback is not FAILED:
                out.append(callback)
        if builder.problems or problems:
            raise ConfigError(builder.problems + problems)
        return out

    def fit(self, callbacks: Sequence[Any] = ()) -> None:
        """Train from the last saved epoch to `train.epochs`, stopping cleanly on a signal."""
        from kinit_cli.training.callbacks import EpochBackup, EpochOrder, EpochTimer, Guard

        train = self.resolved["train"]
        model = self.built.model
        self.backup = backup = EpochBackup(self.run_dir, self.initial_epoch)
        self.guard = Guard(backup)
        # The epoch the training dataset yields next: set by EpochOrder as each one begins.
        self.epoch = tensorflow().Variable(self.initial_epoch, dtype="int64", trainable=False)
        validation = self._validation_data if self.data.x_val is not None else None
        self.timer = EpochTimer()
        # The backup comes after the config's callbacks, so it holds what they change at an
        # epoch's end (ReduceLROnPlateau's learning rate); the timer comes last, so an
        # epoch's time includes what the others do at its end: costs every epoch pays again.
        every = [
            EpochOrder(self.epoch),
            self.guard,
            *self.callbacks,
            *callbacks,
            backup,
            self.timer,
        ]
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        start = time.perf_counter()
        try:
            if self.initial_epoch < train["epochs"] and self.loop is not None:
                self.loop.fit(
                    self._train_data,
                    self.steps_per_epoch,
                    self.initial_epoch,
                    train["epochs"],
                    validation,
                    _steps(self.data.x_val, train["batch_size"]),
                    every,
                    stop_requested=lambda: self.guard.interrupted,
                    on_stop=self.guard.interrupt,
                )
            elif self.initial_epoch < train["epochs"]:
                model.fit(
                    self._train_data(),
                    epochs=train["epochs"],
                    initial_epoch=self.initial_epoch,
                    shuffle=False,  # the dataset is already shuffled, per epoch and seed
                    validation_data=validation() if validation else None,
                    callbacks=every,
                    verbose=0,
                )
            else:
                # Every epoch is in the backup already (a run stopped after its last one,
                # before its final files): restore that state, and finish.
                backup.set_model(model)
                backup.on_train_begin()
        except WriteError as exc:
            failure = self._with_backup(exc)
            self._record_failure(failure)
            raise failure from exc
        except Exception as exc:
            failure = exc if isinstance(exc, KinitError) else plugin_failure(exc, "training")
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

    def _record_failure(self, exc: BaseException) -> None:
        """metrics.json of a run that failed while training: what happened, and the epochs
        its backup keeps (which --resume goes on from once the cause is fixed)."""
        if self._scratch is not None:
            return
        message = str(exc) if isinstance(exc, KinitError) else f"{type(exc).__name__}: {exc}"
        metrics = {
            "status": "failed",
            "error": message,
            "epochs": self.backup.epochs,
            "initial_epoch": self.initial_epoch,
            "seed": self.seed,
        }
        with contextlib.suppress(WriteError):
            rundir.write_json(self.run_dir / rundir.METRICS, metrics)
            if self.lock is not None:
                self.lock.record()

    def _train_data(self, pieces: pipeline.Pieces | None = None) -> Any:
        train, d = self.resolved["train"], self.data
        return pipeline.train_dataset(
            d.x_train,
            d.y_train,
            train["batch_size"],
            self.seed,
            self.resolved["data"]["shuffle"],
            self.epoch,
            pieces,
            d.scale,
        )

    def _validation_data(self, pieces: pipeline.Pieces | None = None) -> Any:
        d = self.data
        return pipeline.eval_dataset(
            d.x_val, d.y_val, self.resolved["train"]["batch_size"], pieces, d.scale
        )

    def _test_metrics(self) -> dict[str, float]:
        d, batch = self.data, self.resolved["train"]["batch_size"]

        def dataset(pieces: pipeline.Pieces | None = None) -> Any:
            return pipeline.eval_dataset(d.x_test, d.y_test, batch, pieces, d.scale)

        if self.loop is not None:
            return self.loop.evaluate(dataset, _steps(d.x_test, batch))
        test = self.built.model.evaluate(dataset(), return_dict=True, verbose=0)
        return {key: float(v) for key, v in test.items()}

    def _on_signal(self, signum: int, frame: Any) -> None:
        _stop_on_the_next(signum)
        self.guard.interrupt(signum)

    def close(self) -> None:
        """Release the run directory; remove a non-chief worker's private folder (the
        chief's run directory stays)."""
        if self.lock is not None:
            self.lock.release()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

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
            with self.loop.peers() if self.loop is not None else contextlib.nullcontext():
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
        model, guard, train = self.built.model, self.guard, self.resolved["train"]
        # Finished epochs are those the backup holds: one cut short is not, and a signal
        # that lands after an epoch's backup but before the next epoch cuts none.
        rows = self.backup.rows
        new = [r for r in rows if r["epoch"] >= self.initial_epoch]
        rundir.write_history(self.run_dir / rundir.HISTORY, rows)
        status = "completed"
        if guard.failed:
            status = "diverged"
            bad = [
                w.path
                for w in self.built.weights
                if not np.isfinite(np.asarray(w.variable.numpy())).all()
            ]
            model.set_weights(guard.good)
        elif guard.interrupted is not None:
            status = "interrupted"
        metrics: dict[str, Any] = {"status": status}
        if rows:
            last = rows[-1]
            metrics["train"] = {
                k2: v for k2, v in last.items() if k2 != "epoch" and not k2.startswith("val_")
            }
            val = {k2[4:]: v for k2, v in last.items() if k2.startswith("val_")}
            if val:
                metrics["validation"] = val
        if status != "interrupted":
            metrics["test"] = self._test_metrics()
        samples = len(new) * len(self.data.x_train)
        metrics.update(
            {
                "epochs": len(rows),
                "initial_epoch": self.initial_epoch,
                "wall_time_s": round(self.fit_seconds, 3),
                # The epochs kept in `new` only: an epoch cut short is not one trained.
                "epoch_seconds": [round(self.timer.seconds[r["epoch"]], 3) for r in new],
                "samples_per_second": round(samples / self.fit_seconds, 1)
                if self.fit_seconds > 0 and samples
                else None,
                "seed": self.seed,
                "devices": self.devices,
                "strategy": self.distribution.name,
                "num_replicas": self.distribution.replicas,
                "per_replica_batch_size": train["batch_size"] / self.distribution.replicas,
                **_cluster_metrics(self.distribution),
                "data": {"name": self.data.name, "source": self.data.source, **self.data.sizes},
                "versions": _versions(),
            }
        )
        result = TrainResult(self.run_dir, status, rows, metrics)
        if status != "interrupted":
            final = stats.values(self.built.weights)
            result.final_report = stats.report(self.built.weights, final)
            result.changes = {p: stats.change(self.initial_arrays[p], final[p]) for p in final}
            metrics["model_file"] = self._save(model)
            rundir.write_json(
                self.run_dir / rundir.WEIGHTS_FINAL, stats.report_json(result.final_report)
            )
        rundir.write_json(self.run_dir / rundir.METRICS, metrics)
        if self.lock is not None:
            self.lock.record()
        chief = self.distribution.is_chief
        if status == "diverged":
            epoch, step, loss = guard.failed
            saved = self.run_dir / metrics["model_file"]
            kept = f"kept in {saved}" if chief else "kept by the chief worker"
            which = "after the last full epoch" if rows else "at initialization (no epoch ended)"
            raise TrainingDiverged(
                f"the loss became {loss} at epoch {epoch + 1}, step {step + 1}; non-finite "
                f"values in: {', '.join(bad) or 'no weight (the loss alone)'}. The weights "
                f"{which} were {kept}."
            )
        if status == "interrupted":
            done = self.backup.epochs
            if not chief:
                then = "The chief worker keeps the run."
            elif self.loop is not None:
                then = f"They are in {self.run_dir}; a multi-worker run cannot be resumed."
            else:
                then = f"Continue with: kinit train --resume {self.run_dir}"
            raise TrainingInterrupted(
                f"interrupted by {signal.Signals(guard.interrupted).name}; {done} of "
                f"{train['epochs']} epochs are saved. {then}",
                guard.interrupted,
            )
        return result

    def _save(self, model: Any) -> str:
        """model.keras when Keras can reload it; otherwise the weights alone, which kinit
        puts back into the model it rebuilds from the run's config.yaml. Returns the name."""
        if not self.built.unsaveable:
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


def _compiled_objects(arguments: dict[str, Any]) -> list[Any]:
    """The objects (not names) in model.compile's arguments, with an optimizer's schedule."""
    optimizer = arguments["optimizer"]
    objects = [optimizer, arguments.get("loss"), *arguments["metrics"]]
    if not isinstance(optimizer, str):
        schedule = keras().optimizers.schedules.LearningRateSchedule
        objects += [v for v in vars(optimizer).values() if isinstance(v, schedule)]
    return [o for o in objects if o is not None and not isinstance(o, str)]


def _cluster_metrics(distribution: distribute.Distribution) -> dict[str, Any]:
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


def _steps(x: np.ndarray | None, batch_size: int) -> int:
    return 0 if x is None else math.ceil(len(x) / batch_size)


def _steps_per_execution(train: dict[str, Any], replicas: int) -> int:
    """`train.steps_per_execution`, or 1 across several replicas: there Keras 3.15's
    multi-step loop fails ("You must feed a value for placeholder tensor ...", as in
    keras-team/keras#19246), and the setting never changes the trained weights."""
    return train["steps_per_execution"] if replicas == 1 else 1


def _in_private_dir(spec: Any, folder: Path) -> Any:
    """A callback spec whose file arguments, absolute ones too, are moved into a non-chief
    worker's private folder, so that workers sharing a file system never write the chief's."""
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        return spec
    config = dict(spec["config"])
    for key in rundir.PATH_ARGUMENTS:
        if isinstance(config.get(key), str):
            config[key] = str(folder / Path(config[key]).name)
    return {**spec, "config": config}


def _portable(resolved: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """The resolved config with file paths made absolute, so the run dir's copy reruns as is."""
    import copy

    out = copy.deepcopy(resolved)
    out["plugins"] = [str((base_dir / p).resolve()) if is_file(p) else p for p in out["plugins"]]
    if out["data"].get("path"):
        out["data"]["path"] = str((base_dir / out["data"]["path"]).resolve())
    if out.get("init_from"):
        out["init_from"]["source"] = str((base_dir / out["init_from"]["source"]).resolve())
    return out


def _versions() -> dict[str, str]:
    from kinit_cli import __version__

    return {
        "python": platform.python_version(),
        "tensorflow": tensorflow().__version__,
        "keras": keras().__version__,
        "kinit": __version__,
    }
