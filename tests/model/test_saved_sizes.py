""".keras files from elsewhere: every size they declare is checked before memory is spent
(zip members, HDF5 datasets, the layers config.json declares), and config.json must be a
JSON mapping of sane depth. Hostile files are made small (a sparse or deflated file) and
read by kinit in a subprocess under an address-space limit."""

from __future__ import annotations

import json
import re
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from kinit_cli.cli import cli
from kinit_cli.errors import DeclaredSizeError, ModelFileError, ResourceError
from kinit_cli.model import footprint, saved
from kinit_cli.runtime import memory, switches
from kinit_cli.runtime.switches import Switches
from tests.conftest import kinit_limited

GiB = 1 << 30


@pytest.fixture(autouse=True)
def memory_checked() -> Iterator[None]:
    """The checks on, as a command without --ignore-memory-check holds them."""
    with switches.using(Switches()):
        yield


def small_model() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((8,), name="x"),
            keras.layers.Dense(4, name="dense"),
            keras.layers.Dense(3, name="head"),
        ],
        name="small",
    )


def saved_model(path: Path) -> Path:
    small_model().save(path)
    return path


def rewritten(source: Path, path: Path, **members: bytes) -> Path:
    """A copy of the .keras archive `source` with `members` replaced (stored, as Keras does)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(path, "w") as new:
        for name in old.namelist():
            new.writestr(name, members.pop(name, None) or old.read(name))
        for name, data in members.items():
            new.writestr(name, data)
    return path


def h5_bytes(path: Path, build) -> bytes:
    with h5py.File(path, "w") as store:
        build(store)
    return path.read_bytes()


def deflated_zeros_member(name: str, size: int) -> tuple[bytes, bytes]:
    """(local header and data, central directory entry) of a zip member that inflates to
    `size` zero bytes (a multiple of 1 MiB, under 4 GiB) from about size/1000 bytes: one
    deflated MiB repeated, each copy ending in a full flush so that copies chain. The CRC is
    left 0: a reader that inflates it all runs out of memory long before it checks."""
    mib = bytes(1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = deflate.compress(mib) + deflate.flush(zlib.Z_FULL_FLUSH)
    data = chunk * (size >> 20) + deflate.flush()
    fields = (8, 0, 0, 0, len(data), size, len(name))  # deflated, time, date, crc, sizes
    local = b"PK\x03\x04" + (20).to_bytes(2, "little") + b"\0\0"
    local += _pack(fields, (2, 2, 2, 4, 4, 4, 2)) + b"\0\0" + name.encode() + data
    central = b"PK\x01\x02" + (20).to_bytes(2, "little") * 2 + b"\0\0"
    central += _pack(fields, (2, 2, 2, 4, 4, 4, 2)) + bytes(16)  # extra .. attributes, offset
    return local, central + name.encode()


def _pack(values: tuple[int, ...], widths: tuple[int, ...]) -> bytes:
    return b"".join(v.to_bytes(w, "little") for v, w in zip(values, widths, strict=True))


def zip_bomb(source: Path, path: Path, size: int) -> Path:
    """`source`'s config.json and metadata.json, and a model.weights.h5 of `size` zeros."""
    with zipfile.ZipFile(source) as archive:
        small = {n: archive.read(n) for n in ("metadata.json", "config.json")}
    with zipfile.ZipFile(path, "w") as out:
        for name, data in small.items():
            out.writestr(name, data)
    body = path.read_bytes()
    end = body.rindex(b"PK\x05\x06")
    directory_at = int.from_bytes(body[end + 16 : end + 20], "little")
    local, central = deflated_zeros_member("model.weights.h5", size)
    # The local entries, the new one after them, then the directory with the new entry.
    offset = directory_at.to_bytes(4, "little")
    central = central[:42] + offset + central[46:]
    entries = body[directory_at:end] + central
    tail = b"PK\x05\x06" + bytes(4) + (3).to_bytes(2, "little") * 2
    tail += _pack((len(entries), directory_at + len(local)), (4, 4)) + b"\0\0"
    path.write_bytes(body[:directory_at] + local + entries + tail)
    return path


# --- in process: the checks on small fakes ------------------------------------------------


def test_a_member_that_inflates_past_the_ratio_is_refused(tmp_path):
    path = zip_bomb(saved_model(tmp_path / "m.keras"), tmp_path / "bomb.keras", 64 << 20)
    packed = zipfile.ZipFile(path).getinfo(saved.WEIGHTS).compress_size  # zlib's, about 1/1000
    with pytest.raises(DeclaredSizeError) as caught:
        saved.read_keras(path, "model", str(path))
    assert str(caught.value) == (
        f"{path}: the member model.weights.h5 inflates from {packed:,} to 67,108,864 bytes "
        f"({(64 << 20) / packed:,.0f} to 1; kinit reads at most 100 to 1, as no real weights "
        "compress so far); pass --ignore-memory-check to read it anyway"
    )
    assert caught.value.exit_code == 1 and caught.value.declared == 64 << 20


