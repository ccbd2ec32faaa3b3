"""What an initializer should have drawn: the distribution behind `inspect-weights --check`.

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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from kinit_cli.runtime.imports import keras
from kinit_cli.weights.builtin_initializers import Builtin, builtin


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
    scale: float | None = None  # truncated_normal: the std of the normal before truncation


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
    return theory_with_reason(initializer, tuple(int(d) for d in shape))[0]


def theory_with_reason(initializer: Any, shape: tuple[int, ...]) -> tuple[Theory | None, str]:
    """(theory, "") or (None, why there is none). Keras's own initializers, by name or
    record, are known from their configs without importing Keras."""
    known = builtin(initializer)
    if known is not None:
        recorded = (initializer.get("config") or {}) if isinstance(initializer, dict) else None
        try:
            return _keras_theory(known, known.name, shape, recorded)
        except (TypeError, ValueError, ArithmeticError, IndexError) as exc:
            return None, f"cannot read the parameters of {known.name}: {exc}"
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

    k = keras()
    if initializer is None:
        return None, "no initializer is known for this variable (an initial value?)"
    try:
        # A record is copied: deserialization may consume the config it is given.
        record = isinstance(initializer, dict)
        obj = k.initializers.get(copy.deepcopy(initializer) if record else initializer)
    except Exception as exc:  # a plugin's constructor may raise anything
        if "Could not interpret initializer identifier" in str(exc) and ">" not in str(
            initializer.get("class_name") if isinstance(initializer, dict) else initializer
        ):
            # A function of the layer's own code (LSTM's unit_forget_bias bias_initializer):
            # Keras's message repeats the record; say what it means.
            return None, (
                f"{_label(initializer)} is not an initializer Keras can make again (a "
                "function of the layer's own code), so no theory describes its values"
            )
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
        text += f" on [{format_bound(low, '-inf')}, {format_bound(high, 'inf')}]"
    return Theory("custom", mean, std, low, high, description=text, kurtosis=kurtosis), ""


def _keras_theory(
    obj: Any, name: str, shape: tuple[int, ...], recorded: dict[str, Any] | None = None
) -> tuple[Theory | None, str]:
    """Dispatch on Keras's classes (isinstance: GlorotUniform and friends are VarianceScaling),
    or on a Builtin's family: the same attributes either way.

    `recorded` is the config of a {class_name, config} record, None for an object.
    """
    family = obj.family if isinstance(obj, Builtin) else _family(obj)
    if family == "variance_scaling":
        return _variance_scaling(obj, name, shape), ""
    if family == "normal":
        return _normal(name, float(obj.mean), abs(float(obj.stddev))), ""
    if family == "truncated_normal":
        return _truncated(name, float(obj.mean), abs(float(obj.stddev))), ""
    if family == "uniform":
        low, high = sorted((float(obj.minval), float(obj.maxval)))
        return _uniform(name, low, high), ""
    if family in ("zeros", "ones", "constant"):
        value = {"zeros": 0.0, "ones": 1.0}.get(family)
        if value is None:
            if np.ndim(obj.value) != 0:
                return None, f"{name} with a non-scalar value has no theory here"
            value = float(obj.value)
        text = f"{name}: every value {value:g}"
        return Theory("constant", value, 0.0, value=value, description=text), ""
    if family == "identity":
        if len(shape) != 2:
            return None, f"{name} makes only 2-D matrices; this variable has shape {shape}"
        # Keras's Identity.get_config omits the gain, so no record holds it: any gain then.
        known = recorded is None or "gain" in recorded
        return _identity(name, float(obj.gain) if known else None, shape), ""
    if family == "orthogonal":
        if len(shape) < 2:
            return None, f"{name} makes only matrices of rank 2 or more; this one has shape {shape}"
        gain = float(obj.gain)
        rows, cols = math.prod(shape[:-1]), shape[-1]
        text = f"{name}: gain {gain:g} times an orthogonal {rows}x{cols} matrix"
        # Its entries' root mean square is exactly gain / sqrt(max(rows, cols)); mean 0 on average.
        rms = abs(gain) / math.sqrt(max(rows, cols, 1))
        return Theory("orthogonal", 0.0, rms, gain=gain, description=text), ""
    return None, f"{name} defines no expected_moments(shape), so there is no theory to check"


def _family(obj: Any) -> str | None:
    """Which of Keras's initializer families a Keras object belongs to (its subclasses too)."""
    init = keras().initializers
    families = (
        (init.VarianceScaling, "variance_scaling"),
        (init.RandomNormal, "normal"),
        (init.TruncatedNormal, "truncated_normal"),
        (init.RandomUniform, "uniform"),
        (init.Zeros, "zeros"),
        (init.Ones, "ones"),
        (init.Constant, "constant"),
        (init.Identity, "identity"),
        (init.Orthogonal, "orthogonal"),
    )
    return next((family for cls, family in families if isinstance(obj, cls)), None)


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
        scale=stddev,
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


def format_bound(value: float | None, missing: str) -> str:
    return missing if value is None else f"{value:.4g}"
