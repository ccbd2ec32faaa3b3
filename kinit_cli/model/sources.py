"""Where a model and its weights come from: a config (built, seeded, with init_from applied),
a saved `.keras` file, a run directory, or a checkpoint in one.

This is the one reader `inspect-weights` TARGETs and `init_from:` sources both go through.
A run directory whose model.keras Keras cannot reload is rebuilt from its own config.yaml,
which is why config preparation and target reading share this module: an init_from source
can be such a run, so preparing a config may read a target, and reading one may prepare its
config. What code that may import is for the caller's Trust (registry/trust.py) to say: a
config the user runs imports its own plugins, a file it reads only with the user's leave.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from kinit_cli.config import schema
from kinit_cli.config import source as config_mod
from kinit_cli.config.model_schema import layer_names, unused, unused_text
from kinit_cli.config.settings import InitFrom, Section, Settings
from kinit_cli.data import datasets
from kinit_cli.errors import (
    BackendError,
    ConfigError,
    DataError,
    DeclaredSizeError,
    KinitError,
    ModelFileError,
    Problems,
    RecordError,
    ResourceError,
    UntrustedCode,
    UsageError,
    keras_message,
)
from kinit_cli.model import build as model_build
from kinit_cli.model import init_from, saved, weights_file
from kinit_cli.model.build import BuiltModel
from kinit_cli.model.portability import check_objects
from kinit_cli.model.prepared import Checked, Prepared
from kinit_cli.model.saved import Loaded
from kinit_cli.model.variables import first_difference
from kinit_cli.registry import tf_ops
from kinit_cli.registry.catalog import Registry
from kinit_cli.registry.plugins import load_plugins
from kinit_cli.registry.registration import KINDS
from kinit_cli.registry.specs import SpecBuilder, check_specs
from kinit_cli.registry.trust import Trust
from kinit_cli.runtime import backend, compat
from kinit_cli.runtime.imports import keras
from kinit_cli.storage import bounded, checkpoint, ownership, rundir


def check(
    path: str | Path | config_mod.Config,
    overrides: Sequence[str] = (),
    *,
    nested: bool = False,
    any_run: bool = False,
    requested: str | None = None,
) -> Checked:
    """Read the config and check its structure (YAML, unknown keys, types, ranges, callback
    paths) from the schema alone, in milliseconds; ConfigError with every problem. `path`
    may be a config read already (a sweep's trial: its overrides applied)."""
    if isinstance(path, config_mod.Config):
        config = path
        config_mod.apply_overrides(config, overrides)
    else:
        config = config_mod.load(path, overrides)
    return check_config(config, nested=nested, any_run=any_run, requested=requested)


def check_config(
    config: config_mod.Config,
    *,
    nested: bool = False,
    any_run: bool = False,
    requested: str | None = None,
) -> Checked:
    """check() for a config already read (a run's own, with --resume's epoch change).

    Its backend becomes the one Keras is imported with. `nested`: the config of a run read
    as a source of weights after Keras started, which is rebuilt on the running backend
    (weights are numbers on any backend). `any_run`: no run is being written (validate), so
    a callback path inside any kinit run is refused (train checks against the run it writes).
    `requested`: the command's --backend, which the config's `backend:` gives way to."""
    settings = schema.settings(config)
    problems = _callback_paths(config, settings, any_run)
    problems += init_from.cycle(config, settings.init_from)
    problems.raise_any()
    running = backend.started()
    if not (nested and running is not None):
        try:
            running = backend.use(backend.resolve(settings.backend, requested))
        except BackendError as exc:
            if requested or "backend" not in config.data:
                raise  # from --backend or KERAS_BACKEND: nothing in the file to point at
            raise ConfigError([config.problem(("backend",), str(exc))]) from None
    settings = replace(settings, backend=running)
    _backend_settings(config, settings)
    return Checked(config, settings)


def _backend_settings(config: config_mod.Config, settings: Settings) -> None:
    """A training setting or layer name the backend cannot run is a problem at its key,
    found here rather than at fit's first step. What a config leaves out stays out
    (backend.setting() fills it in where it is used), so the run's config.yaml means the
    same on another backend."""
    problems = Problems()
    steps = settings.train.steps_per_execution
    if settings.backend == "torch" and steps not in (None, 1):
        message = (
            f"must be 1 on backend torch (Keras's torch trainer runs one step per call), "
            f"got {steps}"
        )
        problems.append(config.problem(("train", "steps_per_execution"), message))
    for path, name in layer_names(settings.model):
        if message := backend.layer_name_problem(name, settings.backend):
            problems.append(config.problem(path, message))
    problems.raise_any()


def check_data(checked: Checked) -> None:
    """The data the config names, checked without loading it (datasets.check), before
    TensorFlow is imported: a problem is the config's, at the key that names the data."""
    try:
        datasets.check(checked.settings.data, checked.config.base_dir)
    except DataError as exc:
        text = str(exc)
        key = next((k for k in ("label", "features") if f"data.{k}" in text), "path")
        if checked.settings.data.path is None:
            raise
        text = text.removeprefix(f"data.{key} ").replace(f": data.{key} ", ": ", 1)
        raise ConfigError([checked.config.problem(("data", key), text)]) from None


def prepare(
    source: str | Path | Checked,
    overrides: Sequence[str] = (),
    trust: Trust | None = None,
    *,
    own: bool = True,
    training: bool = False,
    scope: Any = None,
    init: bool = True,
    callbacks: bool = False,
    requested: str | None = None,
) -> Prepared:
    """Load the config's plugins, resolve every name, and build the model as `kinit train`
    does: seeded first when the config has a seed, so a seed gives the same initial weights
    wherever the model is built.

    Problems come in two rounds, each reported whole: first every structural one from the
    schema alone (check()), since plugins import Keras and with it TensorFlow (seconds);
    then every name that does not resolve and every layer that cannot be built, across all
    sections at once. `training`: the build uses `train.precision` and the memory check
    counts what training keeps per weight; `scope`: the tf.distribute strategy's scope, which
    the variables, the optimizer and the metrics belong to; `init`: apply init_from (off to
    rebuild what the initializers alone draw); `callbacks`: check the config's callbacks
    too (validate: train makes them itself, once the run directory exists). With either of
    `training` and `callbacks`, a model with no trainable weights is refused. `own`: the
    config is the one the user runs, so its `plugins:` are imported; otherwise (a run's, a
    source's) `trust` decides. A config in a folder with kinit's marker is a run's even when
    given directly: only `kinit train` (`training`) imports its plugins without leave, and
    says so. `requested`: the command's --backend (see check_config()).
    """
    trust = trust or Trust()
    if isinstance(source, Checked):
        checked = source
    else:
        checked = check(source, overrides, any_run=callbacks, requested=requested)
    config, settings = checked.config, checked.settings
    if callbacks or training:
        check_data(checked)
    # Loading plugins imports Keras (and TensorFlow): only once the schema is satisfied.
    withheld: list[str] = []
    # A config in a run directory is that run's (someone else's, maybe), not the user's.
    run_config = config.file is not None and ownership.has_marker(config.base_dir)
    if own and not run_config:
        loaded = load_plugins(list(settings.plugins), base_dir=config.base_dir)
        # --plugin paths are the user's, typed relative to where they stand.
        loaded += load_plugins(list(trust.plugins), base_dir=config.cwd, entry_points=False)
    else:
        # The user's --plugin first: a run's plugin of the same module name is that copy.
        loaded = trust.load_user()
        running = own and training  # kinit train RUN/config.yaml, --resume: they run it
        withheld = trust.load_named(
            list(settings.plugins), config.base_dir, str(config.file), running=running
        )
    if withheld and (examples := pack_names(settings)):
        # kinit's own examples (Linear, SimpleDense) share the tutorials' names: a class of
        # the plugin not imported would be built as the example, and its weights refused.
        raise trust.refusal(str(config.file), withheld, examples)
    try:
        return _resolve(
            config, settings, loaded, trust, training, scope, init, callbacks, requested
        )
    except ConfigError:
        if withheld:
            raise trust.refusal(str(config.file), withheld, unresolved(settings)) from None
        raise


def _resolve(
    config: config_mod.Config,
    settings: Settings,
    loaded: list[Any],
    trust: Trust,
    training: bool,
    scope: Any,
    init: bool,
    callbacks: bool,
    requested: str | None,
) -> Prepared:
    """prepare() once the plugins are in: every name resolved and the model built."""
    registry = Registry()
    problems = _tensorflow_ops(config, settings, registry, requested)
    problems.raise_any()  # the build would fail on them, far from the cause
    compile_args: dict[str, Any] = {}
    built: BuiltModel | None = None
    with scope if scope is not None else contextlib.nullcontext():
        with problems.collecting():
            compile_args = compile_arguments(config, settings, registry)
        if callbacks:
            where = ("train", "callbacks")
            problems += check_specs(
                registry, config, "callback", list(settings.train.callbacks), where
            )
        with problems.collecting():
            built = _build(config, settings, registry, trust, training, init, requested)
    problems.raise_any()
    assert built is not None  # or there were problems
    if training or callbacks:  # train, and validate, which refuses what train would
        _require_trainable_weights(config, settings, built.model)
    # The compile config goes into model.keras too: a loss or schedule Keras cannot reload
    # makes the whole file unloadable.
    built.unsaveable += check_objects(compiled_objects(compile_args))
    return Prepared(config, settings, registry, loaded, compile_args, built)


def _require_trainable_weights(config: config_mod.Config, settings: Settings, model: Any) -> None:
    """Refuse a model with no trainable weights unless the config asks for it: a functional
    model whose outputs name its input, or one init_from froze whole, would otherwise train
    nothing and be recorded completed."""
    if model.trainable_weights or settings.train.allow_no_trainable_weights:
        return
    total = sum(math.prod(w.shape) for w in model.weights)
    left = unused(settings.model)
    why = f" ({unused_text(left)})" if left else ""
    message = (
        f"the model has no trainable weights ({total:,} parameters, none trainable){why}, "
        "so training would change nothing; if that is meant, set "
        "train.allow_no_trainable_weights: true"
    )
    raise ConfigError([config.problem(("model",), message)])


def _tensorflow_ops(
    config: config_mod.Config, settings: Settings, registry: Registry, requested: str | None
) -> Problems:
    """On JAX or torch: every TensorFlow op in the plugin classes the config names (and the
    code they use), each at the place that names its class."""
    problems = Problems()
    running = settings.backend
    if running == "tensorflow":
        return problems
    switch = "use --backend tensorflow" if requested else "set backend: tensorflow"
    names = [
        found
        for section in ("model", "compile", "train")
        for found in _class_names(getattr(settings, section), (section,))
    ]
    for where, name in names:
        for kind in KINDS:
            try:
                entry = registry.resolve(kind, name)
            except KinitError:
                continue
            if entry.key is not None and isinstance(entry.obj, type):
                problems += [
                    config.problem(where, use.message(running, switch))
                    for use in tf_ops.uses(entry.obj)
                ]
            break
    return problems


def unresolved(settings: Settings) -> list[str]:
    """The `class_name`s of a config that no kind resolves to: what it needs plugins for."""
    registry = Registry()
    out = []
    for section in ("model", "compile"):
        for where, name in _class_names(getattr(settings, section), (section,)):
            if where[-1] == "class_name" and not _resolves(registry, name):
                out.append(name)
    return list(dict.fromkeys(out))


def pack_names(settings: Settings) -> list[str]:
    """The `class_name`s of a config that one of kinit's own examples answers to: what a
    plugin's class of the same name may be instead."""
    registry = Registry()
    out = []
    for section in ("model", "compile"):
        for where, name in _class_names(getattr(settings, section), (section,)):
            if where[-1] == "class_name" and _an_example(registry, name):
                out.append(name)
    return list(dict.fromkeys(out))


def _an_example(registry: Registry, name: str) -> bool:
    for kind in KINDS:
        try:
            if registry.resolve(kind, name).pack:
                return True
        except KinitError:
            continue
    return False


def _resolves(registry: Registry, name: str) -> bool:
    for kind in KINDS:
        try:
            registry.resolve(kind, name)
        except KinitError:
            continue
        return True
    return False


def _class_names(node: Any, where: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], str]]:
    """(key path, name) of every class_name in a section, and of every plain text that may
    name a class (`kernel_initializer: MyInit`), depth first."""
    out = []
    if isinstance(node, Section):
        node = node.document()
    if isinstance(node, dict):
        if isinstance(node.get("class_name"), str):
            out.append(((*where, "class_name"), node["class_name"]))
        for key, value in node.items():
            if key != "class_name":
                out += _class_names(value, (*where, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _class_names(value, (*where, i))
    elif isinstance(node, str) and node.isidentifier():
        out.append((where, node))
    return out


def _build(
    config: config_mod.Config,
    settings: Settings,
    registry: Registry,
    trust: Trust,
    training: bool,
    init: bool,
    requested: str | None = None,
) -> BuiltModel:
    k = keras()
    if settings.seed is not None:
        compat.set_random_seed(settings.seed)
    # Layers take the global dtype policy when they are made and keep it: set it for the
    # build only, so nothing else in the process changes precision.
    previous = k.mixed_precision.dtype_policy()
    if training:
        k.mixed_precision.set_dtype_policy(settings.train.precision)
    try:
        built = model_build.build(config, settings, registry, training=training)
    finally:
        k.mixed_precision.set_dtype_policy(previous)
    section = settings.init_from
    if section is not None and init:
        source = _init_source(section, config, trust, requested)
        init_from.apply(built, section, config, source)
    return built


def _init_source(
    section: InitFrom, config: config_mod.Config, trust: Trust, requested: str | None
) -> Loaded:
    """What init_from names, read as inspect-weights reads a target (never a file's code);
    a config source is read on the command's --backend (`requested`) as the config is."""
    where = (*init_from.SECTION, "source")
    source = init_from.source_path(section.source, config.base_dir)
    if not source.exists():
        raise ConfigError([config.problem(where, f"{source} does not exist")])
    try:
        # A .keras file's code never runs from init_from; a run's or a config's plugins as
        # the user allowed.
        loaded = read(str(source), trust.safe(), own=False, requested=requested)
    except ModelFileError as exc:
        message = str(exc)
        if exc.code:
            # train has no --unsafe-deserialization: a source's code never runs from init_from.
            message = (
                f"{source} holds {exc.code} (Python code, which Keras will not load by "
                "default), and init_from never loads a file's code: use a source whose layers "
                "are registered classes (a plugin), or a kinit run directory"
            )
        raise ConfigError([config.problem(where, message)]) from exc
    except UsageError as exc:  # not a kind of source, or a run with no weights left
        raise ConfigError([config.problem(where, str(exc))]) from exc
    loaded.file = loaded.file or str(source)
    return loaded


def _callback_paths(config: config_mod.Config, settings: Settings, any_run: bool) -> Problems:
    """Callback files that would leave the run directory or take a name kinit writes there:
    known before the run directory exists (train checks absolute paths against it too);
    with `any_run`, also those inside an existing kinit run."""
    out = Problems()
    for i, spec in enumerate(settings.train.callbacks):
        for key, text in rundir.callback_paths(spec, None, any_run=any_run).problems:
            out.append(config.problem(("train", "callbacks", i, *key), text))
    return out


def compile_arguments(
    config: config_mod.Config, settings: Settings, registry: Registry
) -> dict[str, Any]:
    """`model.compile` keyword arguments from the `compile:` section; ConfigError if any fails."""
    builder = SpecBuilder(registry, config)
    section = settings.compile
    args: dict[str, Any] = {
        "optimizer": builder.build("optimizer", section.optimizer, ("compile", "optimizer"))
    }
    if section.loss is not None:
        args["loss"] = builder.build("loss", section.loss, ("compile", "loss"))
    args["metrics"] = [
        builder.build("metric", m, ("compile", "metrics", i)) for i, m in enumerate(section.metrics)
    ]
    builder.problems.raise_any()
    return args


def compiled_objects(arguments: dict[str, Any]) -> list[Any]:
    """The objects (not names) in model.compile's arguments, with an optimizer's schedule."""
    optimizer = arguments["optimizer"]
    objects = [optimizer, arguments.get("loss"), *arguments["metrics"]]
    if not isinstance(optimizer, str):
        schedule = keras().optimizers.schedules.LearningRateSchedule
        objects += [v for v in vars(optimizer).values() if isinstance(v, schedule)]
    return [o for o in objects if o is not None and not isinstance(o, str)]


def read(
    target: str,
    trust: Trust | None = None,
    overrides: Sequence[str] = (),
    *,
    own: bool = True,
    by_path: bool = False,
    requested: str | None = None,
    files_only: bool = False,
) -> Loaded:
    """Read `target`'s model and weights; UsageError when it is none of the known kinds.

    `trust` says what code may run: a .keras file's (a Lambda layer's function:
    safe_mode=False) with `unsafe`, noted when it did, else such a file is a ModelFileError;
    the plugins a run's config.yaml names only as it allows. `own`: a config target is the
    user's, so its plugins are imported (not for one an init_from names). `by_path`: a run
    or a checkpoint whose model needs plugins the user did not allow is read without its
    model (its stored values by their HDF5 paths, with a warning) rather than refused:
    what inspect-weights can show; whatever needs the model keeps refusing. `requested`:
    the command's --backend, which Keras is imported with if it is not running yet.
    `files_only`: a .keras file whose layers are all Keras's own is read from its files
    (model.weights_file), without Keras and with no model, unless the user loads plugins:
    what the statistics need, at the speed of the file.
    """
    trust = trust or Trust()
    path = Path(target)
    if not path.exists():
        raise UsageError(f"{target} does not exist")
    if path.is_dir():
        return _run_directory(path, trust, by_path, requested)
    if path.name.endswith(".weights.h5"):
        return _checkpoint(path, trust, by_path, requested)
    if path.suffix == ".keras":
        saved.check_archive(path)
        config = saved.check_contents(path)  # every declared size, before any value is read
        if files_only and not trust.plugins:
            direct = weights_file.read(path, config, "model", str(path))
            if direct is not None:
                return direct
        if requested and backend.started() is None:
            backend.use(requested)  # before the plugins import Keras
        trust.load_user()
        return saved.read_keras(path, "model", str(path), trust.unsafe, config)
    if path.suffix in config_mod.SUFFIXES:
        prepared = prepare(path, overrides, trust, own=own, requested=requested)
        built = prepared.built
        return Loaded(
            "config",
            f"{path} (built, not trained)",
            built.model,
            built.weights,
            prepared=prepared,
            calls={info.name: info.calls for info in built.layers},
        )
    raise UsageError(
        f"{target}: expected a config (.yaml), a saved model (.keras), a run directory or a "
        "checkpoint (.weights.h5)"
    )


def rebuild_run(run_dir: Path, trust: Trust, checked: Checked | None = None) -> BuiltModel:
    """The run's model built again from its own config.yaml (`checked`: as already read) and
    seed, as `kinit train` built it; no init_from, so every value is what its initializer
    draws. The run's plugins are imported only as `trust` allows."""
    source = checked or rundir.config_of(run_dir)
    return prepare(source, (), trust, own=False, init=False).built


def _run_directory(
    run_dir: Path, trust: Trust, by_path: bool = False, requested: str | None = None
) -> Loaded:
    config_path = rundir.config_of(run_dir)
    _require_run(run_dir)
    # The run's plugins, which its model.keras may need, as far as the user allowed; its
    # model is built only if the file cannot be read by Keras alone.
    checked = check(config_path, nested=True, requested=requested)
    trust.load_user()
    trust.load_named(list(checked.settings.plugins), run_dir, str(config_path))
    model_path, weights_path = run_dir / rundir.MODEL, run_dir / rundir.WEIGHTS
    loaded = None
    if model_path.exists():
        try:
            loaded = saved.read_keras(model_path, "run", str(run_dir), trust.unsafe)
            loaded.file = str(model_path)
        except ModelFileError:
            if not weights_path.exists():
                raise  # a damaged model.keras cannot fill a rebuilt model either
        except (DeclaredSizeError, ResourceError):
            raise  # a rebuild would spend the memory the check refused
        except KinitError:
            loaded = None  # Keras cannot reload its classes: rebuild from the config
    if loaded is None:
        source = weights_path if weights_path.exists() else model_path
        if not source.exists():
            raise UsageError(_no_trained_weights(run_dir))
        loaded = _rebuilt_run(run_dir, source, trust, checked, by_path)
    loaded.checked = checked
    try:
        loaded.epochs = rundir.metrics(run_dir, strict=True).get("epochs")
    except RecordError as exc:
        loaded.notes.append(f"{exc}; shown without the number of epochs the run trained")
    _read_records(run_dir, loaded)
    for w in loaded.weights:
        # What made each variable, or where init_from took it from, was recorded exactly
        # when the run built it; a reload can only guess from the layer's attributes.
        record = (loaded.initial or {}).get(w.path, {})
        if tuple(record.get("shape", w.shape)) != tuple(w.shape):
            continue  # another variable than the one recorded: its record says nothing
        if record.get("initializer") is not None:
            w.initializer = record["initializer"]
        if isinstance(record.get("trainable"), bool):
            # A model rebuilt from config.yaml has no init_from, so not its frozen layers.
            w.trainable = record["trainable"]
        if record.get("loaded_from"):
            w.loaded_from, w.loaded_sha256 = record["loaded_from"], record.get("sha256")
    return loaded


def _rebuilt_run(
    run_dir: Path, source: Path, trust: Trust, checked: Checked, by_path: bool
) -> Loaded:
    """The run's model rebuilt from its config.yaml with `source`'s values (its
    model.weights.h5, or model.keras); with `by_path`, read without the model when the
    rebuild needs plugins the user did not allow."""
    try:
        # Without the plugins it names, the rebuild says which classes need them.
        built = rebuild_run(run_dir, trust, checked)
    except UntrustedCode as exc:
        if not (by_path and exc.plugins):
            raise
        return _without_model(run_dir, source, "run", str(run_dir), exc)
    if source.name == rundir.WEIGHTS:
        bounded.check_hdf5_file(source)
    try:
        built.model.load_weights(source)
    except Exception as exc:
        raise KinitError(
            f"cannot load {source} into the model {run_dir / rundir.CONFIG} builds: "
            f"{keras_message(exc)}"
        ) from exc
    loaded = Loaded("run", str(run_dir), built.model, built.weights)
    loaded.file = str(source)
    return loaded


def _without_model(
    run_dir: Path, path: Path, kind: str, source: str, refusal: UntrustedCode
) -> Loaded:
    """`path`'s values by their HDF5 paths, named as the run's weights-init.json names them,
    with the refusal as a warning: which classes, which plugins, and how to allow them."""
    try:
        record = rundir.initial_weights(run_dir)
    except RecordError:
        record = None  # _read_records says so
    loaded = saved.read_by_path(path, kind, source, record)
    loaded.notes.append(
        f"{refusal}. Shown without the model: each variable {path} stores, by its path in "
        "the file (the run's names where weights-init.json records its shape); "
        "--activations and --check of the run's initial weights need the model"
    )
    return loaded


def _require_run(run_dir: Path) -> None:
    """UsageError unless kinit made the folder: only a run's files are read as a run's."""
    if not ownership.has_marker(run_dir):
        raise UsageError(
            f"{run_dir} is not a kinit run directory (it has no {rundir.MARKER}), so kinit "
            f"does not read it as one; give its files instead: kinit inspect-weights "
            f"{run_dir / rundir.CONFIG}"
        )


def _read_records(run_dir: Path, loaded: Loaded) -> None:
    """The run's records of its weights, as far as they describe the file read: its
    initial weights (a checkpoint's too) and, for the run's model file, its final ones."""
    if _read_initial(run_dir, loaded) and loaded.kind == "run":
        _read_final(run_dir, loaded)


def _read_initial(run_dir: Path, loaded: Loaded) -> bool:
    """The run's weights-init.json into `loaded.initial`, with a note when it cannot be read
    back (the weights are still shown, without what it records) or when it records other
    variables than the model file holds (a file swapped for another model's: False)."""
    try:
        loaded.initial = rundir.initial_weights(run_dir)
    except RecordError as exc:
        loaded.notes.append(
            f"{exc}; shown without it: the initial values, the initializers and init_from "
            "sources recorded when the run built its model, and --check of its initial weights"
        )
        return True
    if loaded.initial is None or loaded.file is None:
        return True
    recorded = {p: tuple(e["shape"]) for p, e in loaded.initial.items()}
    differ = first_difference(loaded.weights, recorded)
    if differ is not None:
        path, held, record, n = differ
        loaded.notes.append(
            f"{loaded.file} and {run_dir / rundir.WEIGHTS_INIT} disagree: {path} is {held} in "
            f"the first and {record} in the second ({n} variable{'s' * (n > 1)} differ): the "
            f"model file is not the one this run trained. Shown: {loaded.file}'s values, "
            "without the run's record of its initial weights (nor --check of them)"
        )
        loaded.initial = None  # a record of another model says nothing of this one
        return False
    return True


def _read_final(run_dir: Path, loaded: Loaded) -> None:
    """The SHA-256 of each variable weights-final.json records (disowned() compares them
    with the file's once the statistics scan has computed those)."""
    try:
        final = rundir.final_weights(run_dir)
    except RecordError as exc:
        loaded.notes.append(
            f"{exc}; shown without the check that {loaded.file} holds the values the run trained"
        )
        return
    if final is not None:
        loaded.final = {p: e["sha256"] for p, e in final.items() if e.get("sha256")}


def disowned(loaded: Loaded, digests: dict[str, str]) -> bool:
    """Whether a run's model file holds other values than the run recorded at its end
    (`digests`: path -> SHA-256, as the statistics scan computed them): another run's file
    of the same architecture. Then a note, and the run's records no longer describe the
    values shown: its initial weights, its epochs and the init_from sources are dropped."""
    recorded = loaded.final or {}
    differ = [p for p, d in digests.items() if p in recorded and recorded[p] != d]
    if not differ:
        return False
    run_dir, n = Path(loaded.source), len(differ)
    loaded.notes.append(
        f"{loaded.file} and {run_dir / rundir.WEIGHTS_FINAL} disagree: {differ[0]}'s values "
        "in the first are not the ones the second records (their SHA-256 differs; "
        f"{n} variable{'s' * (n > 1)} differ): "
        f"the model file is not the one this run trained. Shown: {loaded.file}'s values, "
        "without the run's records of its weights (nor --check of them)"
    )
    loaded.initial, loaded.epochs = None, None
    for w in loaded.weights:
        w.loaded_from = w.loaded_sha256 = None
    return True


def _no_trained_weights(run_dir: Path) -> str:
    """Why a run directory has no weights to inspect, what it still holds, and what to do."""
    try:
        state = checkpoint.read(run_dir / rundir.BACKUP)
    except RecordError:
        state = None  # no backup to point to, then
    head = f"{run_dir} has neither {rundir.MODEL} nor {rundir.WEIGHTS}"
    status = rundir.status(run_dir)
    if status == "completed":
        state_text = f"{head}, though the run completed: its trained weights are gone"
    else:
        state_text = f"{head}: the run did not finish ({status or 'it wrote no metrics.json'})"
    if state is not None:
        return (
            f"{state_text}; inspect its last backup (after epoch {state.epoch}) instead: "
            f"kinit inspect-weights {state.weights}"
        )
    kept = sorted(
        p.name
        for p in run_dir.iterdir()
        if not p.name.startswith(".") and (p.name != rundir.BACKUP or any(p.iterdir()))
    )
    return (
        f"{state_text}, and it holds no checkpoint either (it has: {', '.join(kept)}). "
        f"`kinit inspect-weights {run_dir / rundir.CONFIG}` shows the weights its config and "
        f"seed build (its initial ones); `kinit train {run_dir / rundir.CONFIG}` trains it again"
    )


def _checkpoint(
    path: Path, trust: Trust, by_path: bool = False, requested: str | None = None
) -> Loaded:
    run_dir = _run_of(path)
    # The run's config is built without its init_from: the checkpoint holds every value.
    try:
        config = run_dir / rundir.CONFIG
        prepared = prepare(config, (), trust, own=False, init=False, requested=requested)
    except UntrustedCode as exc:
        if not (by_path and exc.plugins):
            raise
        loaded = _without_model(run_dir, path, "checkpoint", str(path), exc)
        _read_records(run_dir, loaded)
        return loaded
    built = prepared.built
    model = built.model
    # Keras's BackupAndRestore checkpoints hold the optimizer's state as well.
    model.compile(**prepared.compile_args)
    model.optimizer.build(model.trainable_variables)
    bounded.check_hdf5_file(path)
    try:
        model.load_weights(path)
    except Exception as exc:
        raise KinitError(f"cannot load the checkpoint {path}: {keras_message(exc)}") from exc
    loaded = Loaded("checkpoint", str(path), model, built.weights)
    _read_records(run_dir, loaded)
    return loaded


def _run_of(path: Path) -> Path:
    """The run directory a checkpoint lies in: RUN/NAME.weights.h5, or RUN/backup/NAME, where
    RUN is a kinit run with its config.yaml; nothing further up is a checkpoint's run."""
    folder = path.resolve().parent
    places = [folder, folder.parent] if folder.name == rundir.BACKUP else [folder]
    for place in places:
        if ownership.has_marker(place) and (place / rundir.CONFIG).is_file():
            return place
    unmarked = [p for p in places if (p / rundir.CONFIG).is_file()]
    if unmarked:
        why = (
            f"{unmarked[0]} has a {rundir.CONFIG} but is not a kinit run directory (it has no "
            f"{rundir.MARKER}), so kinit does not build the model it describes"
        )
    elif len(places) == 2:
        why = f"neither {places[0]} nor {places[1]} is one"
    else:
        why = f"{places[0]} is not one"
    raise UsageError(
        f"{path}: a checkpoint holds weights only; kinit finds the model in the "
        f"{rundir.CONFIG} of the run directory it lies in (RUN/NAME.weights.h5 or "
        f"RUN/{rundir.BACKUP}/NAME.weights.h5), and {why}"
    )
