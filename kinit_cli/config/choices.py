"""Closed sets of names that a config and the command line share: here, apart from the YAML
machinery, so that `kinit --help` can list them without loading it."""

from __future__ import annotations

# The tf.distribute strategies a config or --strategy may name.
STRATEGIES = ("default", "mirrored", "multi_worker_mirrored")
