"""What an initializer should have drawn, and whether a variable's values agree with it.

`inspect-weights --check` holds every variable made by a known initializer to its theory:
the distribution Keras samples from (read from `keras/src/initializers/`), with fans
computed as Keras computes them. Random draws are judged by z-scores, deviations in units
of their standard error, so the tolerance shrinks as the variable grows: a 10x10 kernel is
not flagged for sampling noise and a 1000x1000 kernel is flagged for a 2% error in scale.
Deterministic initializers (Constant, Zeros, Ones, Identity, Orthogonal) must match up to
the rounding of the variable's dtype.

Theory for your own initializer: give its class a method

    def expected_moments(self, shape: tuple[int, ...]) -> dict[str, float]:
        return {"mean": self.mean, "std": self.stddev}

returning the mean and standard deviation of the values it draws for a variable of
`shape`, each value drawn independently of the others. Optional keys: "low" and "high",
bounds no value may cross (a value outside is a FAIL), and "kurtosis",
E[(x - mean)^4] / std^4 of the distribution (3 for a normal, 1.8 for a uniform), which
sets how far the sample's std may stray by chance; without it the sample's own kurtosis
is used, so give it for heavy-tailed distributions. The hook takes precedence over the
theory of a Keras class the initializer derives from. An initializer that is neither one
of Keras's nor has the hook (a plain function, for instance) gets NO THEORY, never PASS.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

# A model has tens to hundreds of checked variables and each random one gets two z-tests
# (mean, std). Under the theory a z-score is close to standard normal, so |z| > 4 happens
# by chance with probability 6e-5 per test (about one WARN in 80 models of 100 variables)
# and |z| > 6 with probability 2e-9: a FAIL, which makes the command exit 1, is then
# evidence, not noise. Simulated (400,000 draws per case, normal, uniform and truncated
# normal samples of 2 to 100 values, where the normal approximation is worst): no FAIL at
# all, and WARN at most 3e-3 (a uniform of 5 to 10 values), about 1e-4 from 30 values on.
# Even at 6 standard errors a 2% error in std is caught from about 18,000 values of a
# uniform (45,000 of a normal); a 1000x1000 kernel shows it at ~45.
WARN_Z = 4.0
FAIL_Z = 6.0
CHUNK = 1 << 20  # values per scan step: large variables are never copied whole as float64


def _truncated_normal_moments(cut: float) -> tuple[float, float]:
    """(std, kurtosis) of a standard normal truncated to [-cut, cut], in closed form."""
    density = math.exp(-cut * cut / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(cut / math.sqrt(2))
    var = 1 - 2 * cut * density / mass
    fourth = 3 - (2 * cut**3 + 6 * cut) * density / mass  # two integrations by parts
    return math.sqrt(var), fourth / (var * var)


# Keras truncates at two standard deviations (tf.random.truncated_normal and the other
# backends alike), which leaves 0.87962566... of the untruncated std.
TRUNCATION = 2.0
TRUNCATED_STD, TRUNCATED_KURTOSIS = _truncated_normal_moments(TRUNCATION)


@dataclass(frozen=True)
class Theory:
    """The distribution an initializer draws a variable of a given shape from."""

    # normal | truncated_normal | uniform | constant | identity | orthogonal | custom
    distribution: str
    mean: float | None
    std: float | None
    low: float | None = None  # support bounds, where the distribution has them
    high: float | None = None
    value: float | None = None  # constant
    gain: float | None = None  # identity, orthogonal
    description: str = ""
    kurtosis: float | None = None  # E[(x - mean)^4] / std^4; None: estimated from the sample


@dataclass(frozen=True)
class Verdict:
    """How a variable's values compare with its initializer's theory."""

    status: str  # PASS | WARN | FAIL | NO THEORY
    theory: Theory | None
    # mean, std, min, max of the finite values (nonfinite: how many are not), and what was
    # tested: mean_z and std_z (random draws), differing (constants), max_error and, for an
    # Identity whose gain was not recorded, gain (identity and orthogonal)
    observed: dict[str, float]
    reasons: list[str]  # one sentence per finding; for NO THEORY, why there is none


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) as Keras computes them (random_initializers.compute_fans)."""
    return _fans(shape)


