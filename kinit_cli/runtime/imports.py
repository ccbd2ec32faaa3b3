"""The one place Keras and TensorFlow are imported: lazily, once, without native log noise.

Keras is imported on the backend runtime/backend.py chose; TensorFlow only on its own
backend, or by a feature that needs it (tensorflow()).
"""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from kinit_cli.runtime import backend, compat, switches

_keras: ModuleType | None = None


def native_logs() -> bool:
    """Whether TensorFlow's native start-up logs go through: --debug (or KINIT_DEBUG=1)."""
    return switches.current().debug


def keras() -> ModuleType:
    """Import Keras (with TensorFlow on its own backend) on first use; return `keras`.

    TensorFlow's C++ runtime writes INFO lines (oneDNN, CUDA stubs) to file descriptor 2
    before its logging is configured, so no environment variable silences them; they are
    captured during the import and shown only if the import fails or with --debug.
    """
    global _keras
    if _keras is None:
        name = backend.current()
        # TensorFlow's runtime logs its own view of errors kinit reports (a lost peer
        # worker, say) as native ERROR lines; those show with --debug only.
        shown = native_logs()
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if shown else "3")
        with _captured_native_stderr(show=shown) as replay:
            try:
                import keras as keras_module

                if name == "tensorflow":
                    import tensorflow as tf

                    # Device discovery (cuInit and friends) logs at first use: do it here.
                    tf.config.list_physical_devices()
                else:
                    compat.tensorflow_only_once_loaded()
            except Exception:  # a failed import: its logs say why (not so for a Ctrl-C)
                replay()
                raise
        _keras = keras_module
    return _keras


def tensorflow() -> Any:
    """The `tensorflow` module, on any backend, as quietly as keras() imports it."""
    keras()
    with _captured_native_stderr(show=native_logs() or "tensorflow" in sys.modules) as replay:
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # device discovery logs at first use
        except Exception:
            replay()
            raise
    return tf


@contextmanager
def _captured_native_stderr(show: bool):
    """Point fd 2 at a temporary file for the duration; yield a function that prints what came."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        fd = -1  # stderr replaced (pytest capture, CliRunner): nothing native to redirect
    if fd < 0 or show:
        yield lambda: None
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), fd)
        restored = False

        def restore() -> None:
            nonlocal restored
            if not restored:
                sys.stderr.flush()
                os.dup2(saved, fd)
                restored = True

        def replay() -> None:
            restore()
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))

        try:
            yield replay
        finally:
            restore()
            os.close(saved)
