"""Reading files that may come from elsewhere: what a path is before it is opened, and the
sizes a zip member or an HDF5 dataset declares checked before any of it is read.

A 4 MB zip can inflate to 4 GiB of zeros, and a 14 kB HDF5 file can declare a 6.4 GB
dataset it does not store: the reader learns it only by allocating the memory. Every
declared size is checked here against what the file holds and what memory is available
(runtime.memory), and reads stop at the declared size.
"""

from __future__ import annotations

import io
import math
import stat
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from kinit_cli.errors import DeclaredSizeError, ModelFileError
from kinit_cli.runtime import memory

# Inflated / compressed size of a zip member past which it is refused: Keras stores a
# .keras file's members uncompressed (ratio 1), and real weights hardly deflate at all;
# 4 GiB of zeros deflate 1000 to 1.
MAX_RATIO = 100

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device (like /dev/zero, which never ends)"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe), which a reader would wait on"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(path: Path) -> str | None:
    """What `path` is when it is not a regular file (following links), else None."""
    mode = path.stat().st_mode
    if stat.S_ISREG(mode):
        return None
    return next((text for test, text in _KINDS if test(mode)), "not a regular file")


def refuse_memory(path: Path | str, what: str, needed: int) -> None:
    """DeclaredSizeError when `needed` bytes do not fit in the memory available; `what` says
    what declares them, with {size} where their size goes."""
    available = memory.refusal(needed)
    if available is not None:
        raise DeclaredSizeError(
            f"{path}: {what.replace('{size}', memory.size_text(needed))}, but this machine has "
            f"{memory.size_text(available)} available; pass {memory.FLAG} to try anyway",
            str(path),
            needed,
            available,
        )


def check_member(path: Path, info: zipfile.ZipInfo, limit: int | None = None) -> None:
    """DeclaredSizeError for a zip member whose declared size is past `limit` (bytes) or the
    memory available, or that inflates more than MAX_RATIO to 1."""
    where = f"{path}: the member {info.filename}"
    if limit is not None and info.file_size > limit:
        raise DeclaredSizeError(
            f"{where} declares {info.file_size:,} bytes; kinit reads at most {limit:,}",
            str(path),
            info.file_size,
            limit,
        )
    ratio = info.file_size / max(1, info.compress_size)
    if info.compress_type != zipfile.ZIP_STORED and ratio > MAX_RATIO and not memory.ignored():
        raise DeclaredSizeError(
            f"{where} inflates from {info.compress_size:,} to {info.file_size:,} bytes "
            f"({ratio:,.0f} to 1; kinit reads at most {MAX_RATIO} to 1, as no real weights "
            f"compress so far); pass {memory.FLAG} to read it anyway",
            str(path),
            info.file_size,
        )
    refuse_memory(path, f"the member {info.filename} declares {{size}}", info.file_size)


def read_member(path: Path, archive: zipfile.ZipFile, name: str, limit: int | None = None) -> bytes:
    """A member's bytes, its declared size checked first (KeyError when it is absent); the
    read stops at that size, and a member that holds less is a DeclaredSizeError."""
    info = archive.getinfo(name)
    check_member(path, info, limit)
    with archive.open(info) as member:
        data = member.read(info.file_size)
    if len(data) != info.file_size:
        raise DeclaredSizeError(
            f"{path}: the member {name} declares {info.file_size:,} bytes but holds {len(data):,}",
            str(path),
            info.file_size,
            len(data),
        )
    return data


def datasets(store: Any) -> Iterator[tuple[str, Any]]:
    """(name, dataset) of every dataset in an open h5py File, without reading any values."""
    import h5py

    found: list[tuple[str, Any]] = []

    def visit(name: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset):
            found.append((name, item))

    store.visititems(visit)
    yield from found


def declared_bytes(dataset: Any) -> int:
    """The bytes an HDF5 dataset's shape and dtype declare."""
    return math.prod(dataset.shape or ()) * dataset.dtype.itemsize


def check_hdf5(store: Any, path: Path | str) -> int:
    """The bytes the datasets of an open h5py File declare, in all; DeclaredSizeError for one
    that stores less than it declares (an uncompressed dataset with nothing written reads
    as its fill value, allocated in full) or a total past the memory available."""
    total = 0
    for name, dataset in datasets(store):
        size = declared_bytes(dataset)
        stored = dataset.id.get_storage_size()
        if size and dataset.compression is None and stored < size:
            raise DeclaredSizeError(
                f"{path}: the dataset {name} declares shape {tuple(dataset.shape)} of "
                f"{dataset.dtype} ({memory.size_text(size)}) but stores "
                f"{memory.size_text(stored)}; the file is damaged or was not written by Keras",
                str(path),
                size,
                stored,
            )
        total += size
    refuse_memory(path, "its datasets declare {size}", total)
    return total


def check_hdf5_file(path: Path) -> int:
    """check_hdf5 on the HDF5 file at `path` (a .weights.h5 checkpoint), before Keras reads
    it; a file h5py cannot open is left for Keras to report, a path that is no regular file
    (a FIFO would block the open) is a ModelFileError."""
    import h5py

    what = kind_of(path)
    if what is not None:
        raise ModelFileError(f"{path} is {what}, not a weights file", str(path))
    try:
        store = h5py.File(path, "r")
    except OSError:
        return 0
    with store:
        return check_hdf5(store, path)


class _Window(io.RawIOBase):
    """Bytes start..start+size of an open file as a seekable file of their own: a stored zip
    member read in place (zipfile's own member file re-reads from its start on every seek
    back, which HDF5 does all the time)."""

    def __init__(self, raw: IO[bytes], start: int, size: int) -> None:
        super().__init__()
        self._raw, self._start, self._size, self._pos = raw, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = min(max(0, base + offset), self._size)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")[: max(0, self._size - self._pos)]
        self._raw.seek(self._start + self._pos)
        n = self._raw.readinto(view) or 0
        self._pos += n
        return n


@contextmanager
def stored_member(path: Path, info: zipfile.ZipInfo) -> Iterator[IO[bytes]]:
    """An uncompressed zip member as a seekable file, read in place; DeclaredSizeError when
    the archive ends before the size the member declares."""
    with open(path, "rb") as raw:
        raw.seek(info.header_offset)
        local = raw.read(30)
        if len(local) < 30 or not local.startswith(b"PK\x03\x04"):
            raise zipfile.BadZipFile(f"{info.filename}: no local header where it is declared")
        start = info.header_offset + 30 + int.from_bytes(local[26:28], "little")
        start += int.from_bytes(local[28:30], "little")
        held = max(0, path.stat().st_size - start)
        if info.file_size > held:
            raise DeclaredSizeError(
                f"{path}: the member {info.filename} declares {info.file_size:,} bytes but the "
                f"archive holds {held:,} after its start",
                str(path),
                info.file_size,
                held,
            )
        window = _Window(raw, start, info.file_size)
        _check_crc(path, info, window)
        yield window


def _check_crc(path: Path, info: zipfile.ZipInfo, member: IO[bytes]) -> None:
    """zipfile.BadZipFile unless the member's bytes have the CRC-32 its entry declares (as
    zipfile itself checks), read 1 MiB at a time."""
    import zlib

    crc = 0
    while block := member.read(1 << 20):
        crc = zlib.crc32(block, crc)
    member.seek(0)
    if crc != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r} in {path}")
