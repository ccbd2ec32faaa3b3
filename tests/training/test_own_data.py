"""Training on the user's own files: a table and a folder of class folders, end to end, with
what the run records of them (preprocessing.json, split.json, config.yaml's data:)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from kinit_cli.cli import cli
from tests.conftest import kinit_env

SPECIES = ("setosa", "versicolor", "virginica")


def write_table(path: Path, rows: int = 60) -> Path:
    """A table of two number columns, a text column and a species (text label)."""
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["length", "width", "colour", "species"])
        for i in range(rows):
            species = SPECIES[i % 3]
            out.writerow(
                [
                    f"{rng.normal(5 + i % 3, 0.3):.3f}",
                    f"{rng.normal(3, 0.2):.3f}",
                    ("red", "blue")[i % 2],
                    species,
                ]
            )
    return path


def table_config(folder: Path, **data: object) -> Path:
    config = {
        "seed": 3,
        "data": {"path": "flowers.csv", "label": "species", **data},
        "model": {
            "input_shape": [4],
            "layers": [{"class_name": "Dense", "config": {"units": 3, "activation": "softmax"}}],
        },
        "compile": {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
        "train": {"epochs": 1, "batch_size": 8},
    }
    path = folder / "flowers.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    from click.testing import CliRunner

    folder = tmp_path_factory.mktemp("table")
    write_table(folder / "flowers.csv")
    config = table_config(folder)
    out = folder / "run"
    result = CliRunner().invoke(cli, ["train", str(config), "--output", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return folder, out


def test_a_table_run_records_its_classes_features_and_statistics(table_run):
    folder, run = table_run
    prep = json.loads((run / "preprocessing.json").read_text())
    assert prep["kind"] == "table"
    assert prep["class_names"] == list(SPECIES)
    assert prep["num_classes"] == 3
    features = prep["table"]["features"]
    assert [f["name"] for f in features] == ["length", "width", "colour"]
    assert features[2] == {"name": "colour", "kind": "category", "values": ["blue", "red"]}
    split = json.loads((run / "split.json").read_text())
    # 20 rows per species: 4 of each to test (round(20 * 0.2)), the rest to train.
    assert (len(split["train"]), len(split["validation"]), len(split["test"])) == (48, 0, 12)
    lengths = np.loadtxt(folder / "flowers.csv", delimiter=",", skiprows=1, usecols=0)
    train = np.array(split["train"])
    assert features[0]["mean"] == pytest.approx(lengths[train].mean())
    assert features[0]["std"] == pytest.approx(lengths[train].std())
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["data"]["train"] == 48 and metrics["data"]["test"] == 12


def test_the_run_config_keeps_data_as_written(table_run):
    folder, run = table_run
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"] == {"path": str(folder / "flowers.csv"), "label": "species"}


def test_the_same_seed_gives_the_same_split(table_run, runner, tmp_path):
    folder, run = table_run
    again = tmp_path / "again"
    config = str(folder / "flowers.yaml")
    result = runner.invoke(cli, ["train", config, "--output", str(again), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (again / "split.json").read_text() == (run / "split.json").read_text()
    other = tmp_path / "other"
    result = runner.invoke(cli, ["train", config, "--seed", "4", "--output", str(other), "--quiet"])
    assert result.exit_code == 0, result.output
    first = json.loads((run / "split.json").read_text())["test"]
    assert json.loads((other / "split.json").read_text())["test"] != first


def test_a_table_that_does_not_fit_the_model_names_the_input_shape(runner, tmp_path):
    write_table(tmp_path / "flowers.csv")
    config = table_config(tmp_path)
    result = runner.invoke(cli, ["train", str(config), "--set", "model.input_shape=[3]"])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {tmp_path / 'flowers.csv'} gives 4 inputs per row (length, width, colour: 2) "
        "but model.input_shape is [3]. Set model.input_shape to [4].\n"
    )
    assert not list(tmp_path.glob("runs"))


def test_validate_checks_the_path_without_loading(runner, tmp_path):
    config = table_config(tmp_path)
    result = runner.invoke(cli, ["validate", str(config)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {config}:3:9: data.path: 'flowers.csv' does not exist: there is no file or "
        f"folder {tmp_path / 'flowers.csv'}. Give a table (.csv, .tsv, .csv.gz, .parquet), "
        "a folder of class folders of images, a folder of IDX files or an .npz file.\n"
    )


def test_validate_names_a_label_column_that_is_not_there(runner, tmp_path):
    write_table(tmp_path / "flowers.csv")
    config = table_config(tmp_path, label="specie")
    result = runner.invoke(cli, ["validate", str(config)])
    assert result.exit_code == 2
    assert result.stderr == (
        f'error: {config}:4:10: data.label: {tmp_path / "flowers.csv"}: "specie" is not a '
        "column. Did you mean 'species'? Its columns: length, width, colour, species\n"
    )


def test_one_class_only_is_refused(runner, tmp_path):
    path = tmp_path / "flowers.csv"
    path.write_text("length,width,colour,species\n" + "1,2,red,setosa\n" * 10)
    result = runner.invoke(cli, ["train", str(table_config(tmp_path))])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: the label column 'species' of {path} holds one class only ('setosa'); a "
        "classifier needs at least two (for a number to predict, set compile.loss to "
        "mean_squared_error)\n"
    )


def write_images(root: Path, per_class: int = 6) -> Path:
    """Two classes of 8x8 grayscale PNGs: dark and light."""
    for c, (name, value) in enumerate((("dark", 30), ("light", 220))):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((8, 8), value + i + c, np.uint8)
            Image.fromarray(pixels, mode="L").save(root / name / f"{i}.png")
    return root


def image_config(folder: Path, input_shape: list[int]) -> Path:
    config = {
        "seed": 1,
        "data": {"path": "pictures", "color_mode": "grayscale", "test_split": 0.5},
        "model": {
            "input_shape": input_shape,
            "layers": [
                {"class_name": "Flatten"},
                {"class_name": "Dense", "config": {"units": 2, "activation": "softmax"}},
            ],
        },
        "compile": {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
        "train": {"epochs": 1, "batch_size": 4},
    }
    path = folder / "pictures.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.mark.slow
def test_an_image_folder_trains_and_records_its_files(runner, tmp_path):
    write_images(tmp_path / "pictures")
    out = tmp_path / "run"
    config = str(image_config(tmp_path, [8, 8, 1]))
    result = runner.invoke(cli, ["train", config, "--output", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    prep = json.loads((out / "preprocessing.json").read_text())
    assert prep["class_names"] == ["dark", "light"]
    assert prep["images"] == {"size": [8, 8], "color_mode": "grayscale", "resized": False}
    assert prep["scale"] == 255.0
    split = json.loads((out / "split.json").read_text())
    assert split["members"] == "files"
    assert sorted(split["test"] + split["train"]) == sorted(
        f"{c}/{i}.png" for c in ("dark", "light") for i in range(6)
    )
    assert len(split["test"]) == 6  # half of each class


def test_an_image_folder_that_does_not_fit_the_model_says_what_to_set(runner, tmp_path):
    write_images(tmp_path / "pictures")
    result = runner.invoke(cli, ["train", str(image_config(tmp_path, [8, 8, 3]))])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: the images of {tmp_path / 'pictures'} are 8x8 with 1 channel (64 values) but "
        "model.input_shape is [8, 8, 3]. Set model.input_shape to [8, 8, 1].\n"
    )


def test_an_image_folder_of_one_class_is_refused_by_validate(runner, tmp_path):
    write_images(tmp_path / "pictures")
    for file in (tmp_path / "pictures" / "light").iterdir():
        file.unlink()
    (tmp_path / "pictures" / "light").rmdir()
    config = image_config(tmp_path, [8, 8, 1])
    result = runner.invoke(cli, ["validate", str(config)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {config}:3:9: data.path: {tmp_path / 'pictures'} has one class folder only "
        "(dark); a classifier needs at least two, one folder of images per class\n"
    )


@pytest.mark.slow
def test_a_table_trains_on_jax_without_tensorflow(tmp_path):
    write_table(tmp_path / "flowers.csv")
    config = table_config(tmp_path)
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import sys\n"
        "from kinit_cli.cli import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    print('TF', 'tensorflow' in sys.modules, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            str(probe),
            "train",
            str(config),
            "--backend",
            "jax",
            "--quiet",
            "--output",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        env=kinit_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.strip().endswith("TF False")
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["backend"] == "jax"


def test_float_arrays_say_normalize_leaves_them_as_they_are(runner, tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    y = np.arange(20) % 2
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4])
    config = table_config(tmp_path)
    result = runner.invoke(
        cli,
        ["validate", str(config), "--set", "data.path=d.npz", "--set", "data.label=null"],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        cli,
        [
            "train",
            str(config),
            "--set",
            "data.path=d.npz",
            "--set",
            "data.label=null",
            "--output",
            str(tmp_path / "run"),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        f"data.normalize: NumPy archive {tmp_path / 'd.npz'} holds float32 values" in result.stderr
    )
    prep = json.loads((tmp_path / "run" / "preprocessing.json").read_text())
    assert prep["kind"] == "arrays" and prep["scale"] is None


@pytest.mark.slow
def test_an_image_that_fails_to_decode_while_training_is_named(runner, tmp_path, monkeypatch):
    from kinit_cli.data import images
    from kinit_cli.data.preprocessing import ImageFormat

    write_images(tmp_path / "pictures")
    broken = tmp_path / "pictures" / "light" / "3.png"
    broken.write_bytes(broken.read_bytes()[:40])  # changed after the header check
    # The header check passes (as for a file changed after it ran).
    monkeypatch.setattr(images, "scan", lambda *a: ImageFormat((8, 8), "grayscale"))
    out = tmp_path / "run"
    config = str(image_config(tmp_path, [8, 8, 1]))
    result = runner.invoke(cli, ["train", config, "--output", str(out)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: cannot decode image {broken}: ")
    assert json.loads((out / "metrics.json").read_text())["status"] == "failed"