def _fans(
    shape: tuple[int, ...], input_axes: Any = None, output_axes: Any = None
) -> tuple[int, int]:
    shape = tuple(int(d) for d in shape)
    if input_axes is not None and output_axes is not None:
        return math.prod(shape[a] for a in input_axes), math.prod(shape[a] for a in output_axes)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])  # a conv kernel: (..., input_depth, depth)
    return shape[-2] * receptive, shape[-1] * receptive


def theory_for(initializer: dict | str | object | None, shape: tuple[int, ...]) -> Theory | None:
    """The theory of `initializer` (a {class_name, config} dict, a name or an object) for a
    variable of `shape`; None when there is none."""
    return _theory(initializer, tuple(int(d) for d in shape))[0]


def _theory(initializer: Any, shape: tuple[int, ...]) -> tuple[Theory | None, str]:
    """(theory, "") or (None, why there is none)."""
    obj, why = _resolve(initializer)
    if obj is None:
        return None, why
    name = _name(obj)
    recorded = (initializer.get("config") or {}) if isinstance(initializer, dict) else None
    try:
        if callable(getattr(obj, "expected_moments", None)):
            return _hook_theory(obj, name, shape)
        return _keras_theory(obj, name, shape, recorded)
    except (AttributeError, TypeError, ValueError, ArithmeticError) as exc:
        return None, f"cannot read the parameters of {name}: {exc}"


def _resolve(initializer: Any) -> tuple[Any, str]:
    """An Initializer object through Keras's own lookup (names, dicts, classes), or (None, why)."""
    from kinit_cli.backend import keras

    k = keras()
    if initializer is None:
        return None, "no initializer is known for this variable (an initial value?)"
    try:
        # A record is copied: deserialization may consume the config it is given.
        record = isinstance(initializer, dict)
        obj = k.initializers.get(copy.deepcopy(initializer) if record else initializer)
    except Exception as exc:  # a plugin's constructor may raise anything
        return None, f"cannot resolve the initializer {_label(initializer)}: {exc}"
    if not isinstance(obj, k.initializers.Initializer):
        return None, f"{_label(initializer)} is not an Initializer, so it has no theory"
    return obj, ""


def _label(initializer: Any) -> str:
    """How a message names what it was given."""
    if isinstance(initializer, dict):
        return repr(initializer.get("class_name"))
    if isinstance(initializer, str):
        return repr(initializer)
    if callable(initializer):
        return f"the function {_name(initializer)}"
    return f"an initial value ({type(initializer).__name__})"


def _name(obj: Any) -> str:
    """Keras's registered name ('package>Name' for plugins) of a function or an object's class."""
    from kinit_cli.backend import keras

    k = keras()
    target = obj if callable(obj) and not isinstance(obj, k.initializers.Initializer) else type(obj)
    try:
        return k.saving.get_registered_name(target)
    except Exception:
        return getattr(target, "__name__", repr(target))


