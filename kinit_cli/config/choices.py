"""Closed sets of names that a config and the command line share: here, apart from the YAML
machinery, so that `kinit --help` can list them without loading it."""

from __future__ import annotations

# The Keras backends a config or --backend may name.
BACKENDS = ("tensorflow", "jax", "torch")
# The strategies a config or --strategy may name: tf.distribute's, and JAX's DataParallel
# (through keras.distribution).
STRATEGIES = ("default", "mirrored", "multi_worker_mirrored", "data_parallel")
