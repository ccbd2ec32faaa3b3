"""A sweep from start to summary: every combination checked before anything is written,
the trials given to a pool of workers a few at a time, each outcome recorded in
trials.json as it arrives, and a stop request turned into interrupted trials that
`--resume` continues. Nothing here prints: the command renders the events it is given."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kinit_cli.config import source as config_mod
from kinit_cli.errors import ConfigError, Interrupted, KinitError, TrialsFailed, UsageError, plain
from kinit_cli.model import sources
from kinit_cli.registry.plugins import absolute
from kinit_cli.runtime import backend as backend_mod
from kinit_cli.runtime import switches
from kinit_cli.storage import checkpoint, ownership, rundir, sweepdir
from kinit_cli.sweep import pool as pool_mod
from kinit_cli.sweep import spec as spec_mod
from kinit_cli.sweep import worker
from kinit_cli.sweep.grid import parse_axes, parse_seeds
from kinit_cli.sweep.spec import SweepSpec, Trial
from kinit_cli.sweep.worker import TrialJob, TrialOutcome

# Config keys a grid may not vary: the seeds are --seeds', and the workers run one backend.
NOT_IN_GRID = {"seed": "give the seeds with --seeds", "backend": "a sweep runs on one backend"}
# A trial whose run recorded one of these has its result: --resume leaves it as it is.
DONE = ("completed", "diverged")


@dataclass(frozen=True)
class SweepOptions:
    output: str | None = None
    resume: str | None = None
    jobs: int | None = None
    cluster: str = "local"  # local or ray


@dataclass(frozen=True)
class SweepPlan:
    """A sweep checked and its folder ready: the trials still to run, and how."""

    spec: SweepSpec
    sweep_dir: Path
    trials: tuple[Trial, ...]
    todo: tuple[TrialJob, ...]
    jobs: int
    backend: str
    cluster: str
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)  # trials.json by name
    notes: tuple[str, ...] = ()  # what validate would say of the combinations

    @property
    def header(self) -> dict[str, Any]:
        combos = len(self.spec.combinations)
        seeds = len(self.spec.seeds)
        where = "Ray workers" if self.cluster == "ray" else "local worker processes"
        return {
            "sweep": str(self.sweep_dir),
            "trials": f"{combos} combination{'s' * (combos != 1)} x {seeds} "
            f"seed{'s' * (seeds != 1)} = {len(self.trials)}",
            "to run": f"{len(self.todo)} on {self.jobs} {where}",
            "backend": self.backend,
        }


@dataclass(frozen=True)
class Event:
    """What the command shows as trials finish."""

    outcome: TrialOutcome
    done: int  # trials with an outcome in this invocation
    total: int


@dataclass(frozen=True)
class SweepResult:
    sweep_dir: Path
    outcomes: tuple[TrialOutcome, ...]  # this invocation's
    interrupted: bool
    entries: tuple[dict[str, Any], ...] = ()  # trials.json's, at the end
    summary: Any = None  # results.summary.Summary

    @property
    def failure(self) -> KinitError | None:
        """What the command ends with: the interruption, or the trials that failed."""
        if self.interrupted:
            return interruption(self)
        failed = [e for e in self.entries if e["status"] == "failed"]
        if not failed:
            return None
        lines = [f"{e['name']}: {_first_line(e.get('error'))}" for e in failed]
        return TrialsFailed(
            f"{len(failed)} of {len(self.entries)} trials failed (kinit sweep --resume "
            f"{self.sweep_dir} runs them again):\n" + "\n".join(lines)
        )


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else "no error recorded"


def new(
    config_file: str,
    overrides: Sequence[str],
    grid: Sequence[str],
    seeds: str,
    options: SweepOptions,
    *,
    plugins: Sequence[str] = (),
    trust_plugins: bool = False,
    requested: str | None = None,
    device: str = "auto",
) -> tuple[SweepSpec, Path]:
    """The sweep the command line describes, every combination checked against the schema
    and its data (no Keras yet), and the folder it will fill: absent or empty."""
    axes = parse_axes(grid)
    for axis in axes:
        top = axis.key.split(".")[0].split("[")[0]
        if top in NOT_IN_GRID:
            raise UsageError(f"--grid {axis.key}: {NOT_IN_GRID[top]}")
    spec = SweepSpec(
        config_file=str(Path(config_file).absolute()),
        config_text=config_mod.read_text(config_file),
        overrides=tuple(overrides),
        axes=axes,
        seeds=parse_seeds(seeds),
        backend=requested,
        device=device,
        plugins=tuple(absolute(p, Path.cwd()) for p in plugins),
        trust_plugins=trust_plugins,
    )
    settings = _schema_check(spec)
    name = settings.name if settings is not None else Path(config_file).stem
    sweep_dir = Path(options.output or Path("sweeps") / rundir.default_path(name).name)
    _require_empty(sweep_dir.absolute())
    return spec, sweep_dir.absolute()


def _schema_check(spec: SweepSpec) -> Any:
    """Each combination's config checked from the schema alone (an unknown --grid key is
    named with what it may have meant, as --set's are); every problem of every combination
    in one UsageError. Returns the first combination's settings."""
    problems: list[tuple[str, str]] = []
    first = None
    for combination in spec.combinations:
        try:
            checked = sources.check(spec.config(combination), requested=spec.backend)
            sources.check_data(checked)
        except ConfigError as exc:
            problems.append((combination.describe(), plain(str(exc))))
            continue
        first = first or checked.settings
    if problems:
        raise UsageError("\n".join(_problems(spec, problems)))
    return first


