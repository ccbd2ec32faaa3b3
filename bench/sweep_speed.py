"""A 2x5 sweep of configs/digits.yaml: `kinit sweep` next to the same ten `kinit train`
calls in a shell loop.

    python bench/sweep_speed.py [--repeat 1] [--jobs N] [--epochs E]

Both train glorot_uniform and he_normal as the first layer's kernel initializer over the
seeds 1 to 5 (configs/digits.yaml as it is: 30 epochs unless --epochs). The shell loop is
one `bash -c 'for ...; do kinit train ...; done'`; the sweep is one `kinit sweep --grid ...
--seeds 5` with its default --jobs (what the machine's cores and memory allow) unless
--jobs. They alternate, each in fresh processes, --repeat times. Prints each one's median
wall time, the speed-up, and the largest difference between the test accuracies the two
give for the same initializer and seed (digits.yaml is deterministic: it should be 0).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "digits.yaml"
KEY = "model.layers[0].config.kernel_initializer"
INITIALIZERS = ("glorot_uniform", "he_normal")
SEEDS = range(1, 6)


def shell_loop(kinit: str, out: Path, extra: list[str]) -> str:
    sets = " ".join(shlex.quote(a) for a in extra)
    return (
        f"for init in {' '.join(INITIALIZERS)}; do for seed in {' '.join(map(str, SEEDS))}; "
        f"do {kinit} train {shlex.quote(str(CONFIG))} -q --seed $seed --set {KEY}=$init "
        f"{sets} -o {shlex.quote(str(out))}/$init-$seed > /dev/null || exit 1; done; done"
    )


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def accuracies_loop(out: Path) -> dict[tuple[str, int], float]:
    return {
        (i, s): json.loads((out / f"{i}-{s}" / "metrics.json").read_text())["test"]["accuracy"]
        for i in INITIALIZERS
        for s in SEEDS
    }


def accuracies_sweep(out: Path) -> dict[tuple[str, int], float]:
    trials = json.loads((out / "trials.json").read_text())["trials"]
    return {
        (t["settings"][KEY], t["seed"]): json.loads((out / t["name"] / "metrics.json").read_text())[
            "test"
        ]["accuracy"]
        for t in trials
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--epochs", type=int)
    a = parser.parse_args()
    kinit = str(Path(sys.executable).parent / "kinit")
    extra = ["--set", f"train.epochs={a.epochs}"] if a.epochs else []
    jobs = ["--jobs", str(a.jobs)] if a.jobs else []
    loop_s, sweep_s, differences = [], [], []
    for _ in range(a.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            loop_out, sweep_out = Path(tmp) / "loop", Path(tmp) / "sweep"
            loop_s.append(timed(["bash", "-c", shell_loop(kinit, loop_out, extra)]))
            grid = f"{KEY}=[{', '.join(INITIALIZERS)}]"
            args = [kinit, "sweep", str(CONFIG), "--grid", grid, "--seeds", "5", "-q"]
            sweep_s.append(timed([*args, *extra, *jobs, "-o", str(sweep_out)]))
            loop, sweep = accuracies_loop(loop_out), accuracies_sweep(sweep_out)
            differences.append(max(abs(loop[k] - sweep[k]) for k in loop))
    loop_m, sweep_m = statistics.median(loop_s), statistics.median(sweep_s)
    print(f"{'2x5 sweep of configs/digits.yaml':<40} {'median s':>9}  runs")
    print(f"{'ten kinit train calls, shell loop':<40} {loop_m:>9.1f}  {loop_s}")
    print(f"{'kinit sweep':<40} {sweep_m:>9.1f}  {sweep_s}")
    print(f"speed-up: {loop_m / sweep_m:.2f}x")
    print(f"largest test-accuracy difference, same initializer and seed: {max(differences):.3g}")


if __name__ == "__main__":
    main()