def _hook_theory(obj: Any, name: str, shape: tuple[int, ...]) -> tuple[Theory | None, str]:
    try:
        moments = obj.expected_moments(shape)
    except Exception as exc:  # plugin code: report it, do not crash the check
        return None, f"{name}.expected_moments{shape} raised {type(exc).__name__}: {exc}"
    expected = "a dict with float 'mean' and 'std' (and optional 'low', 'high', 'kurtosis')"
    if not isinstance(moments, Mapping) or "mean" not in moments or "std" not in moments:
        return None, f"{name}.expected_moments must return {expected}. Received: {moments!r}"
    try:
        mean, std = float(moments["mean"]), float(moments["std"])
        low, high, kurtosis = (
            None if moments.get(key) is None else float(moments[key])
            for key in ("low", "high", "kurtosis")
        )
    except (TypeError, ValueError):
        return None, f"{name}.expected_moments must return {expected}. Received: {moments!r}"
    if not (math.isfinite(mean) and math.isfinite(std) and std >= 0):
        return None, f"{name}.expected_moments gave mean={mean}, std={std}; std must be >= 0"
    text = f"{name}: mean {mean:.4g}, std {std:.4g}"
    if low is not None or high is not None:
        text += f" on [{_g(low, '-inf')}, {_g(high, 'inf')}]"
    return Theory("custom", mean, std, low, high, description=text, kurtosis=kurtosis), ""


def _keras_theory(
    obj: Any, name: str, shape: tuple[int, ...], recorded: dict[str, Any] | None = None
) -> tuple[Theory | None, str]:
    """Dispatch on Keras's classes (isinstance: GlorotUniform and friends are VarianceScaling).

    `recorded` is the config of a {class_name, config} record, None for an object.
    """
    from kinit_cli.backend import keras

    init = keras().initializers
    if isinstance(obj, init.VarianceScaling):
        return _variance_scaling(obj, name, shape), ""
    if isinstance(obj, init.RandomNormal):
        return _normal(name, float(obj.mean), abs(float(obj.stddev))), ""
    if isinstance(obj, init.TruncatedNormal):
        return _truncated(name, float(obj.mean), abs(float(obj.stddev))), ""
    if isinstance(obj, init.RandomUniform):
        low, high = sorted((float(obj.minval), float(obj.maxval)))
        return _uniform(name, low, high), ""
    if isinstance(obj, init.Zeros | init.Ones | init.Constant):
        value = 0.0 if isinstance(obj, init.Zeros) else 1.0
        if isinstance(obj, init.Constant):
            if np.ndim(obj.value) != 0:
                return None, f"{name} with a non-scalar value has no theory here"
            value = float(obj.value)
        text = f"{name}: every value {value:g}"
        return Theory("constant", value, 0.0, value=value, description=text), ""
    if isinstance(obj, init.Identity):
        if len(shape) != 2:
            return None, f"{name} makes only 2-D matrices; this variable has shape {shape}"
        # Keras's Identity.get_config omits the gain, so no record holds it: any gain then.
        known = recorded is None or "gain" in recorded
        return _identity(name, float(obj.gain) if known else None, shape), ""
    if isinstance(obj, init.Orthogonal):
        if len(shape) < 2:
            return None, f"{name} makes only matrices of rank 2 or more; this one has shape {shape}"
        gain = float(obj.gain)
        rows, cols = math.prod(shape[:-1]), shape[-1]
        text = f"{name}: gain {gain:g} times an orthogonal {rows}x{cols} matrix"
        # Its entries' root mean square is exactly gain / sqrt(max(rows, cols)); mean 0 on average.
        rms = abs(gain) / math.sqrt(max(rows, cols, 1))
        return Theory("orthogonal", 0.0, rms, gain=gain, description=text), ""
    return None, f"{name} defines no expected_moments(shape), so there is no theory to check"


def _variance_scaling(obj: Any, name: str, shape: tuple[int, ...]) -> Theory:
    """Keras's VarianceScaling.__call__: variance scale / n with n clamped at 1."""
    fan_in, fan_out = _fans(shape, obj.input_axes, obj.output_axes)
    n = {"fan_in": fan_in, "fan_out": fan_out}.get(obj.mode, (fan_in + fan_out) / 2.0)
    scale = float(obj.scale)
    std = math.sqrt(scale / max(1.0, n))
    tail = f"; scale {scale:g} / {obj.mode} {n:g}"
    if obj.distribution == "truncated_normal":
        # Keras widens the normal by 1 / 0.8796... so the truncated result has this std.
        return _truncated(name, 0.0, std / TRUNCATED_STD, tail)
    if obj.distribution == "untruncated_normal":
        return _normal(name, 0.0, std, tail)
    limit = math.sqrt(3.0) * std
    return _uniform(name, -limit, limit, tail)


