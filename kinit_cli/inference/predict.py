"""`kinit predict`: a trained model's outputs for every example of an INPUT, written a batch
at a time (CSV, JSON lines or .npy), so memory stays bounded by the batch."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from kinit_cli.errors import UsageError
from kinit_cli.inference.inputs import Batch, Input
from kinit_cli.inference.runs import LoadedRun
from kinit_cli.storage.rundir import replacing

FORMATS = ("csv", "jsonl", "npy")
# Examples per model call unless --batch-size says: as many as fit in BATCH_BYTES of input,
# at most MAX_BATCH, never fewer than the run trained with (Keras's 32 for a .keras file).
# One call per batch costs the same whatever its size: on the digits MLP, batches of 1,024
# predict 200,000 rows ~10x faster than model.predict's default 32 (BENCHMARKS.md).
MAX_BATCH = 1024
BATCH_BYTES = 16 << 20
KERAS_BATCH = 32

Progress = Callable[[int], None]  # told how many more examples are done


@dataclass(frozen=True)
class PredictOptions:
    output: Path | None = None  # None: CSV or JSON lines on the stream the CLI gives
    format: str = "csv"
    batch_size: int | None = None  # None: the run's train.batch_size
    overwrite: bool = False


@dataclass(frozen=True)
class PredictSummary:
    """What predict did: `--json`'s document, and the notes said on stderr."""

    target: str
    input: str
    rows: int
    output: str | None
    format: str
    task: str
    counts: dict[str, int]  # predicted examples per class (classification)
    softmax: bool  # the outputs were logits, passed through softmax (or sigmoid)
    unseen: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def document(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "input": self.input,
            "rows": self.rows,
            "output": self.output,
            "format": self.format,
            "task": self.task,
            "predicted": self.counts,
            "softmax": self.softmax,
            "unseen_categories": self.unseen,
        }


def format_of(output: Path | None, given: str | None) -> str:
    """--format, else the output file's suffix (.jsonl, .npy), else CSV; UsageError when
    --format contradicts a suffix that names another format."""
    suffix = output.suffix.lower().lstrip(".") if output is not None else ""
    if given:
        if suffix in FORMATS and suffix != given:
            raise UsageError(
                f"--format {given} would write {given} into {output}, whose name says {suffix}; "
                f"name the file .{given}, or leave --format out"
            )
        return given
    return suffix if suffix in FORMATS else "csv"


def check_output(output: Path | None, fmt: str, overwrite: bool) -> None:
    """UsageError before anything is read: an existing file (or link) without --overwrite,
    a missing folder, or .npy without -o."""
    if output is None:
        if fmt == "npy":
            raise UsageError("--format npy writes a file: give -o FILE.npy")
        return
    if os.path.lexists(output) and not overwrite:
        raise UsageError(f"{output} already exists; choose another -o file or add --overwrite")
    if output.is_dir():
        raise UsageError(f"-o {output} is a folder; give a file")
    if not output.parent.is_dir():
        raise UsageError(f"-o {output}: the folder {output.parent} does not exist")


