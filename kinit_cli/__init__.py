"""kinit: train Keras models from YAML configs and see what is inside their weights.

The public API is the plugin decorators; importing this package does not import TensorFlow.
"""

from __future__ import annotations

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
from kinit_cli.runtime.versions import KINIT as __version__

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
