"""A table's columns as the model's float32 inputs and its labels: the format learned from
the training rows (each number column's mean and std, each text column's values), the rows
encoded by it, and a new table's columns and labels checked against the run's.

Apart from reading (tables.py) because it is a concept of its own: what the model takes,
not what the file holds. A number column is one input; a text column is a category, one-hot
over the training split's values. TensorFlow is never imported here either.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kinit_cli.data.preprocessing import Feature, TableFormat, Task
from kinit_cli.data.tables import Table, listed, pooled_empty, quoted, thread_count
from kinit_cli.errors import DataError

_BLOCK = 1 << 14  # rows encoded at a time: a block of the output stays in the CPU's cache


def _fail(table: Table, column: str, row: int, said: str) -> DataError:
    return DataError(f'{table.path}, {table.where(row)}, column "{column}": {said}')


def _is_text(values: np.ndarray) -> bool:
    return values.dtype == object


def label_values(
    table: Table, label: str, task: Task
) -> tuple[np.ndarray, tuple[str, ...] | None, int | None]:
    """The label column as (y, class_names, num_classes): for a classification int64 class
    ids (integers as they are; text by the sorted names, kept), for a regression float32."""
    values = table.columns[label]
    if task == "regression":
        return _regression(table, label, values), None, None
    names: tuple[str, ...] | None = None
    if _is_text(values):
        names = tuple(sorted(set(values.tolist())))
        ids = _codes(values, names).astype(np.int64)
    else:
        ids = _class_ids(table, label, values)
    return ids, names, len(names) if names is not None else int(ids.max()) + 1


def _regression(table: Table, label: str, values: np.ndarray) -> np.ndarray:
    if _is_text(values):
        raise _fail(
            table,
            label,
            0,
            f'"{values[0]}" is text, and a regression loss needs numbers; for classes set '
            "compile.loss: sparse_categorical_crossentropy",
        )
    return values.astype(np.float32)


def _class_ids(table: Table, label: str, values: np.ndarray) -> np.ndarray:
    """Number labels as class ids: whole numbers 0 or more (floats that are whole too)."""
    if values.dtype.kind == "f":
        whole = values == np.floor(values)
        if not whole.all():
            row = int(np.argmin(whole))
            raise _fail(
                table,
                label,
                row,
                f"{values[row]} is not a whole number, and a classification takes class ids "
                "(whole numbers) or text labels; for a regression set "
                "compile.loss: mean_squared_error",
            )
    ids = values.astype(np.int64)
    if (ids < 0).any():
        row = int(np.argmax(ids < 0))
        raise _fail(table, label, row, f"{values[row]} is not a class id (0, 1, 2 ...)")
    return ids


def _codes(values: np.ndarray, vocabulary: Sequence[str]) -> np.ndarray:
    """Each value's index in `vocabulary`, -1 for a value not in it (int32)."""
    if not _is_text(values):
        values = values.astype(str)  # a category column that this table holds as numbers
    index = {value: i for i, value in enumerate(vocabulary)}
    return np.fromiter((index.get(v, -1) for v in values.tolist()), np.int32, len(values))


def fit_format(
    table: Table,
    rows: np.ndarray,
    features: Sequence[str],
    label: str,
    task: Task,
    normalize: bool,
) -> TableFormat:
    """How rows become inputs, learned from the training rows `rows` alone: each number
    column's mean and population std (std 0 taken as 1; None without `normalize`), each text
    column's sorted values."""
    rows = np.asarray(rows)
    if rows.size == 0:
        raise DataError(f"{table.path}: the training split has no rows")

    def fit(name: str) -> Feature:
        values = table.columns[name][rows]
        if _is_text(values):
            return Feature(name, "category", values=tuple(sorted(set(values.tolist()))))
        if not normalize:
            return Feature(name, "number")
        mean = float(np.mean(values, dtype=np.float64))
        std = float(np.std(values, dtype=np.float64))
        return Feature(name, "number", mean=mean, std=std if std > 0 else 1.0)

    with ThreadPoolExecutor(thread_count()) as pool:
        found = list(pool.map(fit, features))
    return TableFormat(label=label, features=tuple(found), task=task)


@dataclass(frozen=True, eq=False)
class Encoded:
    """A table's rows as the model's inputs."""

    x: np.ndarray  # float32 (n, fmt.width), C-contiguous
    unseen: dict[str, int]  # category column -> rows whose value training never saw (> 0 only)


