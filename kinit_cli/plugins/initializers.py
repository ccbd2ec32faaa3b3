"""Custom initializers written the two ways Keras documents: a subclass and a plain function."""

from __future__ import annotations

from typing import Any

import keras

from kinit_cli import register_initializer


@register_initializer
class ExampleRandomNormal(keras.initializers.Initializer):
    """Draws from a normal distribution with the given mean and standard deviation.

    The classic custom-initializer example: `__call__(shape, dtype)` returns the tensor,
    `get_config()` mirrors `__init__` so a saved model recreates it.

    Args:
        mean: Mean of the distribution.
        stddev: Standard deviation of the distribution.
        seed: Optional integer seed; with a seed, every call draws the same values.
    """

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        self.mean = mean
        self.stddev = stddev
        self.seed = seed

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        return keras.random.normal(
            shape, mean=self.mean, stddev=self.stddev, dtype=dtype, seed=self.seed
        )

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}

    def expected_moments(self, shape: tuple[int, ...]) -> dict[str, float]:
        """The moments `inspect-weights --check` holds samples to (kinit's theory hook)."""
        return {"mean": self.mean, "std": self.stddev, "kurtosis": 3.0}


@register_initializer
def unit_normal(shape: Any, dtype: Any = None) -> Any:
    """Draws from the standard normal distribution (a function-style initializer)."""
    return keras.random.normal(shape, dtype=dtype)
