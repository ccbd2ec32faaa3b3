"""Tables: CSV, TSV, gzip and Parquet files the tests write, read into checked columns, and
encoded as the model's inputs and labels."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kinit_cli.data import table_encoding, tables
from kinit_cli.data.preprocessing import Feature, TableFormat
from kinit_cli.errors import DataError
from tests.conftest import ROOT

# Six rows: two number columns, a text column, an integer label.
ROWS = """\
age,height,color,y
31,1.80,red,0
25,1.65,blue,1
47,1.72,red,2
52,1.90,green,0
19,1.55,blue,1
38,1.70,red,2
"""
AGE = [31, 25, 47, 52, 19, 38]
HEIGHT = [1.80, 1.65, 1.72, 1.90, 1.55, 1.70]
COLOR = ["red", "blue", "red", "green", "blue", "red"]


def csv_file(tmp_path: Path, text: str, name: str = "data.csv", newline: str = "\n") -> Path:
    """A table file of `text` (CSV; tab-separated for .tsv; gzip-compressed for .gz)."""
    if ".tsv" in name:
        text = text.replace(",", "\t")
    raw = text.replace("\n", newline).encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
    return path


def parquet_file(tmp_path: Path, columns: dict[str, list], name: str = "data.parquet") -> Path:
    path = tmp_path / name
    pq.write_table(pa.table(columns), path)
    return path


def table_file(tmp_path: Path, kind: str) -> Path:
    """ROWS as a file of `kind` (a suffix)."""
    if kind == ".parquet":
        return parquet_file(
            tmp_path, {"age": AGE, "height": HEIGHT, "color": COLOR, "y": [0, 1, 2, 0, 1, 2]}
        )
    return csv_file(tmp_path, ROWS, f"data{kind}")


def failure(call, *args) -> str:
    with pytest.raises(DataError) as caught:
        call(*args)
    return str(caught.value)


KINDS = [".csv", ".tsv", ".csv.gz", ".tsv.gz", ".parquet"]


@pytest.mark.parametrize("name", ["a.csv", "a.TSV", "a.csv.gz", "a.tsv.gz", "a.Parquet"])
def test_is_table_by_suffix(name: str) -> None:
    assert tables.is_table(Path(name))


@pytest.mark.parametrize("name", ["a.npz", "a.gz", "a.csv.zip", "folder", "a.json"])
def test_is_table_not(name: str) -> None:
    assert not tables.is_table(Path(name))


@pytest.mark.parametrize("kind", KINDS)
def test_column_names(tmp_path: Path, kind: str) -> None:
    assert tables.column_names(table_file(tmp_path, kind)) == ["age", "height", "color", "y"]


def test_column_names_reads_the_header_alone(tmp_path: Path) -> None:
    # A bad row far down is not seen: only the header's block is parsed.
    rows = "a,b\n" + "1,2\n" * 500_000 + "1,2,3\n"
    assert tables.column_names(csv_file(tmp_path, rows)) == ["a", "b"]


def test_quotes_bom_windows_lines_and_spaces(tmp_path: Path) -> None:
    text = '\ufeffshoe size,"name, full",y\n42,"Doe, Jane",0\n38,"Roe, Rick",1\n'
    path = csv_file(tmp_path, text, newline="\r\n")
    names = tables.column_names(path)
    assert names == ["shoe size", "name, full", "y"]
    table = tables.read(path, names)
    assert table.columns["shoe size"].tolist() == [42, 38]
    assert table.columns["name, full"].tolist() == ["Doe, Jane", "Roe, Rick"]


@pytest.mark.parametrize("kind", KINDS)
def test_read_numbers_ints_and_text(tmp_path: Path, kind: str) -> None:
    path = table_file(tmp_path, kind)
    table = tables.read(path, ["age", "height", "color", "y"])
    assert table.n_rows == 6
    assert table.columns["age"].dtype == np.int64
    assert table.columns["age"].tolist() == AGE
    assert table.columns["height"].dtype == np.float64
    np.testing.assert_array_equal(table.columns["height"], HEIGHT)
    assert table.columns["color"].dtype == object
    assert table.columns["color"].tolist() == COLOR
    assert table.header_lines == (0 if kind == ".parquet" else 1)
    assert table.where(3) == ("row 3" if kind == ".parquet" else "line 5")


def test_read_only_the_columns_asked(tmp_path: Path) -> None:
    table = tables.read(table_file(tmp_path, ".csv"), ["color", "y"])
    assert list(table.columns) == ["color", "y"]


def test_true_false_and_dates_are_text(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "ok,day\nTrue,2024-01-02\nFalse,2024-01-03\n")
    table = tables.read(path, ["ok", "day"])
    assert table.columns["ok"].tolist() == ["True", "False"]
    assert table.columns["day"].tolist() == ["2024-01-02", "2024-01-03"]


@pytest.mark.parametrize(
    ("rows", "line", "column"),
    [
        ("age,color,y\n31,red,0\n,blue,1\n", 3, "age"),
        ("age,color,y\n31,red,0\n25,,1\n", 3, "color"),
        ("age,color,y\n31,red,0\n25,blue,NA\n", 3, "y"),
        # Empty lines are skipped in reading and counted in the line named.
        ("age,color,y\n\n31,red,0\n\n25,blue,\n", 5, "y"),
    ],
)
def test_missing_value(tmp_path: Path, rows: str, line: int, column: str) -> None:
    path = csv_file(tmp_path, rows)
    assert failure(tables.read, path, ["age", "color", "y"]) == (
        f'{path}, line {line}, column "{column}": the value is missing (an empty cell, '
        "or NA, NaN, null and the like)"
    )


@pytest.mark.parametrize("name", ["data.csv.gz", "data.tsv"])
def test_missing_value_line_in_gzip_and_tsv(tmp_path: Path, name: str) -> None:
    path = csv_file(tmp_path, "age,color,y\n\n31,red,0\n25,blue,\n", name)
    assert failure(tables.read, path, ["age", "color", "y"]).startswith(
        f'{path}, line 4, column "y": the value is missing'
    )


def test_missing_values_counted(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "a,y\n1,0\n,1\n,0\n,1\n")
    assert failure(tables.read, path, ["a", "y"]).endswith(
        "(an empty cell, or NA, NaN, null and the like), and so are 2 more cells of the column"
    )
    path = csv_file(tmp_path, "a,y\n1,0\n,1\n,0\n", "two.csv")
    assert failure(tables.read, path, ["a", "y"]).endswith(", and so is 1 more cell of the column")


def test_missing_value_in_parquet(tmp_path: Path) -> None:
    path = parquet_file(tmp_path, {"a": [1.0, 2.0, float("nan")], "y": [0, 1, None]})
    assert failure(tables.read, path, ["a", "y"]) == (
        f'{path}, row 2, column "a": the value is missing (an empty cell, or NA, NaN, null '
        "and the like)"
    )


def test_non_number_in_a_number_column(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "age,y\n31,0\n25,1\n4O,0\n38,1\n")
    assert failure(tables.read, path, ["age", "y"]) == (
        f'{path}, line 4, column "age": "4O" is not a number (the column\'s other cells are '
        "numbers)"
    )


def test_kind_changes_after_the_first_block(tmp_path: Path) -> None:
    # pyarrow parses 1 MiB blocks apart: the fraction and the word come after the first.
    rows = "a,b,y\n" + "1,x,0\n" * 300_000
    path = csv_file(tmp_path, rows + "2.5,y,1\n")
    table = tables.read(path, ["a", "b", "y"])
    assert table.n_rows == 300_001 and table.columns["a"].dtype == np.float64
    assert table.columns["a"][-2:].tolist() == [1.0, 2.5]
    assert table.columns["b"][-2:].tolist() == ["x", "y"]
    path = csv_file(tmp_path, rows + "two,y,1\n", "word.csv")
    assert failure(tables.read, path, ["a", "b", "y"]) == (
        f'{path}, line 300002, column "a": "two" is not a number (the column\'s other cells '
        "are numbers)"
    )


def test_infinity_is_refused(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "a,y\n1.5,0\ninf,1\n")
    assert failure(tables.read, path, ["a", "y"]) == (
        f'{path}, line 3, column "a": inf is not a finite number'
    )


def test_row_of_the_wrong_width(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "a,b,y\n1,2,0\n\n3,4,5,1\n")
    assert failure(tables.read, path, ["a", "y"]) == (
        f"{path}, line 4: 4 cells where the header has 3 columns: 3,4,5,1"
    )


@pytest.mark.parametrize("kind", [".csv", ".csv.gz"])
def test_empty_table(tmp_path: Path, kind: str) -> None:
    path = csv_file(tmp_path, "a,b,y\n", f"data{kind}")
    assert failure(tables.read, path, ["a", "y"]) == (
        f"{path} has a header but no rows; a table needs rows of data"
    )


def test_empty_parquet(tmp_path: Path) -> None:
    path = parquet_file(tmp_path, {"a": pa.array([], pa.float64()), "y": pa.array([], pa.int64())})
    assert failure(tables.read, path, ["a", "y"]) == (
        f"{path} has a header but no rows; a table needs rows of data"
    )


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nothere.csv"
    assert failure(tables.column_names, missing) == f"{missing} does not exist"
    empty = csv_file(tmp_path, "", "empty.csv")
    assert failure(tables.column_names, empty) == (
        f"{empty} is empty; a table needs a header line and rows"
    )
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    assert failure(tables.column_names, folder) == f"{folder} is a directory, not a table file"


def test_binary_file_named_csv(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(bytes(range(256)) * 40)
    message = f"{path} is not a CSV text file: byte 0 is not UTF-8 text; kinit reads tables as "
    assert failure(tables.column_names, path) == (
        message + "UTF-8 text with a header line (or .parquet files)"
    )
    assert failure(tables.read, path, ["a"]).startswith(message)


def test_not_utf8_after_the_first_block(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"name,y\n" + b"abc,0\n" * 20_000 + b"caf\xe9,1\n")
    assert failure(tables.read, path, ["name", "y"]) == (
        f"{path}, line 20002, column \"name\": b'caf\\xe9' is not UTF-8 text"
    )


def test_parquet_categories_and_booleans_are_text(tmp_path: Path) -> None:
    colors = pa.array(["red", "blue", "red"]).dictionary_encode()
    path = parquet_file(tmp_path, {"color": colors, "ok": [True, False, True], "y": [0, 1, 0]})
    table = tables.read(path, ["color", "ok", "y"])
    assert table.columns["color"].tolist() == ["red", "blue", "red"]
    assert table.columns["ok"].tolist() == ["true", "false", "true"]


def test_tsv_quoted_tab(tmp_path: Path) -> None:
    path = tmp_path / "data.tsv"
    path.write_text('name\tx\ty\n"a\tb"\t1.5\t0\nc\t2.5\t1\n')
    table = tables.read(path, ["name", "x", "y"])
    assert table.columns["name"].tolist() == ["a\tb", "c"]
    assert table.columns["x"].tolist() == [1.5, 2.5]


def test_not_gzip_or_parquet(tmp_path: Path) -> None:
    gz = tmp_path / "data.csv.gz"
    gz.write_bytes(b"a,b\n1,2\n")
    assert failure(tables.column_names, gz).startswith(f"{gz} cannot be read: ")
    parquet = tmp_path / "data.parquet"
    parquet.write_bytes(b"a,b\n1,2\n")
    assert failure(tables.column_names, parquet).startswith(
        f"{parquet} cannot be read as a Parquet file: "
    )


def test_duplicate_column_names(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "a,b,a\n1,2,3\n")
    assert failure(tables.column_names, path) == (
        f'{path}: the column name "a" is used twice (columns 1 and 3); each column needs a '
        "name of its own"
    )


NAMES = ["age", "height", "color", "y"]


def test_check_columns_accepts(tmp_path: Path) -> None:
    tables.check_columns(tmp_path / "d.csv", NAMES, "y", None)
    tables.check_columns(tmp_path / "d.csv", NAMES, "y", ["age", "color"])


def test_check_columns_needs_a_label(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    assert failure(tables.check_columns, path, NAMES, None, None) == (
        f"{path}: a table needs data.label, the label column; its columns: age, height, color, y"
    )


def test_check_columns_unknown_names(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    assert failure(tables.check_columns, path, NAMES, "Y", ["age", "colour", "weight"]) == (
        f"{path}: data.label \"Y\" is not a column. Did you mean 'y'? "
        "data.features[1] \"colour\" is not a column. Did you mean 'color'? "
        "data.features[2] \"weight\" is not a column. Did you mean 'height'? "
        "Its columns: age, height, color, y"
    )


def test_check_columns_lists_at_most_twenty(tmp_path: Path) -> None:
    names = [f"c{i}" for i in range(25)]
    assert failure(tables.check_columns, tmp_path / "d.csv", names, "zzz", None).endswith(
        "Its columns: " + ", ".join(names[:20]) + " and 5 more"
    )


def test_check_columns_label_among_features(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    assert failure(tables.check_columns, path, NAMES, "y", ["age", "y"]) == (
        f'{path}: the label column "y" is also in data.features; a column is a feature or '
        "the label, not both"
    )
    assert failure(tables.check_columns, path, NAMES, "y", ["age", "color", "age"]) == (
        f'{path}: data.features lists "age" more than once'
    )


def test_default_features_need_names(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    assert failure(tables.check_columns, path, ["", "a", "y"], "y", None) == (
        f"{path}: column 1 has no name in the header (a saved row index?); name it, or list "
        "the feature columns in data.features"
    )
    tables.check_columns(path, ["", "a", "y"], "y", ["a"])
    assert failure(tables.check_columns, path, ["y"], "y", None) == (
        f'{path} has no column besides the label "y"; a model needs inputs'
    )
    assert failure(tables.check_columns, path, ["a", "y"], "y", []) == (
        f"{path}: data.features is empty; list the feature columns, or leave it out"
    )


def test_read_unknown_column(tmp_path: Path) -> None:
    path = table_file(tmp_path, ".csv")
    assert failure(tables.read, path, ["agee"]) == (
        f"{path}: \"agee\" is not a column. Did you mean 'age'? Its columns: age, height, color, y"
    )


def read_label(tmp_path: Path, values: list, name: str = "labels.csv"):
    text = "x,label\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values))
    path = csv_file(tmp_path, text, name)
    return tables.read(path, ["x", "label"])


def test_integer_labels_are_class_ids(tmp_path: Path) -> None:
    y, names, num_classes = table_encoding.label_values(
        read_label(tmp_path, [2, 0, 3, 0]), "label", "classification"
    )
    assert y.dtype == np.int64 and y.tolist() == [2, 0, 3, 0]
    assert names is None and num_classes == 4


def test_text_labels_by_sorted_names(tmp_path: Path) -> None:
    y, names, num_classes = table_encoding.label_values(
        read_label(tmp_path, ["dog", "cat", "emu", "cat"]), "label", "classification"
    )
    assert names == ("cat", "dog", "emu") and num_classes == 3
    assert y.dtype == np.int64 and y.tolist() == [1, 0, 2, 0]


def test_whole_float_labels_are_class_ids(tmp_path: Path) -> None:
    y, names, num_classes = table_encoding.label_values(
        read_label(tmp_path, ["1.0", "0.0", "2.0"]), "label", "classification"
    )
    assert y.dtype == np.int64 and y.tolist() == [1, 0, 2]
    assert names is None and num_classes == 3


def test_fractional_labels_need_a_regression_loss(tmp_path: Path) -> None:
    table = read_label(tmp_path, ["1.0", "0.5", "2.0"])
    assert failure(table_encoding.label_values, table, "label", "classification") == (
        f'{table.path}, line 3, column "label": 0.5 is not a whole number, and a '
        "classification takes class ids (whole numbers) or text labels; for a regression set "
        "compile.loss: mean_squared_error"
    )


def test_regression_labels(tmp_path: Path) -> None:
    y, names, num_classes = table_encoding.label_values(
        read_label(tmp_path, ["1.25", "0.5", "2"]), "label", "regression"
    )
    assert y.dtype == np.float32 and y.tolist() == [1.25, 0.5, 2.0]
    assert names is None and num_classes is None


def test_text_labels_for_a_regression(tmp_path: Path) -> None:
    table = read_label(tmp_path, ["cat", "dog"])
    assert failure(table_encoding.label_values, table, "label", "regression") == (
        f'{table.path}, line 2, column "label": "cat" is text, and a regression loss needs '
        "numbers; for classes set compile.loss: sparse_categorical_crossentropy"
    )


def test_one_class_is_left_to_the_caller(tmp_path: Path) -> None:
    table = read_label(tmp_path, ["cat", "cat"])
    y, names, num_classes = table_encoding.label_values(table, "label", "classification")
    assert y.tolist() == [0, 0] and names == ("cat",) and num_classes == 1


def test_negative_class_id(tmp_path: Path) -> None:
    table = read_label(tmp_path, [0, 1, -1])
    assert failure(table_encoding.label_values, table, "label", "classification") == (
        f'{table.path}, line 4, column "label": -1 is not a class id (0, 1, 2 ...)'
    )


TRAIN = np.array([0, 2, 3, 5])  # rows of ROWS: red, red, green, red


def fitted(tmp_path: Path, normalize: bool = True) -> tuple[tables.Table, TableFormat]:
    table = tables.read(table_file(tmp_path, ".csv"), NAMES)
    fmt = table_encoding.fit_format(
        table, TRAIN, ["age", "height", "color"], "y", "classification", normalize
    )
    return table, fmt


def test_fit_format_on_the_training_rows(tmp_path: Path) -> None:
    _, fmt = fitted(tmp_path)
    age = np.array(AGE, float)[TRAIN]
    height = np.array(HEIGHT)[TRAIN]
    assert fmt.label == "y" and fmt.task == "classification"
    assert fmt.features == (
        Feature("age", "number", mean=pytest.approx(age.mean()), std=pytest.approx(age.std())),
        Feature(
            "height", "number", mean=pytest.approx(height.mean()), std=pytest.approx(height.std())
        ),
        # "blue" is only in rows training did not take.
        Feature("color", "category", values=("green", "red")),
    )
    assert fmt.features[0].mean == pytest.approx(42.0)
    assert fmt.width == 4


def test_fit_format_without_normalize(tmp_path: Path) -> None:
    _, fmt = fitted(tmp_path, normalize=False)
    assert fmt.features[0] == Feature("age", "number", mean=None, std=None)


def test_constant_column_std_is_one(tmp_path: Path) -> None:
    table = tables.read(csv_file(tmp_path, "a,y\n3,0\n3,1\n"), ["a", "y"])
    fmt = table_encoding.fit_format(table, np.arange(2), ["a"], "y", "classification", True)
    assert fmt.features == (Feature("a", "number", mean=3.0, std=1.0),)


def test_encode(tmp_path: Path) -> None:
    table, fmt = fitted(tmp_path)
    encoded = table_encoding.encode(table, fmt)
    x = encoded.x
    assert x.dtype == np.float32 and x.shape == (6, 4) and x.flags.c_contiguous
    age = np.array(AGE, float)
    height = np.array(HEIGHT)
    np.testing.assert_allclose(x[:, 0], (age - age[TRAIN].mean()) / age[TRAIN].std(), rtol=1e-6)
    np.testing.assert_allclose(
        x[:, 1], (height - height[TRAIN].mean()) / height[TRAIN].std(), rtol=1e-5
    )
    # One-hot in the vocabulary's order (green, red); blue was never seen: all zeros.
    assert x[:, 2:].tolist() == [[0, 1], [0, 0], [0, 1], [1, 0], [0, 0], [0, 1]]
    assert encoded.unseen == {"color": 2}


def test_encode_rows(tmp_path: Path) -> None:
    table, fmt = fitted(tmp_path)
    encoded = table_encoding.encode(table, fmt, TRAIN)
    np.testing.assert_array_equal(encoded.x, table_encoding.encode(table, fmt).x[TRAIN])
    assert encoded.unseen == {}


def test_encode_without_normalize(tmp_path: Path) -> None:
    table, fmt = fitted(tmp_path, normalize=False)
    x = table_encoding.encode(table, fmt).x
    np.testing.assert_array_equal(x[:, 0], np.array(AGE, np.float32))
    np.testing.assert_array_equal(x[:, 1], np.array(HEIGHT, np.float32))


def test_encode_in_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table, fmt = fitted(tmp_path)
    whole = table_encoding.encode(table, fmt)
    monkeypatch.setattr(table_encoding, "_BLOCK", 4)
    rows = np.array([5, 1, 0, 4, 3])
    np.testing.assert_array_equal(table_encoding.encode(table, fmt).x, whole.x)
    np.testing.assert_array_equal(table_encoding.encode(table, fmt, rows).x, whole.x[rows])


def test_encode_text_where_training_had_numbers(tmp_path: Path) -> None:
    _, fmt = fitted(tmp_path)
    path = csv_file(tmp_path, "age,height,color\nold,1.5,red\n", "new.csv")
    table = tables.read(path, ["age", "height", "color"])
    assert failure(table_encoding.encode, table, fmt) == (
        f'{path}, line 2, column "age": "old" is not a number, and the model was trained on '
        "numbers in this column"
    )


def test_check_same_columns(tmp_path: Path) -> None:
    _, fmt = fitted(tmp_path)
    path = tmp_path / "new.csv"
    table_encoding.check_same_columns(path, ["age", "height", "color"], fmt)
    table_encoding.check_same_columns(path, ["y", "color", "height", "age"], fmt)
    assert failure(table_encoding.check_same_columns, path, ["age", "colour", "id", "y"], fmt) == (
        f'{path}: its columns differ from those the model was trained on: missing "height", '
        '"color"; extra "colour", "id". The model takes the columns age, height, color (and '
        'the label column "y" may be there)'
    )


def test_labels_for_a_new_table(tmp_path: Path) -> None:
    train = read_label(tmp_path, ["cat", "dog", "emu"])
    _, names, num_classes = table_encoding.label_values(train, "label", "classification")
    fmt = TableFormat(label="label", features=(Feature("x", "number"),))
    new = read_label(tmp_path, ["emu", "cat"], "new.csv")
    assert table_encoding.labels_for(new, fmt, names, num_classes).tolist() == [2, 0]
    unseen = read_label(tmp_path, ["emu", "cat", "fox"], "unseen.csv")
    assert failure(table_encoding.labels_for, unseen, fmt, names, num_classes) == (
        f'{unseen.path}, line 4, column "label": the label "fox" is not one the model was '
        "trained on; the run's classes are cat, dog, emu"
    )


def test_labels_for_class_ids(tmp_path: Path) -> None:
    fmt = TableFormat(label="label", features=(Feature("x", "number"),))
    assert table_encoding.labels_for(read_label(tmp_path, [2, 0]), fmt, None, 3).tolist() == [2, 0]
    table = read_label(tmp_path, [2, 0, 3], "more.csv")
    assert failure(table_encoding.labels_for, table, fmt, None, 3) == (
        f'{table.path}, line 4, column "label": the label "3" is not one the model was '
        "trained on; the run's classes are 0 to 2"
    )


def test_labels_for_without_the_label_column(tmp_path: Path) -> None:
    fmt = TableFormat(label="label", features=(Feature("x", "number"),))
    table = tables.read(csv_file(tmp_path, "x\n1\n"), ["x"])
    assert failure(table_encoding.labels_for, table, fmt, None, 3) == (
        f'{table.path} has no label column "label", which evaluating needs'
    )


def test_labels_for_a_regression(tmp_path: Path) -> None:
    fmt = TableFormat(label="label", features=(Feature("x", "number"),), task="regression")
    y = table_encoding.labels_for(read_label(tmp_path, ["0.5", "2"]), fmt, None, None)
    assert y.dtype == np.float32 and y.tolist() == [0.5, 2.0]


@pytest.mark.slow
def test_imports_no_tensorflow_nor_pandas(tmp_path: Path) -> None:
    path = table_file(tmp_path, ".csv")
    code = (
        "import sys, numpy as np, kinit_cli.data.tables as t, kinit_cli.data.table_encoding as e\n"
        f"table = t.read({str(path)!r}, ['age', 'height', 'color', 'y'])\n"
        "fmt = e.fit_format(table, np.arange(6), ['age', 'color'], 'y', 'classification', True)\n"
        "e.encode(table, fmt); e.label_values(table, 'y', 'classification')\n"
        "print('tensorflow' in sys.modules, 'pandas' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert done.stdout.split() == ["False", "False"]
