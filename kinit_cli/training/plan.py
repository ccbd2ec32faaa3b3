"""Planning a run: everything `kinit train` checks and builds before it writes anything.

plan() reads the config once, chooses devices and strategy, seeds and builds the model in
the strategy's scope, loads the data and checks the labels, compiles, and makes the
config's callbacks; the frozen Plan it returns is what a Trainer runs and what the command
shows first. --resume's checks are in resume.py, devices and strategies in distribute.py.
"""

from __future__ import annotations

import math
import random
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kinit_cli.config import source as config_mod
from kinit_cli.config.settings import Settings
from kinit_cli.data.datasets import load as load_data
from kinit_cli.data.labels import check_labels, task_of
from kinit_cli.data.splits import Splits
from kinit_cli.errors import ConfigError, DistributeError, UsageError
from kinit_cli.model import sources
from kinit_cli.model.build import BuiltModel
from kinit_cli.model.prepared import Checked, Prepared
from kinit_cli.registry.plugins import absolute
from kinit_cli.registry.specs import FAILED, SpecBuilder
from kinit_cli.registry.trust import Trust
from kinit_cli.runtime import backend, determinism
from kinit_cli.runtime.imports import keras, tensorflow
from kinit_cli.storage import checkpoint, rundir
from kinit_cli.training import distribute, resume
from kinit_cli.training.multiworker import Loop
from kinit_cli.weights import stats


@dataclass(frozen=True)
class TrainOptions:
    device: str = "auto"
    seed: int | None = None
    output: str | None = None
    overwrite: bool = False
    resume: str | None = None
    strategy: str | None = None  # --strategy: overrides distribute.strategy
    backend: str | None = None  # --backend: overrides the config's backend:


@dataclass(frozen=True)
class UpToDate:
    """--resume of a run that has all the epochs it asks for: nothing to train."""

    run_dir: Path

    @property
    def message(self) -> str:
        return (
            f"{self.run_dir} has trained all the epochs it was asked for; nothing to do "
            "(add --set train.epochs=N to train it further)"
        )

    @property
    def document(self) -> dict[str, Any]:
        return {"run_dir": str(self.run_dir), "nothing_to_do": self.message}


@dataclass(frozen=True)
class Plan:
    """A run made ready, before anything is written: its config with plugins and model, the
    devices and strategy, the seed, the data, the callbacks and the initial weights."""

    prepared: Prepared
    options: TrainOptions
    distribution: distribute.Distribution
    devices: list[str]
    data: Splits
    run_dir: Path
    scratch: Path | None  # a non-chief worker's private run directory, removed at the end
    callbacks: list[Any]  # the config's own
    callback_files: list[str]  # what they write in the run directory
    loop: Loop | None  # the multi-worker loop, where model.fit cannot run
    initial_arrays: dict[str, np.ndarray]
    initial_report: list[stats.VariableStats]
    duplicates: list[stats.Duplicate]
    initial_epoch: int  # epochs the run's backup already holds (--resume)
    # --plugin as the run's config.yaml records them beside its plugins: (files absolute).
    user_plugins: tuple[str, ...] = ()

    @property
    def settings(self) -> Settings:
        return self.prepared.settings

    @property
    def built(self) -> BuiltModel:
        return self.prepared.built

    @property
    def seed(self) -> int:
        """The run's seed: the config's, --seed, or the one plan() drew for it."""
        return int(self.settings.seed)

    @property
    def steps_per_epoch(self) -> int:
        return steps(self.data.x_train, self.settings.train.batch_size)

    def notes(self) -> list[str]:
        """What works but deserves a word, the copies among the initial weights included."""
        return [*self.prepared.notes(), *self.data.notes, *(d.message() for d in self.duplicates)]

    def header(self) -> dict[str, Any]:
        """What the run is, as the lines above its first table."""
        dist, batch = self.distribution, self.settings.train.batch_size
        header: dict[str, Any] = {
            "run": str(self.run_dir) if dist.is_chief else "written by the chief worker",
            "backend": self.settings.backend,
            "devices": ", ".join(self.devices),
            "seed": self.seed,
            "data": self.data.source,
            "train/val/test": "/".join(str(n) for n in self.data.sizes.values()),
        }
        header["strategy"] = f"{dist.name}, {dist.replicas} replica" + (
            f"s, batch {batch} = {batch / dist.replicas:g} per replica" if dist.replicas > 1 else ""
        )
        if dist.cluster is not None:
            c = dist.cluster
            header["cluster"] = (
                f"{c.task_type} {c.index} of {c.workers} tasks at {c.address}"
                f"{' (chief)' if c.is_chief else ''}, from {c.source}"
            )
        if self.initial_epoch:
            header["resuming after epoch"] = self.initial_epoch
        return header


