"""Training from an image folder: kinit's pipeline against a plain Keras script that reads
the folder with keras.utils.image_dataset_from_directory, side by side.

    python bench/image_folder.py [--data DIR] [--images 20000] [--size 32] [--epochs 2]
                                 [--batch-size 64] [--pairs 3] [--scan-files 0]

Without --data, a folder of --images PNGs (--size x --size, RGB, 10 classes whose
brightness differs, so the model has something to learn) is written to a temporary folder.
Both sides train the same small CNN (two 3x3 convolutions with pooling, a dense softmax)
with the same seed, batch size and epochs, on the TensorFlow backend:

- kinit: images.list_folder, images.scan (every header read),
  image_pipeline.train_dataset (the per-epoch stateless shuffle, batches decoded in
  parallel, divided by 255 in float32), model.fit;
- plain: image_dataset_from_directory(image_size = the images' own size, so nothing is
  resized twice; shuffle with the seed), a Rescaling(1/255) first layer as the Keras
  tutorials write it, model.fit.

Each side runs in its own process, alternating, so neither inherits the other's warm
caches (the files themselves are in the page cache for both after the first run). Per run:
set-up seconds (listing and checking the folder, building the dataset), images/s over the
whole fit, images/s of the epochs after the first (steady state), the CPU time the fit
took per image (all threads; steadier than wall time on a shared machine), images/s of
one more pass over the dataset without a model (the input pipeline alone), and the peak
resident memory (TensorFlow's own import included, which is most of it).

--interleaved-epochs N then trains both sides in one process, an epoch each in turn, N
epochs each (a measure less moved by other work on a shared machine than separate runs).

--scan-files N also writes N 32x32 PNGs into a folder of their own and times
images.list_folder and images.scan on them, in a fresh process (files in the page cache).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CLASSES = 10


def make_folder(root: Path, n: int, size: int) -> None:
    """n PNGs in 10 class folders; class c's pixels are noise around brightness 15 c."""

    def write(start: int) -> None:
        from PIL import Image

        rng = np.random.default_rng(start)
        for i in range(start, min(n, start + 500)):
            c = i % CLASSES
            noise = rng.integers(0, 64, (size, size, 3), dtype=np.uint8)
            Image.fromarray(noise + np.uint8(15 * c)).save(root / f"class{c}" / f"{i:06d}.png")

    for c in range(CLASSES):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(write, range(0, n, 500)))


def model(keras, size: int, rescale: bool):
    layers = [keras.Input((size, size, 3))]
    if rescale:
        layers.append(keras.layers.Rescaling(1.0 / 255))
    layers += [
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(CLASSES, activation="softmax"),
    ]
    m = keras.Sequential(layers)
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def timer(keras):
    class Timer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.epochs: list[float] = []

        def on_epoch_begin(self, epoch, logs=None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None) -> None:
            self.epochs.append(time.perf_counter() - self.start)

    return Timer()


def run_kinit(args) -> dict:
    from kinit_cli.data import image_pipeline, images
    from kinit_cli.runtime.imports import keras as keras_module
    from kinit_cli.runtime.imports import tensorflow

    keras, tf = keras_module(), tensorflow()
    keras.utils.set_random_seed(args.seed)
    start = time.perf_counter()
    folder = images.list_folder(Path(args.data))
    paths, labels = folder.absolute("all"), folder.parts["all"][1]
    fmt = images.scan(paths, None, "rgb")
    epoch = tf.Variable(0, dtype=tf.int64)
    data = image_pipeline.train_dataset(
        paths, labels, args.batch_size, args.seed, True, epoch, fmt, 255.0, False
    )

    class EpochOrder(keras.callbacks.Callback):
        def on_epoch_begin(self, e, logs=None) -> None:
            epoch.assign(e)

    m = model(keras, fmt.size[0], rescale=False)
    setup = time.perf_counter() - start
    return fit(keras, m, data, len(paths), setup, args, [EpochOrder()])


def run_plain(args) -> dict:
    import keras

    keras.utils.set_random_seed(args.seed)
    start = time.perf_counter()
    from PIL import Image

    first = next(Path(args.data).glob("*/*.png"))
    size = Image.open(first).size[::-1]
    data = keras.utils.image_dataset_from_directory(
        args.data, batch_size=args.batch_size, image_size=size, seed=args.seed, verbose=False
    )
    m = model(keras, size[0], rescale=True)
    setup = time.perf_counter() - start
    return fit(keras, m, data, len(data.file_paths), setup, args, [])


def fit(keras, m, data, n: int, setup: float, args, callbacks: list) -> dict:
    clock = timer(keras)
    start, cpu = time.perf_counter(), cpu_seconds()
    history = m.fit(data, epochs=args.epochs, callbacks=[*callbacks, clock], verbose=0)
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    later = clock.epochs[1:]
    start, alone_cpu = time.perf_counter(), cpu_seconds()
    for _ in data:  # one more epoch of the input pipeline alone, no model
        pass
    alone, alone_cpu = time.perf_counter() - start, cpu_seconds() - alone_cpu
    return {
        "images": n,
        "setup_s": setup,
        "fit_images_per_s": n * args.epochs / seconds,
        "steady_images_per_s": n / statistics.median(later) if later else None,
        "pipeline_images_per_s": n / alone,
        "pipeline_cpu_ms_per_image": 1000 * alone_cpu / n,
        "cpu_ms_per_image": 1000 * cpu / (n * args.epochs),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "accuracy": float(history.history["accuracy"][-1]),
    }


