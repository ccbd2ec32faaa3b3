"""The variables Keras's own layer classes make, known from a class and its config alone.

A `.keras` file's model.weights.h5 stores each layer's variables as `layers/<layer>/vars/<i>`,
without their names. For Keras's built-in layers the names, their order, whether each is
trainable and which config key holds its initializer follow from the class and its config
(`use_bias`, `center`, `scale`, ...), as each class's `build()` in Keras 3 makes them
(checked against Keras by tests/weights/test_builtin_layers.py). This lets inspect-weights
name a file's variables without importing Keras or rebuilding the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Slot:
    """One variable a layer makes: its name, whether it is trainable, and what fills it."""

    name: str
    trainable: bool
    # The config key holding its initializer ('kernel_initializer'), or a fixed record
    # ({class_name, config}) for one the class's own code chooses.
    initializer: str | dict[str, Any]


_ZEROS = {"class_name": "Zeros", "config": {}}
_ONES = {"class_name": "Ones", "config": {}}


def _kernel_bias(kernel_key: str = "kernel_initializer") -> Callable[[dict], list[Slot]]:
    def slots(config: dict[str, Any]) -> list[Slot]:
        out = [Slot("kernel", True, kernel_key)]
        if config.get("use_bias", True):
            out.append(Slot("bias", True, "bias_initializer"))
        return out

    return slots


def _einsum_dense(config: dict[str, Any]) -> list[Slot]:
    out = [Slot("kernel", True, "kernel_initializer")]
    if config.get("bias_axes"):
        out.append(Slot("bias", True, "bias_initializer"))
    return out


def _separable(config: dict[str, Any]) -> list[Slot]:
    out = [
        Slot("depthwise_kernel", True, "depthwise_initializer"),
        Slot("pointwise_kernel", True, "pointwise_initializer"),
    ]
    if config.get("use_bias", True):
        out.append(Slot("bias", True, "bias_initializer"))
    return out


def _batch_norm(config: dict[str, Any]) -> list[Slot] | None:
    if config.get("renorm"):
        return None  # renorm's extra variables: left to Keras
    return [
        *_scale_center(config),
        Slot("moving_mean", False, "moving_mean_initializer"),
        Slot("moving_variance", False, "moving_variance_initializer"),
    ]


def _scale_center(config: dict[str, Any]) -> list[Slot]:
    out = []
    if config.get("scale", True):
        out.append(Slot("gamma", True, "gamma_initializer"))
    if config.get("center", True):
        out.append(Slot("beta", True, "beta_initializer"))
    return out


def _layer_norm(config: dict[str, Any]) -> list[Slot]:
    rms = config.get("rms_scaling", False)
    out = []
    if config.get("scale", True) or rms:
        out.append(Slot("gamma", True, "gamma_initializer"))
    if config.get("center", True) and not rms:
        out.append(Slot("beta", True, "beta_initializer"))
    return out


def _normalization(config: dict[str, Any]) -> list[Slot]:
    if config.get("mean") is not None:
        return []  # mean and variance given: constants, not variables
    return [
        Slot("mean", False, _ZEROS),
        Slot("variance", False, _ONES),
        Slot("count", False, _ZEROS),
    ]


def _one(name: str, key: str) -> Callable[[dict], list[Slot]]:
    return lambda config: [Slot(name, True, key)]


def _none(config: dict[str, Any]) -> list[Slot]:
    return []


# keras.layers classes by config.json class_name.
_LAYERS: dict[str, Callable[[dict], list[Slot] | None]] = {
    "Dense": _kernel_bias(),
    "EinsumDense": _einsum_dense,
    **{
        name: _kernel_bias()
        for name in (
            *(f"Conv{d}D" for d in (1, 2, 3)),
            *(f"Conv{d}DTranspose" for d in (1, 2, 3)),
        )
    },
    "DepthwiseConv1D": _kernel_bias("depthwise_initializer"),
    "DepthwiseConv2D": _kernel_bias("depthwise_initializer"),
    "SeparableConv1D": _separable,
    "SeparableConv2D": _separable,
    "BatchNormalization": _batch_norm,
    "LayerNormalization": _layer_norm,
    "GroupNormalization": _scale_center,
    "RMSNormalization": lambda config: [Slot("scale", True, _ONES)],
    "Embedding": _one("embeddings", "embeddings_initializer"),
    "PReLU": _one("alpha", "alpha_initializer"),
    "Normalization": _normalization,
    **{
        name: _none
        for name in (
            "InputLayer Activation ReLU LeakyReLU ELU Softmax Dropout SpatialDropout1D "
            "SpatialDropout2D SpatialDropout3D GaussianNoise GaussianDropout AlphaDropout "
            "Flatten Reshape Permute RepeatVector Cropping1D Cropping2D Cropping3D "
            "ZeroPadding1D ZeroPadding2D ZeroPadding3D UpSampling1D UpSampling2D UpSampling3D "
            "MaxPooling1D MaxPooling2D MaxPooling3D AveragePooling1D AveragePooling2D "
            "AveragePooling3D GlobalAveragePooling1D GlobalAveragePooling2D "
            "GlobalAveragePooling3D GlobalMaxPooling1D GlobalMaxPooling2D GlobalMaxPooling3D "
            "Add Subtract Multiply Average Maximum Minimum Concatenate Dot Rescaling Resizing "
            "CenterCrop Identity Masking UnitNormalization"
        ).split()
    },
}

# Keras's own classes outside keras.layers, by (module, class_name): no variables.
_OWN: dict[tuple[str, str], Callable[[dict], list[Slot] | None]] = {
    ("keras.src.applications.inception_resnet_v2", "CustomScaleLayer"): _none,
}


def classes() -> list[str]:
    """The keras.layers classes the table knows."""
    return list(_LAYERS)


def slots(entry: dict[str, Any]) -> list[Slot] | None:
    """The variables of one config.json layer entry ({module, class_name, config}), in the
    order the file stores them; None for a class (or a config: LoRA, quantized, renorm) the
    table does not know."""
    module, name = entry.get("module"), entry.get("class_name")
    config = entry.get("config")
    if not isinstance(config, dict) or not isinstance(name, str):
        return None
    if config.get("lora_rank") or config.get("quantization_config") or _quantized(config):
        return None
    if module == "keras.layers":
        rule = _LAYERS.get(name)
    elif isinstance(module, str) and module.startswith("keras.src.ops."):
        rule = _none  # an operation on tensors (x + 3.0): it holds no variables
    else:
        rule = _OWN.get((module, name)) if isinstance(module, str) else None
    return None if rule is None else rule(config)


def _quantized(config: dict[str, Any]) -> bool:
    """Whether the layer's dtype policy is anything but a plain one (int8, float8, ...)."""
    policy = config.get("dtype")
    if isinstance(policy, dict):
        return policy.get("class_name") != "DTypePolicy"
    return isinstance(policy, str) and policy not in _PLAIN_POLICIES


_PLAIN_POLICIES = {"float16", "float32", "float64", "bfloat16", "mixed_float16", "mixed_bfloat16"}


def initializer_record(config: dict[str, Any], slot: Slot) -> dict[str, Any] | None:
    """The {class_name, config} of a slot's initializer as kinit records it for a loaded
    model (variables.describe_initializer): config values that are None left out, and
    Identity's gain, which Keras's get_config omits, at its default."""
    if isinstance(slot.initializer, dict):
        return {"class_name": slot.initializer["class_name"], "config": {}}
    given = config.get(slot.initializer)
    if not isinstance(given, dict) or not isinstance(given.get("class_name"), str):
        return None
    if given.get("module") not in (None, "keras.initializers"):
        return None  # a plugin's: its record needs its class
    inner = given.get("config") or {}
    record = {k: v for k, v in inner.items() if v is not None}
    if given["class_name"] == "Identity":
        record.setdefault("gain", 1.0)
    return {"class_name": given.get("registered_name") or given["class_name"], "config": record}
