"""Every use of a private Keras or TensorFlow API, in one file, so an upgrade touches one place.

Each was checked against Keras 3.15.1 and TensorFlow 2.21.0; each says what it stands in
for and what happens if it moves. Keras and TensorFlow are imported inside the functions,
as everywhere, so that importing this module stays cheap.
"""

from __future__ import annotations

import collections
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def stateless_scope() -> Any:
    """Keras's StatelessScope (public as keras.StatelessScope), kept here for its callers: it
    reads a .keras file and round-trips a class's config without state updates."""
    import keras

    return keras.StatelessScope()


@contextmanager
def declared_only() -> Iterator[None]:
    """Variables made inside get a shape and a dtype, and never a value; the random state is
    left as it was, so a seeded build after the block draws what it would have without it.

    The public keras.StatelessScope(initialize_variables=False) declares them, but Keras
    still lists each in its global "uninitialized_variables" (Keras 3.15:
    keras.src.backend.common.variables) for the next StatelessScope's exit to draw, 96 GB
    for a 2.4e10-parameter Dense: the list is put back as it was on the way out. So are
    Python's and NumPy's generators (an initializer given no seed draws one from Python's)
    and Keras's global SeedGenerator (keras.src.random.seed_generator), which a layer made
    inside would otherwise leave without a value, and Keras's name-scope stack.
    """
    import random

    import keras
    import numpy as np
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator

    kept = {
        "uninitialized_variables": list(
            global_state.get_global_attribute("uninitialized_variables", [], set_to_default=True)
        ),
        # A layer whose call fails inside leaves its name scope on Keras's stack (TensorFlow
        # refuses a scope such as '_hidden.1' after Keras pushed it): every later weight's
        # path would start with it.
        "name_scope_stack": list(
            global_state.get_global_attribute("name_scope_stack", [], set_to_default=True)
        ),
        seed_generator.GLOBAL_SEED_GENERATOR: global_state.get_global_attribute(
            seed_generator.GLOBAL_SEED_GENERATOR
        ),
    }
    python, numpy = random.getstate(), np.random.get_state()
    try:
        with keras.StatelessScope(initialize_variables=False):
            yield
    finally:
        for key, value in kept.items():
            global_state.set_global_attribute(key, value)
        random.setstate(python)
        np.random.set_state(numpy)


@contextmanager
def fresh_object_names() -> Iterator[None]:
    """Number unnamed layers and variables from scratch inside the block.

    Keras numbers them process-wide (`dense_2`, `variable_3` where the first model built in
    a process got `dense`, `variable`), in the global attribute `object_name_uids` (Keras
    3.15: keras.src.backend.common.global_state). Its own counter is put back afterwards.
    """
    from keras.src.backend.common import global_state

    saved = global_state.get_global_attribute("object_name_uids")
    global_state.set_global_attribute("object_name_uids", collections.defaultdict(int))
    try:
        yield
    finally:
        global_state.set_global_attribute("object_name_uids", saved)


def compute_output_spec(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Trace `fn` symbolically in a scratch graph (Keras 3.15: keras.src.backend); the public
    `Layer.compute_output_spec` would call the layer's own compute_output_shape instead."""
    from keras.src.backend import compute_output_spec as trace

    return trace(fn, *args, **kwargs)


def call_arguments(layer: Any) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    """The symbolic arguments a layer applied once in a model was called with, keyword ones
    (a mask, a padding_mask) included; None for one applied at several places or none
    (Keras 3.15: Layer._inbound_nodes, Node.arguments)."""
    nodes = list(getattr(layer, "_inbound_nodes", []) or [])
    if len(nodes) != 1:
        return None
    return tuple(nodes[0].arguments.args), dict(nodes[0].arguments.kwargs)


def own_variables(layer: Any) -> list[Any]:
    """A layer's own variables, trainable then non-trainable, without its sub-layers': the
    order Keras stores them in a .keras file's layers/<name>/vars/<i> (Keras 3.15:
    Layer._trainable_variables and _non_trainable_variables)."""
    return list(layer._trainable_variables) + list(layer._non_trainable_variables)


def tracked_layers(layer: Any) -> list[Any]:
    """A layer's direct sub-layers in the order Keras tracks them (Keras 3.15: Layer._layers);
    empty when the attribute is gone, which loses only the attribute names of sub-layers."""
    return list(getattr(layer, "_layers", []) or [])


def all_layers(model: Any) -> list[Any]:
    """The model itself and every layer inside it, nested ones included, each once (Keras
    3.15: Layer._flatten_layers; the public `model.layers` lists only the top level)."""
    return list(model._flatten_layers(include_self=True))


def symbolic_build(model: Any, batch: Any) -> None:
    """Create the optimizer's and metrics' variables from one batch, as `fit` does first
    (Keras 3.15: Model._symbolic_build); the multi-worker loop needs them before its step."""
    model._symbolic_build(data_batch=batch)


def initial_epoch(model: Any) -> int | None:
    """The epoch a BackupAndRestore callback set the model to start from (Keras 3.15:
    Model._initial_epoch, which `fit` reads the same way)."""
    return getattr(model, "_initial_epoch", None)


def name_table(module: str) -> dict[str, Any]:
    """Keras's ALL_OBJECTS_DICT for a kind (what its `get()` accepts: class names, snake_case
    names, aliases), from keras.src.<module> (Keras 3.15); empty where there is none."""
    try:
        found = importlib.import_module(f"keras.src.{module}")
    except ImportError:
        return {}
    return dict(getattr(found, "ALL_OBJECTS_DICT", {}))


def op_determinism_enabled() -> bool:
    """Whether tf.config.experimental.enable_op_determinism() is in force: TensorFlow has no
    public query (TensorFlow 2.21: tensorflow.python.framework.config)."""
    try:
        from tensorflow.python.framework import config
    except ImportError:
        return False
    return bool(getattr(config, "is_op_determinism_enabled", lambda: False)())


def set_random_seed(seed: int) -> None:
    """keras.utils.set_random_seed (public), which seeds Python, NumPy, Keras's global seed
    and SeedGenerator, torch on its backend, and TensorFlow when Keras's `tf.available` says
    so: after tensorflow_only_once_loaded() (imports.keras() applies it on JAX and torch),
    only once TensorFlow is loaded, so seeding imports no TensorFlow there. Here because it
    rests on that patch."""
    import keras

    keras.utils.set_random_seed(seed)


def tensorflow_only_once_loaded() -> None:
    """Make Keras's checks for TensorFlow ("is it installed?") answer no until something
    imports it, on the JAX and torch backends.

    Keras asks `tf.available` of its lazy module (Keras 3.15:
    keras.src.utils.module_utils.tensorflow) in serialization, saving and input adapters,
    and that question imports TensorFlow whenever it is installed: two seconds, a second
    runtime and its native logs in a run that never uses it. Before TensorFlow is loaded no
    TensorFlow object can exist, so "not available" is the true answer; once a plugin or a
    feature (TensorBoard) imports it, the lazy module answers as before.
    """
    import sys

    from keras.src.utils import module_utils

    lazy = module_utils.tensorflow
    plain = type(lazy)
    if getattr(plain, "_kinit_when_loaded", False):
        return

    class WhenLoaded(plain):  # type: ignore[misc, valid-type]
        _kinit_when_loaded = True

        @property
        def available(self) -> bool:
            return "tensorflow" in sys.modules and bool(plain.available.fget(self))

    lazy.__class__ = WhenLoaded