def _normal(name: str, mean: float, std: float, tail: str = "") -> Theory:
    text = f"{name}: N({mean:.4g}, {std:.4g}){tail}"
    return Theory("normal", mean, std, description=text, kurtosis=3.0)


def _truncated(name: str, mean: float, stddev: float, tail: str = "") -> Theory:
    """`stddev` of the normal before truncation at 2 of them; the Theory holds the std after."""
    low, high = mean - TRUNCATION * stddev, mean + TRUNCATION * stddev
    std = stddev * TRUNCATED_STD
    text = (
        f"{name}: N({mean:.4g}, {stddev:.4g}) truncated to [{low:.4g}, {high:.4g}], std {std:.4g}"
    )
    return Theory(
        "truncated_normal",
        mean,
        std,
        low,
        high,
        description=text + tail,
        kurtosis=TRUNCATED_KURTOSIS,
    )


def _uniform(name: str, low: float, high: float, tail: str = "") -> Theory:
    mean, std = (low + high) / 2, (high - low) / math.sqrt(12)
    text = f"{name}: U({low:.4g}, {high:.4g}){tail}"
    return Theory("uniform", mean, std, low, high, description=text, kurtosis=1.8)


def _identity(name: str, gain: float | None, shape: tuple[int, ...]) -> Theory:
    """gain * eye(rows, cols): ones on the main diagonal of a rectangle too (ops.eye)."""
    rows, cols = shape
    if gain is None:
        text = f"{name}: gain * eye({rows}, {cols}), the gain not recorded"
        return Theory("identity", None, None, description=text)
    p = min(rows, cols) / (rows * cols) if rows * cols else 0.0
    mean, std = gain * p, abs(gain) * math.sqrt(p * (1 - p))
    text = f"{name}: {gain:g} * eye({rows}, {cols})"
    return Theory("identity", mean, std, gain=gain, description=text)


def _g(value: float | None, missing: str) -> str:
    return missing if value is None else f"{value:.4g}"


# --------------------------------------------------------------------------- the check


def check(initializer: dict | str | object | None, array: np.ndarray) -> Verdict:
    """Compare `array`, the values of one variable, with the theory of its initializer."""
    array = np.asarray(array)
    theory, why = _theory(initializer, tuple(array.shape))
    scan = _scan(array)
    observed = scan.observed()
    if theory is None:
        return Verdict("NO THEORY", None, observed, [why])
    findings: list[tuple[str, str]] = []
    if scan.nonfinite:
        findings.append(("FAIL", f"{scan.nonfinite} of {scan.size} values are NaN or infinite"))
    elif theory.distribution == "constant":
        findings += _check_constant(theory, array, observed)
    elif theory.distribution in ("identity", "orthogonal"):
        findings += _check_matrix(theory, array, observed)
    else:
        findings += _check_random(theory, array, scan, observed)
    status = "PASS"
    for severity, _ in findings:
        if severity == "FAIL" or (severity == "WARN" and status == "PASS"):
            status = severity
    return Verdict(status, theory, observed, [text for _, text in findings])


@dataclass
class _Scan:
    """Moments of the finite values, accumulated chunk by chunk in float64."""

    size: int = 0
    n: int = 0  # finite values
    nonfinite: int = 0
    mean: float = math.nan
    m2: float = 0.0  # sum of squared deviations from the mean
    m4: float = 0.0
    low: float = math.nan
    high: float = math.nan

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.n) if self.n else math.nan

    def observed(self) -> dict[str, float]:
        if not self.n:
            return {"nonfinite": float(self.nonfinite)} if self.nonfinite else {}
        out = {"mean": self.mean, "std": self.std, "min": self.low, "max": self.high}
        if self.nonfinite:
            out["nonfinite"] = float(self.nonfinite)
        return out


