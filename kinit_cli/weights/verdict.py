"""Whether a variable's values agree with its initializer's theory (`inspect-weights --check`).

Random draws are judged by z-scores, deviations in units of their standard error, so the
tolerance shrinks as the variable grows; deterministic initializers must match up to the
rounding of the variable's dtype. The theories themselves are in `theory.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kinit_cli.weights.stats import Moments, chunks, moments
from kinit_cli.weights.theory import Theory, format_bound, theory_with_reason

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


def check(
    initializer: dict | str | object | None, array: np.ndarray, found: Moments | None = None
) -> Verdict:
    """Compare `array`, the values of one variable, with the theory of its initializer;
    `found`: its moments, when the statistics have scanned it already."""
    array = np.asarray(array)
    theory, why = theory_with_reason(initializer, tuple(array.shape))
    scan = _scan(array, found)
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


def _scan(array: np.ndarray, found: Moments | None) -> _Scan:
    """The moments the theory check needs, from the statistics' own scanner."""
    found = found or moments(array)
    scan = _Scan(size=int(array.size), n=found.count, nonfinite=found.nonfinite)
    if found.count:
        scan.mean, scan.m2, scan.m4 = found.mean, found.m2, found.m4
        scan.low, scan.high = found.min, found.max
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
    outside = sum(int(np.count_nonzero((v < low) | (v > high))) for v in chunks(array))
    bounds = f"[{format_bound(theory.low, '-inf')}, {format_bound(theory.high, 'inf')}]"
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
    differ = 0
    worst = 0.0
    for chunk in chunks(array):
        wrong = chunk != target
        if wrong.any():
            differ += int(np.count_nonzero(wrong))
            worst = max(worst, float(np.abs(chunk[wrong].astype(np.float64) - float(target)).max()))
    observed["differing"] = float(differ)
    if not differ:
        return []
    text = f"{differ} of {array.size} values differ from {value:g} (by up to {worst:.3g})"
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
