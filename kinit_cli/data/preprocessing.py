"""What was done to the data before the model saw it, and which examples went where: kept
with the run (preprocessing.json, split.json) so predict and evaluate repeat it exactly.

Every record read back is data from elsewhere: read through storage/records.py and checked
against the shape written here before anything is built from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kinit_cli.storage import records, rundir
from kinit_cli.storage.records import (
    Check,
    boolean,
    count,
    list_of,
    mapping,
    nullable,
    number,
    text,
)

PREPROCESSING = rundir.PREPROCESSING
SPLIT = rundir.SPLIT

Kind = Literal["arrays", "table", "images"]
Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class Feature:
    """One feature column of a table as the model sees it.

    A number column is one input, standardised as (value - mean) / std when the run
    normalised (mean and std of the training split; std 0 taken as 1). A category column
    (text) is one input per value of `values` (the training split's, sorted): 1.0 for the
    row's value, 0.0 for the others; a value training never saw makes all of them 0.
    """

    name: str
    kind: Literal["number", "category"]
    mean: float | None = None
    std: float | None = None
    values: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return 1 if self.kind == "number" else len(self.values)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The names of the model inputs this column becomes (`color=red` for a category)."""
        if self.kind == "number":
            return (self.name,)
        return tuple(f"{self.name}={value}" for value in self.values)


@dataclass(frozen=True)
class TableFormat:
    """How a table's rows become the model's input vectors and its labels."""

    label: str
    features: tuple[Feature, ...]
    task: Task = "classification"
    # The training table's columns that data.features left out: a table to predict may
    # hold them too (they are not read).
    unused: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return sum(f.width for f in self.features)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)


@dataclass(frozen=True)
class ImageFormat:
    """How an image file becomes the model's input: decoded to `channels` (3 for rgb, 1 for
    grayscale), resized to `size` when the run set `data.image_size` (`resized`), else all
    images were checked to be of `size` already."""

    size: tuple[int, int]  # (height, width)
    color_mode: Literal["rgb", "grayscale"] = "rgb"
    resized: bool = False

    @property
    def channels(self) -> int:
        return 3 if self.color_mode == "rgb" else 1

    @property
    def shape(self) -> tuple[int, int, int]:
        return (*self.size, self.channels)


