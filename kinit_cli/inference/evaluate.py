"""`kinit evaluate`: a trained model against labelled data (an INPUT, or the run's own test
split): the run's compiled loss and metrics, and for a classifier the confusion matrix and
each class's precision, recall and F1, counted with NumPy from the predictions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kinit_cli.data import datasets
from kinit_cli.data import preprocessing as records
from kinit_cli.errors import UsageError
from kinit_cli.inference.inputs import Batch, Input, open_input
from kinit_cli.inference.predict import Progress, batch_size, from_logits, is_probabilities
from kinit_cli.inference.runs import LoadedRun


@dataclass(frozen=True)
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Evaluation:
    """What evaluate measured; `document` is `--json`'s output."""

    target: str
    data: str
    examples: int
    loss: float | None
    metrics: dict[str, float]
    classes: tuple[str, ...] | None = None  # None: a regression
    confusion: np.ndarray | None = None  # rows: true class, columns: predicted
    notes: tuple[str, ...] = ()

    @property
    def accuracy(self) -> float | None:
        """The fraction of examples whose predicted class is their label."""
        if self.confusion is None or not self.examples:
            return None
        return float(np.trace(self.confusion) / self.examples)

    @property
    def per_class(self) -> dict[str, ClassScores]:
        if self.confusion is None or self.classes is None:
            return {}
        return dict(zip(self.classes, scores(self.confusion), strict=True))

    @property
    def averages(self) -> dict[str, ClassScores]:
        """Macro (each class alike) and weighted (by support) averages of the class scores."""
        rows = list(self.per_class.values())
        if not rows:
            return {}
        support = np.array([r.support for r in rows], dtype=np.float64)
        out = {}
        for name, weights in (("macro", np.ones_like(support)), ("weighted", support)):
            total = weights.sum()

            def mean(values: list[float], w: np.ndarray = weights, t: float = total) -> float:
                return float(np.dot(values, w) / t) if t else 0.0

            out[name] = ClassScores(
                mean([r.precision for r in rows]),
                mean([r.recall for r in rows]),
                mean([r.f1 for r in rows]),
                int(support.sum()),
            )
        return out

    @property
    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "target": self.target,
            "data": self.data,
            "examples": self.examples,
            "loss": self.loss,
            "metrics": self.metrics,
        }
        if self.confusion is not None:
            doc |= {
                "accuracy": self.accuracy,
                "classes": list(self.classes or ()),
                "confusion": self.confusion.tolist(),
                "per_class": {n: vars(s) for n, s in self.per_class.items()},
                "averages": {n: vars(s) for n, s in self.averages.items()},
            }
        return doc


def scores(confusion: np.ndarray) -> list[ClassScores]:
    """Each class's precision (of those predicted as it), recall (of those that are it),
    F1 and support; 0 where nothing was predicted, or nothing is, of the class."""
    tp = np.diag(confusion).astype(np.float64)
    predicted, actual = confusion.sum(axis=0), confusion.sum(axis=1)
    out = []
    for i in range(len(tp)):
        p = tp[i] / predicted[i] if predicted[i] else 0.0
        r = tp[i] / actual[i] if actual[i] else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        out.append(ClassScores(float(p), float(r), float(f1), int(actual[i])))
    return out


def open_data(run: LoadedRun, data: str | Path | None) -> Input:
    """DATA (labelled, as predict's INPUT), or without it the run's own test split."""
    return open_input(data, run, labels=True) if data is not None else own_test_split(run)


def evaluate(
    run: LoadedRun,
    source: Input | str | Path | None = None,
    size: int | None = None,
    progress: Progress | None = None,
) -> Evaluation:
    """Evaluate `run` on `source` (an opened Input, or DATA as open_data takes it)."""
    if not isinstance(source, Input):
        source = open_data(run, source)
    size = batch_size(run, size)
    notes = list(run.notes)
    loss, metrics = _keras_metrics(run, source, size)
    if run.task == "regression":
        return Evaluation(run.target, source.name, source.rows, loss, metrics, notes=tuple(notes))
    classes = run.class_names
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    logits = from_logits(run)
    for batch in source.batches(size):
        out = np.asarray(run.model.predict_on_batch(batch.x))
        out = out.reshape(len(out), -1)
        predicted = _predicted(out, logits)
        assert batch.y is not None  # opened with labels
        confusion += np.bincount(
            batch.y * len(classes) + predicted, minlength=len(classes) ** 2
        ).reshape(len(classes), len(classes))
        if progress is not None:
            progress(len(out))
    return Evaluation(
        run.target, source.name, source.rows, loss, metrics, classes, confusion, tuple(notes)
    )


def _predicted(out: np.ndarray, logits: bool | None) -> np.ndarray:
    """Class ids: the largest output, or for one sigmoid unit whether it passes 0.5 (0 for
    a logit)."""
    if out.shape[1] > 1:
        return out.argmax(axis=1)
    threshold = 0.5 if is_probabilities(out, logits) else 0.0
    return (out[:, 0] > threshold).astype(np.int64)


def _keras_metrics(run: LoadedRun, source: Input, size: int) -> tuple[float | None, dict]:
    """The loss and metrics the run compiled (Keras computes them, as training's test
    metrics); none for a .keras file saved without its compile config."""
    model = run.model
    if run.checked is not None:
        model.compile(**run.compile_args())
    elif run.compile_config:
        model.compile_from_config(run.compile_config)
    else:
        return None, {}

    def pairs() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        while True:  # endless: `steps` ends the pass wherever Keras reads ahead
            for batch in source.batches(size):
                yield batch.x, _labels(batch)

    result = model.evaluate(pairs(), steps=source.steps(size), return_dict=True, verbose=0)
    values = {k: float(v) for k, v in result.items()}
    loss = values.pop("loss", None)
    return loss, values


def _labels(batch: Batch) -> np.ndarray:
    assert batch.y is not None
    return batch.y


def own_test_split(run: LoadedRun) -> Input:
    """The run's own test split, as training made it (the recorded split, the stored
    preprocessing: nothing refitted)."""
    if run.settings is None or run.checked is None or run.run_dir is None:
        raise UsageError(
            f"{run.target} is a saved model, with no test split of its own: give DATA, "
            "a labelled table, image folder or .npz"
        )
    settings = run.checked.settings
    shape = tuple(run.model.inputs[0].shape[1:])
    prep = run.preprocessing if run.recorded else None
    splits = datasets.load(
        settings.data,
        shape,
        settings.seed,
        run.checked.config.base_dir,
        task=run.task,
        recorded=records.read_split(run.run_dir),
        prep=prep,
    )
    x, y = splits.x_test, splits.y_test

    def make(size: int) -> Iterator[Batch]:
        for start in range(0, len(x), size):
            stop = min(len(x), start + size)
            ids = np.arange(start, stop)
            yield Batch(splits.model_input(x[start:stop]), ids, y[start:stop])

    name = f"the test split of {run.target} ({splits.source})"
    return Input(name, run.preprocessing.kind, len(x), "row", True, make)
