"""kinit: train Keras models from YAML configs and see what is inside their weights.

The public API is the plugin decorators and load_run; importing this package does not
import TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from kinit_cli.inference.runs import LoadedRun


def load_run(
    run: str | Path,
    *,
    trust_plugins: bool = False,
    plugins: Sequence[str] = (),
    unsafe_deserialization: bool = False,
) -> LoadedRun:
    """The trained model of a run directory (or a .keras file), weights restored whether the
    run saved model.keras or weights only, with what predict does to inputs.

    `.model` is the Keras model; `.preprocess(INPUT)` turns a table path, image paths or
    folder, an .npy/.npz path or an array into its input, as `kinit predict` does;
    `.class_names` names its outputs. The plugins the run names are imported only with
    `trust_plugins` (their code runs) or when `plugins` (files or modules) gives them, as
    `--trust-plugins` and `--plugin` do on the command line.

    Example:
        run = kinit_cli.load_run("runs/digits-mlp-20260101-120000")
        probabilities = run.model.predict(run.preprocess("new.npy"))
    """
    from kinit_cli.errors import UntrustedCode
    from kinit_cli.inference.runs import load  # imports Keras: only when called
    from kinit_cli.registry.trust import Trust

    trust = Trust(tuple(plugins), trust_plugins, unsafe_deserialization)
    try:
        return load(str(run), trust)
    except UntrustedCode as exc:  # its message speaks of the command line's flags
        said = str(exc)
        for flag, argument in _ARGUMENTS.items():
            said = said.replace(flag, argument)
        raise UntrustedCode(said, exc.plugins, exc.classes) from None


# The command line's flags in a message, as load_run's arguments.
_ARGUMENTS = {
    "--trust-plugins": "trust_plugins=True",
    "--unsafe-deserialization": "unsafe_deserialization=True",
    "--plugin FILE": "plugins=[FILE]",
    "--plugin": "plugins=[...]",
}


__all__ = [
    "__version__",
    "load_run",
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
