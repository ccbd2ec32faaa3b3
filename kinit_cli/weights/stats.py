"""Weight statistics: NumPy in, plain data out; shared by `train` and `inspect-weights`.

Each variable is read from the device once and scanned in fixed-size chunks with float64
accumulators, so a 100M-parameter model needs no full-size temporary copies (a plain
`a.astype(float64).std()` would allocate two arrays of 8 bytes per parameter).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from kinit_cli.weights.theory import fans

CHUNK = 1 << 20  # elements per scan step: 8 MiB of float64 temporaries
BINS = 16


@dataclass(frozen=True)
class ArrayStats:
    """Moments and health of one array; computed over its finite values."""

    size: int
    mean: float
    std: float
    min: float
    max: float
    l2: float
    zero_fraction: float
    nonfinite: int
    sha256: str
    spectral_norm: float | None = None  # largest singular value, for kernels (rank >= 2)
    histogram: tuple[int, ...] = ()  # BINS counts of the finite values over [min, max]
    # The scan these came from, for the theory check (higher moments); not in the reports.
    moments: Moments | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "moments"}
        data["histogram"] = list(self.histogram)
        return data


@dataclass(frozen=True)
class VariableStats:
    """Statistics of one weight variable, with what made it and which layers use it."""

    path: str
    shape: tuple[int, ...]
    dtype: str
    trainable: bool
    initializer: dict[str, Any] | None
    layers: tuple[str, ...]
    stats: ArrayStats
    loaded_from: str | None = None

    @property
    def fans(self) -> tuple[int, int]:
        """(fan_in, fan_out) as Keras's initializers compute them for this shape."""
        return fans(self.shape)

    def to_json(self) -> dict[str, Any]:
        fan_in, fan_out = self.fans
        return {
            "path": self.path,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "trainable": self.trainable,
            "initializer": self.initializer,
            "loaded_from": self.loaded_from,
            "layers": list(self.layers),
            "fan_in": fan_in,
            "fan_out": fan_out,
            **self.stats.to_json(),
        }


def chunks(array: np.ndarray) -> Iterator[np.ndarray]:
    """The values of `array`, flat, CHUNK at a time, as views (never a whole copy)."""
    flat = np.ascontiguousarray(array).reshape(-1)
    for start in range(0, flat.size, CHUNK):
        yield flat[start : start + CHUNK]


@dataclass(frozen=True)
class Moments:
    """What one scan of an array yields; the moments are over its finite values."""

    count: int  # finite values
    mean: float
    m2: float  # sums of the 2nd, 3rd and 4th powers of the deviations from the mean
    m3: float
    m4: float
    sumsq: float
    min: float
    max: float
    zeros: int
    nonfinite: int
    sha256: str


def moments(flat: np.ndarray) -> Moments:
    """One chunked scan of an array's values: moments up to the fourth (for the
    theory check's kurtosis), extremes, zeros and digest; the one scanner of weight values.

    Per chunk, one float64 copy (CHUNK values), centred in place; min, max and the zero
    count read the array's own dtype, which holds them exactly.
    """
    digest = hashlib.sha256()
    n = 0
    mean = m2 = m3 = m4 = sumsq = 0.0
    lo, hi = math.inf, -math.inf
    zeros = nonfinite = 0
    for chunk in chunks(flat):
        digest.update(memoryview(chunk).cast("B"))
        zeros += int(chunk.size - np.count_nonzero(chunk))
        finite = np.isfinite(chunk)
        if not finite.all():
            nonfinite += int(chunk.size - np.count_nonzero(finite))
            chunk = chunk[finite]
        if chunk.size == 0:
            continue
        lo, hi = min(lo, float(chunk.min())), max(hi, float(chunk.max()))
        values = chunk.astype(np.float64)
        sumsq += float(np.dot(values, values))
        c_mean = float(values.mean())
        values -= c_mean
        squares = values * values
        b, c_m2 = values.size, float(squares.sum())
        c_m3, c_m4 = float(np.dot(squares, values)), float(np.dot(squares, squares))
        # The pairwise update of the central moments (Chan et al.; Pebay 2008 for the 3rd
        # and 4th), which keeps the deviations as exact as a second pass would.
        total = n + b
        delta = c_mean - mean
        d_n = delta / total
        m4 += c_m4 + (
            delta * d_n**3 * n * b * (n * n - n * b + b * b)
            + 6 * d_n * d_n * (n * n * c_m2 + b * b * m2)
            + 4 * d_n * (n * c_m3 - b * m3)
        )
        m3 += c_m3 + delta * d_n * d_n * n * b * (n - b) + 3 * d_n * (n * c_m2 - b * m2)
        m2 += c_m2 + delta * d_n * n * b
        mean += d_n * b
        n = total
    return Moments(n, mean, m2, m3, m4, sumsq, lo, hi, zeros, nonfinite, digest.hexdigest())


