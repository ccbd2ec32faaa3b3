"""Building a deep Sequential config: kinit next to keras.Sequential([...]) in one process.

    python bench/sequential_build.py [--depths 100,400,1000]

For each depth, a config of that many Dense(16) layers on a 16-feature input is built by
`model.sources.prepare` (kinit validate's and train's build, with its checks), and the same
layers by `keras.Sequential([keras.Input((16,)), *layers])`; prints the seconds of each.
(kinit builds at most 500 layers.)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from kinit_cli.model import sources
from kinit_cli.runtime.imports import keras


def kinit_seconds(depth: int, folder: Path) -> float:
    layers = [{"class_name": "Dense", "config": {"units": 16}} for _ in range(depth)]
    path = folder / f"deep{depth}.yaml"
    path.write_text(yaml.safe_dump({"model": {"input_shape": [16], "layers": layers}}))
    start = time.perf_counter()
    sources.prepare(path)
    return time.perf_counter() - start


def keras_seconds(depth: int) -> float:
    k = keras()
    start = time.perf_counter()
    k.Sequential([k.Input((16,)), *(k.layers.Dense(16) for _ in range(depth))])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="100,400")
    depths = [int(d) for d in parser.parse_args().depths.split(",")]
    keras()
    print(f"{'layers':>7} {'kinit s':>9} {'keras.Sequential s':>19}")
    with tempfile.TemporaryDirectory() as tmp:
        for depth in depths:
            print(
                f"{depth:>7} {kinit_seconds(depth, Path(tmp)):>9.2f} {keras_seconds(depth):>19.2f}"
            )


if __name__ == "__main__":
    main()