def test_a_dataset_that_stores_less_than_it_declares_is_refused(tmp_path):
    def build(store: h5py.File) -> None:
        store.create_dataset("layers/dense/vars/0", shape=(40000, 40000), dtype="float32")

    weights = h5_bytes(tmp_path / "w.h5", build)
    path = rewritten(
        saved_model(tmp_path / "m.keras"), tmp_path / "hollow.keras", **{saved.WEIGHTS: weights}
    )
    with pytest.raises(DeclaredSizeError) as caught:
        saved.read_keras(path, "model", str(path))
    assert str(caught.value) == (
        f"{path} (model.weights.h5): the dataset layers/dense/vars/0 declares shape "
        "(40000, 40000) of float32 (6.4 GB) but stores 0 bytes; the file is damaged or was not "
        "written by Keras"
    )


def test_weights_past_the_memory_available_are_refused(tmp_path, monkeypatch):
    path = saved_model(tmp_path / "m.keras")
    monkeypatch.setattr(memory, "available_bytes", lambda: 5000)
    with pytest.raises(DeclaredSizeError) as caught:
        saved.read_keras(path, "model", str(path))
    size = zipfile.ZipFile(path).getinfo(saved.WEIGHTS).file_size  # config.json fits: 2.2 kB
    assert str(caught.value) == (
        f"{path}: the member model.weights.h5 declares {memory.size_text(size)}, but this "
        "machine has 5.0 kB available; pass --ignore-memory-check to try anyway"
    )
    with switches.using(Switches(ignore_memory_check=True)):
        assert len(saved.read_keras(path, "model", str(path)).weights) == 4


def test_the_estimate_from_config_json_matches_what_keras_builds(tmp_path):
    inputs = keras.Input((6, 6, 2), name="image")
    x = keras.layers.Conv2D(5, 3, name="conv")(inputs)
    x = keras.layers.Flatten(name="flat")(x)
    inner = keras.Sequential(
        [keras.Input((80,), name="features"), keras.layers.Dense(7, name="mid")], name="inner"
    )
    outputs = keras.layers.Dense(2, dtype="float64", name="out")(inner(x))
    model = keras.Model(inputs, outputs, name="f")
    model.save(tmp_path / "f.keras")
    config = saved.read_config(tmp_path / "f.keras")
    found = footprint.saved_estimate(config)
    assert found == footprint.Estimate(model.count_params(), 4, None)
    assert found.parameters == (3 * 3 * 2 * 5 + 5) + (80 * 7 + 7) + (7 * 2 + 2)


def test_a_config_json_declaring_a_huge_model_is_refused_before_keras_builds_it(tmp_path):
    path = rewritten(saved_model(tmp_path / "m.keras"), tmp_path / "huge.keras")
    config = saved.read_config(path)
    dense = config["config"]["layers"][1]
    dense["config"]["units"] = 40000
    dense["build_config"]["input_shape"] = [None, 40000]
    path = rewritten(path, tmp_path / "huge2.keras", **{"config.json": json.dumps(config).encode()})
    with pytest.raises(ResourceError) as caught:
        footprint.check_saved(config, str(path), available=4 * GiB)
    assert str(caught.value) == (
        f"{path}: the model's weights alone need 6.4 GB (1.6e9 parameters as float32) but "
        "this machine has 4.3 GB available; pass --ignore-memory-check to try anyway"
    )
    with pytest.raises(ResourceError) as caught:
        footprint.check_saved(config, str(path), available=10 * GiB)
    assert str(caught.value).startswith(
        f"{path}: reading the model needs 12.8 GB: its weights take 6.4 GB (1.6e9 parameters "
        "as float32), the values read from the file as much again (2x in all) but"
    )


