"""kinit train vs. the plain Keras script, side by side on the same data, in one run, with
what Keras's own training step reaches on this machine.

    python bench/train_vs_fit.py [--data DIR] [--models mnist,fashion_mlp,fashion_cnn]
                                 [--epochs N] [--pairs 5] [--set KEY=VALUE ...]
                                 [--sides kinit,kinit_jax,plain,plain_jax] [--ceilings]

Models: configs/mnist.yaml (784-512-10 MLP), configs/fashion_mnist_mlp.yaml (256-128-100)
and configs/fashion_mnist_cnn.yaml (two 5x5 conv + pool, dense 1024). The plain side is
written the way the Keras tutorials write it: `model.compile(...)` with defaults and
`model.fit(x, y, ...)` on NumPy arrays. Each side runs in its own process, alternating, so
neither inherits the other's warm caches; a ratio is the median of the pairs' ratios.
The sides: kinit on TensorFlow (its defaults), kinit_xla (the same with train.jit_compile),
kinit_jax (backend: jax), and the plain script with KERAS_BACKEND tensorflow and jax.

Pair i trains every side with seed 42 + i, so the pairs give each side's test accuracy over
as many seeds: the accuracy table shows each side's mean and standard error, and how many
of the plain script's standard errors each kinit side's mean lies from it. Start-up to the
first step is the wall time from launching a side's process to the end of its first
training call (a callback on each side notes it; bench/first_step.py is kinit's, a plugin).

Two tables, because a short run hides the per-epoch rate under one-time costs:
- whole fit: samples/s over the whole `fit` call, which includes tracing the training
  function (most of the first epoch) and, before the first epoch, building the input
  pipeline; a longer run amortises both.
- steady state: samples per epoch over the median seconds of the epochs after the first
  (n/a with --epochs 1), the rate every further epoch runs at; with the first epoch's
  seconds and the fit overhead (the whole fit minus its epochs: what came before the first).

The ceiling rows (steady state only) run Keras's own training step for the same model,
optimizer and loss, compiled with steps_per_execution 8, on one fixed batch of 128 real
training examples repeated for an epoch's steps: no input pipeline, no callbacks but an
epoch timer. Without XLA it keeps Keras's numerics, so it is the most any tool that keeps
them can reach on this machine; with XLA (jit_compile) it is faster but rounds differently.
The JAX ceiling is the same step on the JAX backend, where Keras always compiles with XLA:
the most kinit on JAX, or any tool on Keras's JAX step, can reach. Each ceiling runs in its
own process too, once per pair, for at most 3 epochs (the steady rate needs 2).

The roofline: the machine's measured float32 matrix-multiply throughput (GFLOP/s, a
2048x2048 tf.matmul) and each model's FLOPs per training sample (3x the forward pass of
its Dense and Conv2D layers), so each table shows what fraction of the machine a run reaches.

--data takes a folder of the four IDX files (e.g. /usr/share/datasets/fashion-mnist) or a
folder holding only the t10k files (e.g. the MNIST test split: first 8,000 images train,
last 2,000 test). Without it, synthetic MNIST-shaped arrays are used.
"""

from __future__ import annotations