def cpu_seconds() -> float:
    """User and system CPU time of this process, all threads: less disturbed than wall
    time by other work on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_interleaved(args) -> dict:
    """Both pipelines in one process, one epoch each in turn (each side its own model), so
    both see the same load from whatever else the machine runs."""
    from kinit_cli.data import image_pipeline, images
    from kinit_cli.runtime.imports import keras as keras_module
    from kinit_cli.runtime.imports import tensorflow

    keras, tf = keras_module(), tensorflow()
    keras.utils.set_random_seed(args.seed)
    folder = images.list_folder(Path(args.data))
    paths, labels = folder.absolute("all"), folder.parts["all"][1]
    fmt = images.scan(paths, None, "rgb")
    epoch = tf.Variable(0, dtype=tf.int64)
    sides = {
        "kinit": (
            image_pipeline.train_dataset(
                paths, labels, args.batch_size, args.seed, True, epoch, fmt, 255.0, False
            ),
            model(keras, fmt.size[0], rescale=False),
        ),
        "plain": (
            keras.utils.image_dataset_from_directory(
                args.data,
                batch_size=args.batch_size,
                image_size=fmt.size,
                seed=args.seed,
                verbose=False,
            ),
            model(keras, fmt.size[0], rescale=True),
        ),
    }
    rates: dict[str, list[float]] = {"kinit": [], "plain": []}
    for e in range(args.epochs):
        for name in ("kinit", "plain") if e % 2 == 0 else ("plain", "kinit"):
            data, m = sides[name]
            epoch.assign(e)
            start = time.perf_counter()
            m.fit(data, initial_epoch=e, epochs=e + 1, verbose=0)
            rates[name].append(len(paths) / (time.perf_counter() - start))
    # The first epoch of each traces its training function: left out.
    return {name: statistics.median(r[1:]) for name, r in rates.items()}


def run_scan(args) -> dict:
    from kinit_cli.data import images

    start = time.perf_counter()
    folder = images.list_folder(Path(args.data))
    listed = time.perf_counter() - start
    paths = folder.absolute("all")
    start = time.perf_counter()
    images.scan(paths, None, "rgb")
    return {"files": len(paths), "list_s": listed, "scan_s": time.perf_counter() - start}


def side(name: str, data: Path, args) -> dict:
    command = [
        sys.executable,
        __file__,
        "--side",
        name,
        "--data",
        str(data),
        *("--epochs", str(args.epochs), "--batch-size", str(args.batch_size)),
        *("--seed", str(args.seed)),
    ]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"{name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: dict[str, list[dict]]) -> str:
    rows = [
        ("images/s, whole fit", "fit_images_per_s", "{:,.0f}"),
        ("images/s, epochs after the first", "steady_images_per_s", "{:,.0f}"),
        ("images/s, input pipeline alone (no model)", "pipeline_images_per_s", "{:,.0f}"),
        ("CPU ms per image, input pipeline alone", "pipeline_cpu_ms_per_image", "{:.3f}"),
        ("CPU ms per image, whole fit (all threads)", "cpu_ms_per_image", "{:.3f}"),
        ("set-up s (listing, checks, dataset)", "setup_s", "{:.2f}"),
        ("peak RSS MiB", "peak_rss_mib", "{:,.0f}"),
        ("final training accuracy", "accuracy", "{:.3f}"),
    ]
    out = ["| median of runs | kinit | plain Keras | kinit / plain |", "|---|---:|---:|---:|"]
    for label, key, form in rows:
        values = [
            statistics.median(r[key] for r in results[s] if r[key] is not None)
            for s in ("kinit", "plain")
        ]
        out.append(
            f"| {label} | {form.format(values[0])} | {form.format(values[1])} | "
            f"{values[0] / values[1]:.2f} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data")
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--scan-files", type=int, default=0)
    parser.add_argument("--interleaved-epochs", type=int, default=0)
    sides = ["kinit", "plain", "scan", "interleaved"]
    parser.add_argument("--side", choices=sides, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        run = {
            "kinit": run_kinit,
            "plain": run_plain,
            "scan": run_scan,
            "interleaved": run_interleaved,
        }[args.side]
        print(json.dumps(run(args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "images"
        if not args.data:
            make_folder(data, args.images, args.size)
        results: dict[str, list[dict]] = {"kinit": [], "plain": []}
        for i in range(args.pairs):
            order = ("kinit", "plain") if i % 2 == 0 else ("plain", "kinit")
            for name in order:
                results[name].append(side(name, data, args))
                print(name, json.dumps(results[name][-1]), file=sys.stderr)
        source = f"--data {args.data}" if args.data else f"{args.size}x{args.size} PNG"
        print(
            f"{source}, {args.epochs} epochs, batch {args.batch_size}, {args.pairs} runs "
            f"each, {os.cpu_count()} CPUs"
        )
        if args.pairs:
            print(f"{results['kinit'][0]['images']:,} images\n\n{table(results)}")
        if args.interleaved_epochs:
            args.epochs = args.interleaved_epochs
            got = side("interleaved", data, args)
            print(
                f"\none process, {args.epochs} epochs of each side in turn: median images/s "
                f"per epoch (the first left out): kinit {got['kinit']:,.0f}, plain Keras "
                f"{got['plain']:,.0f}, kinit / plain {got['kinit'] / got['plain']:.2f}"
            )
        if args.scan_files:
            scanned = Path(tmp) / "scan"
            make_folder(scanned, args.scan_files, 32)
            got = side("scan", scanned, args)
            print(
                f"\nlist_folder + scan of {got['files']:,} 32x32 PNGs: listing "
                f"{got['list_s']:.2f} s, headers {got['scan_s']:.2f} s "
                f"({got['files'] / got['scan_s']:,.0f} files/s)"
            )


if __name__ == "__main__":
    main()
