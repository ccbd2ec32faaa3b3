"""How long loading a large CSV takes: kinit's table reader against pandas.read_csv.

    python bench/table_read.py [--rows 1000000] [--columns 50] [--runs 3] [--csv FILE]

Writes a CSV of --rows rows to a temporary folder: --columns - 1 float columns (standard
normal values, 4 decimals) and an integer label column (0-9), unless --csv names a table
whose last column is the label. Then, alternating, each in a fresh process:

- kinit: what `kinit train` does to a table: `tables.column_names`, `check_columns`,
  `read`, then `table_encoding.fit_format` (every row, normalize), `encode` and
  `label_values`: the float32 matrix and the labels the model takes.
- pandas.read_csv: `pandas.read_csv(FILE)`, a DataFrame of float64 (the baseline).
- pandas + numpy: `read_csv`, then the features standardised to float32 and the labels to
  int64, as a plain script does before `model.fit` (for reference).

Each process times its own load (imports excluded, then included); its CPU time and peak
RSS come from the operating system (os.wait4). Prints the medians side by side and kinit's
time over pandas.read_csv's (the target: at most 1.2).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIDES = ("kinit", "pandas.read_csv", "pandas + numpy")


def write_csv(path: Path, rows: int, columns: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(0)
    data = {f"f{i}": np.round(rng.standard_normal(rows), 4) for i in range(columns - 1)}
    data["label"] = rng.integers(0, 10, rows)
    pcsv.write_csv(pa.table(data), path)


def load_kinit(path: Path) -> dict[str, float]:
    start = time.perf_counter()
    import numpy as np

    from kinit_cli.data import table_encoding, tables

    imported = time.perf_counter()
    names = tables.column_names(path)
    label, features = names[-1], names[:-1]
    tables.check_columns(path, names, label, features)
    table = tables.read(path, names)
    read = time.perf_counter()
    fmt = table_encoding.fit_format(
        table, np.arange(table.n_rows), features, label, "classification", normalize=True
    )
    fitted = time.perf_counter()
    x = table_encoding.encode(table, fmt).x
    y, _, _ = table_encoding.label_values(table, label, "classification")
    done = time.perf_counter()
    assert x.shape == (table.n_rows, len(features)) and x.dtype == np.float32 and len(y) == len(x)
    return {
        "load": done - imported,
        "with imports": done - start,
        "read": read - imported,
        "fit_format": fitted - read,
        "encode + labels": done - fitted,
    }


def load_pandas(path: Path, to_numpy: bool) -> dict[str, float]:
    start = time.perf_counter()
    import numpy as np
    import pandas

    imported = time.perf_counter()
    frame = pandas.read_csv(path)
    if to_numpy:
        label = frame.columns[-1]
        x = frame.drop(columns=label).to_numpy(np.float64)
        x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)
        y = frame[label].to_numpy(np.int64)
        assert len(x) == len(y)
    done = time.perf_counter()
    return {"load": done - imported, "with imports": done - start}


def child(side: str, path: Path) -> None:
    """One side's load, in this process (started fresh by main)."""
    if side == "kinit":
        times = load_kinit(path)
    else:
        times = load_pandas(path, to_numpy=side == "pandas + numpy")
    print(json.dumps(times))


def run_side(side: str, path: Path) -> dict[str, float]:
    """`side` in a fresh process: its own times, and its CPU time and peak RSS as the
    operating system counts them."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    process = subprocess.Popen(
        [sys.executable, __file__, "--side", side, "--csv", str(path)],
        stdout=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{side} failed with exit status {process.returncode}")
    result = json.loads(output)
    result["cpu"] = usage.ru_utime + usage.ru_stime
    result["rss"] = usage.ru_maxrss / 1024  # KiB on Linux
    return result


def report(results: dict[str, list[dict[str, float]]], runs: int) -> None:
    def median(side: str, key: str) -> float:
        return statistics.median(r[key] for r in results[side])

    base = median("pandas.read_csv", "load")
    print(f"\nmedians of {runs} runs each, each run a fresh process, sides alternating\n")
    print(
        "| side | load s | runs s | with imports s | CPU s | peak RSS MiB | load vs "
        "pandas.read_csv |"
    )
    print("|---|---|---|---|---|---|---|")
    for side in SIDES:
        runs_text = ", ".join(f"{r['load']:.2f}" for r in results[side])
        print(
            f"| {side} | {median(side, 'load'):.2f} | {runs_text} | "
            f"{median(side, 'with imports'):.2f} | {median(side, 'cpu'):.2f} | "
            f"{median(side, 'rss'):,.0f} | **{median(side, 'load') / base:.2f}** |"
        )
    pairs = [
        k["load"] / p["load"]
        for k, p in zip(results["kinit"], results["pandas.read_csv"], strict=True)
    ]
    cpu = median("kinit", "cpu") / median("pandas.read_csv", "cpu")
    print(
        "\nkinit / pandas.read_csv run by run (each pair ran back to back): "
        + ", ".join(f"{r:.2f}" for r in pairs)
        + f"; median {statistics.median(pairs):.2f}; CPU seconds {cpu:.2f}"
    )
    parts = ("read", "fit_format", "encode + labels")
    print(
        "\nkinit's load by step (medians, s): "
        + ", ".join(f"{part} {median('kinit', part):.2f}" for part in parts)
    )


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    import pandas
    import pyarrow

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
        f"pyarrow {pyarrow.__version__}, pandas {pandas.__version__}; load average {load}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--csv", type=Path, help="a CSV to read instead (last column: label)")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.side:
        return child(a.side, a.csv)
    with tempfile.TemporaryDirectory() as tmp:
        path = a.csv
        if path is None:
            path = Path(tmp) / "table.csv"
            start = time.perf_counter()
            write_csv(path, a.rows, a.columns)
            print(f"wrote {path.name} in {time.perf_counter() - start:.1f} s")
        print(f"{path}: {path.stat().st_size / 2**20:,.0f} MiB; {machine()}")
        results: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
        for run in range(a.runs):
            for side in SIDES:
                results[side].append(run_side(side, path))
                print(f"run {run + 1} {side}: {results[side][-1]['load']:.2f} s", flush=True)
        report(results, a.runs)
        print(f"\nafter: load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