def _chunks(array: np.ndarray) -> Iterator[np.ndarray]:
    """Finite float64 values, CHUNK at a time."""
    flat = np.ascontiguousarray(array).reshape(-1)
    for start in range(0, flat.size, CHUNK):
        values = flat[start : start + CHUNK].astype(np.float64)
        yield values[np.isfinite(values)]


def _scan(array: np.ndarray) -> _Scan:
    """Two passes (mean first, then central moments) keep the deviations exact."""
    scan = _Scan(size=int(array.size))
    total = 0.0
    lows, highs = [], []
    for values in _chunks(array):
        scan.n += values.size
        if values.size:
            total += float(values.sum())
            lows.append(float(values.min()))
            highs.append(float(values.max()))
    scan.nonfinite = scan.size - scan.n
    if not scan.n:
        return scan
    scan.mean, scan.low, scan.high = total / scan.n, min(lows), max(highs)
    for values in _chunks(array):
        squares = np.square(values - scan.mean)
        scan.m2 += float(squares.sum())
        scan.m4 += float(np.dot(squares, squares))
    return scan


def _eps(dtype: np.dtype) -> float:
    """Machine epsilon of the variable's dtype (bfloat16 through ml_dtypes, TF's own)."""
    try:
        return float(np.finfo(dtype).eps)
    except (TypeError, ValueError):
        pass
    try:
        import ml_dtypes

        return float(ml_dtypes.finfo(dtype).eps)
    except (ImportError, TypeError, ValueError):
        return float(np.finfo(np.float32).eps)  # integers and the unknown: float32 rounding


def _check_random(
    theory: Theory, array: np.ndarray, scan: _Scan, observed: dict[str, float]
) -> list[tuple[str, str]]:
    """Support, then the mean and std as z-scores against their standard errors."""
    findings = []
    eps = _eps(array.dtype)
    mean, std = float(theory.mean or 0.0), float(theory.std or 0.0)
    if theory.low is not None or theory.high is not None:
        findings += _check_support(theory, array, scan, eps)
    if scan.n == 0:
        return findings + [("WARN", "no values to test")]
    if std == 0:  # a degenerate distribution: every value is the mean
        off = max(abs(scan.low - mean), abs(scan.high - mean))
        if off > _rounding(eps, mean):
            findings.append(
                ("FAIL", f"values differ from {mean:.4g} by up to {off:.3g}; std 0 expected")
            )
        return findings
    mean_z = (scan.mean - mean) / (std / math.sqrt(scan.n))
    observed["mean_z"] = mean_z
    findings += _z_finding("mean", scan.mean, mean, mean_z)
    if scan.n < 2:
        # One value shows no spread: PASS would claim the scale was checked, and the scale
        # is what this check is for; a single random value is rare enough that WARN is cheap.
        return findings + [("WARN", "1 value: its spread cannot be tested")]
    kurtosis = theory.kurtosis
    if kurtosis is None:  # a plugin that did not say: the sample's own
        kurtosis = scan.m4 * scan.n / (scan.m2 * scan.m2) if scan.m2 else 3.0
    # Large-sample standard error of the sample std: std * sqrt((kurtosis - 1) / (4 n)).
    std_z = (scan.std - std) / (std * math.sqrt(max(kurtosis - 1, 1e-12) / (4 * scan.n)))
    observed["std_z"] = std_z
    findings += _z_finding("std", scan.std, std, std_z)
    return findings


def _z_finding(what: str, seen: float, expected: float, z: float) -> list[tuple[str, str]]:
    if abs(z) < WARN_Z:
        return []
    severity = "FAIL" if abs(z) >= FAIL_Z else "WARN"
    return [(severity, f"{what} {seen:.4g} vs {expected:.4g} expected: {z:.1f} standard errors")]


