"""`deterministic: true` on each backend."""

from __future__ import annotations

import os

from kinit_cli.runtime import backend
from kinit_cli.runtime.imports import keras, tensorflow


def enable() -> None:
    """Same inputs, same bits, on the running backend's GPUs too (CPUs already are, but for
    TensorFlow's parallel reductions): TensorFlow's op determinism, XLA's deterministic GPU
    ops for JAX (read when JAX starts), torch's deterministic algorithms."""
    name = backend.current()
    if name == "tensorflow":
        tensorflow().config.experimental.enable_op_determinism()
    elif name == "jax":
        flag = "--xla_gpu_deterministic_ops=true"
        if flag not in os.environ.get("XLA_FLAGS", ""):
            os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()
    else:
        # cuBLAS needs this set before its first call to be deterministic.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        keras()
        import torch

        torch.use_deterministic_algorithms(True)
