"""`kinit inspect-weights X.keras --json` next to a raw h5py scan of the same file.

    python bench/inspect_speed.py [--models mobilenet_v3_small,resnet50] [--repeat 1]
                                  [--no-keras-path] [--check]

Saves Keras applications (weights=None, small inputs) of 1.5M to 54M parameters into a
temporary folder, then times, each in a fresh process and side by side: the raw scan (read
model.weights.h5 from the archive into memory, then each variable with h5py, and take its
mean, std, min and max with NumPy), `kinit inspect-weights X.keras --json` (read from the
file, without Keras), and (unless --no-keras-path) the same command reading through Keras, forced by
loading an empty --plugin. Each figure is the median wall time and the peak resident memory
(os.wait4's ru_maxrss) of one process; `python -c pass` is Python's start-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# name -> (keras.applications class, input shape): the smallest input each allows.
MODELS = {
    "mobilenet_v3_small": ("MobileNetV3Small", (32, 32, 3)),
    "mobilenet_v2": ("MobileNetV2", (32, 32, 3)),
    "efficientnet_b0": ("EfficientNetB0", (32, 32, 3)),
    "resnet50": ("ResNet50", (32, 32, 3)),
    "inception_resnet_v2": ("InceptionResNetV2", (75, 75, 3)),
}

RAW_SCAN = """
import io, sys, zipfile, h5py, numpy as np
with zipfile.ZipFile(sys.argv[1]) as archive:
    # Read whole: h5py on a zip member's file object seeks by re-reading from its start.
    with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as store:
        found = []
        store.visititems(lambda n, o: found.append(o) if isinstance(o, h5py.Dataset) else None)
        for dataset in found:
            a = dataset[()]
            a.mean(), a.std(), a.min(), a.max()
"""


def save_models(names: list[str], folder: Path) -> dict[str, tuple[Path, int]]:
    """Each model saved as NAME.keras, with its parameter count (in a child process, so
    this one holds no Keras)."""
    code = (
        "import sys, keras\n"
        "cls, shape, path = sys.argv[1], eval(sys.argv[2]), sys.argv[3]\n"
        "m = getattr(keras.applications, cls)(weights=None, input_shape=shape)\n"
        "m.save(path)\n"
        "print(m.count_params())\n"
    )
    out = {}
    for name in names:
        cls, shape = MODELS[name]
        path = folder / f"{name}.keras"
        done = subprocess.run(
            [sys.executable, "-c", code, cls, repr(shape), str(path)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        out[name] = (path, int(done.stdout.split()[-1]))
    return out


def run(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):  # 1: --check found a FAIL
        raise SystemExit(f"{' '.join(args)} failed")
    return wall, usage.ru_maxrss / 1024


def median_run(args: list[str], repeat: int) -> tuple[float, float]:
    runs = [run(args) for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated names")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-keras-path", action="store_true", help="skip the Keras reading")
    parser.add_argument("--check", action="store_true", help="time --check as well")
    a = parser.parse_args()
    names = a.models.split(",")
    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    start_up = median_run([sys.executable, "-c", "pass"], 3)
    print(f"python -c pass: {start_up[0]:.2f} s, {start_up[1]:.0f} MiB")
    kinit = [sys.executable, "-m", "kinit_cli", "inspect-weights"]
    header = f"{'model':<22}{'params':>8}{'MiB':>6}  {'raw scan':>15}  {'kinit (file)':>15}"
    header += "" if a.no_keras_path else f"  {'kinit (Keras)':>15}"
    header += f"  {'--check (file)':>15}" if a.check else ""
    header += f"  {'ratio':>5}"
    with tempfile.TemporaryDirectory() as tmp:
        saved = save_models(names, Path(tmp))
        empty = Path(tmp) / "empty_plugin.py"
        empty.write_text("")
        print(header + "\n" + "-" * len(header))
        for name in names:
            path, params = saved[name]
            raw = median_run([sys.executable, "-c", RAW_SCAN, str(path)], a.repeat)
            fast = median_run([*kinit, str(path), "--json"], a.repeat)
            cells = [raw, fast]
            if not a.no_keras_path:
                forced = [*kinit, str(path), "--json", "--plugin", str(empty)]
                cells.append(median_run(forced, a.repeat))
            if a.check:
                cells.append(median_run([*kinit, str(path), "--json", "--check"], a.repeat))
            size = path.stat().st_size / 2**20
            text = "  ".join(f"{t:6.2f} s {m:5.0f} M" for t, m in cells)
            ratio = (fast[0] - start_up[0]) / max(raw[0] - start_up[0], 1e-3)
            print(f"{name:<22}{params / 1e6:7.1f}M{size:6.0f}  {text}  {ratio:5.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print("ratio: kinit (file) over raw scan, Python's start-up taken off both")


if __name__ == "__main__":
    main()
