"""An example user plugin: a custom initializer class and a custom activation function.

Load it from a config (`plugins: [plugins/my_plugin.py]`, relative to the config file)
or on the command line (`--plugin configs/plugins/my_plugin.py`).
"""

import keras

from kinit_cli import register_activation, register_initializer


@register_initializer
class ScaledUniform(keras.initializers.Initializer):
    """Draws from U(-scale/sqrt(fan_in), scale/sqrt(fan_in)).

    Args:
        scale: Multiplies the limit of the uniform distribution.
        seed: Optional integer seed.
    """

    def __init__(self, scale=1.0, seed=None):
        self.scale = scale
        self.seed = seed

    def __call__(self, shape, dtype=None):
        fan_in = shape[0] if len(shape) > 1 else 1
        limit = self.scale / fan_in**0.5
        return keras.random.uniform(shape, -limit, limit, dtype=dtype, seed=self.seed)

    def get_config(self):
        return {"scale": self.scale, "seed": self.seed}


@register_activation
def scaled_tanh(x):
    """1.7159 * tanh(2x/3), LeCun's scaled hyperbolic tangent."""
    return 1.7159 * keras.ops.tanh(x * (2.0 / 3.0))