def array_stats(array: np.ndarray) -> ArrayStats:
    """Every statistic of `array` from a view of it (never a full copy): one scan for the
    moments, one for the histogram (its range is the scan's min and max), and the spectral
    norm's matrix-vector products."""
    flat = np.ascontiguousarray(array).reshape(-1)
    m = moments(flat)
    if m.count == 0:
        nan = float("nan")
        return ArrayStats(flat.size, nan, nan, nan, nan, nan, 0.0, m.nonfinite, m.sha256, moments=m)
    return ArrayStats(
        spectral_norm=spectral_norm(array) if m.nonfinite == 0 else None,
        histogram=histogram(flat, m.min, m.max, all_finite=m.nonfinite == 0),
        size=int(flat.size),
        mean=m.mean,
        std=math.sqrt(m.m2 / m.count),
        min=m.min,
        max=m.max,
        l2=math.sqrt(m.sumsq),
        zero_fraction=m.zeros / flat.size,
        nonfinite=m.nonfinite,
        sha256=m.sha256,
        moments=m,
    )


def histogram(
    flat: np.ndarray, lo: float, hi: float, bins: int = BINS, all_finite: bool = False
) -> tuple[int, ...]:
    """Counts of the finite values in `bins` equal bins over [lo, hi], chunk by chunk;
    `all_finite` (known from the moments' scan) skips the per-chunk filtering copy."""
    counts = np.zeros(bins, np.int64)
    for chunk in chunks(flat):
        values = chunk if all_finite else chunk[np.isfinite(chunk)]
        if hi > lo:
            counts += np.histogram(values, bins=bins, range=(lo, hi))[0]
        else:
            counts[0] += values.size
    return tuple(int(c) for c in counts)


def spectral_norm(array: np.ndarray) -> float | None:
    """Largest singular value of a kernel seen as a matrix (rank >= 2), else None.

    Conv kernels are read as (prod(shape[:-1]), shape[-1]), the matrix a convolution
    multiplies patches by. A matrix with a side up to 512 gets the top eigenvalue of its
    Gram matrix (exact to rounding); larger ones ARPACK's Lanczos
    (scipy's svds), which needs only matrix-vector products: a 4096x4096 kernel takes
    about half a second where a full SVD takes many, and plain power iteration stops
    percents short on random matrices, whose top singular values crowd together. Rounded
    to 6 digits, so reports stay pure functions of the weights.
    """
    if array.ndim < 2 or array.size == 0:
        return None
    matrix = np.ascontiguousarray(array).reshape(-1, array.shape[-1])
    if min(matrix.shape) <= 512:
        # The largest eigenvalue of the smaller Gram matrix: the same value to 1e-15 of it,
        # in a quarter of an SVD's time (which is most of a scan's).
        m = matrix.astype(np.float64)
        gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
        sigma = math.sqrt(max(float(np.linalg.eigvalsh(gram)[-1]), 0.0))
    else:
        from scipy.sparse.linalg import svds

        sigma = float(svds(matrix, k=1, tol=1e-6, return_singular_vectors=False, random_state=0)[0])
    return float(f"{sigma:.6g}")


@dataclass(frozen=True)
class Change:
    """How far a variable moved from `initial` to `final`."""

    absolute: float  # ||final - initial||
    relative: float | None  # absolute / ||initial||; None when the initial norm is 0
    cosine: float | None  # cos of the angle between them; None when either is all zeros


def change(initial: np.ndarray, final: np.ndarray) -> Change:
    """One chunked pass over both arrays (no full-size temporaries)."""
    a = np.ascontiguousarray(initial).reshape(-1)
    b = np.ascontiguousarray(final).reshape(-1)
    diff = aa = bb = ab = 0.0
    for start in range(0, a.size, CHUNK):
        x = a[start : start + CHUNK].astype(np.float64)
        y = b[start : start + CHUNK].astype(np.float64)
        d = y - x
        diff += float(np.dot(d, d))
        aa += float(np.dot(x, x))
        bb += float(np.dot(y, y))
        ab += float(np.dot(x, y))
    absolute = math.sqrt(diff)
    return Change(
        absolute,
        absolute / math.sqrt(aa) if aa > 0 else None,
        ab / math.sqrt(aa * bb) if aa > 0 and bb > 0 else None,
    )


