"""kinit train vs. the plain Keras script, side by side on the same data, in one run.

    python bench/train_vs_fit.py [--data DIR] [--models mnist,fashion_mlp,fashion_cnn]
                                 [--epochs 2] [--pairs 2] [--set KEY=VALUE ...]

Models: configs/mnist.yaml (784-512-10 MLP), configs/fashion_mnist_mlp.yaml (256-128-100)
and configs/fashion_mnist_cnn.yaml (two 5x5 conv + pool, dense 1024). The plain side is
written the way the Keras tutorials write it: `model.compile(...)` with defaults and
`model.fit(x, y, ...)` on NumPy arrays. Each side runs in its own process, alternating, so
neither inherits the other's warm caches; the ratio is the median over pairs.

The roofline: the machine's measured float32 matrix-multiply throughput (GFLOP/s, a
2048x2048 tf.matmul) and each model's FLOPs per training sample (3x the forward pass of
its Dense and Conv2D layers), so the table shows what fraction of the machine a run reaches.

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


# name -> (config, extra --set for kinit: no validation split or early stopping, so both
# sides train on the same examples for the same epochs)
MODELS = {
    "mnist": (ROOT / "configs" / "mnist.yaml", []),
    "fashion_mlp": (
        ROOT / "configs" / "fashion_mnist_mlp.yaml",
        ["data.validation_split=0.0", "train.callbacks=[]"],
    ),
    "fashion_cnn": (
        ROOT / "configs" / "fashion_mnist_cnn.yaml",
        ["data.validation_split=0.0", "train.callbacks=[]"],
    ),
}


def plain_model(name: str):
    """The same architecture as the config, written as the tutorials write it."""
    import keras

    L = keras.layers
    if name == "mnist":
        init = keras.initializers.RandomNormal(0.0, 0.05)
        layers = [
            keras.Input((784,)),
            L.Dense(512, activation="relu", kernel_initializer=init),
            L.Dense(10, activation="softmax"),
        ]
        return keras.Sequential(layers), keras.optimizers.RMSprop(learning_rate=0.001)
    if name == "fashion_mlp":
        layers = [keras.Input((784,))] + [L.Dense(n, activation="relu") for n in (256, 128, 100)]
        layers.append(L.Dense(10, activation="softmax"))
        return keras.Sequential(layers), keras.optimizers.Adam(learning_rate=0.001)
    layers = [
        keras.Input((28, 28, 1)),
        L.Conv2D(32, 5, padding="same", activation="relu"),
        L.MaxPooling2D(2),
        L.Conv2D(64, 5, padding="same", activation="relu"),
        L.MaxPooling2D(2),
        L.Flatten(),
        L.Dense(1024, activation="relu"),
        L.Dropout(0.4),
        L.Dense(10, activation="softmax"),
    ]
    return keras.Sequential(layers), keras.optimizers.Adam(learning_rate=0.001)


def training_flops(model) -> float:
    """FLOPs per training sample: 3x the forward multiply-adds of Dense and Conv2D."""
    import keras

    forward = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            forward += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            oh, ow = layer.output.shape[1:3]
            forward += 2 * oh * ow * kh * kw * cin * cout
    return 3 * forward


def plain(npz: str, epochs: int, name: str) -> dict:
    """The tutorial script: NumPy arrays straight into model.fit."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(42)
    model, optimizer = plain_model(name)
    shape = (-1, *model.inputs[0].shape[1:])
    with np.load(npz) as f:
        x_train = f["x_train"].reshape(shape).astype("float32") / 255
        x_test = f["x_test"].reshape(shape).astype("float32") / 255
        y_train, y_test = f["y_train"], f["y_test"]
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=128, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    return {
        "samples_per_second": epochs * len(x_train) / seconds,
        "accuracy": accuracy,
        "flops": training_flops(model),
    }


