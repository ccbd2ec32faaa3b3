"""Reading files that may come from elsewhere: what a path is, zip members read in place and
within their declared sizes, and the memory a process can still take."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kinit_cli.errors import DeclaredSizeError
from kinit_cli.runtime import memory, switches
from kinit_cli.runtime.switches import Switches
from kinit_cli.storage import bounded


def test_what_a_path_is(tmp_path):
    regular = tmp_path / "f"
    regular.write_bytes(b"x")
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "s"))
    try:
        assert bounded.kind_of(regular) is None
        assert bounded.kind_of(tmp_path) == "a directory"
        assert bounded.kind_of(fifo) == "a FIFO (named pipe), which a reader would wait on"
        assert bounded.kind_of(tmp_path / "s") == "a socket"
        assert bounded.kind_of(Path("/dev/null")) == (
            "a character device (like /dev/zero, which never ends)"
        )
    finally:
        sock.close()


def archive(path: Path, **members: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as out:
        for name, data in members.items():
            out.writestr(name, data)
    return path


def test_a_stored_member_reads_in_place_and_seeks_both_ways(tmp_path):
    data = bytes(range(256)) * 40
    path = archive(tmp_path / "a.zip", first=b"abc", second=data)
    info = zipfile.ZipFile(path).getinfo("second")
    with bounded.stored_member(path, info) as member:
        assert member.read() == data
        member.seek(-10, os.SEEK_END)
        assert member.read(100) == data[-10:]
        member.seek(5)
        assert member.read(3) == data[5:8] and member.tell() == 8


def test_a_stored_member_with_a_wrong_crc_is_refused(tmp_path):
    path = archive(tmp_path / "a.zip", only=b"hello world")
    raw = bytearray(path.read_bytes())
    raw[raw.index(b"hello")] = ord("j")
    path.write_bytes(bytes(raw))
    info = zipfile.ZipFile(path).getinfo("only")
    with pytest.raises(zipfile.BadZipFile) as caught, bounded.stored_member(path, info):
        pass
    assert str(caught.value) == f"Bad CRC-32 for file 'only' in {path}"


def test_a_member_declaring_more_than_the_archive_holds(tmp_path):
    path = archive(tmp_path / "a.zip", only=b"hello world")
    info = zipfile.ZipFile(path).getinfo("only")
    info.file_size = 1 << 40
    with pytest.raises(DeclaredSizeError) as caught, bounded.stored_member(path, info):
        pass
    held = path.stat().st_size - (info.header_offset + 30 + len("only"))
    assert str(caught.value) == (
        f"{path}: the member only declares 1,099,511,627,776 bytes but the archive holds "
        f"{held:,} after its start"
    )


def test_read_member_stops_at_the_limit_it_is_given(tmp_path):
    path = archive(tmp_path / "a.zip", big=bytes(5000))
    with zipfile.ZipFile(path) as opened, pytest.raises(DeclaredSizeError) as caught:
        bounded.read_member(path, opened, "big", limit=4096)
    assert (
        str(caught.value)
        == f"{path}: the member big declares 5,000 bytes; kinit reads at most 4,096"
    )


def test_the_address_space_limit_counts_as_memory_available():
    code = (
        "import resource; from kinit_cli.runtime import memory\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
        "print(memory.available_bytes())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    available = int(out.stdout)
    # 3 GiB less what the interpreter has mapped already (tens of MB).
    assert (3 << 30) - 500_000_000 < available < 3 << 30


def test_refusal_is_silenced_by_the_flag():
    with switches.using(Switches()):
        assert memory.refusal(10, available=5) == 5
        assert memory.refusal(5, available=5) is None
    with switches.using(Switches(ignore_memory_check=True)):
        assert memory.refusal(10, available=5) is None


def test_a_checkpoint_dataset_that_stores_less_than_it_declares(tmp_path):
    import h5py
    import numpy as np

    path = tmp_path / "epoch-00001.weights.h5"
    with h5py.File(path, "w") as store:
        store.create_dataset("layers/dense/vars/0", data=np.ones((3, 2), "float32"))
        store.create_dataset("layers/dense/vars/1", shape=(50000, 50000), dtype="float64")
    with pytest.raises(DeclaredSizeError) as caught:
        bounded.check_hdf5_file(path)
    assert str(caught.value) == (
        f"{path}: the dataset layers/dense/vars/1 declares shape (50000, 50000) of float64 "
        "(20.0 GB) but stores 0 bytes; the file is damaged or was not written by Keras"
    )


def test_sound_datasets_are_counted_and_a_non_hdf5_file_left_to_keras(tmp_path):
    import h5py
    import numpy as np

    path = tmp_path / "ok.weights.h5"
    with h5py.File(path, "w") as store:
        store.create_dataset("a", data=np.ones((3, 2), "float32"))
        store.create_dataset("b/c", data=np.ones(5, "float64"))
        store.create_dataset("empty", data=np.ones(0, "float32"))
    assert bounded.check_hdf5_file(path) == 3 * 2 * 4 + 5 * 8
    other = tmp_path / "text.weights.h5"
    other.write_text("not HDF5")
    assert bounded.check_hdf5_file(other) == 0


def test_a_checkpoint_path_that_is_a_fifo_is_not_opened(tmp_path):
    from kinit_cli.errors import ModelFileError

    path = tmp_path / "epoch-00001.weights.h5"
    os.mkfifo(path)
    with pytest.raises(ModelFileError) as caught:
        bounded.check_hdf5_file(path)
    assert str(caught.value) == (
        f"{path} is a FIFO (named pipe), which a reader would wait on, not a weights file"
    )