def _rounding(eps: float, *bounds: float | None) -> float:
    """Slack for values computed in the variable's dtype: a few units in the last place."""
    return 4 * eps * max([abs(b) for b in bounds if b is not None] + [1e-30])


def _check_support(
    theory: Theory, array: np.ndarray, scan: _Scan, eps: float
) -> list[tuple[str, str]]:
    slack = _rounding(eps, theory.low, theory.high)
    low = -math.inf if theory.low is None else theory.low - slack
    high = math.inf if theory.high is None else theory.high + slack
    if not scan.n or (scan.low >= low and scan.high <= high):
        return []
    outside = sum(int(np.count_nonzero((v < low) | (v > high))) for v in _chunks(array))
    bounds = f"[{_g(theory.low, '-inf')}, {_g(theory.high, 'inf')}]"
    seen = f"min {scan.low:.4g}, max {scan.high:.4g}"
    return [("FAIL", f"{outside} of {scan.size} values outside {bounds} ({seen})")]


def _check_constant(
    theory: Theory, array: np.ndarray, observed: dict[str, float]
) -> list[tuple[str, str]]:
    """Exact: Keras casts the value to the dtype and multiplies ones by it."""
    value = theory.value or 0.0
    try:
        target = np.asarray(value).astype(array.dtype)
    except (TypeError, ValueError, OverflowError):
        target = np.asarray(value)
    flat = np.ascontiguousarray(array).reshape(-1)
    differ = 0
    worst = 0.0
    for start in range(0, flat.size, CHUNK):
        chunk = flat[start : start + CHUNK]
        wrong = chunk != target
        if wrong.any():
            differ += int(np.count_nonzero(wrong))
            worst = max(worst, float(np.abs(chunk[wrong].astype(np.float64) - float(target)).max()))
    observed["differing"] = float(differ)
    if not differ:
        return []
    text = f"{differ} of {flat.size} values differ from {value:g} (by up to {worst:.3g})"
    return [("FAIL", text)]


def _check_matrix(
    theory: Theory, array: np.ndarray, observed: dict[str, float]
) -> list[tuple[str, str]]:
    """Identity: |W - gain * eye| ; orthogonal: |Gram - gain^2 * I| of Keras's flat matrix."""
    eps = _eps(array.dtype)
    if array.size == 0:
        observed["max_error"] = 0.0
        return []
    matrix = np.ascontiguousarray(array).reshape(-1, array.shape[-1]).astype(np.float64)
    rows, cols = matrix.shape
    gain = 1.0 if theory.gain is None else float(theory.gain)
    if theory.distribution == "identity":
        if theory.gain is None:  # unknown: the one the diagonal starts with
            gain = observed["gain"] = float(matrix[0, 0])
        error = float(np.abs(matrix - gain * np.eye(rows, cols)).max())
        tolerance = _rounding(eps, gain)
        against = f"{gain:g} * eye({rows}, {cols})"
    else:
        # Keras's Q has orthonormal columns when tall and orthonormal rows when wide.
        gram = matrix.T @ matrix if rows >= cols else matrix @ matrix.T
        error = float(np.abs(gram - gain * gain * np.eye(len(gram))).max())
        # A float32 QR leaves Gram errors near 0.35 * eps * sqrt(max(rows, cols)) (measured
        # on Keras's own samples, 64 to 4096 wide); 16x that is still 1e-4 at 4096 wide.
        tolerance = 16 * eps * math.sqrt(max(rows, cols)) * max(gain * gain, 1e-30)
        against = f"{gain * gain:g} * I (W^T W)" if rows >= cols else f"{gain * gain:g} * I (W W^T)"
    observed["max_error"] = error
    if error <= tolerance:
        return []
    return [("FAIL", f"differs from {against} by up to {error:.3g} (tolerance {tolerance:.2g})")]
