"""How long `kinit inspect-weights` takes on a large saved model, next to TensorFlow's import.

    python bench/inspect_speed.py [--params 50] [--repeat 3]

Builds an MLP of about --params million parameters (4096-wide Dense layers), saves it as
.keras, then times, each in a fresh process: `python -c "import tensorflow"`, and
`kinit inspect-weights model.keras --json`. Also times the weight statistics alone,
in-process, with the peak memory they add.
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
    parser.add_argument("--repeat", type=int, default=3)
    a = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from kinit_cli import stats
    from kinit_cli.model import weight_infos

    layers = max(1, round(a.params * 1e6 / (WIDTH * WIDTH + WIDTH)))
    model = keras.Sequential(
        [keras.Input((WIDTH,))] + [keras.layers.Dense(WIDTH) for _ in range(layers)]
    )
    total = model.count_params()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.keras"
        model.save(path)
        size = path.stat().st_size
        kinit = str(Path(sys.executable).parent / "kinit")
        tf_import = [timed([sys.executable, "-c", "import tensorflow"]) for _ in range(a.repeat)]
        inspect = [timed([kinit, "inspect-weights", str(path), "--json"]) for _ in range(a.repeat)]
    infos = weight_infos(model)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    arrays = stats.values(infos)
    report = stats.report(infos, arrays)
    seconds = time.perf_counter() - start
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert sum(r.stats.size for r in report) == total
    t_import, t_inspect = statistics.median(tf_import), statistics.median(inspect)
    print(
        f"model: {layers} x Dense({WIDTH}) = {total:,} parameters; .keras file "
        f"{size / 2**20:,.0f} MiB; median of {a.repeat} runs each"
    )
    label = 'python -c "import tensorflow"'
    print(f"{label:42} {t_import:8.2f} s")
    print(f"{'kinit inspect-weights big.keras --json':42} {t_inspect:8.2f} s")
    print(f"{'  beyond the TensorFlow import':42} {t_inspect - t_import:8.2f} s")
    print(
        f"{'weight statistics alone (in-process)':42} {seconds:8.2f} s "
        f"({total / seconds / 1e6:,.0f} M values/s; peak memory grew {grown:,.0f} MiB, "
        f"the weights are {total * 4 / 2**20:,.0f} MiB)"
    )


if __name__ == "__main__":
    main()
