"""kinit: train Keras models from YAML configs and see what is inside their weights.

The public API is the plugin decorators; importing this package does not import TensorFlow.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from kinit_cli.registry.registration import (
    register,
    register_activation,
    register_callback,
    register_constraint,
    register_initializer,
    register_layer,
    register_loss,
    register_metric,
    register_optimizer,
    register_regularizer,
)

try:
    __version__ = version("kinit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "__version__",
    "register",
    "register_activation",
    "register_callback",
    "register_constraint",
    "register_initializer",
    "register_layer",
    "register_loss",
    "register_metric",
    "register_optimizer",
    "register_regularizer",
]