def encode(table: Table, fmt: TableFormat, rows: np.ndarray | None = None) -> Encoded:
    """The rows `rows` (all when None) as float32 inputs, in `fmt`'s order: a number column
    standardised with the stored mean and std, a category one-hot over its values (all zeros
    for a value training never saw).

    Built a block of rows at a time (blocks in parallel), so no float64 copy of the table is
    made and the block being written stays in the CPU's cache."""
    columns = [_column(table, feature) for feature in fmt.features]
    codes = [
        _codes(values, f.values) if f.kind == "category" else None
        for f, values in zip(fmt.features, columns, strict=True)
    ]
    rows = None if rows is None else np.asarray(rows)
    n = table.n_rows if rows is None else len(rows)
    x = pooled_empty((n, fmt.width), np.float32)

    def fill(start: int) -> None:
        block = slice(start, min(start + _BLOCK, n))
        taken = block if rows is None else rows[block]
        offset = 0
        for feature, values, found in zip(fmt.features, columns, codes, strict=True):
            if found is not None:
                _one_hot(x[block, offset : offset + feature.width], found[taken])
            elif feature.mean is not None:
                x[block, offset] = (values[taken] - feature.mean) / (feature.std or 1.0)
            else:
                x[block, offset] = values[taken]
            offset += feature.width

    with ThreadPoolExecutor(thread_count()) as pool:
        list(pool.map(fill, range(0, n, _BLOCK)))
    unseen = {}
    for feature, found in zip(fmt.features, codes, strict=True):
        if found is not None:
            count = int(np.count_nonzero((found if rows is None else found[rows]) < 0))
            if count:
                unseen[feature.name] = count
    return Encoded(x=x, unseen=unseen)


def _column(table: Table, feature: Feature) -> np.ndarray:
    """The column `feature` reads, checked to be of the kind training saw."""
    values = table.columns.get(feature.name)
    if values is None:
        raise DataError(f'{table.path} has no column "{feature.name}", which the model takes')
    if feature.kind == "number" and _is_text(values):
        raise _fail(
            table,
            feature.name,
            0,
            f'"{values[0]}" is not a number, and the model was trained on numbers in this column',
        )
    return values


def _one_hot(out: np.ndarray, codes: np.ndarray) -> None:
    out[:] = 0.0
    hit = codes >= 0
    out[np.flatnonzero(hit), codes[hit]] = 1.0


def check_same_columns(path: Path, names: Sequence[str], fmt: TableFormat) -> None:
    """DataError naming the feature columns a table lacks and the columns it has that the
    model was not trained on (the label column may be there or not)."""
    missing = [c for c in fmt.columns if c not in names]
    known = {*fmt.columns, fmt.label, *fmt.unused}
    extra = [n for n in names if n not in known]
    if not missing and not extra:
        return
    said = []
    if missing:
        said.append(f"missing {quoted(missing)}")
    if extra:
        said.append(f"extra {quoted(extra)}")
    raise DataError(
        f"{path}: its columns differ from those the model was trained on: {'; '.join(said)}. "
        f"The model takes the columns {listed(list(fmt.columns))} (and the label column "
        f'"{fmt.label}" may be there'
        + (
            f", as may the training table's other columns {listed(list(fmt.unused))})"
            if fmt.unused
            else ")"
        )
    )


def labels_for(
    table: Table,
    fmt: TableFormat,
    class_names: Sequence[str] | None,
    num_classes: int | None,
) -> np.ndarray:
    """The label column of a new table as the run's labels: class ids by the run's class
    names (or ids), float32 for a regression; a label the run never saw is a DataError."""
    values = table.columns.get(fmt.label)
    if values is None:
        raise DataError(f'{table.path} has no label column "{fmt.label}", which evaluating needs')
    if fmt.task == "regression":
        return _regression(table, fmt.label, values)
    if class_names is not None:
        if not _is_text(values) and values.dtype.kind == "f" and (values == np.floor(values)).all():
            values = values.astype(np.int64)
        ids = _codes(values, class_names).astype(np.int64)
        known = f"the run's classes are {listed(list(class_names))}"
    else:
        if _is_text(values):
            raise _fail(table, fmt.label, 0, f'"{values[0]}" is not a class id (0, 1, 2 ...)')
        whole = values == np.floor(values)
        ids = np.where(whole, values, -1).astype(np.int64)
        ids[ids >= (num_classes or 0)] = -1
        known = f"the run's classes are 0 to {(num_classes or 0) - 1}"
    if (ids < 0).any():
        row = int(np.argmax(ids < 0))
        raise _fail(
            table,
            fmt.label,
            row,
            f'the label "{values[row]}" is not one the model was trained on; {known}',
        )
    return ids
