"""Tables as data (`data.path` a .csv, .tsv, .csv.gz, .tsv.gz or .parquet file): read with
pyarrow, checked cell by cell, and turned into the model's float32 inputs and its labels.

pyarrow because its CSV reader is multithreaded C++ that converts only the columns asked
for, Parquet is native to it, and nothing else (pandas) is needed at run time. A number
column is one input; a text column is a category, one-hot over the training split's values.

Rows are named as the user sees them in the file: a CSV line (the header is line 1; pyarrow
skips empty lines, which are counted back when a message names a line) or a Parquet row
(0-based). TensorFlow is never imported here: tables train on JAX and torch without it.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from kinit_cli.data.preprocessing import Feature, TableFormat, Task
from kinit_cli.errors import DataError, did_you_mean
from kinit_cli.storage import bounded

SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".parquet")

# A cell pyarrow would read as a number (what a text column "mostly of numbers" is counted by).
_NUMBER = r"(?i)^\s*[+-]?((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|inf|infinity|nan)\s*$"
_SNIFF = 1 << 16  # bytes of a CSV file checked to be text before pyarrow parses it
_BLOCK = 1 << 14  # rows encoded at a time: a block of the output stays in the CPU's cache
_SHOWN = 20  # column names listed in a message before "and N more"
_MISSING = "the value is missing (an empty cell, or NA, NaN, null and the like)"


def is_table(path: Path) -> bool:
    """Whether `path` names a table file, by its suffix (any case)."""
    return Path(path).name.lower().endswith(SUFFIXES)


def _is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(".parquet")


def _kind(path: Path) -> str:
    return "Parquet" if _is_parquet(path) else "TSV" if ".tsv" in path.name.lower() else "CSV"


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] + ("..." if len(text) > 200 else "")


def column_names(path: Path) -> list[str]:
    """The table's column names, from its header (CSV: the first block) or schema (Parquet)
    alone: what `validate` checks the config against without reading the data."""
    path = Path(path)
    _check_file(path)
    if _is_parquet(path):
        try:
            names = pq.read_schema(str(path)).names
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{path} cannot be read as a Parquet file: {_reason(exc)}") from None
        # pandas stores a DataFrame's index as a column of its own; it is not data.
        names = [n for n in names if not (n.startswith("__index_level_") and n.endswith("__"))]
    else:
        _check_text(path)
        try:
            with pcsv.open_csv(str(path), **_csv_options(path, None, threads=False)) as reader:
                names = reader.schema.names
        except (pa.ArrowException, OSError) as exc:
            raise _csv_error(path, exc) from None
    _check_names(path, names)
    return names


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path} does not exist")
    what = bounded.kind_of(path)
    if what is not None:
        raise DataError(f"{path} is {what}, not a table file")
    try:
        with path.open("rb") as file:
            empty = not file.read(1)
    except OSError as exc:
        raise DataError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if empty:
        raise DataError(f"{path} is empty; a table needs a header line and rows")


def _check_text(path: Path) -> None:
    """One clear message for a .csv that is not text (a binary file, another encoding),
    before pyarrow reports it as rows of the wrong width."""
    try:
        with pa.input_stream(str(path)) as stream:
            head = stream.read(_SNIFF)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path} cannot be read: {_reason(exc)}") from None
    if not head:
        raise DataError(f"{path} is empty; a table needs a header line and rows")
    bad = head.find(b"\0")
    if bad < 0:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            # A character cut by the end of the sample is not an error.
            if len(head) < _SNIFF or exc.start < len(head) - 3:
                bad = exc.start
    if bad >= 0:
        raise DataError(
            f"{path} is not a {_kind(path)} text file: byte {bad} is not UTF-8 text; "
            "kinit reads tables as UTF-8 text with a header line (or .parquet files)"
        )


def _check_names(path: Path, names: Sequence[str]) -> None:
    if not names:
        raise DataError(f"{path} has no columns; a table needs a header line naming them")
    seen: dict[str, int] = {}
    for number, name in enumerate(names, start=1):
        if name in seen:
            raise DataError(
                f'{path}: the column name "{name}" is used twice (columns {seen[name]} and '
                f"{number}); each column needs a name of its own"
            )
        seen[name] = number


def check_columns(
    path: Path, names: Sequence[str], label: str | None, features: Sequence[str] | None
) -> None:
    """DataError unless `label` and every one of `features` (default: every other column)
    name columns of the table, each once, and the label is not a feature."""
    names = list(names)
    if label is None:
        raise DataError(
            f"{path}: a table needs data.label, the label column; its columns: {_listed(names)}"
        )
    unknown = [("data.label", label)] if label not in names else []
    unknown += [(f"data.features[{i}]", f) for i, f in enumerate(features or ()) if f not in names]
    if unknown:
        said = " ".join(
            f'{key} "{name}" is not a column.{did_you_mean(name, names)}' for key, name in unknown
        )
        raise DataError(f"{path}: {said} Its columns: {_listed(names)}")
    if features is None:
        _check_default_features(path, names, label)
        return
    if not features:
        raise DataError(
            f"{path}: data.features is empty; list the feature columns, or leave it out"
        )
    if label in features:
        raise DataError(
            f'{path}: the label column "{label}" is also in data.features; a column is a '
            "feature or the label, not both"
        )
    twice = sorted({f for f in features if list(features).count(f) > 1})
    if twice:
        raise DataError(f"{path}: data.features lists {_quoted(twice)} more than once")


def _check_default_features(path: Path, names: list[str], label: str) -> None:
    """Every column but the label is a feature: there must be one, and each must have a
    name (pandas writes its row index under an empty name)."""
    if names == [label]:
        raise DataError(f'{path} has no column besides the label "{label}"; a model needs inputs')
    if "" in names:
        raise DataError(
            f"{path}: column {names.index('') + 1} has no name in the header (a saved row "
            "index?); name it, or list the feature columns in data.features"
        )


@dataclass(frozen=True, eq=False)
class Table:
    """The columns read, all rows: number columns float64 or int64, text columns object
    arrays of str; no cell is missing."""

    path: Path
    columns: dict[str, np.ndarray]
    n_rows: int
    header_lines: int  # 1 for CSV/TSV (data row r is line r + 2 without empty lines); 0 Parquet

    def where(self, row: int) -> str:
        """Where data row `row` (0-based) is in the file: "line 14" or "row 12"."""
        return _where(self.path, self.header_lines, row)


def _where(path: Path, header_lines: int, row: int) -> str:
    if not header_lines:
        return f"row {row}"
    return f"line {_line_of(path, row)}"


def _line_of(path: Path, row: int) -> int:
    """The file line of data row `row`, counting the empty lines pyarrow skips (only when a
    message names it: the file is read again up to that row)."""
    opener: Any = gzip.open if path.name.lower().endswith(".gz") else open
    index = -1  # the header
    try:
        with opener(path, "rb") as file:
            for number, text in enumerate(file, start=1):
                if not text.strip(b"\r\n"):
                    continue
                if index == row:
                    return number
                index += 1
    except (OSError, EOFError):
        pass
    return row + 2


def read(path: Path, columns: Sequence[str]) -> Table:
    """The `columns` of the table at `path`, every row, each cell checked: DataError (file,
    line or row, column, value) for a missing value, a non-number in a number column, a row
    of the wrong width, an unreadable file, or a table without rows."""
    path = Path(path)
    columns = list(dict.fromkeys(columns))
    if not columns:
        raise ValueError("tables.read needs the names of the columns to read")
    names = column_names(path)
    missing = [name for name in columns if name not in names]
    if missing:
        said = " ".join(f'"{n}" is not a column.{did_you_mean(n, names)}' for n in missing)
        raise DataError(f"{path}: {said} Its columns: {_listed(names)}")
    header_lines = 0 if _is_parquet(path) else 1
    table = _read_parquet(path, columns) if not header_lines else _read_csv(path, columns)
    if table.num_rows == 0:
        raise DataError(f"{path} has a header but no rows; a table needs rows of data")
    n_rows = table.num_rows
    # Each column is converted then dropped, so only the columns being converted are held
    # twice; NumPy and pyarrow release the GIL, so the conversions run on every core.
    arrays = dict(zip(table.column_names, table.columns, strict=True))
    del table

    def convert(name: str) -> np.ndarray:
        return _to_numpy(path, header_lines, name, arrays.pop(name))

    with ThreadPoolExecutor(_threads()) as pool:
        out = dict(zip(columns, pool.map(convert, columns), strict=True))
    return Table(path=path, columns=out, n_rows=n_rows, header_lines=header_lines)


def _threads() -> int:
    return max(1, pa.cpu_count())


def _csv_options(
    path: Path, columns: Sequence[str] | None, *, threads: bool = True, handler: Any = None
) -> dict[str, Any]:
    delimiter = "\t" if ".tsv" in path.name.lower() else ","
    return {
        "read_options": pcsv.ReadOptions(use_threads=threads),
        "parse_options": pcsv.ParseOptions(delimiter=delimiter, invalid_row_handler=handler),
        # Empty text cells are missing values like empty number cells; true/false stay text
        # (a category) rather than becoming a third kind of column.
        "convert_options": pcsv.ConvertOptions(
            include_columns=list(columns or ()),
            strings_can_be_null=True,
            true_values=[],
            false_values=[],
        ),
    }


def _read_csv(path: Path, columns: Sequence[str]) -> pa.Table:
    """The columns, every block parsed on its own thread; each column's kind is inferred
    from all its cells (whole numbers, then a fraction: a float column)."""
    _check_text(path)
    try:
        return pcsv.read_csv(str(path), memory_pool=_pool(), **_csv_options(path, columns))
    except (pa.ArrowException, OSError) as exc:
        raise _csv_error(path, exc, columns) from None


def _pool() -> pa.MemoryPool:
    """jemalloc: pyarrow's default mimalloc spent 2 to 4 s of system time on a 1,000,000-row
    table here, handing pages back and faulting them in again (BENCHMARKS.md)."""
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:
        return pa.system_memory_pool()


def _csv_error(path: Path, exc: BaseException, columns: Sequence[str] | None = None) -> DataError:
    """pyarrow's parse error as the line it is on: the file is read again on one thread,
    where pyarrow knows the row of the first bad line."""
    if "Empty CSV file" in str(exc):
        return DataError(f"{path} is empty; a table needs a header line and rows")
    if not isinstance(exc, pa.ArrowInvalid):
        return DataError(f"{path} cannot be read: {_reason(exc)}")
    bad: list[Any] = []

    def first(row: Any) -> str:
        bad.append(row)
        return "error"

    try:
        pcsv.read_csv(str(path), **_csv_options(path, columns, threads=False, handler=first))
    except (pa.ArrowException, OSError):
        pass
    if not bad or bad[0].number is None:
        return DataError(f"{path} cannot be read as a {_kind(path)} table: {_reason(exc)}")
    row = bad[0]
    text = row.text if len(row.text) <= 80 else row.text[:80] + "..."
    return DataError(
        f"{path}, {_where(path, 1, row.number - 2)}: {row.actual_columns} "
        f"cell{'s' if row.actual_columns != 1 else ''} where the header has "
        f"{row.expected_columns} columns: {text}"
    )


def _read_parquet(path: Path, columns: Sequence[str]) -> pa.Table:
    try:
        return pq.read_table(str(path), columns=list(columns))
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path} cannot be read as a Parquet file: {_reason(exc)}") from None


def _to_numpy(path: Path, header_lines: int, name: str, column: pa.ChunkedArray) -> np.ndarray:
    """One column as NumPy (int64, float64 or str objects), refused at its first missing
    value or, for a text column mostly of numbers, at its first non-number."""

    def fail(row: int, said: str) -> DataError:
        return DataError(f'{path}, {_where(path, header_lines, row)}, column "{name}": {said}')

    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    if column.null_count:
        more = column.null_count - 1
        also = f", and so are {more} more cells of the column" if more > 1 else ""
        also = ", and so is 1 more cell of the column" if more == 1 else also
        raise fail(_first(column.is_null(), True), _MISSING + also)
    try:
        if pa.types.is_integer(kind):
            return _numbers(column, np.int64)
        if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            return _finite(_numbers(column, np.float64), fail)
    except pa.ArrowInvalid as exc:  # an unsigned 64-bit integer past int64, say
        raise DataError(f'{path}: column "{name}": {_reason(exc)}') from None
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return _not_text(column, fail)
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        try:
            column = column.cast(pa.string())
        except (pa.ArrowException, OSError):
            raise DataError(
                f'{path}: column "{name}" holds {kind} values, which are neither numbers nor '
                "text; leave it out of data.features"
            ) from None
    return _text(column, fail)


# pyarrow's own to_numpy() imports pandas (half a second) the first time it is called: the
# values are copied out of the buffers, and text out of to_pylist(), which do not.


def _numbers(column: pa.ChunkedArray, dtype: type) -> np.ndarray:
    """A column without missing values as one NumPy array of `dtype` (int64 or float64)."""
    arrow_type = pa.from_numpy_dtype(dtype)
    if column.type != arrow_type:
        column = column.cast(arrow_type)
    size = np.dtype(dtype).itemsize
    out = _empty(len(column), dtype)
    start = 0
    for chunk in column.chunks:
        if len(chunk):
            data = chunk.buffers()[1]
            out[start : start + len(chunk)] = np.frombuffer(
                data, dtype, len(chunk), chunk.offset * size
            )
            start += len(chunk)
    return out


def _empty(shape: int | tuple[int, ...], dtype: type) -> np.ndarray:
    """np.empty from pyarrow's memory pool, which takes back the memory of the parsed blocks
    as their columns are copied out: half the CPU time of fresh pages from the system."""
    count = int(np.prod(shape))
    buffer = pa.allocate_buffer(max(1, count) * np.dtype(dtype).itemsize, memory_pool=_pool())
    return np.frombuffer(buffer, dtype, count).reshape(shape)


def _first(mask: pa.ChunkedArray, value: bool) -> int:
    """The index of the first `value` in a boolean column, -1 when there is none."""
    start = 0
    for chunk in mask.chunks:
        cells = chunk.to_pylist()
        if value in cells:
            return start + cells.index(value)
        start += len(cells)
    return -1


def _not_text(column: pa.ChunkedArray, fail: Any) -> np.ndarray:
    """Cells that are not UTF-8 (pyarrow reads such a column as bytes): the first, named."""
    start = 0
    for chunk in column.chunks:
        for offset, cell in enumerate(chunk.to_pylist()):
            try:
                cell.decode("utf-8")
            except UnicodeDecodeError:
                raise fail(start + offset, f"{cell!r} is not UTF-8 text") from None
        start += len(chunk)
    return _text(column.cast(pa.string()), fail)


def _finite(values: np.ndarray, fail: Any) -> np.ndarray:
    finite = np.isfinite(values)
    if not finite.all():
        row = int(np.argmin(finite))
        if np.isnan(values[row]):
            raise fail(row, _MISSING)
        raise fail(row, f"{values[row]} is not a finite number")
    return values


def _text(column: pa.ChunkedArray, fail: Any) -> np.ndarray:
    """A text column, or a DataError at its first non-number when most of it is numbers."""
    numbers = pc.match_substring_regex(column, _NUMBER)
    count = pc.sum(numbers).as_py() or 0
    if 2 * count > len(column):
        row = _first(numbers, False)
        if row >= 0:
            value = column[row].as_py()
            raise fail(row, f'"{value}" is not a number (the column\'s other cells are numbers)')
        try:
            return _finite(_numbers(column, np.float64), fail)
        except pa.ArrowInvalid:
            pass  # a spelling the pattern takes and pyarrow does not: kept as text
    out = np.empty(len(column), object)
    start = 0
    for chunk in column.chunks:
        out[start : start + len(chunk)] = chunk.to_pylist()
        start += len(chunk)
    return out


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

    with ThreadPoolExecutor(_threads()) as pool:
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
    x = _empty((n, fmt.width), np.float32)

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

    with ThreadPoolExecutor(_threads()) as pool:
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
        said.append(f"missing {_quoted(missing)}")
    if extra:
        said.append(f"extra {_quoted(extra)}")
    raise DataError(
        f"{path}: its columns differ from those the model was trained on: {'; '.join(said)}. "
        f"The model takes the columns {_listed(list(fmt.columns))} (and the label column "
        f'"{fmt.label}" may be there'
        + (
            f", as may the training table's other columns {_listed(list(fmt.unused))})"
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
        known = f"the run's classes are {_listed(list(class_names))}"
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
