"""Weight statistics: one chunked pass must agree with NumPy's own two-pass answers."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from kinit_cli.weights import stats


@pytest.fixture(params=[7, 1 << 20], ids=["tiny-chunks", "default-chunks"])
def chunk(request, monkeypatch):
    monkeypatch.setattr(stats, "CHUNK", request.param)
    return request.param


def test_array_stats_match_numpy(chunk):
    rng = np.random.default_rng(0)
    a = rng.normal(3.0, 0.01, size=(37, 11)).astype(np.float32)  # large mean, small std
    a[0, :4] = 0.0
    s = stats.array_stats(a)
    ref = a.astype(np.float64)
    assert s.size == 407
    assert s.mean == pytest.approx(ref.mean(), rel=1e-12)
    assert s.std == pytest.approx(ref.std(), rel=1e-9)
    assert (s.min, s.max) == (float(a.min()), float(a.max()))
    assert s.l2 == pytest.approx(np.linalg.norm(ref), rel=1e-12)
    assert s.zero_fraction == pytest.approx(4 / 407)
    assert s.nonfinite == 0
    assert s.sha256 == hashlib.sha256(a.tobytes()).hexdigest()


def test_non_finite_values_are_counted_and_left_out_of_the_moments(chunk):
    a = np.array([1.0, np.nan, 3.0, np.inf, -np.inf, 0.0], dtype=np.float32)
    s = stats.array_stats(a)
    assert s.nonfinite == 3
    assert (s.mean, s.min, s.max) == (pytest.approx(4 / 3), 0.0, 3.0)
    assert s.std == pytest.approx(np.std([1.0, 3.0, 0.0]))
    assert s.zero_fraction == pytest.approx(1 / 6)
    all_bad = stats.array_stats(np.full(3, np.nan, np.float32))
    assert all_bad.nonfinite == 3 and math.isnan(all_bad.mean)


def test_change(chunk):
    init = np.array([[3.0, 4.0]], np.float32)
    moved = stats.change(init, init + np.array([[0.3, 0.4]], np.float32))
    assert (moved.absolute, moved.relative, moved.cosine) == (
        pytest.approx(0.5),
        pytest.approx(0.1),
        pytest.approx(1.0),
    )
    turned = stats.change(init, np.array([[-4.0, 3.0]], np.float32))
    assert turned.cosine == pytest.approx(0.0, abs=1e-12)
    assert turned.absolute == pytest.approx(math.sqrt(50))
    from_zero = stats.change(np.zeros(3, np.float32), np.ones(3, np.float32))
    assert (from_zero.absolute, from_zero.relative, from_zero.cosine) == (
        pytest.approx(math.sqrt(3)),
        None,
        None,
    )


def test_weights_json_is_a_pure_function_of_the_weights():
    class W:
        def __init__(self, path, value):
            self.path, self.shape, self.dtype, self.trainable = path, value.shape, "float32", True
            self.initializer, self.layers = {"class_name": "Zeros", "config": {}}, ["d"]
            self.variable = type("V", (), {"numpy": lambda _self: value})()

    value = np.arange(6, dtype=np.float32).reshape(2, 3)
    first = stats.report_json(stats.report([W("d/kernel", value)]))
    second = stats.report_json(stats.report([W("d/kernel", value.copy())]))
    assert first == second
    (var,) = first["variables"]
    assert var["path"] == "d/kernel" and var["shape"] == [2, 3] and var["mean"] == 2.5
    assert first["totals"] == {"parameters": 6, "trainable": 6, "non_trainable": 0, "bytes": 24}
    assert first["layers"] == [{"name": "d", **first["totals"]}]


@pytest.mark.parametrize("shape", [(64, 32), (5, 300), (3, 3, 8, 16)])
def test_spectral_norm_matches_the_svd(shape):
    a = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    expected = np.linalg.norm(a.reshape(-1, shape[-1]).astype(np.float64), 2)
    assert stats.array_stats(a).spectral_norm == pytest.approx(expected, rel=1e-4)
    assert stats.array_stats(a[0] if len(shape) == 2 else a[0, 0, 0]).spectral_norm is None


def test_histogram_counts_every_finite_value(chunk):
    a = np.array([0.0, 0.1, 0.5, 0.99, 1.0, np.nan], np.float32)
    s = stats.array_stats(a)
    assert sum(s.histogram) == 5 and len(s.histogram) == stats.BINS
    assert (s.histogram[0], s.histogram[1], s.histogram[8], s.histogram[-1]) == (1, 1, 1, 2)
    assert stats.array_stats(np.ones(4, np.float32)).histogram[0] == 4