def plan(
    config_path: str | config_mod.Config | None,
    overrides: Sequence[str],
    trust: Trust | None,
    options: TrainOptions,
) -> Plan | UpToDate:
    """Read the config once, choose devices and strategy, seed, build, load the data and
    check the labels, compile, and make the callbacks: everything that can fail before the
    run directory is touched. The config's plugins are imported (the user runs it, and with
    --resume the run's: resuming runs that config), `trust` says what else may run."""
    trust = trust or Trust()
    checked = _checked(config_path, overrides, options)
    if isinstance(checked, UpToDate):
        return checked
    distribution, devices = _distribution(checked, options)
    # Where the run goes is fixed before plugins load: a plugin's os.chdir must not send the
    # run (nor the callbacks' files placed in it) elsewhere while kinit names this place.
    given = options.resume or options.output or rundir.default_path(checked.settings.name)
    run_dir = Path(given).absolute()
    # Variables, optimizer and metrics belong to the strategy.
    prepared = sources.prepare(
        checked,
        (),
        trust,
        training=True,
        scope=distribution.strategy.scope(),
        requested=options.backend,
    )
    data = _data(prepared, distribution)
    scratch = None
    if not distribution.is_chief:
        # Other workers write what the callbacks write too, into a folder of their own that
        # is removed at the end: nothing that could collide with the chief's.
        run_dir = scratch = Path(tempfile.mkdtemp(prefix="kinit-worker-"))
    try:
        replace = options.overwrite or bool(options.resume)
        callbacks, callback_files, loop = _ready(
            prepared, data, distribution, run_dir, scratch, replace
        )
    except BaseException:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    weights = prepared.built.weights
    arrays = stats.values(weights)
    report = stats.report(weights, arrays)
    return Plan(
        prepared=prepared,
        options=options,
        distribution=distribution,
        devices=devices,
        data=data,
        run_dir=run_dir,
        scratch=scratch,
        callbacks=callbacks,
        callback_files=callback_files,
        loop=loop,
        initial_arrays=arrays,
        initial_report=report,
        duplicates=stats.duplicates(report, arrays),
        initial_epoch=checkpoint.completed_epochs(run_dir) if options.resume else 0,
        # As typed where the user stood, which a plugin's os.chdir does not change.
        user_plugins=tuple(absolute(p, checked.config.cwd) for p in trust.plugins),
    )


def _checked(
    config_path: str | config_mod.Config | None, overrides: Sequence[str], options: TrainOptions
) -> Checked | UpToDate:
    """The config checked, with its seed: with --resume the run's own (UpToDate when it has
    every epoch it asks for), otherwise CONFIG's, seeded by --seed, the config, or a draw."""
    if options.resume:
        given = [
            flag
            for flag, value in (
                ("--output", options.output),
                ("--seed", options.seed),
                ("--overwrite", options.overwrite),
            )
            if value
        ]
        if given:
            raise UsageError(
                f"--resume continues {options.resume} in place, with its own seed; "
                f"{' and '.join(given)} cannot be given with it"
            )
        run_dir = Path(options.resume)
        checked = resume.saved_config(run_dir, config_path, overrides, options.backend)
        if resume.up_to_date(run_dir, checked.settings.train.epochs):
            return UpToDate(run_dir)
        return checked
    if config_path is None:
        raise UsageError("give a CONFIG file, or --resume RUN_DIR")
    checked = sources.check(config_path, overrides, requested=options.backend)
    seed = options.seed if options.seed is not None else checked.settings.seed
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    return checked.with_seed(seed)


def _distribution(
    checked: Checked, options: TrainOptions
) -> tuple[distribute.Distribution, list[str]]:
    """The strategy and the devices it runs on. Visible and logical devices (and
    determinism) can only be set before TensorFlow's runtime starts, and building an
    optimizer starts it: the config's own structure says which first."""
    section = checked.settings.distribute
    strategy_name = options.strategy or section.strategy
    running = checked.settings.backend
    distribute.configure(running, options.device, strategy_name, section.devices)
    if checked.settings.deterministic:
        determinism.enable()
    devices = distribute.select_devices(options.device)
    if options.resume and strategy_name == "multi_worker_mirrored":
        raise UsageError(
            "--resume is not available under multi_worker_mirrored: only the chief keeps "
            "a backup; start the run again, or resume it on one machine"
        )
    distribution = distribute.strategy(
        strategy_name, section.devices, section.cluster, section.timeout
    )
    batch = checked.settings.train.batch_size
    if distribution.name == "data_parallel" and batch % distribution.replicas:
        raise DistributeError(
            f"data_parallel splits every batch evenly across its {distribution.replicas} "
            f"devices: train.batch_size {batch} does not divide; use a multiple of "
            f"{distribution.replicas}"
        )
    return distribution, distribution.devices or devices


