"""How long `kinit inspect-weights` takes on a large saved model, next to TensorFlow's import.

    python bench/inspect_speed.py [--params 50] [--stats-params 100] [--repeat 3]

Builds an MLP of about --params million parameters (4096-wide Dense layers), saves it as
.keras, then times, each in a fresh process: `python -c "import tensorflow"`, and
`kinit inspect-weights model.keras --json`. Then builds an MLP of about --stats-params
million parameters and times the weight statistics alone, in-process (read from the
device once per variable, then scanned), split into the moment scan, the histogram and the
spectral norms, with the peak memory they add.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WIDTH = 4096


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=float, default=50, help="millions of parameters")
    parser.add_argument(
        "--stats-params", type=float, default=100, help="millions, for the in-process statistics"
    )
    parser.add_argument("--repeat", type=int, default=3)
    a = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from kinit_cli.model.variables import weight_infos
    from kinit_cli.weights import stats

    model = mlp(a.params)
    total, layers = model.count_params(), len(model.layers)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.keras"
        model.save(path)
        size = path.stat().st_size
        kinit = str(Path(sys.executable).parent / "kinit")
        tf_import = [timed([sys.executable, "-c", "import tensorflow"]) for _ in range(a.repeat)]
        inspect = [timed([kinit, "inspect-weights", str(path), "--json"]) for _ in range(a.repeat)]
    del model
    t_import, t_inspect = statistics.median(tf_import), statistics.median(inspect)
    print(
        f"model: {layers} x Dense({WIDTH}) = {total:,} parameters; .keras file "
        f"{size / 2**20:,.0f} MiB; median of {a.repeat} runs each"
    )
    label = 'python -c "import tensorflow"'
    print(f"{label:42} {t_import:8.2f} s")
    print(f"{'kinit inspect-weights big.keras --json':42} {t_inspect:8.2f} s")
    print(f"{'  beyond the TensorFlow import':42} {t_inspect - t_import:8.2f} s")

    model = mlp(a.stats_params)
    total, layers = model.count_params(), len(model.layers)
    infos = weight_infos(model)
    times: dict[str, list[float]] = {"all": [], "read": [], "moments": [], "hist": [], "svd": []}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(a.repeat):
        start = time.perf_counter()
        arrays = stats.values(infos)
        read = time.perf_counter()
        report = stats.report(infos, arrays)
        times["all"].append(time.perf_counter() - start)
        times["read"].append(read - start)
        assert sum(r.stats.size for r in report) == total
        parts = {"moments": 0.0, "hist": 0.0, "svd": 0.0}
        for r, array in zip(report, arrays.values(), strict=True):
            flat = array.reshape(-1)
            t0 = time.perf_counter()
            stats.moments(flat)
            t1 = time.perf_counter()
            stats.histogram(flat, r.stats.min, r.stats.max, all_finite=r.stats.nonfinite == 0)
            t2 = time.perf_counter()
            stats.spectral_norm(array)
            parts["moments"] += t1 - t0
            parts["hist"] += t2 - t1
            parts["svd"] += time.perf_counter() - t2
        for key, value in parts.items():
            times[key].append(value)
        del arrays, report
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    m = {key: statistics.median(v) for key, v in times.items()}
    print(
        f"\nstatistics in-process: {layers} x Dense({WIDTH}) = {total:,} parameters "
        f"({total * 4 / 2**20:,.0f} MiB float32); median of {a.repeat}"
    )
    print(
        f"{'weight statistics, all variables':42} {m['all']:8.2f} s "
        f"({total / m['all'] / 1e6:,.0f} M values/s; peak memory grew {grown:,.0f} MiB)"
    )
    print(f"{'  read from the device (one copy each)':42} {m['read']:8.2f} s")
    print(f"{'  moments, min/max, zeros, sha256 (1 scan)':42} {m['moments']:8.2f} s")
    print(f"{'  histogram (1 scan)':42} {m['hist']:8.2f} s")
    print(f"{'  spectral norms (Lanczos)':42} {m['svd']:8.2f} s")


def mlp(millions: float):
    """Dense(4096) layers, as many as make about `millions` million parameters."""
    import keras

    layers = max(1, round(millions * 1e6 / (WIDTH * WIDTH + WIDTH)))
    return keras.Sequential(
        [keras.Input((WIDTH,))] + [keras.layers.Dense(WIDTH) for _ in range(layers)]
    )


if __name__ == "__main__":
    main()