def _problems(spec: SweepSpec, problems: list[tuple[str, str]]) -> list[str]:
    """Each combination's problem said once: one that every value of an axis shares (a
    misspelled --grid key) with the values left out; one of a value, naming it (its
    --grid, or the combination where the problem lies elsewhere)."""
    out: list[str] = []
    for settings, text in problems:
        general = _any_value(spec, text)
        if sum(_any_value(spec, t) == general for _, t in problems) > 1:
            line = general
        elif "--grid " in text or not settings:
            line = text
        else:
            line = f"with {settings}: {text}"
        if line not in out:
            out.append(line)
    return out


def _any_value(spec: SweepSpec, text: str) -> str:
    for axis in spec.axes:
        for value in axis.values:
            text = text.replace(f"{axis.key}={json.dumps(value)}", f"{axis.key}=[...]")
    return text


def _require_empty(sweep_dir: Path) -> None:
    if sweep_dir.is_symlink():
        raise UsageError(f"{sweep_dir} is a link: kinit writes a sweep into a real folder only")
    if sweep_dir.exists() and not sweep_dir.is_dir():
        raise UsageError(f"{sweep_dir} is a file: a sweep needs a folder")
    if sweep_dir.is_dir() and any(sweep_dir.iterdir()):
        if sweepdir.is_sweep(sweep_dir):
            raise UsageError(
                f"{sweep_dir} holds a sweep already: a sweep starts in a new or empty folder "
                f"(to go on with that one: kinit sweep --resume {sweep_dir})"
            )
        raise UsageError(
            f"{sweep_dir} holds files that are not a sweep's: a sweep starts in a new or "
            "empty folder; choose another -o"
        )


def check_in_workers(spec: SweepSpec, pool: pool_mod.Pool) -> tuple[str, ...]:
    """Every combination checked as `kinit validate` checks a config (plugins imported,
    names resolved, the model built), in the workers, before any trial starts: one
    UsageError with each failing combination's problem; otherwise what validate would
    note, each note once."""
    jobs = [TrialJob(spec, c, switches=switches.current()) for c in spec.combinations]
    futures = [pool.submit(worker.check, job) for job in jobs]
    problems: list[tuple[str, str]] = []
    notes: list[str] = []
    for job, future in zip(jobs, futures, strict=True):
        checked = future.result()
        if checked.problem:
            problems.append((job.combination.describe(), checked.problem))
        notes += [n for n in checked.notes if n not in notes]
    if problems:
        raise UsageError("\n".join(_problems(spec, problems)))
    return tuple(notes)


