"""The versions a run records: kinit's own, and Python's, Keras's and TensorFlow's."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

from kinit_cli.runtime.imports import keras, tensorflow

try:
    KINIT = version("kinit")
except PackageNotFoundError:  # running from a source tree that was never installed
    KINIT = "0+unknown"


def versions() -> dict[str, str]:
    """What metrics.json says a run ran on (imports TensorFlow: for train only)."""
    return {
        "python": platform.python_version(),
        "tensorflow": tensorflow().__version__,
        "keras": keras().__version__,
        "kinit": KINIT,
    }
