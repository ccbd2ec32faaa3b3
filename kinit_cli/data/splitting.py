"""Train, validation and test parts of a source that has no test part of its own (a table,
a folder of class folders): taken class by class, a pure function of the seed.

Stratified because a random cut of a small or unbalanced data set can leave a class out of
the test part altogether; per class because then a class's share of each part depends on
that class alone, not on the order of the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kinit_cli.errors import DataError


@dataclass(frozen=True)
class Parts:
    """Indices into the source (each part in source order)."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def split(
    labels: np.ndarray | None,
    n: int,
    test_split: float,
    validation_split: float,
    seed: int,
    source: str,
) -> Parts:
    """Each class's members (in source order) permuted by `default_rng([seed, class])`:
    the first round(n_c * test_split) go to test, the next round(n_c * validation_split)
    to validation, the rest to train. `labels` None (a regression): one class of all."""
    if labels is None:
        groups = [np.arange(n)]
    else:
        ids, inverse = np.unique(labels, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse, minlength=len(ids)))[:-1]
        groups = np.split(order, bounds)
    test, validation, train = [], [], []
    for c, members in enumerate(groups):
        shuffled = members[np.random.default_rng([seed, c]).permutation(len(members))]
        n_test = round(len(members) * test_split)
        n_val = round(len(members) * validation_split)
        test.append(shuffled[:n_test])
        validation.append(shuffled[n_test : n_test + n_val])
        train.append(shuffled[n_test + n_val :])
    parts = Parts(*(np.sort(np.concatenate(p)).astype(np.int64) for p in (train, validation, test)))
    _check(parts, n, test_split, validation_split, source)
    return parts


def hold_out(
    labels: np.ndarray | None, indices: np.ndarray, validation_split: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) of a source's own training part, by class like split()."""
    parts = split(
        None if labels is None else labels[indices], len(indices), 0.0, validation_split, seed, ""
    )
    return indices[parts.train], indices[parts.validation]


def _check(parts: Parts, n: int, test_split: float, validation_split: float, source: str) -> None:
    """DataError when a part that was asked for ends up empty."""
    where = f"{source}: " if source else ""
    if not len(parts.train):
        raise DataError(
            f"{where}{n} examples leave none for training after data.test_split "
            f"{test_split} and data.validation_split {validation_split}; lower them"
        )
    if test_split and not len(parts.test):
        raise DataError(
            f"{where}data.test_split {test_split} of {n} examples rounds to none in every "
            "class; raise it, or give more examples"
        )
    if validation_split and not len(parts.validation):
        raise DataError(
            f"{where}data.validation_split {validation_split} of {n} examples rounds to none "
            "in every class; raise it, or give more examples"
        )