def start(spec: SweepSpec, sweep_dir: Path, options: SweepOptions) -> SweepPlan:
    """The folder created with sweep.yaml and trials.json (every trial pending)."""
    _require_empty(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    spec_mod.write(spec, sweep_dir)
    trials = spec.trials()
    entries = {t.name: t.entry() for t in trials}
    _write_entries(sweep_dir, entries)
    todo = tuple(_job(spec, sweep_dir, t, "new") for t in trials)
    return _plan(spec, sweep_dir, trials, todo, options, entries)


def resume(options: SweepOptions, trust_plugins: bool = False) -> SweepPlan:
    """A sweep's folder read back: the trials whose run is missing or incomplete, each to
    be continued from its backup where it has one, started again where it has none. The
    leave to import what runs name is this command's (`trust_plugins`), never the file's:
    a sweep folder may come from someone else."""
    assert options.resume is not None
    sweep_dir = Path(options.resume).absolute()
    if not sweep_dir.is_dir():
        raise UsageError(f"{sweep_dir} is not a folder: --resume takes a sweep's folder")
    spec = replace(spec_mod.read(sweep_dir), trust_plugins=trust_plugins)
    trials = spec.trials()
    try:
        recorded = {e["name"]: e for e in sweepdir.read_trials(sweep_dir)}
    except FileNotFoundError:
        recorded = {}
    except KinitError as exc:
        raise UsageError(str(exc)) from None
    entries, todo = {}, []
    for trial in trials:
        status = _run_status(sweep_dir / trial.name)
        if status in DONE:
            entries[trial.name] = {**recorded.get(trial.name, trial.entry()), "status": status}
            continue
        entries[trial.name] = trial.entry()
        todo.append(_job(spec, sweep_dir, trial, _mode(sweep_dir / trial.name)))
    _write_entries(sweep_dir, entries)
    return _plan(spec, sweep_dir, trials, tuple(todo), options, entries)


def _run_status(run_dir: Path) -> str | None:
    if not ownership.is_kinit_run(run_dir):
        return None
    return rundir.status(run_dir)


def _mode(run_dir: Path) -> str:
    """new (no folder), resume (its backup holds an epoch), or replace (nothing to keep)."""
    if not run_dir.exists():
        return "new"
    if not ownership.is_kinit_run(run_dir):
        raise UsageError(
            f"{run_dir} is not a kinit run, and the sweep would write its trial there: move "
            "it away, then resume"
        )
    if (run_dir / rundir.CONFIG).exists() and checkpoint.completed_epochs(run_dir) > 0:
        return "resume"
    return "replace"


def _job(spec: SweepSpec, sweep_dir: Path, trial: Trial, mode: str) -> TrialJob:
    return TrialJob(
        spec,
        trial.combination,
        trial,
        str(sweep_dir / trial.name),
        mode,
        switches.current(),
    )


def _plan(
    spec: SweepSpec,
    sweep_dir: Path,
    trials: list[Trial],
    todo: tuple[TrialJob, ...],
    options: SweepOptions,
    entries: dict[str, dict[str, Any]],
) -> SweepPlan:
    running = _backend(spec)
    jobs = options.jobs or pool_mod.default_jobs(max(1, len(todo)))
    return SweepPlan(spec, sweep_dir, tuple(trials), todo, jobs, running, options.cluster, entries)


class Workers:
    """The sweep's pool, made again (make_pool) when a worker died and broke it."""

    def __init__(self, make_pool: Callable[[], pool_mod.Pool]) -> None:
        self.make_pool = make_pool
        self.pool = make_pool()

    def replace(self) -> None:
        self.pool.shutdown()
        self.pool = self.make_pool()

    def summary(self, sweep_dir: Path) -> Any:
        """The sweep's summary, made in a worker (Keras is imported there already, for the
        initializers' theory), or here when the pool cannot."""
        try:
            return self.pool.submit(worker.summarize, str(sweep_dir)).result()
        except KinitError:
            raise
        except Exception:
            return worker.summarize(str(sweep_dir))


def execute(
    plan: SweepPlan,
    workers: Workers,
    on_event: Callable[[Event], None] = lambda e: None,
) -> SweepResult:
    """Run the plan's trials on `pool`, at most `plan.jobs` at a time (the rest wait here,
    so a stop request has nothing queued to cancel); each outcome recorded as it arrives.
    Ctrl-C (SIGINT) or SIGTERM: the trials running stop as interrupted runs, the waiting
    ones never start; a second one stops the running trials at once. A pool whose worker
    died (out of memory) fails the trials it held and is replaced."""
    waiting = list(plan.todo)
    running: dict[Future[Any], TrialJob] = {}
    outcomes: list[TrialOutcome] = []
    interrupted = False

    def record(outcome: TrialOutcome) -> None:
        outcomes.append(outcome)
        entry = plan.entries[outcome.name]
        plan.entries[outcome.name] = {**entry, "status": outcome.status, "error": outcome.error}
        _write_entries(plan.sweep_dir, plan.entries)
        on_event(Event(outcome, len(outcomes), len(plan.todo)))

    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while waiting or running:
            try:
                while waiting and len(running) < plan.jobs and not interrupted:
                    job = waiting.pop(0)
                    try:
                        running[workers.pool.submit(worker.run, job)] = job
                    except BrokenProcessPool:
                        waiting.insert(0, job)
                        workers.replace()
                done, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    record(_outcome(future, running.pop(future)))
                if interrupted:
                    waiting.clear()
            except KeyboardInterrupt:
                interrupted = True
                waiting.clear()
                workers.pool.interrupt()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return SweepResult(plan.sweep_dir, tuple(outcomes), interrupted, tuple(plan.entries.values()))


def _outcome(future: Future[Any], job: TrialJob) -> TrialOutcome:
    assert job.trial is not None
    try:
        return future.result()
    except CancelledError:  # Ray's: a task stopped before it started
        return TrialOutcome(job.trial.name, "interrupted", "stopped before it started")
    except BrokenProcessPool:
        message = "its worker process ended without a word (killed, or out of memory)"
    except Exception as exc:  # a worker's failure outside the trial (Ray's, pickling)
        message = f"{type(exc).__name__}: {exc}"
    return TrialOutcome(job.trial.name, "failed", message)


def _write_entries(sweep_dir: Path, entries: dict[str, dict[str, Any]]) -> None:
    rundir.write_json(sweep_dir / sweepdir.TRIALS, {"trials": list(entries.values())})


def interruption(result: SweepResult) -> Interrupted:
    done = sum(o.status in DONE for o in result.outcomes)
    return Interrupted(
        f"sweep interrupted: {done} trial{'s' * (done != 1)} finished in this run; the "
        f"others continue with: kinit sweep --resume {result.sweep_dir}"
    )


@dataclass(frozen=True)
class SweepRequest:
    """The command line of `kinit sweep`: a new sweep (config, grid, seeds) or --resume."""

    config_file: str | None
    overrides: tuple[str, ...] = ()
    grid: tuple[str, ...] = ()
    seeds: str | None = None
    options: SweepOptions = field(default_factory=SweepOptions)
    plugins: tuple[str, ...] = ()
    trust_plugins: bool = False
    backend: str | None = None
    device: str = "auto"


# Seeds when --seeds is not given: enough for a standard error, few enough to be quick.
DEFAULT_SEEDS = "3"


def sweep(
    request: SweepRequest,
    on_start: Callable[[SweepPlan], None] = lambda p: None,
    on_event: Callable[[Event], None] = lambda e: None,
) -> SweepResult:
    """A new sweep (checked whole first, nothing written until it passes) or a resumed one,
    run to its end or to a stop request."""
    options = request.options
    if options.cluster == "ray":
        from kinit_cli.sweep import ray_pool

        ray_pool.require()  # before anything is written
    if options.resume:
        _refuse_with_resume(request)
        plan = resume(options, request.trust_plugins)
        workers = Workers(_pools(plan.jobs, plan.backend, plan.cluster))
    else:
        plan, workers = _started(request)
    try:
        on_start(plan)
        result = execute(plan, workers, on_event)
        return replace(result, summary=workers.summary(result.sweep_dir))
    finally:
        workers.pool.shutdown()


def _started(request: SweepRequest) -> tuple[SweepPlan, Workers]:
    """A new sweep checked whole (nothing written until every combination passes), its
    folder made, and the workers that checked it, ready for its trials."""
    options = request.options
    if request.config_file is None:
        raise UsageError("give a CONFIG file and --grid KEY=[VALUES], or --resume SWEEP_DIR")
    spec, sweep_dir = new(
        request.config_file,
        request.overrides,
        request.grid,
        request.seeds or DEFAULT_SEEDS,
        options,
        plugins=request.plugins,
        trust_plugins=request.trust_plugins,
        requested=request.backend,
        device=request.device,
    )
    trials = len(spec.combinations) * len(spec.seeds)
    jobs = options.jobs or pool_mod.default_jobs(trials)
    workers = Workers(_pools(jobs, _backend(spec), options.cluster))
    try:
        notes = check_in_workers(spec, workers.pool)
        return replace(start(spec, sweep_dir, options), notes=notes), workers
    except BaseException:
        workers.pool.shutdown()
        raise


def _refuse_with_resume(request: SweepRequest) -> None:
    given = [
        flag
        for flag, value in (
            ("CONFIG", request.config_file),
            ("--set", request.overrides),
            ("--grid", request.grid),
            ("--seeds", request.seeds),
            ("--output", request.options.output),
            ("--plugin", request.plugins),
            ("--backend", request.backend),
        )
        if value
    ]
    if given:
        raise UsageError(
            f"--resume runs the sweep its sweep.yaml records; {', '.join(given)} cannot be "
            "given with it"
        )


def _backend(spec: SweepSpec) -> str:
    configured = spec.config().data.get("backend")
    return backend_mod.resolve(configured if isinstance(configured, str) else None, spec.backend)


def _pools(jobs: int, backend: str, cluster: str) -> Callable[[], pool_mod.Pool]:
    """What makes the sweep's pool (again, after a worker died)."""
    if cluster == "ray":
        from kinit_cli.sweep import ray_pool

        return lambda: ray_pool.RayPool(jobs, backend)
    return lambda: pool_mod.LocalPool(jobs, backend)
