"""Start-up: `kinit --help` and `--version` next to `python -c "import tensorflow"`.

    python bench/startup.py [--repeat 5]

Each command runs in a fresh process; the table shows the median wall time and its share of
TensorFlow's import (the target: under 5%).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def median_time(args: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    a = parser.parse_args()
    kinit = str(Path(sys.executable).parent / "kinit")
    baseline = median_time([sys.executable, "-c", "import tensorflow"], a.repeat)
    rows = [
        ('python -c "import tensorflow"', baseline),
        ("python -c pass", median_time([sys.executable, "-c", "pass"], a.repeat)),
    ]
    for args in (
        ["--help"],
        ["--version"],
        ["train", "--help"],
        ["inspect-weights", "--help"],
        ["list-initializers", "--help"],
    ):
        rows.append((f"kinit {' '.join(args)}", median_time([kinit, *args], a.repeat)))
    print(f"median of {a.repeat} fresh processes each")
    for label, seconds in rows:
        print(f"{label:34} {seconds:7.3f} s  {100 * seconds / baseline:6.1f}% of the TF import")


if __name__ == "__main__":
    main()
