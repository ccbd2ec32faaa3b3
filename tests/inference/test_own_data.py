"""predict and evaluate on tables and image folders: the run's stored preprocessing applied
as training applied it (statistics, vocabularies, class names), never refitted."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from kinit_cli.cli import cli

SPECIES = ["cat", "dog", "fox"]
COLORS = ["blue", "green", "red"]

TABLE_CONFIG = """\
seed: 1
data: {path: pets.csv, label: species}
model:
  input_shape: [5]
  layers:
    - {class_name: Dense, config: {units: 3, activation: softmax}}
compile: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}
train: {epochs: 1, batch_size: 16}
"""

IMAGE_CONFIG = """\
seed: 1
data: {path: shapes, color_mode: grayscale, test_split: 0.25}
model:
  input_shape: [8, 8, 1]
  layers:
    - {class_name: Flatten}
    - {class_name: Dense, config: {units: 2, activation: softmax}}
compile: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}
train: {epochs: 1, batch_size: 8}
"""


def _pets(path: Path, n: int, seed: int, label: bool = True) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    columns = {
        "a": np.round(rng.normal(5, 2, n), 3).tolist(),
        "b": np.round(rng.normal(-1, 0.5, n), 3).tolist(),
        "color": [COLORS[i] for i in rng.integers(0, 3, n)],
    }
    if label:
        columns["species"] = [SPECIES[i] for i in rng.integers(0, 3, n)]
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(list(columns))
        out.writerows(zip(*columns.values(), strict=True))
    return columns


def _trained(folder: Path, config: str) -> Path:
    (folder / "c.yaml").write_text(config)
    run = folder / "run"
    result = CliRunner().invoke(cli, ["train", str(folder / "c.yaml"), "-q", "-o", str(run)])
    assert result.exit_code == 0, result.output
    return run


@pytest.fixture(scope="module")
def table_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("table")
    _pets(folder / "pets.csv", 60, 0)
    return _trained(folder, TABLE_CONFIG)


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(path.read_text().splitlines()))


def _encoded(run: Path, columns: dict[str, list]) -> np.ndarray:
    """The model's input by hand from the run's preprocessing.json."""
    features = json.loads((run / "preprocessing.json").read_text())["table"]["features"]
    out = []
    for f in features:
        values = columns[f["name"]]
        if f["kind"] == "number":
            out.append(((np.array(values) - f["mean"]) / f["std"])[:, None])
        else:
            out.append(np.array([[v == known for known in f["values"]] for v in values]))
    return np.concatenate(out, axis=1).astype(np.float32)


def test_table_predictions_use_the_stored_statistics_and_vocabulary(table_run, tmp_path):
    new = tmp_path / "new.csv"
    columns = _pets(new, 7, 1, label=False)
    columns["color"][3] = "purple"  # never seen in training: no category
    new.write_text(
        "a,b,color\n" + "".join(f"{a},{b},{c}\n" for a, b, c in zip(*columns.values(), strict=True))
    )
    out = tmp_path / "p.csv"
    result = CliRunner().invoke(cli, ["predict", str(table_run), str(new), "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    assert rows[0] == ["row", "predicted", "prob_cat", "prob_dog", "prob_fox"]
    assert [r[0] for r in rows[1:]] == [str(i) for i in range(7)]
    x = _encoded(table_run, columns)
    assert x[3, 2:].tolist() == [0, 0, 0]
    expected = keras.saving.load_model(table_run / "model.keras").predict(x, verbose=0)
    probs = np.array([[float(v) for v in r[2:]] for r in rows[1:]])
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
    assert [r[1] for r in rows[1:]] == [SPECIES[i] for i in expected.argmax(axis=1)]
    assert (
        "warning: column 'color': 1 row holds a value training never saw (encoded as none "
        "of the known values)"
    ) in result.stderr


def test_table_with_other_columns_is_refused(table_run, tmp_path):
    new = tmp_path / "other.csv"
    new.write_text("a,c,color\n1,2,red\n")
    out = tmp_path / "p.csv"
    result = CliRunner().invoke(cli, ["predict", str(table_run), str(new), "-o", str(out)])
    assert result.exit_code == 2 and not out.exists()
    assert result.stderr == (
        f"error: {new}: its columns differ from those the model was trained on: missing "
        '"b"; extra "c". The model takes the columns a, b, color (and the label column '
        '"species" may be there)\n'
    )


def test_table_evaluation_matches_its_predictions(table_run, tmp_path):
    data = tmp_path / "labelled.csv"
    columns = _pets(data, 40, 2)
    runner = CliRunner()
    out = tmp_path / "p.csv"
    assert runner.invoke(cli, ["predict", str(table_run), str(data), "-o", str(out)]).exit_code == 0
    predicted = [r[1] for r in _rows(out)[1:]]
    result = runner.invoke(cli, ["evaluate", str(table_run), str(data), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    truth = columns["species"]
    assert doc["classes"] == SPECIES
    assert doc["accuracy"] == np.mean(np.array(predicted) == np.array(truth))
    ids = {name: i for i, name in enumerate(SPECIES)}
    t = np.array([ids[s] for s in truth])
    p = np.array([ids[s] for s in predicted])
    assert doc["confusion"] == np.bincount(t * 3 + p, minlength=9).reshape(3, 3).tolist()


def test_table_evaluation_names_a_label_the_run_never_saw(table_run, tmp_path):
    data = tmp_path / "emu.csv"
    data.write_text("a,b,color,species\n1,2,red,cat\n3,4,blue,emu\n")
    result = CliRunner().invoke(cli, ["evaluate", str(table_run), str(data)])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (
        f'error: {data}, line 3, column "species": the label "emu" is not one the model was '
        "trained on; the run's classes are cat, dog, fox\n"
    )


def test_table_own_test_split_is_the_recorded_one(table_run):
    result = CliRunner().invoke(cli, ["evaluate", str(table_run), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    split = json.loads((table_run / "split.json").read_text())
    recorded = json.loads((table_run / "metrics.json").read_text())["test"]
    assert doc["examples"] == len(split["test"])
    assert doc["metrics"]["accuracy"] == pytest.approx(recorded["accuracy"], abs=1e-6)
    assert doc["loss"] == pytest.approx(recorded["loss"], rel=1e-5)


# --------------------------------------------------------------------------- image folders


def _shapes(root: Path, classes: dict[str, int], seed: int) -> None:
    """8x8 grayscale PNGs: class `light` bright, `dark` dim, with noise."""
    rng = np.random.default_rng(seed)
    for name, n in classes.items():
        (root / name).mkdir(parents=True)
        base = 200 if name == "light" else 40
        for i in range(n):
            pixels = np.clip(base + rng.integers(-30, 30, (8, 8)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(root / name / f"{i:02d}.png")


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tensorflow.python.framework import config

    # A run trained earlier in this process with `deterministic: true` leaves TensorFlow's
    # op determinism on, under which the image pipeline warns (an error under pytest);
    # predict and evaluate run in a process of their own, where it is off.
    config.disable_op_determinism()
    folder = tmp_path_factory.mktemp("images")
    _shapes(folder / "shapes", {"dark": 12, "light": 12}, 0)
    return _trained(folder, IMAGE_CONFIG)


def test_image_folder_predictions_name_each_file(image_run, tmp_path):
    new = tmp_path / "new"
    _shapes(new, {"dark": 3, "light": 2}, 1)
    out = tmp_path / "p.csv"
    result = CliRunner().invoke(cli, ["predict", str(image_run), str(new), "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    assert rows[0] == ["path", "predicted", "prob_dark", "prob_light"]
    files = sorted(new.glob("*/*.png"))
    assert [r[0] for r in rows[1:]] == [str(p) for p in files]
    pixels = np.stack([np.asarray(Image.open(p)) for p in files])[..., None]
    x = pixels.astype(np.float32) / np.float32(255)
    expected = keras.saving.load_model(image_run / "model.keras").predict(x, verbose=0)
    probs = np.array([[float(v) for v in r[2:]] for r in rows[1:]])
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)


def test_image_files_given_one_by_one(image_run, tmp_path):
    new = tmp_path / "new"
    _shapes(new, {"dark": 1, "light": 1}, 2)
    files = [str(p) for p in sorted(new.glob("*/*.png"))]
    result = CliRunner().invoke(cli, ["predict", str(image_run), *files])
    assert result.exit_code == 0, result.output
    assert [line.split(",")[0] for line in result.stdout.splitlines()[1:]] == files


def test_image_folder_evaluation_matches_its_predictions(image_run, tmp_path):
    data = tmp_path / "labelled"
    _shapes(data, {"dark": 4, "light": 5}, 3)
    runner = CliRunner()
    out = tmp_path / "p.csv"
    assert runner.invoke(cli, ["predict", str(image_run), str(data), "-o", str(out)]).exit_code == 0
    rows = _rows(out)[1:]
    truth = [Path(r[0]).parent.name for r in rows]
    result = runner.invoke(cli, ["evaluate", str(image_run), str(data), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["classes"] == ["dark", "light"] and doc["examples"] == 9
    assert doc["accuracy"] == np.mean([r[1] == t for r, t in zip(rows, truth, strict=True)])


def test_image_folder_with_a_class_the_run_never_saw(image_run, tmp_path):
    data = tmp_path / "more"
    _shapes(data, {"dark": 1, "grey": 1, "light": 1}, 4)
    result = CliRunner().invoke(cli, ["evaluate", str(image_run), str(data)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {data} has the class folder grey, a class the run never saw; its classes "
        "are dark, light\n"
    )


# --------------------------------------------------------------------------- regression

REGRESSION_CONFIG = """\
seed: 1
data: {path: prices.csv, label: price}
model:
  input_shape: [2]
  layers:
    - {class_name: Dense, config: {units: 1}}
