"""Image folders: the class folders listed, every file's header checked before training,
and the files decoded, whole or the first that TensorFlow cannot decode named (the tf.data
pipelines that decode them batch by batch are in image_pipeline.py).

PIL only reads headers, before anything is written; the images themselves are decoded by
the pipelines' TensorFlow ops, so that their values are the ones training sees.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kinit_cli.data.image_pipeline import eval_dataset, loader
from kinit_cli.data.preprocessing import ImageFormat
from kinit_cli.errors import DataError
from kinit_cli.runtime.imports import tensorflow

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_SHOWN = ".png, .jpg, .jpeg, .bmp or .gif"
_SPLITS = ("train", "test")
# PIL's names of the formats TensorFlow's decode_image reads.
_FORMATS = {"PNG", "JPEG", "BMP", "GIF"}
_CHUNK = 256  # files per thread-pool task when reading headers
_TAIL = 4096  # bytes read from a file's end to check that it is complete


def is_image(name: str) -> bool:
    """Whether a file name is one kinit reads as an image (by extension, any case)."""
    return name.lower().endswith(EXTENSIONS) and not name.startswith(".")


def is_image_folder(path: Path) -> bool:
    """Whether `path` is a folder whose sub-folders hold image files (the class-folder
    layout, or its train/ and test/ form); opens no image."""
    if not path.is_dir():
        return False
    return any(_holds_images(Path(entry.path)) for entry in _folders(path))


@dataclass(frozen=True, eq=False)
class ImageFolder:
    """The images of a folder laid out as Keras's image_dataset_from_directory reads it.

    `parts`: "all" (one folder per class) or "train" and "test" (ROOT/train/CLASS/...,
    ROOT/test/CLASS/...): the files relative to `root` (POSIX, sorted within each class,
    classes in order) and their int64 class ids.
    """

    root: Path
    class_names: tuple[str, ...]
    parts: dict[str, tuple[tuple[str, ...], np.ndarray]]

    def absolute(self, part: str) -> np.ndarray:
        """The part's files as an array of absolute path strings."""
        root = str(self.root)
        return np.array([os.path.join(root, p) for p in self.parts[part][0]], dtype=str)

    def counts(self, part: str) -> dict[str, int]:
        """Images per class in one part (0 for a class the part lacks)."""
        found = np.bincount(self.parts[part][1], minlength=len(self.class_names))
        return dict(zip(self.class_names, (int(c) for c in found), strict=True))


def list_folder(path: Path) -> ImageFolder:
    """The class folders and their image files, without opening an image.

    Links are not followed (a file from elsewhere would be data nobody sees in the folder),
    hidden files and folders are skipped, and so are files of other kinds.
    """
    root = Path(os.path.abspath(path))
    if not root.is_dir():
        raise DataError(f"{path} is not a folder")
    names = sorted(entry.name for entry in _folders(root))
    if names == sorted(_SPLITS):
        train = _classes(root / "train", root)
        test = _classes(root / "test", root)
        extra = sorted(set(test) - set(train))
        if extra:
            raise DataError(
                f"{root / 'test'} has class folders that {root / 'train'} has not: "
                f"{', '.join(extra)}; the test classes must be among the training classes "
                f"({', '.join(sorted(train))})"
            )
        class_names = tuple(sorted(train))
        parts = {"train": _part(train, class_names), "test": _part(test, class_names)}
    else:
        classes = _classes(root, root)
        class_names = tuple(sorted(classes))
        parts = {"all": _part(classes, class_names)}
    return ImageFolder(root, class_names, parts)


def _folders(path: Path) -> list[os.DirEntry]:
    """The visible sub-folders of `path` that are not links."""
    with os.scandir(path) as entries:
        return [
            e for e in entries if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)
        ]


def _holds_images(folder: Path) -> bool:
    """Whether an image file lies anywhere under `folder` (links not followed)."""
    return next(_images_under(folder), None) is not None


