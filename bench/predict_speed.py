"""kinit predict next to model.predict in a plain Keras script, on the same arrays.

    python bench/predict_speed.py [--rows 200000] [--repeat 3]

Trains configs/digits.yaml for one epoch (a run directory), writes --rows random rows of
64 float32 values in digits' range (0..16) to an .npy file (the plain script divides them by
the run's recorded scale, 16, before its timer starts; kinit divides batch by batch), then
runs, each in a fresh process and alternating, --repeat times:
  keras            load_model, np.load, model.predict(x) (Keras's default batch of 32), np.save
  keras b=1024     the same with model.predict(x, batch_size=1024)
  kinit core       inference.runs.load + predict.predict to .npy (kinit's default batch)
  kinit npy        `kinit predict RUN x.npy -o out.npy`, the whole command
  kinit csv        `kinit predict RUN x.npy -o out.csv` (one row of 12 columns per input)
and prints, per mode, the median seconds of the prediction itself (where the script times
it: model.predict, or predict.predict with its writer), rows/s, the whole process's wall
time and its peak RSS. Also checks that kinit's outputs equal model.predict's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

KERAS = """\
import sys, time
import numpy as np
import keras
run, data, out, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
scale = float(sys.argv[5])
model = keras.saving.load_model(run + "/model.keras")
x = np.load(data) / np.float32(scale)  # the division training made (preprocessing.json)
start = time.perf_counter()
y = model.predict(x, verbose=0) if batch == 32 else model.predict(x, batch_size=batch, verbose=0)
print(time.perf_counter() - start)
np.save(out, y)
"""

KINIT = """\
import sys, time
from pathlib import Path
from kinit_cli.inference import inputs, predict, runs
run, data, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
loaded = runs.load(run)
source = inputs.open_input(data, loaded)
start = time.perf_counter()
predict.predict(loaded, source, predict.PredictOptions(out, "npy", overwrite=True))
print(time.perf_counter() - start)
"""


def measured(args: list[str]) -> tuple[float | None, float, float]:
    """(the seconds the script printed, wall seconds, peak RSS in MiB) of one process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert child.stdout is not None
    printed = child.stdout.read().decode().strip()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{args} failed with status {child.returncode}")
    last = printed.splitlines()[-1] if printed else ""
    inner = float(last) if last.replace(".", "", 1).isdigit() else None
    return inner, wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    a = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run = folder / "run"
        config = str(ROOT / "configs" / "digits.yaml")
        trained = [python, "-m", "kinit_cli", "train", config, "-q", "-o", str(run)]
        measured([*trained, "--set", "train.epochs=1"])
        data = folder / "x.npy"
        rng = np.random.default_rng(0)
        np.save(data, rng.integers(0, 17, (a.rows, 64)).astype(np.float32))
        record = json.loads((run / "preprocessing.json").read_text())
        scale = str(record["scale"] or 1)
        out = {name: folder / f"{name}.npy" for name in ("keras", "kinit")}
        modes = {
            "keras": [python, "-c", KERAS, str(run), str(data), str(out["keras"]), "32", scale],
            "keras b=1024": [
                *(python, "-c", KERAS, str(run), str(data), str(out["keras"]), "1024", scale)
            ],
            "kinit core": [python, "-c", KINIT, str(run), str(data), str(out["kinit"])],
            "kinit npy": [
                *(python, "-m", "kinit_cli", "predict", str(run), str(data)),
                *("-o", str(out["kinit"]), "--overwrite"),
            ],
            "kinit csv": [
                *(python, "-m", "kinit_cli", "predict", str(run), str(data)),
                *("-o", str(folder / "out.csv"), "--overwrite"),
            ],
        }
        results: dict[str, list[tuple[float | None, float, float]]] = {m: [] for m in modes}
        for _ in range(a.repeat):
            for name, args in modes.items():
                results[name].append(measured(args))
        difference = float(np.abs(np.load(out["keras"]) - np.load(out["kinit"])).max())
    print(
        f"{a.rows:,} rows x 64 float32 through configs/digits.yaml's MLP (64-128-64-10); "
        f"median of {a.repeat} fresh processes each, alternating"
    )
    print(f"{'mode':<14}{'predict s':>10}{'rows/s':>12}{'wall s':>9}{'peak RSS MiB':>14}")
    for name, rows in results.items():
        inner = [r[0] for r in rows if r[0] is not None]
        seconds = statistics.median(inner) if inner else None
        rate = f"{a.rows / seconds:,.0f}" if seconds else "-"
        shown = f"{seconds:.2f}" if seconds else "-"
        wall = statistics.median(r[1] for r in rows)
        rss = statistics.median(r[2] for r in rows)
        print(f"{name:<14}{shown:>10}{rate:>12}{wall:>9.2f}{rss:>14,.0f}")
    print(f"largest difference between kinit's and model.predict's outputs: {difference:.2e}")


if __name__ == "__main__":
    main()
