"""Signal propagation at initialization: one batch forward and backward through a fresh model.

Vanishing or exploding signals show up here before any training: per layer, the mean and
std of its output; per weight, the norm of its gradient for that batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kinit_cli.data import datasets
from kinit_cli.errors import BackendError, DataError
from kinit_cli.runtime.imports import keras, tensorflow


def propagate(prepared: Any, built: Any) -> dict[str, Any]:
    """One batch of the configured data (unit-Gaussian input when it cannot be loaded)."""
    running = prepared.settings.backend
    if running != "tensorflow":
        raise BackendError(
            f"--activations takes its gradients with TensorFlow's GradientTape, so it runs on "
            f"backend tensorflow, not {running}: add --backend tensorflow"
        )
    k, tf = keras(), tensorflow()
    model = built.model
    batch_size = prepared.settings.train.batch_size
    seed = prepared.settings.seed or 0
    x, y, source = _batch(prepared, model, batch_size, seed)
    layers = _layers(model)
    outputs = _probe(model, layers)(x, training=False)
    outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
    loss_spec = prepared.compile_args.get("loss")
    trainable = [w for w in built.weights if w.trainable]
    with tf.GradientTape() as tape:
        prediction = model(x, training=False)
        if loss_spec is None:
            loss = 0.5 * tf.reduce_mean(tf.square(prediction))
            loss_name = "0.5 * mean(output^2) (no compile.loss)"
        else:
            loss_fn = k.losses.get(loss_spec) if isinstance(loss_spec, str) else loss_spec
            if y is None:
                y = _labels(loss_fn, prediction, seed)
            loss = tf.reduce_mean(loss_fn(y, prediction))
            loss_name = str(loss_spec) if isinstance(loss_spec, str) else type(loss_spec).__name__
    gradients = tape.gradient(loss, [w.variable for w in trainable])
    return {
        "input": source,
        "batch_size": int(np.shape(x)[0]),
        "loss": {"name": loss_name, "value": float(loss)},
        "layers": [
            {
                "name": layer.name,
                "class_name": type(layer).__name__,
                "shape": [None if d is None else int(d) for d in out.shape],
                "mean": float(np.mean(out)),
                "std": float(np.std(out)),
            }
            for layer, out in zip(layers, (np.asarray(o) for o in outputs), strict=True)
        ],
        "gradients": [
            {
                "path": w.path,
                "norm": None if g is None else float(tf.norm(g)),
                "relative": None if g is None else _relative(g, w.variable),
            }
            for w, g in zip(trainable, gradients, strict=True)
        ],
    }


def layer_outputs(model: Any, x: Any) -> list[dict[str, Any]] | None:
    """Each layer's output mean and std for the batch `x` (training=False), on any backend;
    None for a model whose layers have no symbolic outputs (a subclassed model).

    The probe shares the model's layers: it creates no variable and draws no random number,
    so a run that records this trains exactly as one that does not."""
    layers = [layer for layer in _layers(model) if _one_output(layer)]
    if not layers:
        return None
    try:
        probe = _probe(model, layers)
    except (AttributeError, ValueError, TypeError):  # Keras's ways of saying "no outputs"
        return None
    outputs = probe(x, training=False)
    outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
    ops = keras().ops
    out = []
    for layer, value in zip(layers, outputs, strict=True):
        array = np.asarray(ops.convert_to_numpy(value))
        if array.dtype not in (np.float32, np.float64):  # bfloat16, float16, integers
            array = array.astype(np.float32)
        out.append(
            {
                "name": layer.name,
                "class_name": type(layer).__name__,
                "mean": float(np.mean(array)),
                "std": float(np.std(array)),
            }
        )
    return out


def _layers(model: Any) -> list[Any]:
    return [layer for layer in model.layers if not isinstance(layer, keras().layers.InputLayer)]


def _one_output(layer: Any) -> bool:
    """Whether the layer has one symbolic output (not a layer applied at several places,
    nor one that returns several tensors)."""
    try:
        output = layer.output
    except (AttributeError, ValueError):
        return False
    return not isinstance(output, list | tuple | dict)


def _probe(model: Any, layers: list[Any]) -> Any:
    """A functional model over `model`'s own layers that returns every layer's output.
    Named, so that it takes no number from Keras's automatic names."""
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras().Model(inputs, [layer.output for layer in layers], name="kinit_probe")


def _relative(gradient: Any, variable: Any) -> float | None:
    """||g|| / ||W||: how big one plain gradient step is next to the weight itself."""
    w = float(np.linalg.norm(np.asarray(variable.numpy()).reshape(-1)))
    return float(np.linalg.norm(np.asarray(gradient).reshape(-1))) / w if w > 0 else None


def _batch(prepared: Any, model: Any, batch_size: int, seed: int) -> tuple[Any, Any, str]:

    shape = tuple(model.inputs[0].shape[1:])
    if len(model.inputs) == 1:
        try:
            splits = datasets.load(prepared.settings.data, shape, seed, prepared.config.base_dir)
        except DataError as exc:
            reason = str(exc).split(". ")[0]
        else:
            n = min(batch_size, len(splits.x_train))
            x = splits.model_input(splits.x_train[:n])
            return x, splits.y_train[:n], f"{splits.source}: first {n} examples"
    else:
        reason = "the model has several inputs"
    rng = np.random.default_rng(seed)
    inputs = [
        rng.standard_normal((batch_size, *[d or 1 for d in t.shape[1:]])).astype("float32")
        for t in model.inputs
    ]
    x = inputs[0] if len(inputs) == 1 else inputs
    return x, None, f"unit-Gaussian input, {batch_size} examples ({reason})"


def _labels(loss_fn: Any, prediction: Any, seed: int) -> Any:
    """Targets for Gaussian input: random class ids for sparse losses, else zeros."""
    name = getattr(loss_fn, "__name__", type(loss_fn).__name__).lower()
    if "sparse" in name:
        classes = int(prediction.shape[-1])
        return np.random.default_rng(seed).integers(0, classes, int(prediction.shape[0]))
    return np.zeros(prediction.shape, "float32")
