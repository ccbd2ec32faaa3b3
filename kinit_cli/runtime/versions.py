"""The versions a run records: kinit's own, and Python's, Keras's and its backend's."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

from kinit_cli.runtime import backend
from kinit_cli.runtime.imports import keras

try:
    KINIT = version("kinit")
except PackageNotFoundError:  # running from a source tree that was never installed
    KINIT = "0+unknown"


def versions() -> dict[str, str]:
    """What metrics.json says a run ran on (imports Keras: for train only)."""
    name = backend.current()
    keras()
    return {
        "python": platform.python_version(),
        name: version(name),  # each backend's package has its name
        "keras": keras().__version__,
        "kinit": KINIT,
    }