def matmul_gflops(rounds: int = 5) -> dict:
    """Sustained float32 matrix-multiply throughput of this machine, through TensorFlow: the
    best of several rounds, since one round on a shared machine can come out far low (199.7
    and 291.4 GFLOP/s were seen from single rounds on the same machine)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    n, reps = 2048, 10
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    tf.matmul(a, b).numpy()  # warm-up
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            c = tf.matmul(a, b)
        c.numpy()
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - start) / 1e9)
    return {"gflops": best}


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
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra --set for the kinit side (e.g. train.steps_per_execution=16)",
    )
    parser.add_argument("--worker", choices=["plain", "matmul"])
    parser.add_argument("--model", choices=list(MODELS), default="mnist")
    parser.add_argument("--npz")
    a = parser.parse_args()
    if a.worker == "plain":
        print(json.dumps(plain(a.npz, a.epochs, a.model)))
        return
    if a.worker == "matmul":
        print(json.dumps(matmul_gflops()))
        return
    kinit = str(Path(sys.executable).parent / "kinit")
    names = [m.strip() for m in a.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    peak = run([sys.executable, __file__, "--worker", "matmul"], json.loads)[0]["gflops"]
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "data.npz"
        described = write_npz(a.data, npz)
        print(
            f"data: {described}; {a.epochs} epochs; {a.pairs} pairs"
            + (f"; kinit --set {' '.join(a.sets)}" if a.sets else "")
        )
        print(f"machine: float32 matmul {peak:,.1f} GFLOP/s (2048x2048 tf.matmul, best of 5)")
        for name in names:
            rows = []
            for i in range(a.pairs):
                out = Path(tmp) / f"{name}-{i}"
                k_res, k_mem = run_kinit(kinit, name, npz, a.epochs, out, a.sets)
                p_res, p_mem = run_plain(name, npz, a.epochs)
                rows.append((k_res, k_mem, p_res, p_mem))
                print(
                    f"{name} pair {i + 1}: kinit {k_res['samples_per_second']:,.0f} "
                    f"samples/s, plain {p_res['samples_per_second']:,.0f} samples/s"
                )
            summary.append((name, rows))
    print()
    head = (
        f"{'model':12} {'side':6} {'samples/s':>10} {'ratio':>6} {'accuracy':>9} "
        f"{'RSS MiB':>8} {'GFLOP/s':>8} {'of peak':>8}"
    )
    print(head)
    for name, rows in summary:
        flops = rows[0][2]["flops"]
        ratio = statistics.median(
            k["samples_per_second"] / p["samples_per_second"] for k, _, p, _ in rows
        )
        for label, idx in (("kinit", 0), ("plain", 2)):
            sps = statistics.median(r[idx]["samples_per_second"] for r in rows)
            acc = statistics.median(r[idx]["accuracy"] for r in rows)
            mem = max(r[idx + 1] for r in rows)
            achieved = sps * flops / 1e9
            shown = f"{ratio:6.2f}" if label == "kinit" else f"{'':6}"
            print(
                f"{name:12} {label:6} {sps:>10,.0f} {shown} {acc:>9.4f} {mem:>8,.0f} "
                f"{achieved:>8.1f} {achieved / peak:>8.1%}"
            )
    print(
        "(ratio: kinit/plain samples/s, median over pairs; training FLOPs per sample: "
        + ", ".join(f"{n} {r[0][2]['flops'] / 1e6:,.2f} M" for n, r in summary)
        + ")"
    )


def run_kinit(
    kinit: str, name: str, npz: Path, epochs: int, out: Path, sets: list[str]
) -> tuple[dict, float]:
    config, extra = MODELS[name]
    args = [
        kinit,
        "train",
        str(config),
        "--json",
        "-q",
        "--output",
        str(out),
        "--set",
        f"data.path={npz}",
        "--set",
        f"train.epochs={epochs}",
    ]
    for item in [*extra, *sets]:
        args += ["--set", item]

    def parse(stdout: str) -> dict:
        m = json.loads(stdout)["metrics"]
        return {"samples_per_second": m["samples_per_second"], "accuracy": m["test"]["accuracy"]}

    return run(args, parse)


def run_plain(name: str, npz: Path, epochs: int) -> tuple[dict, float]:
    args = [
        sys.executable,
        __file__,
        "--worker",
        "plain",
        "--model",
        name,
        "--npz",
        str(npz),
        "--epochs",
        str(epochs),
    ]
    return run(args, json.loads)


if __name__ == "__main__":
    main()
