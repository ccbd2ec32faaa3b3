"""What the weight tables and the live progress display add to a training run's wall time.

    python bench/printing_overhead.py [--data DIR] [--epochs 5] [--pairs 3]

Runs `kinit train configs/mnist.yaml` for --epochs, alternating: on a pseudo-terminal
(`script`), so the progress bar really draws and both weight tables print, and with
`--quiet` (no tables, no progress; the weights-*.json statistics are computed either way).
Prints the median wall time of each and the overhead.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from train_vs_fit import write_npz  # noqa: E402  (the same data as the speed benchmark)


def wall(args: list[str], terminal: bool) -> float:
    command = shlex.join(args)
    if terminal:  # `script` gives the child a pseudo-terminal, as a user's shell would
        command = shlex.join(["script", "-qfc", command, "/dev/null"])
    start = time.perf_counter()
    subprocess.run(
        command,
        shell=True,
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=3)
    a = parser.parse_args()
    kinit = str(Path(sys.executable).parent / "kinit")
    shown, quiet = [], []
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "data.npz"
        print(f"data: {write_npz(a.data, npz)}; {a.epochs} epochs; {a.pairs} pairs")
        for i in range(a.pairs):
            base = [
                kinit,
                "train",
                str(ROOT / "configs" / "mnist.yaml"),
                "--set",
                f"data.path={npz}",
                "--set",
                f"train.epochs={a.epochs}",
                "--overwrite",
            ]
            shown.append(wall([*base, "--output", f"{tmp}/shown"], terminal=True))
            quiet.append(wall([*base, "--output", f"{tmp}/quiet", "--quiet"], terminal=False))
            print(
                f"pair {i + 1}: with tables and progress {shown[-1]:.2f} s, "
                f"--quiet {quiet[-1]:.2f} s"
            )
    s, q = statistics.median(shown), statistics.median(quiet)
    print(f"median: with {s:.2f} s, --quiet {q:.2f} s; overhead {100 * (s - q) / q:+.1f}%")


if __name__ == "__main__":
    main()
