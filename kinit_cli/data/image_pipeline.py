"""tf.data pipelines of image files: decoded batch by batch, in parallel, in an order that
depends only on the seed and the epoch (as pipeline.py's do for arrays).

Images are decoded by TensorFlow's own ops, the ones keras.utils.image_dataset_from_directory
uses (read_file, decode_image with expand_animations=False, resize bilinear), on every
backend, so the values are Keras's. Apart from images.py, which lists the folders and checks
the headers without TensorFlow; TensorFlow is imported when a pipeline is built.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from kinit_cli.data.pipeline import index_batches
from kinit_cli.data.preprocessing import ImageFormat
from kinit_cli.runtime import compat
from kinit_cli.runtime.imports import tensorflow

if TYPE_CHECKING:
    import tensorflow as tf

    from kinit_cli.data.pipeline import ReplicaShare


def train_dataset(
    paths: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    seed: int | None,
    shuffle: bool,
    epoch: tf.Variable,
    fmt: ImageFormat,
    scale: float | None,
    flatten: bool,
    pieces: ReplicaShare | None = None,
) -> tf.data.Dataset:
    """One epoch of decoded batches per iteration, in the order pipeline.train_dataset gives
    arrays of the same length: a stateless shuffle of the indices seeded by (seed, epoch),
    `epoch` read when the iteration starts; each epoch ends with its own partial batch."""
    tf = tensorflow()
    seed_t = tf.constant(0 if seed is None else seed, tf.int64)

    def order(_: Any) -> Any:
        indices = tf.range(len(paths), dtype=tf.int64)
        if not shuffle:
            return indices
        e = tf.cast(epoch.read_value(), tf.int64)
        return tf.random.experimental.stateless_shuffle(indices, seed=tf.stack([seed_t, e]))

    orders = tf.data.Dataset.range(1).map(order)
    return _batches(paths, labels, batch_size, orders, fmt, scale, flatten, pieces)


def eval_dataset(
    paths: np.ndarray,
    labels: np.ndarray | None,
    batch_size: int,
    fmt: ImageFormat,
    scale: float | None,
    flatten: bool,
    pieces: ReplicaShare | None = None,
) -> tf.data.Dataset:
    """The images once, in order, batched; without labels, batches of x alone (predict)."""
    tf = tensorflow()
    orders = tf.data.Dataset.from_tensors(tf.range(len(paths), dtype=tf.int64))
    return _batches(paths, labels, batch_size, orders, fmt, scale, flatten, pieces)


def loader(fmt: ImageFormat, shaped: bool = True) -> Any:
    """path -> the image as image_dataset_from_directory decodes it (uint8 when not resized);
    `shaped`: an image of another shape is an error."""
    tf = tensorflow()

    def load(path: Any) -> Any:
        data = tf.io.read_file(path)
        if fmt.channels == 3:
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
        else:
            image = _grayscale(data)
        if fmt.resized:
            image = tf.image.resize(image, fmt.size, method="bilinear")
        return tf.ensure_shape(image, fmt.shape) if shaped else image

    return load


def _grayscale(data: Any) -> Any:
    """One channel: PNG and JPEG converted by their own decoders (as Keras decodes them);
    GIF and BMP, which TensorFlow's decoders give in colour only (Keras's loader fails on
    them), decoded in colour and converted by tf.image.rgb_to_grayscale."""
    tf = tensorflow()

    def from_colour() -> Any:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        return tf.image.rgb_to_grayscale(image)

    colour_only = tf.logical_or(
        tf.strings.substr(data, 0, 3) == "GIF", tf.strings.substr(data, 0, 2) == "BM"
    )
    return tf.cond(
        colour_only,
        from_colour,
        lambda: tf.io.decode_image(data, channels=1, expand_animations=False),
    )


def _batches(
    paths: np.ndarray,
    labels: np.ndarray | None,
    batch_size: int,
    orders: Any,
    fmt: ImageFormat,
    scale: float | None,
    flatten: bool,
    pieces: ReplicaShare | None,
) -> tf.data.Dataset:
    """Batches of the one index vector in `orders` (cut as pipeline._batches cuts them), each
    batch's files decoded by one map call; several batches decode at once, in order.

    Whole batches, not files, are the unit of parallel work: the order, the partial batch
    and the replicas' pieces then follow pipeline.py's arrays exactly, and a batch costs one
    tf.data element instead of one per image: the pipeline alone takes about 40% less CPU
    per image than Keras's per-file map (BENCHMARKS.md, bench/image_folder.py).
    """
    tf = tensorflow()
    n = len(paths)
    dtype = tf.float32 if fmt.resized else tf.uint8
    load = loader(fmt)

    def decoded(indices: Any, arrays: Any) -> Any:
        files = tf.gather(arrays[0], indices)
        x = tf.map_fn(load, files, fn_output_signature=tf.TensorSpec(fmt.shape, dtype))
        if scale is not None:
            # An IEEE float32 division, as pipeline.py makes: the bits NumPy gives.
            x = tf.cast(x, tf.float32) / tf.constant(scale, tf.float32)
        if flatten:
            x = tf.reshape(x, (-1, math.prod(fmt.shape)))
        return x if labels is None else (x, tf.gather(arrays[1], indices))

    # The paths and labels enter as one dataset element rather than as constants of the map
    # function, which tf.data would otherwise serialise with its graph (as pipeline.py does).
    arrays = (np.asarray(paths, dtype=str), np.zeros(0) if labels is None else labels)
    # Decoding, unlike pipeline.py's gathers, costs about as much as a small model's step:
    # the autotuner sizes the parallel decodes and the prefetch to what the step leaves
    # free, on any number of cores, as image_dataset_from_directory lets it (on 2 busy
    # cores a fixed 2 batches and prefetch 2 trained as fast, within the noise;
    # BENCHMARKS.md). Under op determinism TensorFlow rewrites a parallel map into a
    # sequential one, with an error line about the attribute it drops: ask for the
    # sequential map then.
    parallel = {"num_parallel_calls": tf.data.AUTOTUNE, "deterministic": True}
    if compat.op_determinism_enabled():
        parallel = {}  # `deterministic` on a sequential map is warned about
    dataset = tf.data.Dataset.zip(
        index_batches(orders, n, batch_size, pieces), tf.data.Dataset.from_tensors(arrays).repeat()
    ).map(decoded, **parallel)
    return _finished(dataset, math.ceil(n / batch_size) * (1 if pieces is None else pieces.count))


def _finished(dataset: Any, batches: int) -> Any:
    """The dataset with its length stated (flat_map hides it, and Keras warns "ran out of
    data" at the end of a dataset whose length it does not know), without the static
    optimizations (which would serialise the pipeline graph, paths included, as pipeline.py
    says), prefetching."""
    tf = tensorflow()
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
