"""Tables as data (`data.path` a .csv, .tsv, .csv.gz, .tsv.gz or .parquet file): read with
pyarrow and checked cell by cell (the columns become inputs and labels in table_encoding.py).

pyarrow because its CSV reader is multithreaded C++ that converts only the columns asked
for, Parquet is native to it, and nothing else (pandas) is needed at run time.

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

from kinit_cli.errors import DataError, did_you_mean
from kinit_cli.storage import bounded

SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".parquet")

# A cell pyarrow would read as a number (what a text column "mostly of numbers" is counted by).
_NUMBER = r"(?i)^\s*[+-]?((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|inf|infinity|nan)\s*$"
_SNIFF = 1 << 16  # bytes of a CSV file checked to be text before pyarrow parses it
_SHOWN = 20  # column names listed in a message before "and N more"
_MISSING = "the value is missing (an empty cell, or NA, NaN, null and the like)"


def is_table(path: Path) -> bool:
    """Whether `path` names a table file, by its suffix (any case)."""
    return Path(path).name.lower().endswith(SUFFIXES)


def _is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(".parquet")


def _kind(path: Path) -> str:
    return "Parquet" if _is_parquet(path) else "TSV" if ".tsv" in path.name.lower() else "CSV"


def listed(names: Sequence[str]) -> str:
    """Names for a message, comma-separated, the first 20 then "and N more"."""
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def quoted(names: Sequence[str]) -> str:
    """Names for a message, each in double quotes, comma-separated."""
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
            f"{path}: a table needs data.label, the label column; its columns: {listed(names)}"
        )
    unknown = [("data.label", label)] if label not in names else []
    unknown += [(f"data.features[{i}]", f) for i, f in enumerate(features or ()) if f not in names]
    if unknown:
        said = " ".join(
            f'{key} "{name}" is not a column.{did_you_mean(name, names)}' for key, name in unknown
        )
        raise DataError(f"{path}: {said} Its columns: {listed(names)}")
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
        raise DataError(f"{path}: data.features lists {quoted(twice)} more than once")


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
        raise DataError(f"{path}: {said} Its columns: {listed(names)}")
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

    with ThreadPoolExecutor(thread_count()) as pool:
        out = dict(zip(columns, pool.map(convert, columns), strict=True))
    return Table(path=path, columns=out, n_rows=n_rows, header_lines=header_lines)


def thread_count() -> int:
    """Threads for work on a table's columns or blocks: pyarrow's count of the CPUs."""
    return max(1, pa.cpu_count())


def _csv_options(
    path: Path,
    columns: Sequence[str] | None,
    *,
    threads: bool = True,
    handler: Any = None,
    types: dict[str, pa.DataType] | None = None,
    block: int | None = None,
) -> dict[str, Any]:
    delimiter = "\t" if ".tsv" in path.name.lower() else ","
    read = pcsv.ReadOptions(use_threads=threads)
    if block is not None:
        read = pcsv.ReadOptions(use_threads=threads, block_size=block)
    return {
        "read_options": read,
        "parse_options": pcsv.ParseOptions(delimiter=delimiter, invalid_row_handler=handler),
        # Empty text cells are missing values like empty number cells; true/false stay text
        # (a category) rather than becoming a third kind of column.
        "convert_options": pcsv.ConvertOptions(
            include_columns=list(columns or ()),
            column_types=types or {},
            strings_can_be_null=True,
            true_values=[],
            false_values=[],
        ),
    }


def _read_csv(path: Path, columns: Sequence[str]) -> pa.Table:
    """The columns, every block parsed on its own thread; each column's kind is inferred
    from all its cells (whole numbers, then a fraction: a float column)."""
    _check_text(path)
    hints = _number_types(path, columns)
    if hints:
        try:
            options = _csv_options(path, columns, types=hints)
            return pcsv.read_csv(str(path), memory_pool=_pool(), **options)
        except (pa.ArrowException, OSError):
            pass  # a column changes kind past the sample: read it again, inferring all
    try:
        return pcsv.read_csv(str(path), memory_pool=_pool(), **_csv_options(path, columns))
    except (pa.ArrowException, OSError) as exc:
        raise _csv_error(path, exc, columns) from None


def _number_types(path: Path, columns: Sequence[str]) -> dict[str, pa.DataType]:
    """The number columns' types as the file's first block shows them. Told the types,
    pyarrow parses a 1,000,000 x 50 table in about half the time it takes to infer them from
    every cell (BENCHMARKS.md); a cell past the block that does not fit its column's type
    fails the hinted read, and the table is read again with every cell inferred."""
    try:
        options = _csv_options(path, columns, threads=False, block=1 << 20)
        reader = pcsv.open_csv(str(path), **options)
    except (pa.ArrowException, OSError):
        return {}
    try:
        schema = reader.schema
    finally:
        reader.close()
    return {
        f.name: f.type
        for f in schema
        if pa.types.is_floating(f.type) or pa.types.is_integer(f.type)
    }


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
    out = pooled_empty(len(column), dtype)
    start = 0
    for chunk in column.chunks:
        if len(chunk):
            data = chunk.buffers()[1]
            out[start : start + len(chunk)] = np.frombuffer(
                data, dtype, len(chunk), chunk.offset * size
            )
            start += len(chunk)
    return out


def pooled_empty(shape: int | tuple[int, ...], dtype: type) -> np.ndarray:
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
