"""Each of Keras's layers (and kinit's built-in ones) sized from its config alone: the
parameters it makes and its output shape, for an input shape without the batch axis.

Keras's own arithmetic, written out: footprint.py builds each layer symbolically first and
comes here for a layer that cannot be built so (a build() that reads values), for a
`.keras` file's layers (whose code does not run before their size is known) and where
Keras is not loaded. Every rule is checked against what Keras builds in the tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Shape = tuple[int | None, ...]
# (the layer's config, its input shape without the batch axis) -> (parameters, output
# shape), or None when this config or input is not one the rule knows.
Rule = Callable[[dict[str, Any], Shape], "tuple[int, Shape] | None"]


def _last(shape: Shape) -> int:
    if not shape or shape[-1] is None:
        raise ValueError("the last axis has no known size")
    return shape[-1]


def _dense(config: dict[str, Any], shape: Shape) -> tuple[int, Shape]:
    units = int(config["units"])
    return _last(shape) * units + units * bool(config.get("use_bias", True)), (*shape[:-1], units)


def _simple_dense(config: dict[str, Any], shape: Shape) -> tuple[int, Shape]:
    return _dense({"units": 32, **config}, shape)


def _linear(config: dict[str, Any], shape: Shape) -> tuple[int, Shape]:
    units, fan_in = int(config.get("units", 32)), int(config.get("input_dim", 32))
    return fan_in * units + units, (*shape[:-1], units)


def _tuple(value: Any, rank: int) -> tuple[int, ...]:
    values = (value,) * rank if isinstance(value, int) else tuple(value)
    if len(values) != rank:
        raise ValueError("wrong rank")
    return tuple(int(v) for v in values)


def _window(n: int | None, size: int, stride: int, padding: str, dilation: int = 1) -> int | None:
    """An axis's length after a convolution or pooling window (Keras's arithmetic)."""
    if n is None:
        return None
    if padding in ("same", "causal"):
        return math.ceil(n / stride)
    if padding != "valid":
        raise ValueError(padding)
    return max(0, (n - dilation * (size - 1) - 1) // stride + 1)


def _channels_last(config: dict[str, Any]) -> None:
    if config.get("data_format") not in (None, "channels_last"):
        raise ValueError("only channels_last is sized")


def _conv(rank: int) -> Rule:
    def rule(config: dict[str, Any], shape: Shape) -> tuple[int, Shape]:
        _channels_last(config)
        if len(shape) != rank + 1:
            raise ValueError("wrong input rank")
        filters, groups = int(config["filters"]), int(config.get("groups", 1))
        kernel = _tuple(config["kernel_size"], rank)
        strides = _tuple(config.get("strides", 1), rank)
        dilation = _tuple(config.get("dilation_rate", 1), rank)
        padding = config.get("padding", "valid")
        weights = math.prod(kernel) * (_last(shape) // groups) * filters
        weights += filters * bool(config.get("use_bias", True))
        spatial = tuple(
            _window(n, k, s, padding, d)
            for n, k, s, d in zip(shape[:-1], kernel, strides, dilation, strict=True)
        )
        return weights, (*spatial, filters)

    return rule


def _pool(rank: int) -> Rule:
    def rule(config: dict[str, Any], shape: Shape) -> tuple[int, Shape]:
        _channels_last(config)
        if len(shape) != rank + 1:
            raise ValueError("wrong input rank")
        size = _tuple(config.get("pool_size", 2), rank)
        strides = _tuple(config.get("strides") or size, rank)
        padding = config.get("padding", "valid")
        spatial = tuple(
            _window(n, k, s, padding) for n, k, s in zip(shape[:-1], size, strides, strict=True)
        )
        return 0, (*spatial, shape[-1])

    return rule


def _global_pool(rank: int) -> Rule:
    def rule(config: dict[str, Any], shape: Shape) -> tuple[int, Shape]:
        _channels_last(config)
        if len(shape) != rank + 1:
            raise ValueError("wrong input rank")
        return 0, ((1,) * rank if config.get("keepdims") else ()) + (shape[-1],)

    return rule


def _same(config: dict[str, Any], shape: Shape) -> tuple[int, Shape]:
    return 0, shape


def _flatten(config: dict[str, Any], shape: Shape) -> tuple[int, Shape]:
    _channels_last(config)
    return 0, (None if None in shape else math.prod(shape),)  # type: ignore[arg-type]


def _reshape(config: dict[str, Any], shape: Shape) -> tuple[int, Shape]:
    target = tuple(int(d) for d in config["target_shape"])
    if -1 in target:
        if None in shape:
            raise ValueError("unknown size")
        known = math.prod(d for d in target if d != -1)
        target = tuple(math.prod(shape) // known if d == -1 else d for d in target)  # type: ignore[arg-type]
    return 0, target


def _normalization(per_channel: Callable[[dict[str, Any]], int]) -> Rule:
    def rule(config: dict[str, Any], shape: Shape) -> tuple[int, Shape]:
        if config.get("axis", -1) not in (-1, len(shape)):
            raise ValueError("only the last axis is sized")
        return per_channel(config) * _last(shape), shape

    return rule


def _embedding(config: dict[str, Any], shape: Shape) -> tuple[int, Shape]:
    output = int(config["output_dim"])
    return int(config["input_dim"]) * output, (*shape, output)


def _recurrent(gates: int) -> Rule:
    def rule(config: dict[str, Any], shape: Shape) -> tuple[int, Shape]:
        if len(shape) != 2 or config.get("return_state"):
            raise ValueError("sized for (time, features) inputs and one output")
        units, features = int(config["units"]), _last(shape)
        biases = units * bool(config.get("use_bias", True))
        if gates == 3 and config.get("reset_after", True):
            biases *= 2  # GRU's reset_after keeps a second bias for the recurrent kernel
        weights = gates * (features * units + units * units + biases)
        return weights, ((shape[0], units) if config.get("return_sequences") else (units,))

    return rule


MERGES = ("Add", "Average", "Concatenate", "Maximum", "Minimum", "Multiply", "Subtract")
_SHAPE_ONLY = (
    "Activation ActivityRegularization AlphaDropout Dropout ELU GaussianDropout GaussianNoise "
    "Identity LeakyReLU Masking ReLU Softmax SpatialDropout1D SpatialDropout2D SpatialDropout3D"
)
# Keras class name (or kinit built-in layer) -> its rule.
RULES: dict[str, Rule] = {
    **{name: _same for name in _SHAPE_ONLY.split()},
    "Dense": _dense,
    "SimpleDense": _simple_dense,
    "Linear": _linear,
    "Embedding": _embedding,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "BatchNormalization": _normalization(
        lambda c: 2 + bool(c.get("center", True)) + bool(c.get("scale", True))
    ),
    "LayerNormalization": _normalization(
        lambda c: bool(c.get("center", True)) + bool(c.get("scale", True))
    ),
    "SimpleRNN": _recurrent(1),
    "GRU": _recurrent(3),
    "LSTM": _recurrent(4),
    **{f"Conv{d}D": _conv(d) for d in (1, 2, 3)},
    **{f"{kind}Pooling{d}D": _pool(d) for kind in ("Max", "Average") for d in (1, 2, 3)},
    **{
        f"Global{kind}Pooling{d}D": _global_pool(d)
        for kind in ("Max", "Average")
        for d in (1, 2, 3)
    },
}
