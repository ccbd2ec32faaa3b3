"""kinit predict: a run's predictions on arrays, written as CSV, JSON lines or .npy, equal
to model.predict on the same preprocessed inputs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from kinit_cli.cli import cli
from tests.conftest import ROOT
from tests.inference.conftest import digits

CLASSES = [str(i) for i in range(10)]


@pytest.fixture
def pixels(tmp_path, digits_run):
    """37 random 8x8 images as digits holds them (0..16, .npy), and what the model takes for
    them: divided as the run recorded (by 16, float32) and flattened."""
    record = json.loads((digits_run / "preprocessing.json").read_text())
    assert (record["kind"], record["scale"], record["flatten"]) == ("arrays", 16, True)
    x = np.random.default_rng(5).integers(0, 17, (37, 8, 8)).astype(np.float64)
    path = tmp_path / "pixels.npy"
    np.save(path, x)
    return path, (x.astype(np.float32) / np.float32(16)).reshape(37, 64)


def _model(run):
    return keras.saving.load_model(run / "model.keras")


def test_csv_rows_are_model_predict_on_the_preprocessed_inputs(
    runner, digits_run, pixels, tmp_path
):
    path, prepared = pixels
    out = tmp_path / "p.csv"
    result = runner.invoke(cli, ["predict", str(digits_run), str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(out.read_text().splitlines()))
    assert rows[0] == ["row", "predicted", *(f"prob_{c}" for c in CLASSES)]
    assert len(rows) == 1 + 37
    expected = _model(digits_run).predict(prepared, verbose=0)
    assert [int(r[0]) for r in rows[1:]] == list(range(37))
    assert [r[1] for r in rows[1:]] == [CLASSES[i] for i in expected.argmax(axis=1)]
    probs = np.array([[float(v) for v in r[2:]] for r in rows[1:]])
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
    assert result.stderr.splitlines()[0] == (
        f"predicted 37 examples of {path} with {digits_run} -> {out} (csv)"
    )


def test_csv_goes_to_stdout_without_o(runner, digits_run, pixels):
    path, prepared = pixels
    result = runner.invoke(cli, ["predict", str(digits_run), str(path)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 38 and lines[0].startswith("row,predicted,prob_0,")


def test_no_rows_give_the_header_alone(runner, digits_run, tmp_path):
    path = tmp_path / "none.npy"
    np.save(path, np.zeros((0, 8, 8)))
    result = runner.invoke(cli, ["predict", str(digits_run), str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "row,predicted," + ",".join(f"prob_{c}" for c in CLASSES) + "\n"


def test_jsonl_holds_one_object_per_row(runner, digits_run, pixels, tmp_path):
    path, prepared = pixels
    out = tmp_path / "p.jsonl"  # the format follows the suffix
    result = runner.invoke(cli, ["predict", str(digits_run), str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    items = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(items) == 37
    assert all(list(item) == ["row", "predicted", "probabilities"] for item in items)
    assert all(list(item["probabilities"]) == CLASSES for item in items)
    expected = _model(digits_run).predict(prepared, verbose=0)
    probs = np.array([list(item["probabilities"].values()) for item in items])
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
    assert [item["predicted"] for item in items] == [CLASSES[i] for i in expected.argmax(1)]


def test_npy_holds_the_raw_outputs(runner, digits_run, pixels, tmp_path):
    path, prepared = pixels
    out = tmp_path / "p.out"
    args = ["predict", str(digits_run), str(path), "-o", str(out), "--format", "npy"]
    result = runner.invoke(cli, [*args, "--batch-size", "8"])  # a partial last batch
    assert result.exit_code == 0, result.output
    written = np.load(out)
    assert written.shape == (37, 10) and written.dtype == np.float32
    np.testing.assert_allclose(
        written, _model(digits_run).predict(prepared, verbose=0), rtol=1e-5, atol=1e-6
    )


def test_json_summary(runner, digits_run, pixels, tmp_path):
    path, prepared = pixels
    out = tmp_path / "p.csv"
    result = runner.invoke(cli, ["predict", str(digits_run), str(path), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    predicted = _model(digits_run).predict(prepared, verbose=0).argmax(axis=1)
    counts = np.bincount(predicted, minlength=10)
    assert doc == {
        "target": str(digits_run),
        "input": str(path),
        "rows": 37,
        "output": str(out),
        "format": "csv",
        "task": "classification",
        "predicted": {c: int(n) for c, n in zip(CLASSES, counts, strict=True)},
        "softmax": False,
        "unseen_categories": {},
    }


def test_json_needs_o(runner, digits_run, pixels):
    result = runner.invoke(cli, ["predict", str(digits_run), str(pixels[0]), "--json"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --json prints a summary on stdout: give -o FILE for the predictions\n"
    )


def test_o_refuses_an_existing_file_unless_overwrite(runner, digits_run, pixels, tmp_path):
    out = tmp_path / "p.csv"
    out.write_text("mine\n")
    args = ["predict", str(digits_run), str(pixels[0]), "-o", str(out)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {out} already exists; choose another -o file or add --overwrite\n"
    )
    assert out.read_text() == "mine\n"
    result = runner.invoke(cli, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("row,predicted,")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_o_never_writes_through_a_link(runner, digits_run, pixels, tmp_path):
    target = tmp_path / "elsewhere.csv"
    target.write_text("kept\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    args = ["predict", str(digits_run), str(pixels[0]), "-o", str(link), "--overwrite"]
    assert runner.invoke(cli, args).exit_code == 0
    assert target.read_text() == "kept\n" and not link.is_symlink()


def test_npy_needs_o(runner, digits_run, pixels):
    args = ["predict", str(digits_run), str(pixels[0]), "--format", "npy"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert result.stderr == "error: --format npy writes a file: give -o FILE.npy\n"


def test_input_of_another_shape_is_named(runner, digits_run, tmp_path):
    path = tmp_path / "wide.npy"
    np.save(path, np.zeros((4, 9, 9), np.float32))
    result = runner.invoke(cli, ["predict", str(digits_run), str(path)])
    assert result.exit_code != 0 and result.stdout == ""
    assert result.stderr == (
        f"error: {path} has examples of shape (9, 9) (81 values), but the model takes [64]\n"
    )


def test_missing_input_is_named(runner, digits_run, tmp_path):
    result = runner.invoke(cli, ["predict", str(digits_run), str(tmp_path / "none.npy")])
    assert result.exit_code != 0
    assert result.stderr == f"error: {tmp_path / 'none.npy'} does not exist\n"


def test_npz_reads_x_test(runner, digits_run, tmp_path):
    x, _ = digits(25)
    path = tmp_path / "d.npz"
    np.savez(path, x_test=x * 16, y_test=np.zeros(25, np.int64))  # as digits holds them
    out = tmp_path / "p.npy"
    assert (
        runner.invoke(cli, ["predict", str(digits_run), str(path), "-o", str(out)]).exit_code == 0
    )
    expected = _model(digits_run).predict(x.reshape(25, 64), verbose=0)
    np.testing.assert_allclose(np.load(out), expected, rtol=1e-5, atol=1e-6)


def test_a_weights_only_run_predicts_as_load_run_does(runner, weights_only_run, tmp_path):
    import kinit_cli

    x, _ = digits(30)
    path = tmp_path / "d.npy"
    np.save(path, x * 16)
    out = tmp_path / "p.npy"
    args = ["predict", str(weights_only_run), str(path), "-o", str(out), "--trust-plugins"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    loaded = kinit_cli.load_run(weights_only_run, trust_plugins=True)
    np.testing.assert_allclose(
        np.load(out), loaded.model.predict(loaded.preprocess(path), verbose=0), rtol=1e-6
    )
    assert loaded.class_names == tuple(CLASSES)


def test_load_run_predicts_as_the_cli(runner, digits_run, pixels, tmp_path):
    import kinit_cli

    path, prepared = pixels
    out = tmp_path / "p.npy"
    assert (
        runner.invoke(cli, ["predict", str(digits_run), str(path), "-o", str(out)]).exit_code == 0
    )
    loaded = kinit_cli.load_run(digits_run)
    np.testing.assert_array_equal(loaded.preprocess(path), prepared)
    np.testing.assert_allclose(
        loaded.model.predict(loaded.preprocess(path), verbose=0), np.load(out), rtol=1e-6
    )
    assert loaded.preprocessing.input_shape == (64,)


@pytest.mark.slow
def test_help_imports_no_tensorflow():
    probe = (
        "import sys\n"
        "from kinit_cli.cli import cli\n"
        "for command in ('predict', 'evaluate'):\n"
        "    try:\n"
        "        cli.main([command, '--help'], prog_name='kinit')\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, exc.code\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: kinit predict [OPTIONS] TARGET INPUT..." in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_predict_on_jax_imports_no_tensorflow(digits_run, pixels, tmp_path):
    path, prepared = pixels
    out = tmp_path / "p.npy"
    probe = (
        "import sys\n"
        "from kinit_cli.cli import cli\n"
        "try:\n"
        f"    cli.main(['predict', {str(digits_run)!r}, {str(path)!r}, '-o', {str(out)!r},"
        " '--backend', 'jax'], prog_name='kinit')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print(sorted(m for m in ('tensorflow', 'jax') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "['jax']"
    np.testing.assert_allclose(
        np.load(out), _model(digits_run).predict(prepared, verbose=0), rtol=1e-5, atol=1e-6
    )


@pytest.mark.slow
def test_a_run_s_plugins_are_imported_only_with_leave(weights_only_run, tmp_path):
    """A fresh process: the run's plugin is not imported already, as in this one."""
    path = tmp_path / "d.npy"
    np.save(path, digits(3)[0] * 16)
    args = [sys.executable, "-m", "kinit_cli", "predict", str(weights_only_run), str(path)]
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    plugin = weights_only_run.parent / "subclassing_guide.py"
    assert (
        f"names plugins that kinit does not import unless asked, since they are code: {plugin}"
        in done.stderr
    )
    assert "Add --trust-plugins to import them" in done.stderr
    done = subprocess.run(
        [*args, "--trust-plugins"], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 4
    assert (
        f"--trust-plugins: imported the plugins {weights_only_run / 'config.yaml'} names"
        in done.stderr
    )


def test_load_run_asks_for_its_own_arguments_to_trust_plugins(weights_only_run):
    import kinit_cli
    from kinit_cli.errors import UntrustedCode

    with pytest.raises(UntrustedCode) as caught:
        kinit_cli.load_run(weights_only_run)
    assert "trust_plugins=True" in str(caught.value)
    assert "--trust-plugins" not in str(caught.value)
    assert caught.value.plugins
