"""kinit train vs. the plain Keras script, side by side on the same data, in one run.

    python bench/train_vs_fit.py [--data DIR] [--epochs 3] [--pairs 3]

The model is configs/mnist.yaml's (784-512-10 MLP, RMSprop, batch 128). The plain side is
written the way the Keras tutorials write it: `model.compile(...)` with defaults and
`model.fit(x, y, ...)` on NumPy arrays. Each side runs in its own process, alternating, so
neither inherits the other's warm caches; the ratio is the median over pairs.

--data takes a folder of the four IDX files (e.g. /usr/share/datasets/fashion-mnist) or a
folder holding only the t10k files (e.g. the MNIST test split: first 8,000 images train,
last 2,000 test). Without it, synthetic MNIST-shaped arrays are used.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "mnist.yaml"


def write_npz(data: str | None, out: Path) -> str:
    """The benchmark's data as one .npz both sides read; returns a description."""
    if data is None:
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (70000, 28, 28), dtype=np.uint8)
        y = (x[:, 14, :].mean(axis=1) > 127).astype(np.int64) + 2 * (x[:, :, 14].mean(axis=1) > 127)
        np.savez(out, x_train=x[:60000], y_train=y[:60000], x_test=x[60000:], y_test=y[60000:])
        return "synthetic 60,000/10,000 28x28 uint8"
    from kinit_cli.data import _read_idx

    folder = Path(data)

    def read(stem: str, ndim: int) -> np.ndarray:
        for name in (stem, stem + ".gz"):
            if (folder / name).exists():
                return _read_idx(folder / name, ndim)
        raise SystemExit(f"{folder} has no {stem}[.gz]")

    x_test, y_test = read("t10k-images-idx3-ubyte", 3), read("t10k-labels-idx1-ubyte", 1)
    if any((folder / f"train-images-idx3-ubyte{s}").exists() for s in ("", ".gz")):
        x_train, y_train = read("train-images-idx3-ubyte", 3), read("train-labels-idx1-ubyte", 1)
    else:
        x_train, y_train, x_test, y_test = (
            x_test[:8000],
            y_test[:8000],
            x_test[8000:],
            y_test[8000:],
        )
    np.savez(out, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return f"{folder}: {len(x_train):,}/{len(x_test):,}"


def plain(npz: str, epochs: int) -> dict:
    """The tutorial script: NumPy arrays straight into model.fit."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(42)
    with np.load(npz) as f:
        x_train = f["x_train"].reshape(-1, 784).astype("float32") / 255
        x_test = f["x_test"].reshape(-1, 784).astype("float32") / 255
        y_train, y_test = f["y_train"], f["y_test"]
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(
                512,
                activation="relu",
                kernel_initializer=keras.initializers.RandomNormal(0.0, 0.05),
            ),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=0.001),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=128, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    return {"samples_per_second": epochs * len(x_train) / seconds, "accuracy": accuracy}


def run(args: list[str], parse) -> tuple[dict, float]:
    """Run one side in a child process; its result and its peak resident memory (MiB)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(args, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # wait4: this child's own peak memory
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            raise SystemExit(f"{args[:3]} failed:\n{err.read()[-2000:]}")
        return parse(out.read()), usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra --set for the kinit side (e.g. train.steps_per_execution=16)",
    )
    parser.add_argument("--worker", choices=["plain"])
    parser.add_argument("--npz")
    a = parser.parse_args()
    if a.worker:
        print(json.dumps(plain(a.npz, a.epochs)))
        return
    kinit = str(Path(sys.executable).parent / "kinit")
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "data.npz"
        described = write_npz(a.data, npz)
        print(
            f"data: {described}; model: {CONFIG.name}; {a.epochs} epochs; {a.pairs} pairs"
            + (f"; kinit --set {' '.join(a.sets)}" if a.sets else "")
        )
        rows = []
        for i in range(a.pairs):
            k_res, k_mem = run_kinit(kinit, npz, a.epochs, Path(tmp) / f"run{i}", a.sets)
            p_res, p_mem = run_plain(npz, a.epochs)
            rows.append((k_res, k_mem, p_res, p_mem))
            print(
                f"pair {i + 1}: kinit {k_res['samples_per_second']:,.0f} samples/s, "
                f"plain {p_res['samples_per_second']:,.0f} samples/s"
            )
    ratios = [k["samples_per_second"] / p["samples_per_second"] for k, _, p, _ in rows]
    print()
    print(f"{'':8} {'samples/s (median)':>20} {'test accuracy':>14} {'peak RSS MiB':>13}")
    for label, idx in (("kinit", 0), ("plain", 2)):
        sps = statistics.median(r[idx]["samples_per_second"] for r in rows)
        acc = statistics.median(r[idx]["accuracy"] for r in rows)
        mem = max(r[idx + 1] for r in rows)
        print(f"{label:8} {sps:>20,.0f} {acc:>14.4f} {mem:>13,.0f}")
    print(f"ratio kinit/plain (median over pairs): {statistics.median(ratios):.2f}")


def run_kinit(kinit: str, npz: Path, epochs: int, out: Path, sets: list[str]) -> tuple[dict, float]:
    args = [
        kinit,
        "train",
        str(CONFIG),
        "--json",
        "-q",
        "--output",
        str(out),
        "--set",
        f"data.path={npz}",
        "--set",
        f"train.epochs={epochs}",
    ]
    for item in sets:
        args += ["--set", item]

    def parse(stdout: str) -> dict:
        m = json.loads(stdout)["metrics"]
        return {"samples_per_second": m["samples_per_second"], "accuracy": m["test"]["accuracy"]}

    return run(args, parse)


def run_plain(npz: Path, epochs: int) -> tuple[dict, float]:
    args = [
        sys.executable,
        __file__,
        "--worker",
        "plain",
        "--npz",
        str(npz),
        "--epochs",
        str(epochs),
    ]
    return run(args, json.loads)


if __name__ == "__main__":
    main()
