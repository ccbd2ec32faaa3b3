"""Local data files (`data.path`): a folder of IDX files (the MNIST format, plain or .gz)
or an .npz, read with every size they declare checked before memory is spent.

A file from elsewhere can declare anything: an IDX header of 100 GB on a file of 16 bytes,
a 3 MB .gz that inflates to 3 GiB, an .npy header of 22 GiB with nothing after it. Each
header is read first and checked against what the file holds and the memory available;
an IDX file is streamed into an array of the size its header declares, no further.
"""

from __future__ import annotations

import gzip
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy

from kinit_cli.errors import DataError, DeclaredSizeError
from kinit_cli.runtime import memory
from kinit_cli.storage import bounded

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# IDX type codes (the third byte of the magic number) -> NumPy dtype.
_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx_folder(folder: Path, kinds: str = "") -> list[np.ndarray]:
    """The four arrays of a folder of IDX files (IDX_FILES, each plain or .gz); `kinds`:
    what else data.path may name, for the message when the folder is none of them."""
    found: dict[str, Path] = {}
    for stem in IDX_FILES:
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.exists():
                what = bounded.kind_of(candidate)
                if what is not None:
                    raise DataError(f"{candidate} is {what}, not an IDX file")
                found[stem] = candidate
                break
    missing = [stem for stem in IDX_FILES if stem not in found]
    if missing:
        held = sorted(p.name for p in folder.iterdir())
        shown = ", ".join(held[:12]) + (f" and {len(held) - 12} more" if len(held) > 12 else "")
        raise DataError(
            f"{folder} lacks the IDX file{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (each may end in .gz). It holds: {shown or 'nothing'}."
            + (f" data.path takes {kinds}." if kinds and not found else "")
        )
    arrays = [_read_idx(found[stem], 3 if "images" in stem else 1) for stem in IDX_FILES]
    for images, labels in ((0, 1), (2, 3)):
        if len(arrays[images]) != len(arrays[labels]):
            raise DataError(
                f"{found[IDX_FILES[images]]} holds {len(arrays[images])} images but "
                f"{found[IDX_FILES[labels]]} holds {len(arrays[labels])} labels"
            )
    return arrays


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """One IDX file: 2 zero bytes, a type code, the number of dimensions, their sizes
    (big-endian uint32), then the values in C order. Streamed into an array of the size the
    header declares, checked first; reading stops one byte past it (a .gz file can inflate
    to any size)."""
    try:
        opened = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115
        with opened as f:
            dims, dtype = _idx_header(path, f, ndim)
            size = math.prod(dims) * dtype.itemsize
            if path.suffix != ".gz":
                _check_idx_size(path, dims, size, path.stat().st_size - 4 - 4 * ndim)
            bounded.refuse_memory(
                path, f"its header declares {dims} values of {dtype}, {{size}}", size
            )
            out = np.empty(dims, dtype)
            held = f.readinto(memoryview(out.reshape(-1).view(np.uint8)))
            extra = len(f.read(1)) if held == size else 0
    except EOFError as exc:
        raise DataError(f"{path} is truncated: the compressed data ends early") from exc
    except (OSError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path} cannot be read: {exc}") from exc
    _check_idx_size(path, dims, size, held, more=bool(extra))
    return out


def _idx_header(path: Path, f: Any, ndim: int) -> tuple[tuple[int, ...], np.dtype]:
    """The dimensions and dtype an IDX file's header declares; DataError for another file."""
    head = f.read(4)
    expected = 0x0800 | ndim
    magic = int.from_bytes(head, "big") if len(head) == 4 else None
    if magic is None or head[:2] != b"\0\0" or head[2] not in _IDX_TYPES or head[3] != ndim:
        kind = "image" if ndim == 3 else "label"
        found = "is shorter than 4 bytes" if magic is None else f"is 0x{magic:08X}"
        raise DataError(
            f"{path} is not an IDX {kind} file: its magic number {found}, "
            f"expected 0x{expected:08X} ({ndim} dimension{'s' if ndim > 1 else ''} "
            "of unsigned bytes)"
        )
    sizes = f.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataError(f"{path} is truncated: its header ends after {4 + len(sizes)} bytes")
    dims = tuple(int(d) for d in np.frombuffer(sizes, ">u4", count=ndim))
    return dims, np.dtype(_IDX_TYPES[head[2]])


def _check_idx_size(
    path: Path, dims: tuple[int, ...], size: int, held: int, more: bool = False
) -> None:
    """DataError unless the file holds exactly the `size` bytes its header promises."""
    if held == size and not more:
        return
    problem = "is truncated" if held < size else "has trailing bytes"
    holds = f"more than {held}" if more else str(held)
    raise DataError(
        f"{path} {problem}: its header promises {dims} values ({size} bytes), "
        f"the file holds {holds} bytes of data"
    )


def read_npz(path: Path, kinds: str = "a folder of IDX files or an .npz file") -> list[np.ndarray]:
    """The arrays NPZ_KEYS names in an .npz file, each header checked before its values."""
    if not zipfile.is_zipfile(path):
        raise DataError(
            f"{path} is not an .npz file (a zip of .npy arrays, as numpy.savez writes). "
            f"data.path takes {kinds}."
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in NPZ_KEYS if k not in archive.files]
            if missing:
                raise DataError(
                    f"{path} lacks the key{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(missing)}; it holds: {', '.join(archive.files) or 'nothing'}. "
                    f"kinit reads {', '.join(NPZ_KEYS)}."
                )
            _check_npz_headers(path, archive.zip)
            arrays = [archive[k] for k in NPZ_KEYS]
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} cannot be read as an .npz file: {exc}") from exc
    return arrays


def _check_npz_headers(path: Path, archive: zipfile.ZipFile) -> None:
    """Each array's .npy header (shape, dtype) read before its values: numbers only, one row
    per example, no more bytes than its member holds, and all of them within memory."""
    total = 0
    for key in NPZ_KEYS:
        names = archive.namelist()
        info = archive.getinfo(f"{key}.npy" if f"{key}.npy" in names else key)
        with archive.open(info) as member:
            version = npy.read_magic(member)
            read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            shape, _, dtype = read(member)
            header = member.tell()
        problem = _npz_problem(shape, dtype)
        if problem:
            raise DataError(f"{path}: {key} {problem}")
        size = math.prod(shape) * dtype.itemsize
        if size > info.file_size - header:
            raise DeclaredSizeError(
                f"{path}: {key} declares shape {shape} of {dtype} ({memory.size_text(size)}) "
                f"but its member holds {memory.size_text(info.file_size - header)}",
                str(path),
                size,
                info.file_size - header,
            )
        total += size
    bounded.refuse_memory(path, f"its arrays ({', '.join(NPZ_KEYS)}) declare {{size}}", total)


# NumPy dtype kinds -> what the values are, for those no model trains on.
_NOT_NUMBERS = {
    "U": "text",
    "S": "bytes",
    "M": "dates and times",
    "m": "time differences",
    "O": "Python objects",
    "c": "complex numbers",
    "V": "raw bytes",
}


def _npz_problem(shape: tuple[int, ...], dtype: np.dtype) -> str | None:
    """What is wrong with an array of this header for training, or None."""
    if dtype.names:
        return (
            f"holds records with the fields {', '.join(dtype.names)} ({dtype}); expected "
            "an array of numbers (integers or floats)"
        )
    if dtype.kind in _NOT_NUMBERS:
        return f"holds {_NOT_NUMBERS[dtype.kind]} ({dtype}); expected numbers (integers or floats)"
    if not shape:
        return "is a single value (shape ()); expected an array with one row per example"
    return None
