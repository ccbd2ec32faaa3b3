"""Image folders: the listing, the header checks, the decoded values and the pipelines'
epoch order, on real PNG, JPEG, BMP and GIF files written into tmp_path."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kinit_cli.data import image_pipeline, images, pipeline
from kinit_cli.data.pipeline import ReplicaShare
from kinit_cli.data.preprocessing import ImageFormat
from kinit_cli.errors import DataError

SIZE = 8
RGB = ImageFormat((SIZE, SIZE), "rgb")
SUFFIX = {"PNG": "png", "JPEG": "jpg", "BMP": "bmp", "GIF": "gif"}


def pixels(value: int, size: tuple[int, int] = (SIZE, SIZE), channels: int = 3) -> np.ndarray:
    """An image whose pixels say which one it is: value, value + 1, ... (mod 256)."""
    count = size[0] * size[1] * channels
    flat = (np.arange(count, dtype=np.int64) + value) % 256
    return flat.astype(np.uint8).reshape(*size, channels).squeeze()


def write(path: Path, array: np.ndarray, kind: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, kind)
    return path


def folder(root: Path, counts: dict[str, int], kind: str = "PNG") -> Path:
    """ROOT/CLASS/imgK.ext for each class, K counting on across classes; image K's first
    pixel is K (so a batch says which files it holds)."""
    k = 0
    for name, n in counts.items():
        for _ in range(n):
            write(root / name / f"img{k:02d}.{SUFFIX[kind]}", pixels(k), kind)
            k += 1
    return root


def ids(x: np.ndarray) -> list[int]:
    """Which images a batch of uint8 (or uint8 / scale) pixels holds."""
    return [
        int(v) for v in np.rint(x.reshape(len(x), -1)[:, 0] * (255 if x.dtype == np.float32 else 1))
    ]


# Listing


def test_list_folder_names_the_classes_and_their_sorted_files(tmp_path):
    folder(tmp_path, {"dog": 2, "cat": 3})
    listed = images.list_folder(tmp_path)
    assert listed.class_names == ("cat", "dog")
    files, labels = listed.parts["all"]
    assert files == (
        "cat/img02.png",
        "cat/img03.png",
        "cat/img04.png",
        "dog/img00.png",
        "dog/img01.png",
    )
    assert labels.dtype == np.int64 and labels.tolist() == [0, 0, 0, 1, 1]
    assert listed.counts("all") == {"cat": 3, "dog": 2}
    assert listed.absolute("all")[0] == str(tmp_path / "cat" / "img02.png")


def test_list_folder_reads_the_train_and_test_layout(tmp_path):
    folder(tmp_path / "train", {"a": 2, "b": 1, "c": 1})
    folder(tmp_path / "test", {"c": 1, "a": 1})  # no b: allowed
    listed = images.list_folder(tmp_path)
    assert listed.class_names == ("a", "b", "c")
    assert set(listed.parts) == {"train", "test"}
    assert listed.parts["train"][0] == (
        "train/a/img00.png",
        "train/a/img01.png",
        "train/b/img02.png",
        "train/c/img03.png",
    )
    assert listed.parts["test"][0] == ("test/a/img01.png", "test/c/img00.png")
    assert listed.parts["test"][1].tolist() == [0, 2]
    assert listed.counts("test") == {"a": 1, "b": 0, "c": 1}


def test_list_folder_ignores_hidden_entries_other_files_and_links(tmp_path):
    root = folder(tmp_path / "data", {"a": 1, "b": 1})
    write(root / "a" / "deeper" / "UPPER.PNG", pixels(5))  # nested and upper case: an image
    write(root / "a" / ".hidden.png", pixels(6))
    write(root / ".cache" / "x.png", pixels(7))
    write(root / "a" / ".thumbs" / "y.png", pixels(8))
    (root / "a" / "notes.txt").write_text("not an image")
    (root / "b" / "labels.csv").write_text("x\n")
    write(root / "loose.png", pixels(9))  # beside the class folders: not in a class
    outside = folder(tmp_path / "elsewhere", {"z": 1})
    os.symlink(outside / "z" / "img00.png", root / "b" / "linked.png")
    os.symlink(outside / "z", root / "z")  # a linked class folder
    listed = images.list_folder(root)
    assert listed.class_names == ("a", "b")
    assert listed.parts["all"][0] == ("a/deeper/UPPER.PNG", "a/img00.png", "b/img01.png")


def test_is_image_folder(tmp_path):
    folder(tmp_path / "classes", {"a": 1})
    folder(tmp_path / "split" / "train", {"a": 1})
    folder(tmp_path / "split" / "test", {"a": 1})
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "train-images-idx3-ubyte").write_bytes(b"\0" * 16)
    assert images.is_image_folder(tmp_path / "classes")
    assert images.is_image_folder(tmp_path / "split")
    assert not images.is_image_folder(tmp_path / "idx")
    assert not images.is_image_folder(tmp_path / "classes" / "a" / "img00.png")


def test_a_folder_without_class_folders_is_refused(tmp_path):
    write(tmp_path / "loose.png", pixels(0))
    with pytest.raises(DataError) as info:
        images.list_folder(tmp_path)
    assert str(info.value) == (
        f"{tmp_path} holds no class folders with images; expected {tmp_path}/CLASS/IMAGE.png, "
        "one folder of .png, .jpg, .jpeg, .bmp or .gif files per class (or train/ and test/ "
        "folders laid out that way)"
    )


def test_a_class_folder_without_images_is_refused(tmp_path):
    folder(tmp_path, {"a": 1})
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "readme.txt").write_text("soon")
    with pytest.raises(DataError) as info:
        images.list_folder(tmp_path)
    assert str(info.value) == (
        f"class folder {tmp_path / 'b'} holds no images (.png, .jpg, .jpeg, .bmp or .gif "
        "files); add its images or remove it"
    )


def test_a_test_class_that_training_lacks_is_refused(tmp_path):
    folder(tmp_path / "train", {"a": 1, "b": 1})
    folder(tmp_path / "test", {"a": 1, "c": 1, "d": 1})
    with pytest.raises(DataError) as info:
        images.list_folder(tmp_path)
    assert str(info.value) == (
        f"{tmp_path / 'test'} has class folders that {tmp_path / 'train'} has not: c, d; "
        "the test classes must be among the training classes (a, b)"
    )


# Headers


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "BMP", "GIF"])
@pytest.mark.parametrize("mode", ["rgb", "grayscale"])
def test_scan_gives_the_size_and_channels(tmp_path, kind, mode):
    paths = [
        str(write(tmp_path / f"{i}.{SUFFIX[kind]}", pixels(i, (6, 5)), kind)) for i in range(3)
    ]
    fmt = images.scan(paths, None, mode)
    assert fmt == ImageFormat((6, 5), mode, resized=False)
    assert fmt.shape == (6, 5, 3 if mode == "rgb" else 1)
    assert images.decode(paths, fmt).shape == (3, 6, 5, fmt.channels)


def test_scan_refuses_mixed_sizes_unless_they_are_resized(tmp_path):
    a = write(tmp_path / "a.png", pixels(0, (28, 28)))
    b = write(tmp_path / "b.png", pixels(0, (32, 28)))
    with pytest.raises(DataError) as info:
        images.scan([str(a), str(b)], None, "rgb")
    assert str(info.value) == (
        f"images differ in size: {a} is 28x28, {b} is 32x28; set data.image_size: [28, 28] "
        "to resize them all"
    )
    assert images.scan([str(a), str(b)], (16, 12), "grayscale") == ImageFormat(
        (16, 12), "grayscale", resized=True
    )


def encoded(kind: str, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels(3)).convert(mode).save(out, kind)
    return out.getvalue()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "not a PNG, JPEG, BMP or GIF image"),
        (b"hello", "not a PNG, JPEG, BMP or GIF image"),
        (encoded("PNG")[:-1], "the file is truncated (no PNG end chunk)"),
        (encoded("JPEG")[:-2], "the file is truncated (no JPEG end marker)"),
        (encoded("BMP")[:-10], "the file is truncated (its pixel data ends early)"),
        (
            encoded("BMP", "L"),
            "a 8-bit BMP (compression 0); kinit reads uncompressed 24 and 32-bit BMPs",
        ),
        (encoded("TIFF"), "a TIFF image; kinit reads PNG, JPEG, BMP and GIF"),
    ],
    ids=["empty", "text", "png", "jpeg", "bmp", "bmp8", "tiff"],
)
def test_scan_names_the_first_file_tensorflow_cannot_decode(tmp_path, content, problem):
    good = write(tmp_path / "a.png", pixels(0))
    bad = tmp_path / "b.png"
    bad.write_bytes(content)
    with pytest.raises(DataError) as info:
        images.scan([str(good), str(bad), str(good)], None, "rgb")
    assert str(info.value) == f"cannot decode image {bad}: {problem}"


def test_scan_refuses_a_png_whose_checksum_fails(tmp_path):
    data = bytearray(encoded("PNG"))
    data[40] ^= 0xFF  # inside the image data chunk
    bad = tmp_path / "bad.png"
    bad.write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"^cannot decode image {bad}: "):
        images.scan([str(bad)], None, "rgb")


# Decoded values


@pytest.mark.parametrize("kind", ["PNG", "BMP"])
def test_lossless_files_decode_to_the_pixels_written(tmp_path, kind):
    written = [pixels(40 * i) for i in range(3)]
    paths = [str(write(tmp_path / f"{i}.{kind}", a, kind)) for i, a in enumerate(written)]
    x = images.decode(paths, RGB)
    assert x.dtype == np.uint8
    np.testing.assert_array_equal(x, np.stack(written))


def test_grayscale_png_decodes_to_the_pixels_written(tmp_path):
    written = pixels(9, channels=1)
    path = str(write(tmp_path / "g.png", written))
    x = images.decode([path], ImageFormat((SIZE, SIZE), "grayscale"))
    np.testing.assert_array_equal(x, written[None, :, :, None])


def test_grayscale_gif_is_converted_from_its_colours(tmp_path):
    written = pixels(0, channels=1)
    path = str(write(tmp_path / "g.gif", written, "GIF"))
    x = images.decode([path], ImageFormat((SIZE, SIZE), "grayscale"))
    colour = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    np.testing.assert_array_equal(x[0], tf.image.rgb_to_grayscale(colour).numpy())
    np.testing.assert_array_equal(x[0, :, :, 0], written)


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "GIF"])
def test_resized_images_are_tensorflow_bilinear_resize_of_the_decoded_file(tmp_path, kind):
    path = str(write(tmp_path / f"a.{SUFFIX[kind]}", pixels(7, (10, 6)), kind))
    x = images.decode([path], ImageFormat((5, 9), "rgb", resized=True))
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    expected = tf.image.resize(image, (5, 9), method="bilinear").numpy()
    assert x.dtype == np.float32
    assert x[0].tobytes() == expected.tobytes()


def test_decode_names_a_file_tensorflow_cannot_decode(tmp_path):
    good = write(tmp_path / "a.png", pixels(0))
    bad = tmp_path / "b.png"
    bad.write_text("hello")
    with pytest.raises(DataError) as info:
        images.decode([str(good), str(bad)], RGB)
    assert str(info.value) == (
        f"cannot decode image {bad}: Unknown image file format. One of JPEG, JPEG XL, PNG, GIF, "
        "BMP, WebP required."
    )


def test_decode_names_a_file_of_another_size(tmp_path):
    good = write(tmp_path / "a.png", pixels(0))
    other = write(tmp_path / "b.png", pixels(0, (4, SIZE)))
    with pytest.raises(DataError) as info:
        images.decode([str(good), str(other)], RGB)
    assert str(info.value) == f"image {other} is 4x8x3, the run's images are 8x8x3"


# Pipelines

N, BATCH = 10, 4  # three batches an epoch: 4, 4 and a partial 2


@pytest.fixture
def ten(tmp_path) -> images.ImageFolder:
    return images.list_folder(folder(tmp_path, {"a": 4, "b": 3, "c": 3}))


def epochs(listed, seed, shuffle, numbers, **kw):
    """Each epoch's batches (ids, labels), one iteration of one dataset per epoch."""
    epoch = tf.Variable(0, dtype=tf.int64)
    paths, labels = listed.absolute("all"), listed.parts["all"][1]
    dataset = image_pipeline.train_dataset(
        paths, labels, BATCH, seed, shuffle, epoch, RGB, kw.get("scale"), False, kw.get("pieces")
    )
    out = []
    for e in numbers:
        epoch.assign(e)
        out.append([(ids(x), y.tolist()) for x, y in dataset.as_numpy_iterator()])
    return out