def test_a_layer_the_estimate_cannot_size_makes_it_a_lower_bound():
    config = {
        "config": {
            "layers": [
                {"class_name": "InputLayer", "config": {"batch_shape": [None, 4]}},
                {"module": "my_plugin", "class_name": "Dense", "config": {"units": 9}},
                {"module": "keras.layers", "class_name": "Dense", "config": {"units": 2}},
            ]
        }
    }
    assert footprint.saved_estimate(config) == footprint.Estimate(
        0, 4, "config.json layers[1] (Dense)"
    )


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (b"[1, 2]", "a list ([1, 2])"),
        (b"null", "null"),
        (b'"model"', 'a string ("model")'),
    ],
)
def test_config_json_that_is_not_a_mapping(runner, tmp_path, text, found):
    path = rewritten(
        saved_model(tmp_path / "m.keras"), tmp_path / "odd.keras", **{"config.json": text}
    )
    result = runner.invoke(cli, ["inspect-weights", str(path)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {path}: config.json holds {found}; expected a mapping (the model's class_name "
        "and config, as model.save writes it)\n"
    )


@pytest.mark.parametrize("depth", [101, 200_000])
def test_config_json_nested_too_deep(runner, tmp_path, depth):
    text = ("[" * depth + "]" * depth).encode()
    path = rewritten(
        saved_model(tmp_path / "m.keras"),
        tmp_path / "deep.keras",
        **{"config.json": b'{"config": ' + text + b"}"},
    )
    result = runner.invoke(cli, ["export-config", str(path)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {path}: config.json nests lists and mappings more than 100 levels deep "
        "(kinit's limit, as for a config file)\n"
    )


def test_config_json_that_is_not_json(tmp_path):
    path = rewritten(
        saved_model(tmp_path / "m.keras"), tmp_path / "bad.keras", **{"config.json": b"{oops"}
    )
    with pytest.raises(ModelFileError) as caught:
        saved.read_config(path)
    assert str(caught.value) == (
        f"{path}: config.json is not valid JSON (Expecting property name enclosed in double "
        "quotes: line 1 column 2 (char 1))"
    )


def test_a_keras_path_that_is_a_fifo_is_not_opened(runner, tmp_path):
    import os

    path = tmp_path / "pipe.keras"
    os.mkfifo(path)
    result = runner.invoke(cli, ["inspect-weights", str(path)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {path} is a FIFO (named pipe), which a reader would wait on, not a Keras "
        "model file\n"
    )


def test_a_sound_file_reads_as_before(tmp_path):
    model = small_model()
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = saved.read_keras(path, "model", str(path))
    assert [w.path for w in loaded.weights] == [
        "dense/kernel",
        "dense/bias",
        "head/kernel",
        "head/bias",
    ]
    values = loaded.arrays(loaded.weights)
    for w, expected in zip(loaded.weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(values[w.path], expected)


# --- in a subprocess under an address-space limit ------------------------------------------


def _refused(result, pattern: str) -> None:
    assert result.returncode == 1, result.stderr[-2000:]
    assert re.fullmatch(pattern, result.stderr), result.stderr[-2000:]


@pytest.mark.slow
def test_a_deflated_weights_bomb_is_refused_within_memory(tmp_path):
    source = saved_model(tmp_path / "m.keras")
    path = zip_bomb(source, tmp_path / "bomb.keras", 3584 << 20)  # 3.5 GiB of zeros
    assert path.stat().st_size < 4_000_000
    packed = zipfile.ZipFile(path).getinfo(saved.WEIGHTS).compress_size
    result = kinit_limited("inspect-weights", str(path), cwd=tmp_path)
    _refused(
        result,
        re.escape(
            f"error: {path}: the member model.weights.h5 inflates from {packed:,} to "
            f"3,758,096,384 bytes ({(3584 << 20) / packed:,.0f} to 1; kinit reads at most 100 "
            "to 1, as no real weights compress so far); pass --ignore-memory-check to read it "
            "anyway\n"
        ),
    )


@pytest.mark.slow
def test_a_hollow_dataset_is_refused_within_memory(tmp_path):
    def build(store: h5py.File) -> None:
        store.create_dataset("layers/dense/vars/0", shape=(40000, 40000), dtype="float32")
        store.create_dataset("layers/dense/vars/1", data=np.zeros(4, "float32"))

    weights = h5_bytes(tmp_path / "w.h5", build)
    path = rewritten(
        saved_model(tmp_path / "m.keras"), tmp_path / "hollow.keras", **{saved.WEIGHTS: weights}
    )
    assert path.stat().st_size < 20_000
    _refused(
        kinit_limited("inspect-weights", str(path), cwd=tmp_path),
        re.escape(
            f"error: {path} (model.weights.h5): the dataset layers/dense/vars/0 declares shape "
            "(40000, 40000) of float32 (6.4 GB) but stores 0 bytes; the file is damaged or was "
            "not written by Keras\n"
        ),
    )


@pytest.mark.slow
def test_a_huge_declared_model_is_refused_within_memory(tmp_path):
    path = rewritten(saved_model(tmp_path / "m.keras"), tmp_path / "tmp.keras")
    config = saved.read_config(path)
    dense = config["config"]["layers"][1]
    dense["config"]["units"] = 300_000
    dense["build_config"]["input_shape"] = [None, 300_000]
    path = rewritten(path, tmp_path / "huge.keras", **{"config.json": json.dumps(config).encode()})
    _refused(
        kinit_limited("inspect-weights", str(path), cwd=tmp_path),
        re.escape(
            f"error: {path}: the model's weights alone need 360.0 GB (9.0e10 parameters as "
            "float32) but this machine has "
        )
        + r"[0-9.]+ [kMG]B"
        + re.escape(" available; pass --ignore-memory-check to try anyway\n"),
    )


def test_export_config_takes_the_flag_its_refusals_name(runner):
    result = runner.invoke(cli, ["export-config", "--help"])
    assert result.exit_code == 0 and "--ignore-memory-check" in result.output
