"""kinit evaluate: the run's loss and metrics, the confusion matrix and the class scores,
each equal to what predict's labels give."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from rich.console import Console

from kinit_cli.cli import cli
from kinit_cli.inference.evaluate import Evaluation
from kinit_cli.output import evaluation as shown
from tests.inference.conftest import digits

CLASSES = [str(i) for i in range(10)]


def _predicted(runner, run, data, tmp_path, *extra):
    out = tmp_path / "p.csv"
    result = runner.invoke(cli, ["predict", str(run), str(data), "-o", str(out), *extra])
    assert result.exit_code == 0, result.output
    return np.array([int(r[1]) for r in list(csv.reader(out.read_text().splitlines()))[1:]])


def _evaluated(runner, *args):
    result = runner.invoke(cli, ["evaluate", *map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def evaluated(digits_run, tmp_path_factory):
    """evaluate --json of the digits run on 120 labelled digits, and predict's labels."""
    from click.testing import CliRunner

    runner = CliRunner()
    folder = tmp_path_factory.mktemp("evaluated")
    x, y = digits(120)
    data = folder / "labelled.npz"
    np.savez(data, x=x * 16, y=y)  # as digits holds them: the run divides by 16
    return _evaluated(runner, digits_run, data), _predicted(runner, digits_run, data, folder), y


def test_accuracy_is_the_fraction_of_predicted_labels_that_match(evaluated):
    doc, predicted, y = evaluated
    assert doc["examples"] == 120
    assert doc["accuracy"] == np.mean(predicted == y)
    assert doc["metrics"]["accuracy"] == pytest.approx(np.mean(predicted == y), abs=1e-6)


def test_confusion_counts(evaluated):
    doc, predicted, y = evaluated
    expected = np.bincount(y * 10 + predicted, minlength=100).reshape(10, 10)
    assert doc["confusion"] == expected.tolist()
    assert doc["classes"] == CLASSES


def test_class_scores_by_hand(evaluated):
    doc, predicted, y = evaluated
    tp = int(np.sum((predicted == 3) & (y == 3)))
    precision = tp / np.sum(predicted == 3)
    recall = tp / np.sum(y == 3)
    scores = doc["per_class"]["3"]
    assert scores["precision"] == pytest.approx(precision)
    assert scores["recall"] == pytest.approx(recall)
    assert scores["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert scores["support"] == int(np.sum(y == 3)) == 13
    assert doc["averages"]["weighted"]["recall"] == pytest.approx(doc["accuracy"])
    macro = np.mean([s["f1"] for s in doc["per_class"].values()])
    assert doc["averages"]["macro"]["f1"] == pytest.approx(macro)


def test_json_document(evaluated, digits_run):
    doc, _, _ = evaluated
    assert list(doc) == [
        "target",
        "data",
        "examples",
        "loss",
        "metrics",
        "accuracy",
        "classes",
        "confusion",
        "per_class",
        "averages",
    ]
    assert doc["target"] == str(digits_run) and doc["data"].endswith("labelled.npz")
    assert list(doc["metrics"]) == ["accuracy"] and doc["loss"] > 0
    assert list(doc["per_class"]["0"]) == ["precision", "recall", "f1", "support"]


def test_own_test_split_gives_the_run_s_test_metrics(runner, digits_run):
    doc = _evaluated(runner, digits_run)
    recorded = json.loads((digits_run / "metrics.json").read_text())["test"]
    assert doc["examples"] == 360 and doc["data"].startswith(f"the test split of {digits_run}")
    assert doc["loss"] == pytest.approx(recorded["loss"], rel=1e-5)
    assert doc["metrics"]["accuracy"] == pytest.approx(recorded["accuracy"], abs=1e-6)
    assert doc["accuracy"] == pytest.approx(recorded["accuracy"], abs=1e-6)
    assert sum(map(sum, doc["confusion"])) == 360


def test_a_weights_only_run_predicts_what_it_evaluated(runner, weights_only_run, tmp_path):
    from kinit_cli import load_run
    from kinit_cli.inference.evaluate import own_test_split

    loaded = load_run(weights_only_run, trust_plugins=True)
    split = own_test_split(loaded)
    batch = next(split.batches(split.rows))
    data = tmp_path / "test.npz"
    # As the source holds them: the run divides digits' 0..16 by 16, as training did.
    assert loaded.preprocessing.scale == 16
    np.savez(data, x=batch.x * 16, y=batch.y)
    own = _evaluated(runner, weights_only_run, "--trust-plugins")
    recorded = json.loads((weights_only_run / "metrics.json").read_text())["test"]
    assert own["metrics"]["accuracy"] == pytest.approx(recorded["accuracy"], abs=1e-6)
    predicted = _predicted(runner, weights_only_run, data, tmp_path, "--trust-plugins")
    assert np.mean(predicted == batch.y) == own["accuracy"]
    on_file = _evaluated(runner, weights_only_run, data, "--trust-plugins")
    assert on_file["confusion"] == own["confusion"]


def test_plot_writes_a_png_and_keeps_an_existing_one(runner, digits_run, labelled, tmp_path):
    plot = tmp_path / "confusion.png"
    args = ["evaluate", str(digits_run), str(labelled), "--plot", str(plot)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = plot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {plot} already exists; choose another --plot file or add --overwrite\n"
    )
    assert plot.read_bytes() == data
    assert runner.invoke(cli, [*args, "--overwrite"]).exit_code == 0


def test_a_label_the_run_never_saw_is_named(runner, digits_run, tmp_path):
    x, y = digits(20)
    x *= 16
    y[7] = 12
    data = tmp_path / "odd.npz"
    np.savez(data, x=x, y=y)
    result = runner.invoke(cli, ["evaluate", str(digits_run), str(data)])
    assert result.exit_code != 0 and result.stdout == ""
    assert result.stderr == (
        f"error: {data}: row 7 has the label 12, a class the run never saw; its classes are "
        "0, 1, 2, 3, 4, 5, 6, 7, 8, 9\n"
    )


def test_data_without_labels_is_refused(runner, digits_run, tmp_path):
    data = tmp_path / "x.npy"
    np.save(data, digits(5)[0] * 16)
    result = runner.invoke(cli, ["evaluate", str(digits_run), str(data)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {data} has no labels to evaluate against; kinit reads them from y or y_test "
        "in an .npz beside x or x_test\n"
    )


def test_tables_render_at_a_fixed_width():
    confusion = np.array([[3, 1], [0, 4]])
    result = Evaluation("run", "data.csv", 8, 0.25, {"accuracy": 0.875}, ("cat", "dog"), confusion)
    out = Console(file=io.StringIO(), width=100, color_system=None)
    shown.evaluation(result, out)
    text = out.file.getvalue()
    assert text.splitlines()[0] == "run on data.csv: 8 examples"
    assert "│ cat              │   3 │   1 │" in text
    assert "│ dog          │       0.8 │      1 │ 0.8889 │       4 │" in text