compile: {optimizer: adam, loss: mean_squared_error, metrics: [mean_absolute_error]}
train: {epochs: 1, batch_size: 8}
"""


def test_a_regression_predicts_values_and_evaluates_without_classes(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 40), rng.normal(3, 2, 40)
    lines = [f"{x:.4f},{y:.4f},{2 * x - y:.4f}\n" for x, y in zip(a, b, strict=True)]
    (tmp_path / "prices.csv").write_text("a,b,price\n" + "".join(lines))
    run = _trained(tmp_path, REGRESSION_CONFIG)
    out = tmp_path / "p.csv"
    runner = CliRunner()
    data = tmp_path / "prices.csv"
    assert runner.invoke(cli, ["predict", str(run), str(data), "-o", str(out)]).exit_code == 0
    rows = _rows(out)
    assert rows[0] == ["row", "predicted"] and len(rows) == 41
    features = json.loads((run / "preprocessing.json").read_text())["table"]["features"]
    x = np.stack(
        [
            (v - f["mean"]) / f["std"]
            for v, f in zip((a.round(4), b.round(4)), features, strict=True)
        ],
        axis=1,
    ).astype(np.float32)
    expected = keras.saving.load_model(run / "model.keras").predict(x, verbose=0)[:, 0]
    np.testing.assert_allclose([float(r[1]) for r in rows[1:]], expected, rtol=1e-5, atol=1e-5)
    # Its model.keras alone: a regression by its compiled loss, its inputs taken as they are.
    np.save(tmp_path / "x.npy", x)
    args = ["predict", str(run / "model.keras"), str(tmp_path / "x.npy"), "--format", "jsonl"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    values = [json.loads(line)["predicted"] for line in result.stdout.splitlines()]
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-5)
    result = runner.invoke(cli, ["evaluate", str(run), str(data), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert list(doc) == ["target", "data", "examples", "loss", "metrics"]
    truth = np.array([float(line.split(",")[2]) for line in lines])
    assert doc["loss"] == pytest.approx(np.mean((expected - truth) ** 2), rel=1e-4)
    assert doc["metrics"]["mean_absolute_error"] == pytest.approx(
        np.mean(np.abs(expected - truth)), rel=1e-4
    )
    plot = tmp_path / "c.png"
    result = runner.invoke(cli, ["evaluate", str(run), str(data), "--plot", str(plot)])
    assert result.exit_code == 2 and not plot.exists()
    assert result.stderr == (
        "error: --plot draws a classifier's confusion matrix; this is a regression\n"
    )


def test_images_of_another_size_are_resized_to_the_run_s(image_run, tmp_path):
    big = tmp_path / "big.png"
    pixels = np.full((16, 16), 200, np.uint8)
    Image.fromarray(pixels, mode="L").save(big)
    result = CliRunner().invoke(cli, ["predict", str(image_run), str(big)])
    assert result.exit_code == 0, result.output
    x = np.full((1, 8, 8, 1), 200 / 255, np.float32)  # a flat image resizes to itself
    expected = keras.saving.load_model(image_run / "model.keras").predict(x, verbose=0)
    got = [float(v) for v in result.stdout.splitlines()[1].split(",")[2:]]
    np.testing.assert_allclose(got, expected[0], rtol=1e-5, atol=1e-6)


def test_an_undecodable_image_is_named_before_anything_is_written(image_run, tmp_path):
    new = tmp_path / "new"
    _shapes(new, {"dark": 2, "light": 2}, 5)
    broken = new / "light" / "00.png"
    broken.write_bytes(b"not a png")
    out = tmp_path / "p.csv"
    result = CliRunner().invoke(cli, ["predict", str(image_run), str(new), "-o", str(out)])
    assert result.exit_code == 2 and not out.exists()
    assert result.stderr == (
        f"error: cannot decode image {broken}: not a PNG, JPEG, BMP or GIF image\n"
    )


def test_the_training_table_s_left_out_columns_may_be_there(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    _pets(folder / "pets.csv", 60, 0)
    config = TABLE_CONFIG.replace("label: species", "label: species, features: [a, b]")
    config = config.replace("input_shape: [5]", "input_shape: [2]")
    run = _trained(folder, config)
    fmt = json.loads((run / "preprocessing.json").read_text())["table"]
    assert fmt["unused"] == ["color"]
    out = tmp_path / "p.csv"
    result = CliRunner().invoke(
        cli, ["predict", str(run), str(folder / "pets.csv"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert len(_rows(out)) == 61
    other = tmp_path / "other.csv"
    other.write_text("a,b,color,id\n1,2,red,7\n")
    result = CliRunner().invoke(cli, ["predict", str(run), str(other)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {other}: its columns differ from those the model was trained on: extra "
        '"id". The model takes the columns a, b (and the label column "species" may be '
        "there, as may the training table's other columns color)\n"
    )


def test_a_format_the_output_s_name_contradicts_is_refused(table_run, tmp_path):
    out = tmp_path / "p.csv"
    args = ["predict", str(table_run), str(table_run.parent / "pets.csv"), "-o", str(out)]
    result = CliRunner().invoke(cli, [*args, "--format", "npy"])
    assert result.exit_code == 2 and not out.exists()
    assert result.stderr == (
        f"error: --format npy would write npy into {out}, whose name says csv; name the file "
        ".npy, or leave --format out\n"
    )
