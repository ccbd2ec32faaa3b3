"""What runs in a sweep's worker processes: each imports Keras once and then checks or
trains trial after trial, so that a trial pays for its model and data, not for start-up.

A trial is exactly `kinit train CONFIG --set ... --seed S -o DIR/TRIAL`: the same plan() and
Trainer, in a process that ran other trials before. Between trials Keras's global state
(its names, its graph) is cleared, so a trial's variables are named, seeded and drawn as in
a fresh process.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kinit_cli.errors import KinitError, plain
from kinit_cli.registry.trust import Trust
from kinit_cli.runtime import backend as backend_mod
from kinit_cli.runtime import switches
from kinit_cli.runtime.imports import keras
from kinit_cli.storage import rundir, sweepdir
from kinit_cli.sweep.grid import Combination
from kinit_cli.sweep.spec import SweepSpec, Trial


@dataclass(frozen=True)
class TrialJob:
    """What a worker needs for one trial (or, with `trial` None, for one combination's
    check): it crosses to the worker process, so it holds data only."""

    spec: SweepSpec
    combination: Combination
    trial: Trial | None = None
    run_dir: str = ""
    mode: str = "new"  # new; resume (its backup has epochs); replace (it has none)
    switches: switches.Switches = field(default_factory=switches.Switches)


@dataclass(frozen=True)
class TrialOutcome:
    name: str
    status: str  # completed, failed, diverged, interrupted
    error: str | None = None
    test: dict[str, float] = field(default_factory=dict)
    seconds: float | None = None


def start_local(backend: str) -> None:
    """A local pool's worker: its own process group, so that a terminal's Ctrl-C reaches
    the sweep alone, which passes one SIGINT to each worker (pool.py); SIGINT ignored while
    it waits for work; Keras imported now, while the others start too."""
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    backend_mod.use(backend)
    keras()


@dataclass(frozen=True)
class Checked:
    """A combination's check: its problem (None when it passed), and what `kinit validate`
    would say of it all the same (a class Keras cannot reload, a shadowed built-in)."""

    problem: str | None = None
    notes: tuple[str, ...] = ()


def check(job: TrialJob) -> Checked:
    """The combination checked as `kinit validate` checks a config (plugins imported, every
    name resolved, the model built, the data found)."""
    from kinit_cli.model import sources

    with _task(job):
        try:
            config = job.spec.config(job.combination)
            prepared = sources.prepare(
                config, (), _trust(job.spec), callbacks=True, requested=job.spec.backend
            )
        except KinitError as exc:
            return Checked(plain(str(exc)))
        return Checked(notes=tuple(prepared.notes()))


def run(job: TrialJob) -> TrialOutcome:
    """One trial trained and finished in its run directory; whatever stops it is its
    outcome (a plugin's error, divergence, a stop request), never the worker's end."""
    assert job.trial is not None
    name = job.trial.name
    with _task(job):
        try:
            metrics = _train(job)
        except KinitError as exc:
            # The sweep, not the trial alone, is what --resume continues.
            message = plain(str(exc)).split(" Continue with: kinit train --resume")[0]
            return TrialOutcome(name, _status(job), message)
        except KeyboardInterrupt:
            return TrialOutcome(name, "interrupted", "interrupted before training began")
        except Exception as exc:  # kinit's own failure: the trial records it, the sweep goes on
            return TrialOutcome(name, "failed", f"{type(exc).__name__}: {exc}")
    return TrialOutcome(
        name,
        "completed",
        test={k: float(v) for k, v in (metrics.get("test") or {}).items()},
        seconds=metrics.get("wall_time_s"),
    )


def _train(job: TrialJob) -> dict[str, Any]:
    from kinit_cli.output import plot
    from kinit_cli.training.plan import TrainOptions, UpToDate, plan
    from kinit_cli.training.trainer import Trainer

    assert job.trial is not None
    spec, resume = job.spec, job.mode == "resume"
    options = TrainOptions(
        device=spec.device,
        seed=None if resume else job.trial.seed,
        output=None if resume else job.run_dir,
        overwrite=job.mode == "replace",
        resume=job.run_dir if resume else None,
        backend=spec.backend,
    )
    config = None if resume else spec.config(job.combination)
    planned = plan(config, (), _trust(spec), options)
    if isinstance(planned, UpToDate):  # every epoch is in: finish() writes what is missing
        return rundir.metrics(Path(job.run_dir))
    with Trainer(planned, figures=plot.history_figure) as trainer:
        trainer.fit()
        return trainer.finish().metrics


def _status(job: TrialJob) -> str:
    """A trial that raised: its run's recorded status (diverged, interrupted), else failed."""
    status = rundir.status(Path(job.run_dir)) if job.run_dir else None
    return status if status in ("diverged", "interrupted") else "failed"


def _trust(spec: SweepSpec) -> Trust:
    return Trust(spec.plugins, spec.trust_plugins)


@contextmanager
def _task(job: TrialJob) -> Iterator[None]:
    """The command's switches held, SIGINT made a KeyboardInterrupt (the Trainer handles it
    itself while training), and Keras's global state cleared afterwards."""
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # A worker traces one model after another, which TensorFlow's retracing check takes
    # for a mistake and warns of; kinit train, one model a process, never sees it.
    if not job.switches.debug:
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        with switches.using(job.switches):
            yield
    finally:
        signal.signal(signal.SIGINT, previous)
        keras().backend.clear_session()  # which collects the garbage too (free_memory)


def summarize(sweep_dir: str) -> Any:
    """The sweep's summary with summary.csv written, made where Keras is imported already
    (the initializers' theory needs it) rather than in the sweep's own process."""
    from kinit_cli.results import records, summary

    result = summary.summarize(records.collect([Path(sweep_dir)]))
    summary.write_csv(result, Path(sweep_dir) / sweepdir.SUMMARY)
    return result