def _images_under(folder: Path):
    """The image files under `folder`, recursively, as DirEntry objects (links skipped)."""
    with os.scandir(folder) as entries:
        listed = list(entries)
    for entry in listed:
        if entry.name.startswith(".") or entry.is_symlink():
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _images_under(Path(entry.path))
        elif is_image(entry.name) and entry.is_file(follow_symlinks=False):
            yield entry


def _classes(folder: Path, root: Path) -> dict[str, list[str]]:
    """Class name -> its image files relative to `root` (sorted), for each class folder of
    `folder` (images in sub-folders of a class folder belong to it, as Keras reads them)."""
    classes: dict[str, list[str]] = {}
    for entry in _folders(folder):
        files = sorted(
            Path(e.path).relative_to(root).as_posix() for e in _images_under(Path(entry.path))
        )
        if not files:
            raise DataError(
                f"class folder {entry.path} holds no images ({_SHOWN} files); add its "
                "images or remove it"
            )
        classes[entry.name] = files
    if not classes:
        raise DataError(
            f"{folder} holds no class folders with images; expected {folder}/CLASS/IMAGE.png, "
            f"one folder of {_SHOWN} files per class (or train/ and test/ folders laid out "
            "that way)"
        )
    return classes


def _part(
    classes: dict[str, list[str]], class_names: tuple[str, ...]
) -> tuple[tuple[str, ...], np.ndarray]:
    files = [f for name in class_names for f in classes.get(name, ())]
    ids = [i for i, name in enumerate(class_names) for _ in classes.get(name, ())]
    return tuple(files), np.array(ids, dtype=np.int64)


def scan(paths: Sequence[str], image_size: tuple[int, int] | None, color_mode: str) -> ImageFormat:
    """Every file's header read (in a thread pool) before anything is written: the first file
    TensorFlow could not decode is refused by name, and so are images of mixed sizes when
    nothing resizes them. Returns the format the pipelines decode to."""
    sizes = np.zeros((len(paths), 2), dtype=np.int64)
    chunks = range(0, len(paths), _CHUNK)
    with ThreadPoolExecutor(max_workers=min(32, 4 * (os.cpu_count() or 1))) as pool:
        results = pool.map(lambda start: _headers(paths[start : start + _CHUNK]), chunks)
        for start, (found, problem) in zip(chunks, results, strict=True):
            if problem is not None:
                pool.shutdown(cancel_futures=True)
                raise DataError(problem)
            sizes[start : start + len(found)] = found
    if image_size is not None:
        height, width = image_size
        return ImageFormat((int(height), int(width)), color_mode, resized=True)
    if not len(paths):
        raise DataError("no images to read; data.image_size cannot be inferred")
    differ = np.flatnonzero(np.any(sizes != sizes[0], axis=1))
    if len(differ):
        first, other = sizes[0], sizes[differ[0]]
        raise DataError(
            f"images differ in size: {paths[0]} is {first[0]}x{first[1]}, "
            f"{paths[differ[0]]} is {other[0]}x{other[1]}; set data.image_size: "
            f"[{first[0]}, {first[1]}] to resize them all"
        )
    return ImageFormat((int(sizes[0][0]), int(sizes[0][1])), color_mode)


def _headers(paths: Sequence[str]) -> tuple[list[tuple[int, int]], str | None]:
    """(height, width) of each file in turn, up to the first one that cannot be decoded,
    and what is wrong with that one (None when all can)."""
    from PIL import Image, UnidentifiedImageError

    found = []
    for path in paths:
        try:
            with open(path, "rb") as file, Image.open(file) as image:
                problem = _unreadable(image, file)
                found.append((image.height, image.width))
        except UnidentifiedImageError:
            problem = "not a PNG, JPEG, BMP or GIF image"
        except (OSError, SyntaxError, ValueError) as exc:  # PIL's errors for broken data
            # An OSError of the system (permission, gone) says the path again: its reason only.
            problem = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        if problem is not None:
            return found, f"cannot decode image {path}: {problem}"
    return found, None


