"""Splits of a source without a test part: by class, a pure function of the seed."""

from __future__ import annotations

import numpy as np
import pytest

from kinit_cli.data import splitting
from kinit_cli.data.preprocessing import (
    Feature,
    ImageFormat,
    Preprocessing,
    SplitRecord,
    TableFormat,
)
from kinit_cli.errors import DataError

# 3 classes of 10, 20 and 5 examples, interleaved the way a table's rows come.
LABELS = np.array([0, 1, 1, 2, 1, 0] * 5 + [1] * 5)


def test_each_class_gives_its_share_to_each_part():
    parts = splitting.split(LABELS, len(LABELS), 0.2, 0.1, 7, "t.csv")
    per_class = {
        part: np.bincount(LABELS[getattr(parts, part)], minlength=3).tolist()
        for part in ("train", "validation", "test")
    }
    # round(n_c * 0.2) to test, round(n_c * 0.1) to validation: 10 -> 2, 1; 20 -> 4, 2; 5 -> 1, 0 (0.5 rounds to even)
    assert per_class == {"train": [7, 14, 4], "validation": [1, 2, 0], "test": [2, 4, 1]}
    everything = np.concatenate([parts.train, parts.validation, parts.test])
    assert sorted(everything.tolist()) == list(range(len(LABELS)))
    for part in (parts.train, parts.validation, parts.test):
        assert part.tolist() == sorted(part.tolist())  # source order kept


def test_the_same_seed_gives_the_same_split_and_another_seed_another():
    a = splitting.split(LABELS, len(LABELS), 0.2, 0.0, 7, "t.csv")
    b = splitting.split(LABELS, len(LABELS), 0.2, 0.0, 7, "t.csv")
    c = splitting.split(LABELS, len(LABELS), 0.2, 0.0, 8, "t.csv")
    assert a.test.tolist() == b.test.tolist()
    assert a.test.tolist() != c.test.tolist()


def test_a_class_draws_the_same_members_whatever_the_other_classes_hold():
    fewer = LABELS[LABELS != 2]
    a = splitting.split(LABELS, len(LABELS), 0.2, 0.0, 3, "t.csv")
    b = splitting.split(fewer, len(fewer), 0.2, 0.0, 3, "t.csv")
    ones_a = np.flatnonzero(LABELS == 1)
    ones_b = np.flatnonzero(fewer == 1)
    # The k-th example of class 1 goes to test in both, whatever class 2 holds.
    assert np.isin(ones_a, a.test).tolist() == np.isin(ones_b, b.test).tolist()


def test_a_regression_is_one_class():
    parts = splitting.split(None, 50, 0.2, 0.0, 1, "t.csv")
    assert (len(parts.train), len(parts.validation), len(parts.test)) == (40, 0, 10)


def test_a_test_split_that_rounds_to_nothing_is_refused():
    with pytest.raises(DataError) as caught:
        splitting.split(np.array([0, 1, 0, 1]), 4, 0.1, 0.0, 1, "t.csv")
    assert str(caught.value) == (
        "t.csv: data.test_split 0.1 of 4 examples rounds to none in every class; raise it, "
        "or give more examples"
    )


def test_a_split_that_leaves_nothing_to_train_is_refused():
    with pytest.raises(DataError) as caught:
        splitting.split(None, 2, 0.5, 0.5, 1, "t.csv")
    assert str(caught.value) == (
        "t.csv: 2 examples leave none for training after data.test_split 0.5 and "
        "data.validation_split 0.5; lower them"
    )


def test_the_records_round_trip_through_their_documents():
    prep = Preprocessing(
        kind="table",
        input_shape=(4,),
        class_names=("a", "b"),
        num_classes=2,
        table=TableFormat(
            label="y",
            features=(
                Feature("x", "number", mean=1.5, std=0.5),
                Feature("color", "category", values=("blue", "red")),
            ),
        ),
    )
    assert Preprocessing.from_document(prep.document()) == prep
    assert prep.table is not None and prep.table.width == 3
    assert prep.table.features[1].inputs == ("color=blue", "color=red")
    images = Preprocessing(
        kind="images",
        input_shape=(8, 8, 1),
        scale=255.0,
        class_names=("cat", "dog"),
        num_classes=2,
        images=ImageFormat((8, 8), "grayscale"),
    )
    assert Preprocessing.from_document(images.document()) == images
    record = SplitRecord(1, 0.2, 0.0, ("cat/1.png",), (), ("dog/2.png",), members="files")
    assert SplitRecord.from_document(record.document()) == record
