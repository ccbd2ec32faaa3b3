"""What the weight tables and the live progress display add to a training run's wall time.

    python bench/printing_overhead.py [--data DIR] [--epochs 5] [--pairs 3]

Runs `kinit train configs/mnist.yaml` for --epochs, alternating, both on a pseudo-terminal
(`script`): as is, so the progress bar really draws and both weight tables print, and with
`--quiet` (no tables, no progress; the weights-*.json statistics are computed either way).
Both sides go through `script` because it starts a new session, and Linux's scheduler
(autogroup) shares the CPU between sessions: with only one side under `script`, that side
got a larger share whenever other work ran, and came out up to 28% faster.
The order within a pair alternates (with/quiet, then quiet/with), so neither side always
runs right after the other. Prints each pair, the median wall time of each side, and the
median and range of the per-pair overheads; the same for the CPU time the run used (user +
system, from the kernel's accounting of the child processes), which other work on the
machine disturbs far less than the wall time: on a busy 2-core machine single pairs
scatter by more than the overhead itself.
"""

from __future__ import annotations

import argparse
import resource
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


def wall(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run."""
    # `script` gives the child a pseudo-terminal, as a user's shell would.
    command = shlex.join(["script", "-qfc", shlex.join(args), "/dev/null"])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        command,
        shell=True,
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=3)
    a = parser.parse_args()
    kinit = str(Path(sys.executable).parent / "kinit")
    shown: list[tuple[float, float]] = []
    quiet: list[tuple[float, float]] = []
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
            sides = [
                (shown, [*base, "--output", f"{tmp}/shown"]),
                (quiet, [*base, "--output", f"{tmp}/quiet", "--quiet"]),
            ]
            for times, args in sides if i % 2 == 0 else sides[::-1]:
                times.append(wall(args))
            (sw, sc), (qw, qc) = shown[-1], quiet[-1]
            print(
                f"pair {i + 1}: with tables and progress {sw:.2f} s ({sc:.2f} s CPU), "
                f"--quiet {qw:.2f} s ({qc:.2f} s CPU): {100 * (sw / qw - 1):+.1f}% wall, "
                f"{100 * (sc / qc - 1):+.1f}% CPU"
            )
    for k, what in ((0, "wall"), (1, "CPU")):
        s = statistics.median(t[k] for t in shown)
        q = statistics.median(t[k] for t in quiet)
        pairs = sorted(100 * (a[k] / b[k] - 1) for a, b in zip(shown, quiet, strict=True))
        print(
            f"{what}: median with {s:.2f} s, --quiet {q:.2f} s ({100 * (s - q) / q:+.1f}%); "
            f"per pair: median {statistics.median(pairs):+.1f}%, "
            f"from {pairs[0]:+.1f}% to {pairs[-1]:+.1f}%"
        )


if __name__ == "__main__":
    main()