def _unreadable(image: Any, file: Any) -> str | None:
    """Why TensorFlow would fail to decode a file whose header PIL read, as far as its
    header and its end can tell (None: nothing found)."""
    kind = image.format
    if kind not in _FORMATS:
        return f"a {kind} image; kinit reads PNG, JPEG, BMP and GIF"
    size = os.fstat(file.fileno()).st_size
    file.seek(max(0, size - _TAIL))
    tail = file.read()
    # TensorFlow refuses a PNG or JPEG that ends before its end marker (a cut download),
    # which PIL opens; bytes after the marker are allowed by both.
    if kind == "PNG":
        if b"IEND\xaeB`\x82" not in tail:
            return "the file is truncated (no PNG end chunk)"
        file.seek(0)
        image.verify()  # every chunk's checksum
    elif kind == "JPEG" and b"\xff\xd9" not in tail:
        return "the file is truncated (no JPEG end marker)"
    elif kind == "BMP":
        file.seek(0)
        return _bmp_problem(file.read(34), size, image.width, image.height)
    return None


def _bmp_problem(head: bytes, size: int, width: int, height: int) -> str | None:
    """What TensorFlow's BMP decoder refuses or misreads: other than 24 or 32 bits per pixel,
    a compressed file, pixel data that ends early (it reads the header's fields as here)."""
    offset = int.from_bytes(head[10:14], "little")
    bits = int.from_bytes(head[28:30], "little")
    compression = int.from_bytes(head[30:34], "little")
    # 8-bit BMPs hold palette indices, which TensorFlow would take for the pixels.
    if bits not in (24, 32) or compression not in (0, 3):
        return (
            f"a {bits}-bit BMP (compression {compression}); kinit reads uncompressed 24 and "
            "32-bit BMPs"
        )
    stride = (bits * width + 31) // 32 * 4
    if size < offset + stride * height:
        return "the file is truncated (its pixel data ends early)"
    return None


def decode(paths: Sequence[str], fmt: ImageFormat) -> np.ndarray:
    """The images as one (n, height, width, channels) array, exactly as the pipelines' batches
    hold them before the scale division: uint8, or float32 when resized (the same ops run)."""
    tf = tensorflow()
    n = len(paths)
    out = np.empty((n, *fmt.shape), dtype=np.float32 if fmt.resized else np.uint8)
    if not n:
        return out
    dataset = eval_dataset(np.asarray(paths, dtype=str), None, 256, fmt, None, False)
    try:
        start = 0
        for batch in dataset.as_numpy_iterator():
            out[start : start + len(batch)] = batch
            start += len(batch)
    except tf.errors.OpError as exc:
        problem = failed_file(exc, paths, fmt)
        if problem is None:
            raise
        raise problem from exc
    return out


def failed_file(error: BaseException, paths: Sequence[str], fmt: ImageFormat) -> DataError | None:
    """The DataError naming the first of `paths` TensorFlow cannot decode to `fmt`, when
    `error` (raised while a pipeline of these paths ran) is TensorFlow's; else None.

    TensorFlow's decode errors do not say which file failed, and a graph cannot catch them,
    so the files are decoded again one by one: a cost paid only when training has failed.
    """
    tf = tensorflow()
    if not isinstance(error, tf.errors.OpError):
        return None
    load = loader(fmt, shaped=False)  # eagerly: a graph's error message buries the op's own

    def check(path: str) -> str | None:
        try:
            shape = tuple(load(tf.constant(path)).shape)
        except tf.errors.OpError as exc:
            return f"cannot decode image {path}: {_reason(exc)}"
        if shape != fmt.shape:
            return (
                f"image {path} is {shape[0]}x{shape[1]}x{shape[2]}, the run's images are "
                f"{'x'.join(str(d) for d in fmt.shape)}"
            )
        return None

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for problem in pool.map(check, paths):
            if problem is not None:
                pool.shutdown(cancel_futures=True)
                return DataError(problem)
    return None


def _reason(exc: Any) -> str:
    """TensorFlow's message without its node and op annotations."""
    text = str(getattr(exc, "message", exc)).strip()
    if text.startswith("{{"):
        text = text.split("}}", 1)[-1].strip()
    return text.split(" [Op:", 1)[0].split("\n", 1)[0].strip()