def test_train_dataset_order_depends_only_on_seed_and_epoch(ten):
    first = epochs(ten, 7, True, [0, 1, 2])
    again = epochs(ten, 7, True, [2, 0])
    assert again == [first[2], first[0]]
    assert first[0] != first[1] != first[2]
    labels = ten.parts["all"][1].tolist()
    for batches in first:
        assert [len(b) for b, _ in batches] == [4, 4, 2]
        order = [i for b, _ in batches for i in b]
        assert sorted(order) == list(range(N))  # every file once
        assert [y for _, ys in batches for y in ys] == [labels[i] for i in order]
    assert epochs(ten, 8, True, [0]) != first[:1]


def test_train_dataset_order_is_the_array_pipelines_order(ten):
    epoch = tf.Variable(3, dtype=tf.int64)
    arrays = pipeline.train_dataset(np.arange(N)[:, None], np.arange(N), BATCH, 7, True, epoch)
    expected = [y.tolist() for _, y in arrays.as_numpy_iterator()]
    assert [b for b, _ in epochs(ten, 7, True, [3])[0]] == expected


def test_train_dataset_without_shuffle_keeps_the_folder_order(ten):
    assert [[b for b, _ in e] for e in epochs(ten, 7, False, [0, 1])] == [
        [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    ] * 2


def test_train_dataset_replica_pieces_make_up_the_batches(ten):
    whole = epochs(ten, 3, True, [1])[0]
    first = epochs(ten, 3, True, [1], pieces=ReplicaShare(2, 0, 1))[0]
    second = epochs(ten, 3, True, [1], pieces=ReplicaShare(2, 1, 1))[0]
    assert [a[0] + b[0] for a, b in zip(first, second, strict=True)] == [b for b, _ in whole]


@pytest.mark.parametrize("scale", [255.0, 1.0])
def test_batches_divide_the_decoded_pixels_in_float32(ten, scale):
    paths = ten.absolute("all")
    dataset = image_pipeline.eval_dataset(paths, ten.parts["all"][1], BATCH, RGB, scale, False)
    x = np.concatenate([x for x, _ in dataset.as_numpy_iterator()])
    assert x.dtype == np.float32
    expected = images.decode(paths, RGB).astype(np.float32) / np.float32(scale)
    assert x.tobytes() == expected.tobytes()


def test_resized_batches_hold_decode_values_and_flatten(ten):
    fmt = ImageFormat((3, 5), "grayscale", resized=True)
    paths = ten.absolute("all")
    batches = list(
        image_pipeline.eval_dataset(
            paths, ten.parts["all"][1], BATCH, fmt, None, True
        ).as_numpy_iterator()
    )
    assert [(x.shape, x.dtype) for x, _ in batches[-1:]] == [((2, 15), np.float32)]
    x = np.concatenate([x for x, _ in batches])
    assert x.tobytes() == images.decode(paths, fmt).reshape(N, 15).tobytes()


def test_eval_dataset_without_labels_yields_images_alone(ten):
    dataset = image_pipeline.eval_dataset(ten.absolute("all"), None, BATCH, RGB, 255.0, False)
    batches = list(dataset.as_numpy_iterator())
    assert len(dataset) == 3
    assert [b.shape for b in batches] == [(4, 8, 8, 3), (4, 8, 8, 3), (2, 8, 8, 3)]
    assert ids(np.concatenate(batches)) == list(range(N))


def test_a_file_that_fails_in_the_pipeline_is_named(ten):
    paths = ten.absolute("all")
    Path(paths[6]).write_bytes(b"\x89PNG\r\n\x1a\n broken")
    dataset = image_pipeline.eval_dataset(paths, ten.parts["all"][1], BATCH, RGB, 255.0, False)
    with pytest.raises(tf.errors.OpError) as info:
        list(dataset.as_numpy_iterator())
    named = images.failed_file(info.value, paths, RGB)
    assert isinstance(named, DataError)
    assert str(named).startswith(f"cannot decode image {paths[6]}: ")
    assert images.failed_file(ValueError("other"), paths, RGB) is None


def test_scan_names_a_file_that_went_away(tmp_path):
    gone = tmp_path / "a" / "gone.png"
    with pytest.raises(DataError) as info:
        images.scan([str(gone)], None, "rgb")
    assert str(info.value) == f"cannot decode image {gone}: No such file or directory"