def _data(prepared: Prepared, distribution: distribute.Distribution) -> Splits:
    """The config's data, shaped for the model's one input, its labels checked against the
    model's output, loss and metrics."""
    model, settings = prepared.built.model, prepared.settings
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UsageError(
            f"kinit train feeds one input and one output; the model has "
            f"{len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    shape = tuple(model.inputs[0].shape[1:])
    task = task_of(settings.compile.loss)
    data = load_data(settings.data, shape, int(settings.seed), prepared.config.base_dir, task=task)
    args = prepared.compile_args
    check_labels(data, model, args.get("loss"), args.get("metrics", ()))
    if data.files and distribution.name == "data_parallel":
        raise DistributeError(
            "an image folder does not train under data_parallel yet: its batches come "
            "from tf.data, which cannot pad a last partial batch for the devices; train on "
            "one device (--device cpu or --strategy none)"
        )
    return data


def _ready(
    prepared: Prepared,
    data: Splits,
    distribution: distribute.Distribution,
    run_dir: Path,
    scratch: Path | None,
    replace: bool,
) -> tuple[list[Any], list[str], Loop | None]:
    """The config's callbacks and the files they write, the model compiled, and the
    multi-worker loop where there is one."""
    callbacks, files = _config_callbacks(prepared, run_dir, scratch, replace)
    model, args = prepared.built.model, prepared.compile_args
    if distribution.name == "data_parallel":
        # Partial batches come padded with copies weighted 0 (data/batches.py): only
        # weighted metrics leave the copies out.
        args = {**args, "metrics": [], "weighted_metrics": args.get("metrics", [])}
    with distribution.strategy.scope():  # the optimizer's variables belong to the strategy
        model.compile(
            **args,
            steps_per_execution=steps_per_call(prepared.settings, distribution.replicas),
            jit_compile=backend.setting(prepared.settings, "jit_compile"),
        )
    if "loss" not in args:
        _require_loss(model, data, prepared.config)
    loop = None
    if distribution.name == "multi_worker_mirrored":
        loop = Loop(model, distribution)
        batch = prepared.settings.train.batch_size
        loop.build((data.model_input(data.x_train[:batch]), data.y_train[:batch]))
    return callbacks, files, loop


def _config_callbacks(
    prepared: Prepared, run_dir: Path, scratch: Path | None, replace: bool
) -> tuple[list[Any], list[str]]:
    """The config's callbacks, their file arguments placed in the run directory (or in a
    non-chief worker's scratch folder), and the files they will write there."""
    config = prepared.config
    builder = SpecBuilder(prepared.registry, config)
    out, files = [], []
    specs = prepared.settings.train.callbacks
    if prepared.settings.backend != "tensorflow" and "TensorBoard" in str(specs):
        tensorflow()  # it writes through tf.summary: loaded now, quietly, not mid-run
    for i, spec in enumerate(specs):
        where = ("train", "callbacks", i)
        if scratch is not None:
            spec = _in_private_dir(spec, scratch)
        else:
            placed = rundir.callback_paths(spec, run_dir, replace)
            spec = placed.spec
            files += placed.files
            builder.problems += [config.problem(where + key, text) for key, text in placed.problems]
        callback = builder.build("callback", spec, where, keep_builtin_names=False)
        if callback is not FAILED:
            out.append(callback)
    builder.problems.raise_any()
    if prepared.settings.train.weight_history:
        _weight_histograms(out)
    return out, files


def _weight_histograms(callbacks: list[Any]) -> None:
    """With train.weight_history, a TensorBoard callback that draws no weight histograms
    draws them every epoch (Keras's own, from histogram_freq); a frequency the config gives
    stays."""
    for callback in callbacks:
        if isinstance(callback, keras().callbacks.TensorBoard) and not callback.histogram_freq:
            callback.histogram_freq = 1


def _require_loss(model: Any, data: Splits, config: config_mod.Config) -> None:
    """A model compiled without a loss trains only when it makes its own (add_loss, or a
    compute_loss of its own): find out on two examples now, before the run directory
    exists, rather than from Keras's error in the first step."""
    x = data.model_input(data.x_train[:2])
    try:
        model.compute_loss(x=x, y=data.y_train[:2], y_pred=model(x, training=False))
    except ValueError as exc:
        if "No loss to compute" not in str(exc):
            raise
        message = (
            "no loss to train with: give compile.loss (e.g. sparse_categorical_crossentropy "
            "for class ids), or have the model add its own with add_loss()"
        )
        raise ConfigError([config.problem(("compile",), message)]) from None


def steps(x: np.ndarray | None, batch_size: int) -> int:
    return 0 if x is None else math.ceil(len(x) / batch_size)


def steps_per_call(settings: Settings, replicas: int) -> int:
    """`train.steps_per_execution`, or 1 across several replicas: there Keras 3.15's
    multi-step loop fails ("You must feed a value for placeholder tensor ...", as in
    keras-team/keras#19246), and the setting never changes the trained weights."""
    return backend.setting(settings, "steps_per_execution") if replicas == 1 else 1


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