@dataclass(frozen=True)
class Preprocessing:
    """Everything between the source's values and the model's input.

    `scale`: what pixel values are divided by (uint8 images: 255; None: no division).
    `flatten`: each example reshaped to a vector (the model takes vectors).
    `class_names`: the class of each id (None: the ids are the names, or a regression).
    """

    kind: Kind
    input_shape: tuple[int | None, ...]
    scale: float | None = None
    flatten: bool = False
    class_names: tuple[str, ...] | None = None
    num_classes: int | None = None  # None: a regression
    table: TableFormat | None = None
    images: ImageFormat | None = None

    @property
    def task(self) -> Task:
        return self.table.task if self.table is not None else "classification"

    def names(self) -> tuple[str, ...]:
        """One name per class id: the class names, or the ids written out."""
        if self.class_names is not None:
            return self.class_names
        return tuple(str(i) for i in range(self.num_classes or 0))

    def document(self) -> dict[str, Any]:
        """preprocessing.json's content."""
        table = None
        if self.table is not None:
            table = {
                "label": self.table.label,
                "task": self.table.task,
                "features": [_feature_document(f) for f in self.table.features],
                "unused": list(self.table.unused),
            }
        images = None
        if self.images is not None:
            images = {
                "size": list(self.images.size),
                "color_mode": self.images.color_mode,
                "resized": self.images.resized,
            }
        return {
            "kind": self.kind,
            "input_shape": list(self.input_shape),
            "scale": self.scale,
            "flatten": self.flatten,
            "class_names": None if self.class_names is None else list(self.class_names),
            "num_classes": self.num_classes,
            "table": table,
            "images": images,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Preprocessing:
        """The record back from a document that passed `SHAPE`."""
        table = doc.get("table")
        images = doc.get("images")
        return cls(
            kind=doc["kind"],
            input_shape=tuple(doc["input_shape"]),
            scale=doc.get("scale"),
            flatten=doc.get("flatten", False),
            class_names=None if doc.get("class_names") is None else tuple(doc["class_names"]),
            num_classes=doc.get("num_classes"),
            table=None
            if table is None
            else TableFormat(
                label=table["label"],
                task=table["task"],
                unused=tuple(table.get("unused") or ()),
                features=tuple(
                    Feature(
                        name=f["name"],
                        kind=f["kind"],
                        mean=f.get("mean"),
                        std=f.get("std"),
                        values=tuple(f.get("values") or ()),
                    )
                    for f in table["features"]
                ),
            ),
            images=None
            if images is None
            else ImageFormat(
                size=(images["size"][0], images["size"][1]),
                color_mode=images["color_mode"],
                resized=images["resized"],
            ),
        )


def _feature_document(feature: Feature) -> dict[str, Any]:
    if feature.kind == "number":
        return {"name": feature.name, "kind": "number", "mean": feature.mean, "std": feature.std}
    return {"name": feature.name, "kind": "category", "values": list(feature.values)}


@dataclass(frozen=True)
class SplitRecord:
    """Which examples of a source without a test part went to which split: row numbers of a
    table (0 = the first data row), or image files relative to the folder (POSIX)."""

    seed: int
    test_split: float
    validation_split: float
    train: tuple[int | str, ...]
    validation: tuple[int | str, ...]
    test: tuple[int | str, ...]
    stratified: bool = True
    members: Literal["rows", "files"] = "rows"
    extra: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "test_split": self.test_split,
            "validation_split": self.validation_split,
            "stratified": self.stratified,
            "members": self.members,
            "train": list(self.train),
            "validation": list(self.validation),
            "test": list(self.test),
            **self.extra,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> SplitRecord:
        return cls(
            seed=doc["seed"],
            test_split=doc["test_split"],
            validation_split=doc["validation_split"],
            stratified=doc["stratified"],
            members=doc["members"],
            train=tuple(doc["train"]),
            validation=tuple(doc["validation"]),
            test=tuple(doc["test"]),
        )


def _one_of(*allowed: Any) -> Check:
    def check(value: Any, where: str) -> str | None:
        if value not in allowed:
            shown = ", ".join(repr(a) for a in allowed)
            return f"`{where}` must be one of {shown}; it is {value!r}"
        return None

    return check


def _dimension(value: Any, where: str) -> str | None:
    return None if value is None else count(value, where)


def _member(value: Any, where: str) -> str | None:
    """A row number, or a file path relative to the folder that never leaves it."""
    if not isinstance(value, str):
        return count(value, where)
    parts = value.split("/")
    if (
        not value
        or value.startswith("/")
        or "\\" in value
        or any(p in ("", ".", "..") for p in parts)
    ):
        return f"`{where}` must be a path inside the image folder; it is {value!r}"
    return None


_FEATURE = mapping(
    {"name": text, "kind": _one_of("number", "category")},
    {"mean": number, "std": number, "values": list_of(text)},
)
SHAPE = mapping(
    {"kind": _one_of("arrays", "table", "images"), "input_shape": list_of(_dimension)},
    {
        "scale": number,
        "flatten": boolean,
        "class_names": nullable(list_of(text)),
        "num_classes": nullable(count),
        "table": nullable(
            mapping(
                {
                    "label": text,
                    "task": _one_of("classification", "regression"),
                    "features": list_of(_FEATURE),
                },
                {"unused": list_of(text)},
            )
        ),
        "images": nullable(
            mapping(
                {
                    "size": list_of(count),
                    "color_mode": _one_of("rgb", "grayscale"),
                    "resized": boolean,
                }
            )
        ),
    },
)
SPLIT_SHAPE = mapping(
    {
        "seed": count,
        "test_split": number,
        "validation_split": number,
        "stratified": boolean,
        "members": _one_of("rows", "files"),
        "train": list_of(_member),
        "validation": list_of(_member),
        "test": list_of(_member),
    }
)


def read(run_dir: Path) -> Preprocessing | None:
    """The run's preprocessing.json; None for a run from before kinit kept one."""
    try:
        doc = records.read_json(run_dir / PREPROCESSING, SHAPE)
    except FileNotFoundError:
        return None
    return Preprocessing.from_document(doc)


def read_split(run_dir: Path) -> SplitRecord | None:
    """The run's split.json; None when its source had a test part of its own."""
    try:
        doc = records.read_json(run_dir / SPLIT, SPLIT_SHAPE)
    except FileNotFoundError:
        return None
    return SplitRecord.from_document(doc)
