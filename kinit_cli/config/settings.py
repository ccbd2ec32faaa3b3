"""A config after validation: one frozen dataclass per section, read by attribute.

These classes are the one description of the sections: each key's field carries its check,
default and doc (`setting()`), and what else describes them is derived from them: the
schema `validate` checks against (`schema.SCHEMA`), the JSON Schema for editors, and
README's key table (`config.reference`). Imports nothing heavy: `--help` and the config
checks stay instant.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any, Self

from kinit_cli.config.choices import BACKENDS, STRATEGIES
from kinit_cli.config.fields import (
    REQUIRED,
    Check,
    Field,
    boolean,
    choice,
    cluster,
    either,
    fraction,
    image_size,
    integer,
    mapping,
    name_map,
    number,
    optional,
    optional_boolean,
    optional_string,
    optional_string_list,
    run_name,
    spec_list_of,
    spec_of,
    string,
    string_list,
)

# What README's key table says of a count TensorFlow takes (fields.INT32_MAX).
COUNT = "integer from 1 to 2**31 - 1"
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def _one_of(names: tuple[str, ...]) -> str:
    """`a`, `b` or `c`: a closed set of names in README's words."""
    return ", ".join(f"`{n}`" for n in names[:-1]) + f" or `{names[-1]}`"


def setting(
    check: Check,
    default: Any = None,
    doc: str = "",
    *,
    text: bool = False,
    kind: str = "",
    shown: str = "",
    more: str = "",
) -> Any:
    """A key of a section: its check, its default as the config document holds it (a list,
    REQUIRED), and its doc; `text` asks for the "quote it" hint. For README's table: `kind`
    (its type in words), `shown` (the default, where its value does not say it) and `more`
    (what the table adds to the doc). The class's default is the frozen form (a tuple)."""
    metadata = {
        "field": Field(check, default, doc, text),
        "kind": kind,
        "shown": shown,
        "more": more,
    }
    if default is REQUIRED:
        return field(metadata=metadata)
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=metadata)
    return field(default=_frozen(default), metadata=metadata)


def section(cls: type[Section], doc: str, *, optional: bool = False, more: str = "") -> Any:
    """A section: its class and what it is for; an `optional` one stays None (and out of the
    document) unless the file has it."""
    metadata = {"section": cls, "doc": doc, "optional": optional, "more": more}
    if optional:
        return field(default=None, metadata=metadata)
    return field(default_factory=cls, metadata=metadata)


def _frozen(value: Any) -> Any:
    """A key's value as a section holds it: a list becomes a tuple (items are left as the
    YAML gave them: a `{class_name, config}` spec stays the dict Keras deserializes)."""
    return tuple(value) if isinstance(value, list) else value


