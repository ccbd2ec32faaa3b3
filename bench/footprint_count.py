"""The memory check's parameter count: a 2.4e10-parameter Dense and a small CNN, counted by
building each layer symbolically (model/footprint.py), on each backend.

    python bench/footprint_count.py [--limit-gib 6]

Each backend runs in its own process under an address-space limit, so a count that drew a
weight would fail instead of taking 96 GB; the table shows the count, its time (Keras
already imported), the time Keras takes to build the same CNN for real, and the process's
peak RSS (the import included).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, sys, time
from pathlib import Path
from kinit_cli.runtime import imports
imports.keras()
from kinit_cli.model import footprint
from kinit_cli.registry.catalog import Registry
from kinit_cli.registry.plugins import load_plugins
load_plugins([], base_dir=Path.cwd())
registry = Registry()
dense = {"input_shape": [999], "layers": [{"class_name": "Dense", "config": {"units": 24_000_000}}]}
cnn = {"input_shape": [28, 28, 1], "layers": [
    {"class_name": "Conv2D", "config": {"filters": 32, "kernel_size": 3}},
    {"class_name": "SeparableConv2D", "config": {"filters": 16, "kernel_size": 3}},
    {"class_name": "Conv2DTranspose", "config": {"filters": 8, "kernel_size": 3}},
    {"class_name": "Reshape", "config": {"target_shape": [-1, 8]}},
    {"class_name": "Bidirectional", "config": {"layer": {"class_name": "LSTM", "config": {"units": 5}}}},
]}
out = {}
for name, spec in (("dense", dense), ("cnn", cnn)):
    start = time.perf_counter()
    found = footprint.estimate(spec, registry)
    out[name] = [found.parameters, found.stopped_at, time.perf_counter() - start]
keras = imports.keras()
start = time.perf_counter()
model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(32, 3),
    keras.layers.SeparableConv2D(16, 3), keras.layers.Conv2DTranspose(8, 3),
    keras.layers.Reshape((-1, 8)), keras.layers.Bidirectional(keras.layers.LSTM(5))])
out["built"] = [model.count_params(), time.perf_counter() - start]
out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def run(backend: str, limit: int) -> dict:
    def limit_memory() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": backend}
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        preexec_fn=limit_memory,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-gib", type=float, default=6)
    args = parser.parse_args()
    print("| backend | Dense parameters | s | CNN parameters | s | CNN built by Keras: s | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for backend in ("tensorflow", "jax", "torch"):
        try:
            found = run(backend, int(args.limit_gib * (1 << 30)))
        except subprocess.CalledProcessError as exc:
            print(f"| {backend} | failed: {exc.stderr.strip().splitlines()[-1]} |")
            continue
        dense, cnn = found["dense"], found["cnn"]
        print(
            f"| {backend} | {dense[0]:,} | {dense[2]:.2f} | {cnn[0]:,} | {cnn[2]:.2f} "
            f"| {found['built'][1]:.2f} | {found['peak_mib']:,.0f} |"
        )


if __name__ == "__main__":
    main()
