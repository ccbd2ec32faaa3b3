"""Initializer theory: real Keras samples pass; scaled, shifted, wrong and broken ones fail."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

import keras
import numpy as np
import pytest
from keras.src.initializers.random_initializers import compute_fans
from scipy import stats as scipy_stats

from kinit_cli import register_initializer
from kinit_cli.model.variables import describe_initializer
from kinit_cli.weights import theory
from kinit_cli.weights.verdict import check

I = keras.initializers  # noqa: E741


def sample(initializer: Any, shape: tuple[int, ...], dtype: str = "float32") -> np.ndarray:
    return np.array(initializer(shape, dtype=dtype))  # a writable copy


# --------------------------------------------------------------------------- test plugins


@keras.saving.register_keras_serializable(package="theory_test")
class Laplace(I.Initializer):
    """Laplace(loc, b) values through NumPy, with the theory hook (no bounds, no kurtosis)."""

    def __init__(self, loc: float = 0.0, b: float = 0.1, seed: int = 0) -> None:
        self.loc, self.b, self.seed = loc, b, seed

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        rng = np.random.default_rng(self.seed)
        return rng.laplace(self.loc, self.b, size=shape).astype(dtype or "float32")

    def get_config(self) -> dict[str, Any]:
        return {"loc": self.loc, "b": self.b, "seed": self.seed}

    def expected_moments(self, shape: tuple[int, ...]) -> dict[str, float]:
        return {"mean": self.loc, "std": self.b * math.sqrt(2)}


@keras.saving.register_keras_serializable(package="theory_test")
class Halves(I.Initializer):
    """U(0, width) with the full hook: bounds and kurtosis."""

    def __init__(self, width: float = 1.0, seed: int = 0) -> None:
        self.width, self.seed = width, seed

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        return keras.random.uniform(shape, 0.0, self.width, dtype=dtype, seed=self.seed)

    def get_config(self) -> dict[str, Any]:
        return {"width": self.width, "seed": self.seed}

    def expected_moments(self, shape: tuple[int, ...]) -> dict[str, float]:
        w = self.width
        return {"mean": w / 2, "std": w / math.sqrt(12), "low": 0.0, "high": w, "kurtosis": 1.8}


@keras.saving.register_keras_serializable(package="theory_test")
class Plain(I.Initializer):
    """A plugin without the hook."""

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        return keras.random.normal(shape, dtype=dtype, seed=0)

    def get_config(self) -> dict[str, Any]:
        return {}


@register_initializer(package="theory_test")
def unit_uniform(shape: Any, dtype: Any = None) -> Any:
    """A function initializer, as kinit registers one (wrapped in an Initializer)."""
    return keras.random.uniform(shape, dtype=dtype, seed=0)


class Broken(I.Initializer):
    def __init__(self, moments: Any) -> None:
        self.moments = moments

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        return keras.ops.zeros(shape, dtype=dtype)

    def expected_moments(self, shape: tuple[int, ...]) -> Any:
        if isinstance(self.moments, Exception):
            raise self.moments
        return self.moments


# --------------------------------------------------------------------------- theory


@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (3, 3, 16, 32), (2, 3, 5, 7, 11)])
def test_fans_are_keras_fans(shape):
    assert theory.fans(shape) == compute_fans(shape)


def test_truncation_constants_match_keras_and_scipy():
    assert theory.TRUNCATED_STD == pytest.approx(0.87962566103423978, abs=1e-15)
    truncated = scipy_stats.truncnorm(-2, 2)
    assert theory.TRUNCATED_STD == pytest.approx(truncated.std(), rel=1e-12)
    assert theory.TRUNCATED_KURTOSIS == pytest.approx(3 + truncated.stats(moments="k"), rel=1e-12)


def _fan(mode: str, shape: tuple[int, ...]) -> float:
    fan_in, fan_out = compute_fans(shape)
    return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]


@pytest.mark.parametrize(
    "name, scale, mode, distribution",
    [
        ("glorot_uniform", 1.0, "fan_avg", "uniform"),
        ("glorot_normal", 1.0, "fan_avg", "truncated_normal"),
        ("he_uniform", 2.0, "fan_in", "uniform"),
        ("he_normal", 2.0, "fan_in", "truncated_normal"),
        ("lecun_uniform", 1.0, "fan_in", "uniform"),
        ("lecun_normal", 1.0, "fan_in", "truncated_normal"),
    ],
)
@pytest.mark.parametrize("shape", [(30, 20), (3, 3, 16, 32)], ids=["dense", "conv"])
def test_variance_scaling_theory(name, scale, mode, distribution, shape):
    got = theory.theory_for(name, shape)
    std = math.sqrt(scale / _fan(mode, shape))
    assert (got.distribution, got.mean, got.std) == (distribution, 0.0, pytest.approx(std))
    if distribution == "uniform":
        limit = math.sqrt(3 * scale / _fan(mode, shape))
        assert (got.low, got.high, got.kurtosis) == (
            pytest.approx(-limit),
            pytest.approx(limit),
            1.8,
        )
    else:  # Keras draws N(0, std / 0.8796...) cut at 2 of its standard deviations
        cut = 2 * std / 0.87962566103423978
        assert (got.low, got.high) == (pytest.approx(-cut), pytest.approx(cut))


def test_theories_of_the_other_keras_initializers():
    assert theory.theory_for(I.RandomNormal(0.5, 0.2), (4,)) == theory.Theory(
        "normal", 0.5, 0.2, description="RandomNormal: N(0.5, 0.2)", kurtosis=3.0
    )
    uniform = theory.theory_for({"class_name": "RandomUniform", "config": {"minval": -1}}, (4,))
    assert (uniform.mean, uniform.std, uniform.low, uniform.high) == (
        -0.475,
        pytest.approx(1.05 / math.sqrt(12)),
        -1.0,
        0.05,
    )
    truncated = theory.theory_for(I.TruncatedNormal(1.0, 0.3), (4,))
    assert (truncated.std, truncated.low, truncated.high) == (
        pytest.approx(0.3 * 0.87962566103423978),
        pytest.approx(0.4),
        pytest.approx(1.6),
    )
    assert truncated.description == (
        "TruncatedNormal: N(1, 0.3) truncated to [0.4, 1.6], std 0.2639"
    )
    assert theory.theory_for("glorot_uniform", (300, 100)).description == (
        "GlorotUniform: U(-0.1225, 0.1225); scale 1 / fan_avg 200"
    )
    constant = theory.theory_for({"class_name": "Constant", "config": {"value": 0.5}}, (3,))
    assert (constant.distribution, constant.value, constant.std) == ("constant", 0.5, 0.0)
    assert theory.theory_for("ones", (3,)).value == theory.theory_for("zero", (3,)).value + 1
    identity = theory.theory_for(I.Identity(gain=2.0), (2, 3))
    assert (identity.distribution, identity.gain, identity.mean) == ("identity", 2.0, 2 / 3)
    assert identity.std == pytest.approx(np.std(2 * np.eye(2, 3)))
    orthogonal = theory.theory_for("orthogonal", (3, 3, 8, 16))
    assert (orthogonal.distribution, orthogonal.gain) == ("orthogonal", 1.0)
    assert orthogonal.std == pytest.approx(1 / math.sqrt(72))  # exact root mean square


def test_aliases_subclasses_and_recorded_dicts_resolve_alike():
    class Mine(I.GlorotUniform):
        pass

    shape = (30, 20)
    expected = theory.theory_for(I.GlorotUniform(), shape)
    assert theory.theory_for(Mine(), shape).std == expected.std
    assert theory.theory_for({"class_name": "GlorotUniform", "config": {"seed": 3}}, shape) == (
        expected
    )
    assert theory.theory_for("normal", shape) == theory.theory_for(I.RandomNormal(), shape)
    record = {"class_name": "theory_test>Halves", "config": {"width": 2.0, "seed": 1}}
    before = json.dumps(record)
    assert theory.theory_for(record, shape).high == 2.0
    assert json.dumps(record) == before  # the recorded dict is not consumed


# --------------------------------------------------------------------------- real samples pass

VS = [
    I.VarianceScaling(0.5, mode, distribution, seed=i)
    for i, (mode, distribution) in enumerate(
        (m, d)
        for m in ("fan_in", "fan_out", "fan_avg")
        for d in ("truncated_normal", "untruncated_normal", "uniform")
    )
]
FAMILIES = [
    *[
        (init, shape)
        for init in (
            I.GlorotUniform(seed=1),
            I.GlorotNormal(seed=2),
            I.HeUniform(seed=3),
            I.HeNormal(seed=4),
            I.LecunUniform(seed=5),
            I.LecunNormal(seed=6),
        )
        for shape in ((64, 32), (3, 3, 8, 16))
    ],
    *[(init, (3, 3, 8, 16)) for init in VS],
    # Keras's own fan axes, far from the conv default (fan_out 32, not 8 * 16 = 128)
    (
        I.VarianceScaling(1.0, "fan_out", "uniform", 7, input_axes=[0], output_axes=[1, 2]),
        (16, 4, 8),
    ),
    (I.RandomNormal(0.3, 0.2, seed=7), (50, 40)),
    (I.RandomUniform(-0.2, 0.6, seed=8), (50, 40)),
    (I.TruncatedNormal(-0.1, 0.4, seed=9), (50, 40)),
    (I.Constant(0.1), (7,)),
    (I.Constant(-3), (3, 4)),
    (I.Zeros(), (3, 4)),
    (I.Ones(), (7,)),
    (I.Identity(), (4, 4)),
    (I.Identity(gain=2.0), (3, 5)),
    (I.Identity(gain=0.5), (5, 3)),
    (I.Orthogonal(seed=10), (16, 16)),
    (I.Orthogonal(gain=1.5, seed=11), (40, 10)),
    (I.Orthogonal(gain=1.5, seed=12), (10, 40)),
    (I.Orthogonal(seed=13), (3, 3, 8, 16)),  # 72 x 16: orthonormal columns
    (I.Orthogonal(seed=14), (2, 2, 2, 16)),  # 8 x 16: orthonormal rows
    (Laplace(0.1, 0.05, seed=15), (50, 40)),
    (Halves(2.0, seed=16), (50, 40)),
]


def _id(initializer: Any, shape: tuple[int, ...]) -> str:
    name = type(initializer).__name__
    if type(initializer) is I.VarianceScaling:
        name += f"-{initializer.mode}-{initializer.distribution}"
    return f"{name}-{'x'.join(map(str, shape))}"


@pytest.mark.parametrize("initializer, shape", FAMILIES, ids=[_id(*f) for f in FAMILIES])
def test_a_real_sample_passes(initializer, shape):
    record = describe_initializer(initializer)  # what kinit records for the variable
    verdict = check(record, sample(initializer, shape))
    assert (verdict.status, verdict.reasons) == ("PASS", [])
    assert verdict.theory == theory.theory_for(record, shape)
    json.dumps({"theory": asdict(verdict.theory), "observed": verdict.observed}, allow_nan=False)


@pytest.mark.parametrize("initializer", [I.GlorotUniform(seed=1), I.HeNormal(seed=2)])
def test_a_float16_sample_passes(initializer):
    assert check(initializer, sample(initializer, (64, 32), "float16")).status == "PASS"


# --------------------------------------------------------------------------- the acceptance criteria


def test_small_glorot_kernels_pass_for_many_seeds():
    statuses = [
        check("glorot_uniform", sample(I.GlorotUniform(seed=seed), (10, 10))).status
        for seed in range(50)
    ]
    assert "FAIL" not in statuses and statuses.count("WARN") <= 1


def test_a_large_glorot_kernel_two_percent_too_wide_fails():
    init = I.GlorotUniform(seed=0)
    values = sample(init, (1000, 1000))
    record = describe_initializer(init)
    assert check(record, values).status == "PASS"
    verdict = check(record, values * np.float32(1.02))
    assert verdict.status == "FAIL"
    assert verdict.observed["std_z"] > 40
    assert verdict.reasons[1].startswith("std 0.03225 vs 0.03162 expected: 44.")
    assert verdict.reasons[0].endswith(
        "values outside [-0.05477, 0.05477] (min -0.05587, max 0.05587)"
    )


def test_a_two_percent_scale_error_fails_through_the_std_alone():
    init = I.RandomNormal(0.0, 0.05, seed=1)  # unbounded: only the std can tell
    verdict = check(init, sample(init, (1000, 1000)) * np.float32(1.02))
    assert verdict.status == "FAIL" and len(verdict.reasons) == 1
    assert verdict.observed["std_z"] > 20 and abs(verdict.observed["mean_z"]) < 4


def test_he_normal_sample_fails_as_lecun_normal():
    values = sample(I.HeNormal(seed=3), (64, 32))
    verdict = check("lecun_normal", values)
    assert verdict.status == "FAIL"
    assert verdict.reasons == [
        "236 of 2048 values outside [-0.2842, 0.2842] (min -0.4008, max 0.3985)",
        "std 0.1759 vs 0.125 expected: 31.6 standard errors",  # sqrt(2) too wide
    ]
    assert check("he_normal", values).status == "PASS"


def test_a_value_outside_a_uniform_fails():
    init = I.RandomUniform(-0.1, 0.1, seed=4)
    values = sample(init, (20, 10))
    values[3, 4] = 0.1001
    verdict = check(init, values)
    assert verdict.status == "FAIL"
    assert verdict.reasons == ["1 of 200 values outside [-0.1, 0.1] (min -0.09936, max 0.1001)"]


def test_a_constant_with_one_changed_value_fails():
    values = sample(I.Constant(0.1), (4, 5))
    values[2, 3] = np.nextafter(np.float32(0.1), np.float32(1))  # one float32 step away
    verdict = check({"class_name": "Constant", "config": {"value": 0.1}}, values)
    assert verdict.status == "FAIL" and verdict.observed["differing"] == 1
    assert verdict.reasons == ["1 of 20 values differ from 0.1 (by up to 7.45e-09)"]


@pytest.mark.parametrize(
    "values, error",
    [
        (np.random.default_rng(0).normal(0, 1 / 8, (64, 32)), "W^T W"),
        (np.asarray(I.Orthogonal(seed=1)((32, 64))) * 1.001, "W W^T"),
    ],
    ids=["random", "scaled"],
)
def test_a_non_orthogonal_matrix_fails(values, error):
    verdict = check("orthogonal", values.astype(np.float32))
    assert verdict.status == "FAIL" and f"differs from 1 * I ({error})" in verdict.reasons[0]


def test_identity_gain_is_recorded_and_checked():
    values = sample(I.Identity(gain=2.0), (3, 5))
    recorded = describe_initializer(I.Identity(gain=2.0))
    assert recorded == {"class_name": "Identity", "config": {"gain": 2.0}}
    verdict = check(recorded, values)
    assert (verdict.status, verdict.theory.gain) == ("PASS", 2.0)
    assert check(describe_initializer(I.Identity()), values).status == "FAIL"


def test_identity_without_a_recorded_gain_takes_any_one_gain():
    """Keras's Identity.get_config drops the gain, so a saved model's layer config has none."""
    values = sample(I.Identity(gain=2.0), (3, 5))
    record = {"class_name": "Identity", "config": {}}
    verdict = check(record, values)
    assert (verdict.status, verdict.theory.gain, verdict.observed["gain"]) == ("PASS", None, 2.0)
    assert verdict.theory.description == "Identity: gain * eye(3, 5), the gain not recorded"
    values[1, 1] = 3.0
    assert check(record, values).reasons == [
        "differs from 2 * eye(3, 5) by up to 1 (tolerance 9.5e-07)"
    ]
    assert check(I.Identity(), sample(I.Identity(gain=2.0), (3, 5))).status == "FAIL"


def test_a_wrong_identity_fails():
    values = sample(I.Identity(), (3, 4))
    values[0, 1] = 1e-3
    verdict = check("identity", values)
    assert verdict.status == "FAIL"
    assert verdict.reasons[0].startswith("differs from 1 * eye(3, 4) by up to 0.001")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_fail(bad):
    values = sample(I.GlorotUniform(seed=5), (64, 32))
    values[0, 0] = bad
    verdict = check("glorot_uniform", values)
    assert (verdict.status, verdict.reasons) == ("FAIL", ["1 of 2048 values are NaN or infinite"])
    assert verdict.observed["nonfinite"] == 1
    json.dumps(verdict.observed, allow_nan=False)


# --------------------------------------------------------------------------- plugins and no theory


@pytest.mark.parametrize(
    "record",
    [
        {"class_name": "theory_test>Laplace", "config": {"loc": 0.0, "b": 0.05, "seed": 2}},
        {"class_name": "theory_test>Halves", "config": {"width": 0.5, "seed": 3}},
    ],
)
def test_a_plugin_with_the_hook_is_checked(record):
    init = keras.initializers.get(json.loads(json.dumps(record)))
    values = sample(init, (100, 100))
    verdict = check(record, values)
    assert (verdict.status, verdict.theory.distribution) == ("PASS", "custom")
    scaled = check(record, values * np.float32(1.1))
    assert scaled.status == "FAIL" and scaled.observed["std_z"] > 6


def test_the_hook_overrides_a_keras_base_class():
    class Narrow(I.RandomNormal):
        def expected_moments(self, shape):
            return {"mean": 0.0, "std": 0.01}

    got = theory.theory_for(Narrow(0.0, 1.0), (4,))
    assert (got.distribution, got.std, got.description) == (
        "custom",
        0.01,
        "Narrow: mean 0, std 0.01",
    )


@pytest.mark.parametrize(
    "initializer, reason",
    [
        (
            {"class_name": "theory_test>Plain", "config": {}},
            "theory_test>Plain defines no expected_moments(shape), so there is no theory to check",
        ),
        (
            {"class_name": "theory_test>unit_uniform", "config": {}},
            "theory_test>unit_uniform defines no expected_moments(shape), so there is no theory "
            "to check",
        ),
        (
            lambda shape, dtype=None: np.ones(shape),
            "the function <lambda> is not an Initializer, so it has no theory",
        ),
        (np.ones((3, 4)), "an initial value (ndarray) is not an Initializer, so it has no theory"),
        (None, "no initializer is known for this variable (an initial value?)"),
        (I.STFT(), "STFT defines no expected_moments(shape), so there is no theory to check"),
        (
            {"class_name": "theory_test>Missing", "config": {}},
            "cannot resolve the initializer 'theory_test>Missing': Could not interpret "
            "initializer identifier: {'class_name': 'theory_test>Missing', 'config': {}}",
        ),
        (
            Broken(ZeroDivisionError("oops")),
            "Broken.expected_moments(3, 4) raised ZeroDivisionError: oops",
        ),
        (
            Broken({"mean": 0.0}),
            "Broken.expected_moments must return a dict with float 'mean' and 'std' (and "
            "optional 'low', 'high', 'kurtosis'). Received: {'mean': 0.0}",
        ),
        (
            Broken({"mean": 0.0, "std": -1}),
            "Broken.expected_moments gave mean=0.0, std=-1.0; std must be >= 0",
        ),
    ],
    ids=[
        "plugin",
        "function-plugin",
        "function",
        "array",
        "none",
        "stft",
        "unknown",
        "hook-raises",
        "hook-incomplete",
        "hook-negative",
    ],
)
def test_no_theory(initializer, reason):
    values = np.asarray(keras.random.normal((3, 4), seed=0))
    verdict = check(initializer, values)
    assert (verdict.status, verdict.theory, verdict.reasons) == ("NO THEORY", None, [reason])
    assert verdict.observed["std"] == pytest.approx(float(np.std(values.astype(np.float64))))
    assert theory.theory_for(initializer, (3, 4)) is None


def test_identity_and_orthogonal_need_their_ranks():
    assert check("identity", np.ones(3, np.float32)).reasons == [
        "Identity makes only 2-D matrices; this variable has shape (3,)"
    ]
    assert check("orthogonal", np.ones(3, np.float32)).status == "NO THEORY"


# --------------------------------------------------------------------------- tiny variables


def test_one_value_cannot_show_its_spread():
    one = check(I.RandomNormal(0.0, 0.05), np.array([0.01], np.float32))
    assert (one.status, one.reasons) == ("WARN", ["1 value: its spread cannot be tested"])
    far = check(I.RandomNormal(0.0, 0.05), np.array([0.5], np.float32))
    assert far.status == "FAIL" and far.reasons[0] == "mean 0.5 vs 0 expected: 10.0 standard errors"
    assert check("zeros", np.zeros((), np.float32)).status == "PASS"


def test_empty_variables():
    assert check("glorot_uniform", np.zeros((0, 3), np.float32)).reasons == ["no values to test"]
    assert check("zeros", np.zeros((0, 3), np.float32)).status == "PASS"
    assert check("orthogonal", np.zeros((4, 0), np.float32)).status == "PASS"


def test_a_function_of_a_layers_own_code_has_no_theory_said_plainly():
    # LSTM's unit_forget_bias draws its bias with a local function named bias_initializer.
    found, why = theory.theory_with_reason({"class_name": "bias_initializer", "config": {}}, (16,))
    assert found is None
    assert why == (
        "'bias_initializer' is not an initializer Keras can make again (a function of the "
        "layer's own code), so no theory describes its values"
    )