def batch_size(run: LoadedRun, given: int | None) -> int:
    """--batch-size, else the default above for the model's input size."""
    if given is not None:
        return given
    trained = run.settings.train.batch_size if run.settings is not None else KERAS_BATCH
    values = math.prod(d or 1 for d in run.preprocessing.input_shape)
    return max(trained, min(MAX_BATCH, BATCH_BYTES // (4 * values)))


def predict(
    run: LoadedRun,
    source: Input,
    options: PredictOptions,
    stream: TextIO | None = None,
    progress: Progress | None = None,
) -> PredictSummary:
    """Predict every example of `source` and write one row each to `options.output` (a
    temporary file beside it, renamed at the end) or to `stream`."""
    fmt = options.format
    check_output(options.output, fmt, options.overwrite)
    size = batch_size(run, options.batch_size)
    outputs = _outputs(run, source, size, progress)
    with _destination(options.output, fmt, stream) as where:
        writer = _writer(fmt, where, run, source)
        counts = writer.write_all(outputs)
    return PredictSummary(
        target=run.target,
        input=source.name,
        rows=source.rows,
        output=None if options.output is None else str(options.output),
        format=fmt,
        task=run.task,
        counts=counts,
        softmax=writer.softmax,
        unseen=outputs.unseen,
        notes=run.notes,
    )


@dataclass
class _Outputs:
    """The model's outputs batch by batch (an iterable once), with the unseen categories
    counted on the way."""

    batches: Iterator[tuple[Batch, np.ndarray]]
    unseen: dict[str, int] = field(default_factory=dict)

    def __iter__(self) -> Iterator[tuple[Batch, np.ndarray]]:
        for batch, out in self.batches:
            for column, n in batch.unseen.items():
                self.unseen[column] = self.unseen.get(column, 0) + n
            yield batch, out


def _outputs(run: LoadedRun, source: Input, size: int, progress: Progress | None) -> _Outputs:
    model = run.model

    def each() -> Iterator[tuple[Batch, np.ndarray]]:
        for batch in source.batches(size):
            out = np.asarray(model.predict_on_batch(batch.x))
            if progress is not None:
                progress(len(batch.x))
            yield batch, out.reshape(len(out), -1)

    return _Outputs(each())


@contextlib.contextmanager
def _destination(output: Path | None, fmt: str, stream: TextIO | None) -> Iterator[Any]:
    """Where rows go: a temporary file that replaces `output` when all are written, or
    `stream` (stdout)."""
    if output is None:
        yield stream
        return
    with replacing(output, f".{fmt}") as tmp:
        if fmt == "npy":
            yield Path(tmp)
            return
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            yield f


def _writer(fmt: str, where: Any, run: LoadedRun, source: Input) -> _Writer:
    kinds = {"csv": _CsvWriter, "jsonl": _JsonLinesWriter, "npy": _NpyWriter}
    return kinds[fmt](where, run, source)


class _Writer:
    """Rows out, classes counted; a classifier's outputs checked once to be probabilities."""

    def __init__(self, where: Any, run: LoadedRun, source: Input) -> None:
        self.where, self.run, self.source = where, run, source
        self.regression = run.task == "regression"
        self.names = () if self.regression else run.class_names
        self.softmax: bool = False
        self.decided = False

    def write_all(self, outputs: _Outputs) -> dict[str, int]:
        counts = np.zeros(len(self.names), dtype=np.int64)
        self.begin()
        for batch, out in outputs:
            if self.regression:
                self.rows(batch, out, None, None)
                continue
            probs = self.probabilities(out)
            predicted = probs.argmax(axis=1)
            counts += np.bincount(predicted, minlength=len(self.names))
            self.rows(batch, out, probs, predicted)
        return {name: int(n) for name, n in zip(self.names, counts, strict=True)}

    def probabilities(self, out: np.ndarray) -> np.ndarray:
        if not self.decided:
            self.softmax = not is_probabilities(out, from_logits(self.run))
            self.decided = True
        return to_probabilities(out, self.softmax)

    def begin(self) -> None:
        pass

    def rows(self, batch: Batch, out: np.ndarray, probs: Any, predicted: Any) -> None:
        raise NotImplementedError

    def value_names(self, width: int) -> list[str]:
        return ["predicted"] if width == 1 else [f"predicted_{i}" for i in range(width)]


class _CsvWriter(_Writer):
    """`row` or `path`, `predicted` (the class name, or a regression's value), and one
    `prob_<class>` column per class."""

    def begin(self) -> None:
        self.csv = csv.writer(self.where, lineterminator="\n")
        if self.regression:
            values = self.value_names(self.run.output_units)
        else:
            values = ["predicted", *(f"prob_{name}" for name in self.names)]
        self.csv.writerow([self.source.id_column, *values])

    def rows(self, batch: Batch, out: np.ndarray, probs: Any, predicted: Any) -> None:
        ids = batch.ids.tolist()
        if self.regression:
            values = [[_number(v) for v in row] for row in out.tolist()]
            self.csv.writerows([i, *v] for i, v in zip(ids, values, strict=True))
            return
        names = [self.names[p] for p in predicted.tolist()]
        self.csv.writerows(
            [i, n, *map(_number, p)] for i, n, p in zip(ids, names, probs.tolist(), strict=True)
        )


class _JsonLinesWriter(_Writer):
    """One object per line: the id, `predicted`, and `probabilities` by class name."""

    def rows(self, batch: Batch, out: np.ndarray, probs: Any, predicted: Any) -> None:
        key = self.source.id_column
        lines = []
        for j, i in enumerate(batch.ids.tolist()):
            if self.regression:
                values = [float(v) for v in out[j]]
                item = {key: i, "predicted": values[0] if len(values) == 1 else values}
            else:
                p = [float(v) for v in probs[j]]
                item = {
                    key: i,
                    "predicted": self.names[int(predicted[j])],
                    "probabilities": dict(zip(self.names, p, strict=True)),
                }
            lines.append(json.dumps(item) + "\n")
        self.where.write("".join(lines))


class _NpyWriter(_Writer):
    """The model's raw outputs, (rows, units) float32, written in place a batch at a time."""

    def begin(self) -> None:
        self.array: np.memmap | None = None
        self.at = 0

    def rows(self, batch: Batch, out: np.ndarray, probs: Any, predicted: Any) -> None:
        if self.array is None:
            shape = (self.source.rows, out.shape[1])
            self.array = np.lib.format.open_memmap(
                self.where, mode="w+", dtype=np.float32, shape=shape
            )
        self.array[self.at : self.at + len(out)] = out
        self.at += len(out)

    def write_all(self, outputs: _Outputs) -> dict[str, int]:
        counts = super().write_all(outputs)
        if self.array is not None:
            self.array.flush()
            del self.array
        else:  # no rows: an empty (0, units) array all the same
            np.save(self.where, np.zeros((0, self.run.output_units), np.float32))
        return counts


def from_logits(run: LoadedRun) -> bool | None:
    """Whether the run's loss takes logits (`from_logits: true`); None when not said."""
    if run.checked is None:
        return None
    loss = run.checked.settings.compile.loss
    if isinstance(loss, dict):
        config = loss.get("config") or {}
        if isinstance(config, dict) and isinstance(config.get("from_logits"), bool):
            return config["from_logits"]
    return None


def is_probabilities(out: np.ndarray, logits: bool | None) -> bool:
    """A classifier's outputs are probabilities unless its loss takes logits, or they are
    not (one unit: outside [0, 1]; several: rows not summing to 1)."""
    if logits is not None:
        return not logits
    if out.size == 0:
        return True
    if out.min() < 0 or out.max() > 1:
        return False
    if out.shape[1] == 1:
        return True
    return bool(np.allclose(out.sum(axis=1), 1.0, atol=1e-3))


def to_probabilities(out: np.ndarray, squash: bool) -> np.ndarray:
    """One probability per class: two for one sigmoid unit; softmax (or sigmoid) when the
    outputs are logits."""
    out = out.astype(np.float64)
    if out.shape[1] == 1:
        p = 1.0 / (1.0 + np.exp(-out)) if squash else out
        return np.concatenate([1.0 - p, p], axis=1)
    if not squash:
        return out
    shifted = np.exp(out - out.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _number(value: float) -> str:
    return f"{value:.7g}"