def _thawed(value: Any) -> Any:
    """A key's value as the config document holds it: a copy, tuples made lists again."""
    value = copy.deepcopy(value)
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True, kw_only=True)
class Section:
    """What every section (and the whole config) shares: its schema, read and written."""

    @classmethod
    def schema(cls) -> dict[str, Any]:
        """Each key's Field, and each section's keys as a nested mapping (schema.SCHEMA)."""
        return {
            f.name: f.metadata["section"].schema()
            if "section" in f.metadata
            else f.metadata["field"]
            for f in fields(cls)
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Self:
        """The section a validated document describes (a key it lacks keeps its default)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in document:
                continue
            value = document[f.name]
            inner = f.metadata.get("section")
            values[f.name] = inner.from_document(value) if inner else _frozen(copy.deepcopy(value))
        return cls(**values)

    def document(self) -> dict[str, Any]:
        """The section as the config document holds it: plain YAML data, in the schema's
        order, an absent optional section left out (what config.yaml and hashes are of)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if "section" not in f.metadata:
                out[f.name] = _thawed(value)
            elif value is not None:
                out[f.name] = value.document()
        return out


@dataclass(frozen=True, kw_only=True)
class Data(Section):
    """`data:`: the data set and how it is prepared."""

    name: str | None = setting(
        optional_string,
        "digits",
        "digits, mnist, fashion_mnist or cifar10",
        text=True,
        kind="text",
    )
    path: str | None = setting(
        optional_string,
        None,
        "your data (overrides name): a table (.csv, .tsv, .csv.gz, .parquet), a folder of "
        "images in class folders, a folder of IDX files, or an .npz",
        text=True,
        kind="text",
        more="relative to the config's folder; see Train on your own data",
    )
    label: str | None = setting(
        optional_string,
        None,
        "a table's label column",
        text=True,
        kind="text",
        shown="required for a table",
    )
    features: tuple[str, ...] | None = setting(
        optional_string_list,
        None,
        "a table's feature columns, in this order",
        kind="list of text",
        shown="every column but the label",
    )
    image_size: tuple[int, int] | None = setting(
        image_size,
        None,
        "resize images to [height, width]",
        kind="[height, width]",
        shown="the images' own (all one size)",
    )
    color_mode: str = setting(
        choice("rgb", "grayscale"),
        "rgb",
        "decode images to 3 channels (rgb) or 1 (grayscale)",
        kind="`rgb` or `grayscale`",
    )
    normalize: bool = setting(
        boolean,
        True,
        "uint8 pixels / 255; table columns standardised with the training split's mean and std",
        kind="boolean",
        more="see Train on your own data",
    )
    flatten: bool | None = setting(
        optional_boolean,
        None,
        "flatten images; default: follow the model input",
        kind="boolean",
        shown="the model input's",
    )
    test_split: float = setting(
        fraction,
        0.2,
        "fraction held out for testing, by class, when the source has no test part",
        kind="number from 0 up to (not including) 1",
    )
    validation_split: float = setting(
        fraction,
        0.0,
        "fraction of training data held out",
        kind="number from 0 up to (not including) 1",
    )
    limit: int | None = setting(
        integer(1, optional=True), None, "use at most this many examples per split", kind=COUNT
    )
    shuffle: bool = setting(
        boolean, True, "shuffle training data each epoch with the run's seed", kind="boolean"
    )


@dataclass(frozen=True, kw_only=True)
class Compile(Section):
    """`compile:`: the arguments of model.compile, as names or specs."""

    optimizer: str | dict[str, Any] = setting(
        spec_of("optimizer"),
        "rmsprop",
        "optimizer name or {class_name, config}",
        kind="name or spec",
        more="`learning_rate` may be a schedule spec",
    )
    loss: str | dict[str, Any] | None = setting(
        optional(spec_of("loss")), None, "loss name or spec", kind="name or spec"
    )
    metrics: tuple[str | dict[str, Any], ...] = setting(
        spec_list_of("metric"), [], "list of metric names or specs", kind="list of names or specs"
    )


@dataclass(frozen=True, kw_only=True)
class Train(Section):
    """`train:`: the arguments of model.fit, and the dtype policy."""

    epochs: int = setting(integer(1), 1, "passes over the training data", kind=COUNT)
    batch_size: int = setting(
        integer(1),
        32,
        "examples per training step (the global batch under a strategy)",
        kind=COUNT,
    )
    steps_per_execution: int | None = setting(
        integer(1, optional=True),
        None,
        "training steps per compiled call; default: the backend's (BENCHMARKS.md)",
        kind=COUNT,
        shown="the backend's (see Backends)",
    )
    jit_compile: bool | None = setting(
        optional_boolean,
        None,
        "compile the training step with XLA; default: the backend's",
        kind="boolean",
        shown="the backend's (see Backends)",
    )
    precision: str = setting(
        choice(*PRECISIONS),
        "float32",
        "Keras dtype policy; the model's outputs stay float32",
        kind=_one_of(PRECISIONS),
        more="see Training",
    )
    callbacks: tuple[str | dict[str, Any], ...] = setting(
        spec_list_of("callback"),
        [],
        "Keras callbacks as names or {class_name, config}",
        kind="list of names or specs",
        more="see Training",
    )
    allow_no_trainable_weights: bool = setting(
        boolean,
        False,
        "train a model with no trainable weights (refused by default: training would "
        "change nothing)",
        kind="boolean",
    )
    weight_history: bool = setting(
        boolean,
        False,
        "record every variable's mean, std, L2 norm and change from its initial value each "
        "epoch (weight-history.csv), and the layers' outputs at initialisation",
        kind="boolean",
        more="see Training",
    )


@dataclass(frozen=True, kw_only=True)
class Distribute(Section):
    """`distribute:`: one device, a tf.distribute strategy, or JAX's data parallel."""

    strategy: str = setting(
        choice(*STRATEGIES),
        "default",
        "one device; tf.distribute's mirrored over local (or the listed) devices or a "
        "cluster; or JAX's data_parallel",
        kind=_one_of(STRATEGIES),
        more="see below",
    )
    devices: tuple[str, ...] | None = setting(
        optional(string_list),
        None,
        "devices for mirrored (cpu:0, cpu:1 split the CPU into logical devices)",
        kind="list of text",
    )
    cluster: dict[str, Any] | None = setting(
        cluster,
        None,
        "multi_worker_mirrored without TF_CONFIG: {workers: [host:port, ...], index: N}",
        kind="mapping",
    )
    timeout: float = setting(
        number(1),
        120,
        "seconds to wait for peer workers (cluster start, each collective)",
        kind="number from 1 to 2**31 - 1",
    )


@dataclass(frozen=True, kw_only=True)
class InitFrom(Section):
    """`init_from:`: start layers from the weights of a run directory or a .keras model."""

    source: str = setting(
        string,
        REQUIRED,
        "a run directory or a .keras model to take weights from",
        text=True,
        kind="text",
        more="relative to the config's folder",
    )
    layers: tuple[str, ...] | None = setting(
        optional(string_list),
        None,
        "layers to load (default: every layer the source has by the same name)",
        kind="list of text",
        shown="every layer of the same name",
    )
    map: dict[str, str] = setting(
        name_map,
        {},
        "target layer -> source layer, where the names differ",
        kind="mapping of text to text",
    )
    freeze: bool | tuple[str, ...] = setting(
        either(boolean, string_list),
        False,
        "true, or a list of layers: make loaded layers non-trainable",
        kind="boolean or list of text",
    )


@dataclass(frozen=True, kw_only=True)
class Settings(Section):
    """A validated config, whole: its top-level keys and one object per section."""

    name: str | None = setting(
        run_name,
        None,
        "run name; defaults to the config file's name",
        text=True,
        kind="text: ASCII letters, digits, `_ . -`, a letter or digit first, at most 100 "
        "characters",
        shown="the file's name",
        more='names the run directory and the model; quote a number or date (`name: "2024-01-01"`)',
    )
    # NumPy's seeds are unsigned 32-bit integers.
    seed: int | None = setting(
        integer(0, optional=True, maximum=2**32 - 1),
        None,
        "seeds Python, NumPy and Keras",
        kind="integer from 0 to 2**32 - 1",
        more="`--seed` likewise",
    )
    backend: str | None = setting(
        optional(choice(*BACKENDS)),
        None,
        "Keras backend: tensorflow, jax or torch; default: --backend, KERAS_BACKEND, "
        "then tensorflow",
        text=True,
        kind=_one_of(BACKENDS),
        shown="`KERAS_BACKEND`, else `tensorflow`",
        more="see Backends",
    )
    deterministic: bool = setting(
        boolean,
        False,
        "deterministic ops (TensorFlow's op determinism)",
        kind="boolean",
        more="torch's deterministic algorithms and XLA's deterministic GPU ops too",
    )
    plugins: tuple[str, ...] = setting(
        string_list,
        [],
        "modules or .py files (relative to the config's folder)",
        kind="list of text",
        more="dotted module names or `.py` paths",
    )
    data: Data = section(Data, "the data set and its options", more="see Training")
    model: dict[str, Any] = setting(
        mapping,
        REQUIRED,
        "the model: Sequential (input_shape + layers), functional, or one class "
        "(class_name + config + input_shape)",
        kind="mapping",
        more="see below",
    )
    compile: Compile = section(Compile, "the arguments of model.compile")
    train: Train = section(Train, "the arguments of model.fit, and the dtype policy")
    distribute: Distribute = section(
        Distribute,
        "one device, mirrored over local devices, a cluster, or JAX data parallel",
        more="see below",
    )
    init_from: InitFrom | None = section(
        InitFrom,
        "start layers from the weights of a run directory or a .keras model",
        optional=True,
        more="see below",
    )


def sections(cls: type[Section] = Settings) -> dict[str, Any]:
    """name -> the field of each section of `cls` (its metadata: class, doc, optional)."""
    return {f.name: f for f in fields(cls) if "section" in f.metadata}