def values(weights: Iterable[Any]) -> dict[str, np.ndarray]:
    """Host copies of every variable's value, by path (each read from the device once)."""
    return {w.path: np.asarray(w.variable.numpy()) for w in weights}


def report(
    weights: Iterable[Any], arrays: dict[str, np.ndarray] | None = None
) -> list[VariableStats]:
    """Statistics of every weight (variables.WeightInfo); `arrays` reuses values already read."""
    out = []
    for w in weights:
        array = arrays[w.path] if arrays is not None else np.asarray(w.variable.numpy())
        out.append(
            VariableStats(
                w.path,
                tuple(w.shape),
                w.dtype,
                w.trainable,
                w.initializer,
                tuple(w.layers),
                array_stats(array),
                getattr(w, "loaded_from", None),
            )
        )
    return out


def totals(stats: Iterable[VariableStats]) -> dict[str, int]:
    stats = list(stats)
    trainable = sum(s.stats.size for s in stats if s.trainable)
    total = sum(s.stats.size for s in stats)
    return {
        "parameters": total,
        "trainable": trainable,
        "non_trainable": total - trainable,
        "bytes": sum(s.stats.size * np.dtype(s.dtype).itemsize for s in stats),
    }


def report_json(stats: list[VariableStats]) -> dict[str, Any]:
    """The weights report (weights-*.json, inspect-weights --json): a pure function of the
    weights, with no times or file paths. A shared variable counts for its first layer."""
    layers: dict[str, list[VariableStats]] = {}
    for s in stats:
        layers.setdefault(s.layers[0] if s.layers else "", []).append(s)
    return {
        "variables": [s.to_json() for s in stats],
        "layers": [{"name": name, **totals(group)} for name, group in layers.items()],
        "totals": totals(stats),
    }


@dataclass(frozen=True)
class Duplicate:
    """Distinct variables holding the very same values: rarely meant, easily missed."""

    paths: tuple[str, ...]
    initializer: dict[str, Any] | None  # what made the first of them
    initially: bool = False  # found in weights-init.json: identical when the run started

    def message(self) -> str:
        names = " and ".join(self.paths)
        made = self.initializer["class_name"] if self.initializer else "an unknown initializer"
        held = (
            "held identical values at initialization" if self.initially else "hold identical values"
        )
        return (
            f"{names} {held} (made by {made}). Most likely one initializer "
            "instance was given to several layers: Keras 3 seeds an instance once, so every "
            "variable it fills gets the same draws. Give each layer its own initializer (or "
            "its own seed); if a layer was copied with its weights, initialize the copy anew."
        )


def duplicates(stats: list[VariableStats], arrays: Mapping[str, np.ndarray]) -> list[Duplicate]:
    """Groups of distinct variables with equal values: the same SHA-256, then compared value
    by value. Constants (zeros, ones, any single value) are expected to repeat and left out;
    a variable shared by several layers is one variable here, so it never counts. Only the
    values of variables whose digests agree are read from `arrays`."""
    groups: dict[tuple[str, tuple[int, ...], str], list[VariableStats]] = {}
    for s in stats:
        if s.stats.size < 2 or not (s.stats.min < s.stats.max):
            continue
        groups.setdefault((s.stats.sha256, s.shape, s.dtype), []).append(s)
    out = []
    for group in groups.values():
        if len(group) < 2:
            continue
        first = arrays[group[0].path]
        same = [s for s in group[1:] if np.array_equal(arrays[s.path], first)]
        if same:
            out.append(Duplicate((group[0].path, *(s.path for s in same)), group[0].initializer))
    return out


def recorded_duplicates(entries: list[dict[str, Any]]) -> list[Duplicate]:
    """Duplicates among a weights report's entries (weights-init.json), by SHA-256 alone:
    the values themselves are gone, and equal digests of different bytes do not happen."""
    groups: dict[tuple[str, tuple[int, ...]], list[dict[str, Any]]] = {}
    for e in entries:
        if e["size"] >= 2 and e["min"] < e["max"]:
            groups.setdefault((e["sha256"], tuple(e["shape"])), []).append(e)
    return [
        Duplicate(tuple(e["path"] for e in group), group[0].get("initializer"), initially=True)
        for group in groups.values()
        if len(group) > 1
    ]