import argparse
import json
import math
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
    from kinit_cli.data.datasets import _read_idx

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
        ["data.validation_split=0.0"],
    ),
    "fashion_cnn": (
        ROOT / "configs" / "fashion_mnist_cnn.yaml",
        ["data.validation_split=0.0"],
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


BATCH = 128
SEED = 42  # run i of each side trains with seed SEED + i
LOSS = "sparse_categorical_crossentropy"


def arrays(
    npz: str, model, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x_train, y_train, x_test, y_test (at most `limit` of each), the images scaled to
    [0, 1] in the model's shape."""
    shape = (-1, *model.inputs[0].shape[1:])
    with np.load(npz) as f:
        x_train = f["x_train"][:limit].reshape(shape).astype("float32") / 255
        x_test = f["x_test"][:limit].reshape(shape).astype("float32") / 255
        return x_train, f["y_train"][:limit], x_test, f["y_test"][:limit]


def epoch_timer():
    """A callback that appends each epoch's wall seconds to its `seconds` list and keeps
    the wall-clock time at which the first training call ended (`first_step_at`).

    Keras calls every callback's batch hooks anyway and reads each step's logs for its own
    History with or without this one, so the tutorial script stays as written, but for one
    attribute test a step.
    """
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self.first_step_at: float | None = None

        def on_epoch_begin(self, epoch: int, logs=None) -> None:
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs=None) -> None:
            if self.first_step_at is None:
                self.first_step_at = time.time()

        def on_epoch_end(self, epoch: int, logs=None) -> None:
            self.seconds.append(time.perf_counter() - self.start)

    return EpochTimer()


def plain(npz: str, epochs: int, name: str, backend: str = "tensorflow", seed: int = SEED) -> dict:
    """The tutorial script: NumPy arrays straight into model.fit, on `backend` (the one line
    a Keras 3 script sets: KERAS_BACKEND)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["KERAS_BACKEND"] = backend
    import keras

    keras.utils.set_random_seed(seed)
    model, optimizer = plain_model(name)
    x_train, y_train, x_test, y_test = arrays(npz, model)
    model.compile(optimizer=optimizer, loss=LOSS, metrics=["accuracy"])
    timer = epoch_timer()
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=BATCH, epochs=epochs, verbose=0, callbacks=[timer])
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "epoch_seconds": timer.seconds,
        "samples": len(x_train),
        "accuracy": model.evaluate(x_test, y_test, verbose=0)[1],
        "flops": training_flops(model),
        "first_step_at": timer.first_step_at,
    }


def ceiling(npz: str, epochs: int, name: str, xla: bool, backend: str = "tensorflow") -> dict:
    """Keras's own training step alone: one fixed batch of real examples, already in memory,
    repeated for as many steps as an epoch has; no input pipeline, no callbacks but the
    timer. `xla` compiles the TensorFlow step with XLA, which changes the numerics; on JAX
    the step is always XLA-compiled (Keras's default there), fed the same device array."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["KERAS_BACKEND"] = backend
    import keras

    keras.utils.set_random_seed(42)
    model, optimizer = plain_model(name)
    with np.load(npz) as f:
        steps = math.ceil(len(f["y_train"]) / BATCH)  # an epoch's steps, each a full batch here
    x_train, y_train, _, _ = arrays(npz, model, limit=BATCH)  # the one batch it repeats
    model.compile(
        optimizer=optimizer,
        loss=LOSS,
        metrics=["accuracy"],
        steps_per_execution=8,
        jit_compile=True if backend == "jax" else xla,
    )
    if backend == "jax":
        import jax

        batch = (jax.device_put(x_train[:BATCH]), jax.device_put(y_train[:BATCH]))

        class Repeat(keras.utils.PyDataset):
            def __len__(self) -> int:
                return steps

            def __getitem__(self, i: int):
                return batch

        batches = Repeat()
    else:
        import tensorflow as tf

        batches = tf.data.Dataset.from_tensors((x_train[:BATCH], y_train[:BATCH])).repeat(steps)
    timer = epoch_timer()
    start = time.perf_counter()
    # Steady state only: the first epoch traces, the others give the rate.
    model.fit(batches, epochs=min(max(epochs, 2), 3), verbose=0, callbacks=[timer])
    return {
        "seconds": time.perf_counter() - start,
        "epoch_seconds": timer.seconds,
        "samples": steps * BATCH,
        "accuracy": None,
        "first_step_at": None,
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


def run(
    args: list[str], parse, cwd: Path | None = None, env: dict | None = None
) -> tuple[dict, float]:
    """Run one side in a child process; its result and its peak resident memory (MiB)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        launched = time.time()
        proc = subprocess.Popen(args, stdout=out, stderr=err, text=True, cwd=cwd, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # wait4: this child's own peak memory
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            raise SystemExit(f"{args[:3]} failed:\n{err.read()[-2000:]}")
        return {**parse(out.read()), "launched": launched}, usage.ru_maxrss / 1024


# (key, label) of each row of a model, in the order they run in a pair; the ceilings only
# with --ceilings.
SIDES = (
    ("kinit", "kinit tensorflow"),
    ("kinit_xla", "kinit TF + XLA"),
    ("kinit_jax", "kinit jax"),
    ("plain", "plain TF"),
    ("plain_jax", "plain JAX"),
    ("ceiling", "ceiling (no XLA)"),
    ("xla", "ceiling (XLA)"),
    ("ceiling_jax", "ceiling JAX"),
)
# The ceilings stand for the steady rate alone.
CEILINGS = ("ceiling", "xla", "ceiling_jax")
# The plain script each ratio column divides by.
BASES = (("plain", "vs TF"), ("plain_jax", "vs JAX"))


def figures(result: dict) -> dict:
    """One side's figures from its whole-fit seconds and its epochs' seconds."""
    times, samples = result["epoch_seconds"], result["samples"]
    later = statistics.median(times[1:]) if len(times) > 1 else None
    return {
        "whole": len(times) * samples / result["seconds"],
        "steady": samples / later if later else None,
        "epoch": later,
        "first": times[0],
        "overhead": result["seconds"] - sum(times),
        "accuracy": result["accuracy"],
        "startup": (  # None for the ceilings, which do not time it
            None
            if result["first_step_at"] is None
            else result["first_step_at"] - result["launched"]
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    parser.add_argument(
        "--epochs", type=int, default=0, help="default: each config's own train.epochs"
    )
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra --set for the kinit side (e.g. train.steps_per_execution=16)",
    )
    parser.add_argument(
        "--ceilings", action="store_true", help="also Keras's own TF step on one batch"
    )
    parser.add_argument(
        "--sides",
        default="kinit,kinit_jax,plain,plain_jax",
        help="comma-separated, of kinit, kinit_xla (kinit on TensorFlow with XLA), kinit_jax, "
        "plain, plain_jax; default: all but kinit_xla",
    )
    parser.add_argument("--worker", choices=["plain", "ceiling", "matmul"])
    parser.add_argument("--backend", default="tensorflow", help="--worker plain: Keras backend")
    parser.add_argument("--model", choices=list(MODELS), default="mnist")
    parser.add_argument("--npz")
    parser.add_argument("--xla", action="store_true", help="--worker ceiling: jit_compile")
    parser.add_argument("--seed", type=int, default=SEED, help="--worker plain: the seed")
    a = parser.parse_args()
    if a.worker == "plain":
        print(json.dumps(plain(a.npz, a.epochs, a.model, a.backend, a.seed)))
        return
    if a.worker == "ceiling":
        print(json.dumps(ceiling(a.npz, a.epochs, a.model, a.xla, a.backend)))
        return
    if a.worker == "matmul":
        print(json.dumps(matmul_gflops()))
        return
    names = [m.strip() for m in a.models.split(",") if m.strip()]
    sides = {s.strip() for s in a.sides.split(",") if s.strip()}
    if not sides & {"plain", "plain_jax"}:
        raise SystemExit("--sides needs plain or plain_jax: the ratios divide by it")
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    peak = run([sys.executable, __file__, "--worker", "matmul"], json.loads)[0]["gflops"]
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "data.npz"
        described = write_npz(a.data, npz)
        print(
            f"data: {described}; "
            f"{a.epochs or 'the configs own'} epochs; {a.pairs} alternating runs of each side, "
            f"run i with seed {SEED} + i on every side"
            + (f"; kinit --set {' '.join(a.sets)}" if a.sets else "")
        )
        print(f"machine: float32 matmul {peak:,.1f} GFLOP/s (2048x2048 tf.matmul, best of 5)")
        pairs: list[dict] = []
        try:
            for name in names:
                pairs = []
                for i in range(a.pairs):
                    out = Path(tmp) / f"{name}-{i}"
                    epochs = a.epochs or config_epochs(name)
                    seed = ["--seed", str(SEED + i)]
                    sets = [*a.sets, f"seed={SEED + i}"]
                    runs = {
                        "kinit": (run_kinit, name, npz, epochs, out, sets),
                        "kinit_xla": (
                            run_kinit,
                            name,
                            npz,
                            epochs,
                            Path(f"{out}-xla"),
                            [*sets, "train.jit_compile=true"],
                        ),
                        "kinit_jax": (
                            run_kinit,
                            name,
                            npz,
                            epochs,
                            Path(f"{out}-jax"),
                            [*sets, "backend=jax"],
                        ),
                        "plain": (run_worker, "plain", name, npz, epochs, *seed),
                        "plain_jax": (
                            run_worker,
                            "plain",
                            name,
                            npz,
                            epochs,
                            *seed,
                            "--backend",
                            "jax",
                        ),
                    }
                    results = {key: f(*args) for key, (f, *args) in runs.items() if key in sides}
                    if a.ceilings:
                        results["ceiling"] = run_worker("ceiling", name, npz, epochs)
                        results["xla"] = run_worker("ceiling", name, npz, epochs, "--xla")
                        results["ceiling_jax"] = run_worker(
                            "ceiling", name, npz, epochs, "--backend", "jax"
                        )
                    flops = next(
                        results[k][0]["flops"] for k in ("plain", "plain_jax") if k in results
                    )
                    pairs.append({key: (figures(r), mem) for key, (r, mem) in results.items()})
                    print(
                        f"{name} pair {i + 1} ({epochs} epochs): samples/s whole fit (steady): "
                        + "; ".join(
                            f"{label} {pairs[-1][key][0]['whole']:,.0f} "
                            f"({number(pairs[-1][key][0]['steady'], ',.0f')})"
                            for key, label in SIDES
                            if key in pairs[-1]
                        )
                    )
                summary.append((name, flops, pairs))
        except KeyboardInterrupt:  # the tables of the pairs that finished
            print("interrupted: the tables below hold the pairs that finished")
            if pairs and not (summary and summary[-1][2] is pairs):
                summary.append((name, flops, pairs))
    print()
    whole_table(summary, peak)
    print()
    steady_table(summary, peak)
    print(
        "vs TF / vs JAX: the row's samples/s over the plain script's on that backend, median\n"
        "of the pairs' ratios.\n"
        "epoch s: median seconds of the epochs after the first; 1st epoch s includes tracing;\n"
        "overhead s: the whole fit minus its epochs (before the first: the input pipeline...).\n"
        "to 1st step s: from launching the process to the end of its first training call\n"
        "(imports, data, model, tracing and compiling included), median.\n"
        "ceiling: Keras's own step (steps_per_execution 8) on one fixed batch in memory, no\n"
        "input pipeline; without XLA it keeps Keras's numerics, XLA changes them; the JAX\n"
        "ceiling is XLA-compiled as Keras always compiles on JAX.\n"
        "training FLOPs per sample: "
        + ", ".join(f"{name} {flops / 1e6:,.2f} M" for name, flops, _ in summary)
    )
    print()
    accuracy_table(summary)


def number(value: float | None, spec: str, width: int = 0) -> str:
    """`value` formatted, or n/a."""
    return f"{'n/a':>{width}}" if value is None else f"{value:>{width}{spec}}"


def roofline(sps: float | None, flops: float, peak: float) -> str:
    """GFLOP/s reached at `sps` samples/s, and its fraction of the matmul peak: two columns."""
    if sps is None:
        return f"{'n/a':>8} {'n/a':>8}"
    return f"{sps * flops / 1e9:>8.1f} {sps * flops / 1e9 / peak:>8.1%}"


def median(pairs: list[dict], key: str, figure: str) -> float | None:
    """A side's figure, median over pairs; None where the pairs have none."""
    values = [p[key][0][figure] for p in pairs]
    return None if None in values else statistics.median(values)


def ratio(pairs: list[dict], key: str, figure: str, base: str = "plain") -> float | None:
    """A side's figure over a plain script's: the median of the pairs' ratios."""
    if base not in pairs[0] or None in (median(pairs, key, figure), median(pairs, base, figure)):
        return None
    return statistics.median(p[key][0][figure] / p[base][0][figure] for p in pairs)


def ratios(pairs: list[dict], key: str, figure: str) -> str:
    """The row's ratio columns: over the plain TF script and over the plain JAX one."""
    return " ".join(
        f"{'':>8}" if key == base else number(ratio(pairs, key, figure, base), ".2f", 8)
        for base, _ in BASES
    )


def present(pairs: list[dict]) -> list[tuple[str, str]]:
    return [(key, label) for key, label in SIDES if key in pairs[0]]


def whole_table(summary: list, peak: float) -> None:
    """samples/s over the whole fit: one-time costs included."""
    print("whole fit: samples/s over the whole fit call, first-epoch tracing included")
    print(
        f"{'model':12} {'side':16} {'samples/s':>10} {'vs TF':>8} {'vs JAX':>8} "
        f"{'to 1st step s':>13} {'RSS MiB':>8} {'GFLOP/s':>8} {'of peak':>8}"
    )
    for name, flops, pairs in summary:
        for key, label in present(pairs):
            if key in CEILINGS:  # the steady rate only: their whole fit and memory (one
                continue  # batch of data) are no figures to compare
            sps = median(pairs, key, "whole")
            print(
                f"{name:12} {label:16} {number(sps, ',.0f', 10)} {ratios(pairs, key, 'whole')} "
                f"{number(median(pairs, key, 'startup'), '.2f', 13)} "
                f"{max(p[key][1] for p in pairs):>8,.0f} {roofline(sps, flops, peak)}"
            )


def steady_table(summary: list, peak: float) -> None:
    """samples/s per epoch after the first, and the one-time costs the whole fit adds."""
    print("steady state: samples/s over the median epoch after the first")
    print(
        f"{'model':12} {'side':16} {'samples/s':>10} {'vs TF':>8} {'vs JAX':>8} {'GFLOP/s':>8} "
        f"{'of peak':>8} {'epoch s':>8} {'1st epoch s':>11} {'overhead s':>10}"
    )
    for name, flops, pairs in summary:
        for key, label in present(pairs):
            sps = median(pairs, key, "steady")
            shown = ratios(pairs, key, "steady")
            print(
                f"{name:12} {label:16} {number(sps, ',.0f', 10)} {shown} "
                f"{roofline(sps, flops, peak)} "
                f"{number(median(pairs, key, 'epoch'), '.3f', 8)} "
                f"{number(median(pairs, key, 'first'), '.3f', 11)} "
                f"{number(median(pairs, key, 'overhead'), '.3f', 10)}"
            )


def accuracy_table(summary: list) -> None:
    """Test accuracy over the pairs' seeds: each side's mean and its standard error, and
    each kinit side's distance from each plain script's mean in that script's standard
    errors (the issue's criterion: within 2), then in the standard error of the difference
    of the two means."""
    print("test accuracy over the pairs' seeds: mean, standard error of the mean (SE)")
    print(
        f"{'model':12} {'side':16} {'seeds':>5} {'mean':>7} {'SE':>7} {'min':>7} {'max':>7} "
        f"{'vs TF':>15} {'vs JAX':>15}"
    )
    for name, _, pairs in summary:
        for key, label in present(pairs):
            if key in CEILINGS:
                continue
            values = [p[key][0]["accuracy"] for p in pairs]
            mean, se = mean_se(values)
            shown = []
            for base, _ in BASES:
                if not key.startswith("kinit") or base not in pairs[0]:
                    shown.append(f"{'':>15}")
                    continue
                base_mean, base_se = mean_se([p[base][0]["accuracy"] for p in pairs])
                if not base_se or se is None:
                    shown.append(f"{'n/a':>15}")
                    continue
                both = math.hypot(se, base_se)
                pair = f"{(mean - base_mean) / base_se:+.2f} ({(mean - base_mean) / both:+.2f})"
                shown.append(f"{pair:>15}")
            print(
                f"{name:12} {label:16} {len(values):>5} {mean:>7.4f} {number(se, '.4f', 7)} "
                f"{min(values):>7.4f} {max(values):>7.4f} {' '.join(shown)}"
            )
    print(
        "vs TF / vs JAX: (kinit mean - plain mean) / plain SE, the criterion holding within 2;\n"
        "in brackets over the SE of the difference, sqrt(kinit SE^2 + plain SE^2)."
    )


def mean_se(values: list[float]) -> tuple[float, float | None]:
    """The mean of `values` and its standard error (None for a single value)."""
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None
    return statistics.fmean(values), se


def config_epochs(name: str) -> int:
    """The config's own train.epochs."""
    import yaml

    return int(yaml.safe_load(MODELS[name][0].read_text())["train"]["epochs"])


def run_kinit(name: str, npz: Path, epochs: int, out: Path, sets: list[str]) -> tuple[dict, float]:
    """`kinit train` in a child process, as `python -m kinit_cli` from the repository root:
    the kinit next to this script, not the one a `kinit` console script was installed from."""
    config, extra = MODELS[name]
    args = [
        sys.executable,
        "-m",
        "kinit_cli",
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
    # FirstStep (bench/first_step.py, a plugin) notes when the first training call ends;
    # the configs here name no other plugin or callback once `extra` is applied.
    stamp = Path(f"{out}.first-step")
    plugin = ["plugins=[" + str(ROOT / "bench" / "first_step.py") + "]"]
    for item in [*extra, *sets, *plugin, "train.callbacks=[FirstStep]"]:
        args += ["--set", item]

    def parse(stdout: str) -> dict:
        m = json.loads(stdout)["metrics"]
        return {
            "seconds": m["wall_time_s"],
            "epoch_seconds": m["epoch_seconds"],
            "samples": m["data"]["train"],
            "accuracy": m["test"]["accuracy"],
            "first_step_at": float(stamp.read_text()),
        }

    return run(args, parse, cwd=ROOT, env={**os.environ, "KINIT_BENCH_FIRST_STEP": str(stamp)})


def run_worker(worker: str, name: str, npz: Path, epochs: int, *extra: str) -> tuple[dict, float]:
    """This script's `--worker` mode in a child process."""
    args = [sys.executable, __file__, "--worker", worker, "--model", name, "--npz", str(npz)]
    return run([*args, "--epochs", str(epochs), *extra], json.loads)


if __name__ == "__main__":
    main()
