"""Reading a saved Keras model: a `.keras` file, checked before Keras opens it, read without
rebuilding when its layout allows (Keras's load_model otherwise), and its Python code loaded
only when the user says so.
"""

from __future__ import annotations

import copy
import json
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kinit_cli.config import source
from kinit_cli.errors import KinitError, ModelFileError, UntrustedCode, keras_message
from kinit_cli.model import footprint
from kinit_cli.model.prepared import Checked, Prepared
from kinit_cli.model.variables import WeightInfo, recording_weights, weight_infos
from kinit_cli.registry.plugins import how_to_load
from kinit_cli.runtime import compat
from kinit_cli.runtime.imports import keras
from kinit_cli.runtime.recursion import mappings_in, room_for
from kinit_cli.storage import bounded

WEIGHTS = "model.weights.h5"  # a .keras archive's member holding the values


@dataclass
class Loaded:
    """A model's weights and where they came from: what every target kind is read into."""

    kind: str  # config | model | run | checkpoint
    source: str
    model: Any
    weights: list[WeightInfo]
    initial: dict[str, dict[str, Any]] | None = None  # weights-init.json entries by path
    final: dict[str, str] | None = None  # a run's weights-final.json: path -> SHA-256
    prepared: Prepared | None = None  # a config target's
    checked: Checked | None = None  # a run's config.yaml, as read once
    calls: dict[str, list[str]] | None = None  # layer -> where it is applied (config target)
    # Values read straight from a .keras file, by id of the (uninitialized) variable.
    stored: dict[int, Any] | None = None
    epochs: int | None = None  # a run's trained epochs (metrics.json)
    file: str | None = None  # the file the values were read from (a run's model or weights)
    notes: list[str] = field(default_factory=list)  # warnings: works, but deserves a word

    def array(self, variable: Any) -> Any:
        """A variable's value as NumPy, from the file when it was read without a rebuild."""
        if self.stored is not None:
            return self.stored[id(variable)]
        return np.asarray(variable.numpy())

    def arrays(self, weights: Sequence[Any]) -> dict[str, Any]:
        return {w.path: self.array(w.variable) for w in weights}

    def each(self, weights: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
        """Each of `weights` with its value, one at a time: a reader of a file may stream
        them, so no more than one is held."""
        for w in weights:
            yield w, self.array(w.variable)


def read_keras(
    path: Path,
    kind: str,
    source: str,
    unsafe: bool = False,
    config: dict[str, Any] | None = None,
) -> Loaded:
    """The model a .keras file holds and its weights; ModelFileError for a file that is not
    one, or that holds Python code (a Lambda layer) when `unsafe` is not given. `config`:
    what check_contents returned for it already (each check made once)."""
    if config is None:
        check_archive(path)
        config = check_contents(path)
    with room_for(mappings_in(config)):
        return _read_keras(path, config, kind, source, unsafe)


def _read_keras(path: Path, config: dict[str, Any], kind: str, source: str, unsafe: bool) -> Loaded:
    notes: list[str] = []
    with recording_weights() as records:
        read = _read_without_rebuild(path, config, safe_mode=True)
    if read is not None:
        model, stored = read
        return Loaded(kind, source, model, weight_infos(model, records), stored=stored)
    try:
        with recording_weights() as records:
            model = keras().saving.load_model(path, safe_mode=True)
    except Exception as exc:
        code = _code_in(exc)
        if code is None:
            missing = unknown_classes(path)
            if missing:
                # A matter of leave, as for the same model read through its run: exit 2.
                raise UntrustedCode(unknown_message(path, missing), [], list(missing)) from exc
            raise KinitError(
                f"cannot load {path}: {keras_message(exc)}. If it uses plugin objects, load the "
                "plugin with --plugin."
            ) from exc
        if not unsafe:
            raise ModelFileError(
                f"{path} holds {code} (Python code, which Keras will not load by default); if "
                "you trust the file, add --unsafe-deserialization",
                str(path),
                code=code,
            ) from exc
        notes.append(
            f"--unsafe-deserialization: {path} holds {code}, and Keras loaded its Python code, "
            "which runs whenever the model is called"
        )
        with recording_weights() as records:
            read = _read_without_rebuild(path, config, safe_mode=False)
        if read is not None:
            model, stored = read
            return Loaded(
                kind, source, model, weight_infos(model, records), stored=stored, notes=notes
            )
        try:
            with recording_weights() as records:
                model = keras().saving.load_model(path, safe_mode=False)
        except Exception as again:
            raise KinitError(f"cannot load {path}: {keras_message(again)}") from again
    return Loaded(kind, source, model, weight_infos(model, records), notes=notes)


def read_by_path(
    path: Path, kind: str, source: str, record: dict[str, dict[str, Any]] | None
) -> Loaded:
    """Every variable `path` stores (a .keras file's model.weights.h5, a .weights.h5 file),
    read by its HDF5 path with no model: what can be shown of a run whose classes cannot be
    rebuilt without code the user did not allow. Declared sizes are checked before any value
    is read; `record` (weights-init.json) names a variable where its shape matches."""
    stored: dict[int, Any] = {}
    weights = []
    with _weights_file(path) as store:
        bounded.check_hdf5(store, f"{path} ({WEIGHTS})" if path.suffix == ".keras" else path)
        found = [(n, d) for n, d in bounded.datasets(store) if not n.startswith("optimizer/")]
        for name, dataset in sorted(found, key=lambda item: _natural(item[0])):
            info = _by_path_info(name, dataset, record or {})
            stored[id(info.variable)] = np.asarray(dataset)
            weights.append(info)
    loaded = Loaded(kind, source, None, weights, stored=stored)
    loaded.file = str(path)
    return loaded


@contextmanager
def _weights_file(path: Path) -> Iterator[Any]:
    """The HDF5 store of a .keras file (its model.weights.h5) or of a .weights.h5 file."""
    import h5py

    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as archive, _weights_store(path, archive) as store:
            yield store
        return
    bounded.check_hdf5_file(path)
    try:
        opened = h5py.File(path, "r")
    except OSError as exc:  # truncated or not HDF5: the file's fault, named as such
        raise ModelFileError(
            f"{path} is not a readable weights file ({exc}); was it copied or downloaded in full?",
            str(path),
        ) from None
    with opened as store:
        yield store


def _natural(name: str) -> list[tuple[int, int | str]]:
    """Sort key of an HDF5 path in the order Keras wrote it: vars/2 before vars/10."""
    return [(0, int(p)) if p.isdigit() else (1, p) for p in name.split("/")]


def _by_path_info(name: str, dataset: Any, record: dict[str, dict[str, Any]]) -> WeightInfo:
    """A stored variable as a WeightInfo named by its path: `layers/L/vars/I` is the run's
    I-th recorded variable of layer L when their shapes agree, else `L/vars/I`."""
    parts = name.split("/")
    layer = parts[1] if parts[0] == "layers" and len(parts) > 1 else parts[0]
    shape = tuple(int(d) for d in dataset.shape)
    path, entry = "/".join(parts[1:]) if parts[0] == "layers" else name, {}
    if len(parts) == 4 and parts[2] == "vars" and parts[3].isdigit():
        mine = [e for p, e in record.items() if p.split("/")[0] == layer]
        index = int(parts[3])
        if index < len(mine) and tuple(mine[index].get("shape", ())) == shape:
            entry = mine[index]
            path = entry["path"]
    trainable = entry.get("trainable")
    return WeightInfo(
        path,
        shape,
        str(dataset.dtype),
        trainable if isinstance(trainable, bool) else True,
        entry.get("initializer"),
        [layer],
        variable=name,
    )


def unknown_classes(path: Path) -> dict[str, str]:
    """The classes a .keras file's config.json names from outside Keras that nothing has
    registered, by their registered names, each with the module it came from: what it needs
    a plugin for. Walked without recursion, so any depth of nesting is read."""
    try:
        with zipfile.ZipFile(path) as archive:
            stack = [json.loads(archive.read("config.json"))]
    except (KeyError, ValueError, RecursionError, zipfile.BadZipFile):
        return {}
    known = keras().saving.get_custom_objects()
    out: dict[str, str] = {}
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            module, name = node.get("module"), node.get("class_name")
            if isinstance(module, str) and isinstance(name, str):
                name = node.get("registered_name") or name
                if module.split(".")[0] != "keras" and name not in known:
                    out.setdefault(str(name), module)
            stack += reversed(list(node.values()))
        elif isinstance(node, list):
            stack += reversed(node)
    return out


def unknown_message(path: Path, missing: dict[str, str]) -> str:
    """The classes a file needs (class -> module), and how to load each module's package."""
    named = ", ".join(
        f"{name.split('>')[-1]} (module {module})" for name, module in missing.items()
    )
    packages: dict[str, str] = {}  # one hint per top-level package
    for module in missing.values():
        packages.setdefault(module.split(".")[0], module)
    hints = "; ".join(how_to_load(module) for module in packages.values())
    return (
        f"cannot load {path}: its model uses {named}, which no loaded plugin or library "
        f"defines (kinit imports no code a file names); {hints}"
    )


def _code_in(exc: BaseException) -> str | None:
    """What Keras refused to deserialize in safe mode ('a Lambda layer'), or None when the
    error is another one. Keras says so only in its message, which names `safe_mode=False`."""
    text = str(exc)
    if "safe_mode" not in text:
        return None
    return "a Lambda layer" if "`Lambda` layer" in text else "a Python lambda function"


def check_archive(path: Path) -> None:
    """ModelFileError unless `path` is a zip archive holding config.json, as every .keras file
    is (Keras itself answers 'File not found' for a file that is there but unreadable)."""
    what = bounded.kind_of(path)
    if what is not None:
        raise ModelFileError(f"{path} is {what}, not a Keras model file", str(path))
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if "config.json" in names:
            return
        reason = f"a zip archive without config.json; it holds {', '.join(names[:5]) or 'nothing'}"
    else:
        with open(path, "rb") as f:
            head = f.read(8)
        size = path.stat().st_size
        if not head:
            reason = "an empty file"
        elif head.startswith(b"PK"):
            reason = (
                f"zip archive truncated: {size} bytes that start as a zip archive but lack the "
                "directory at its end; was it copied or downloaded in full?"
            )
        elif head.startswith(b"\x89HDF"):
            reason = (
                "an HDF5 file (a .weights.h5 checkpoint, or a Keras 2 .h5 model), not a .keras "
                "zip archive"
            )
        else:
            reason = f"not a zip archive: {size} bytes starting {head.hex(' ')}"
    raise ModelFileError(
        f"{path} is not a readable Keras model file ({reason}); a .keras file is the zip "
        "archive model.save('NAME.keras') writes",
        str(path),
    )


def read_config(path: Path) -> dict[str, Any]:
    """A .keras file's config.json, read within the limits a config file has (its size and
    nesting depth); ModelFileError for one that is not a JSON mapping."""
    with zipfile.ZipFile(path) as archive:
        data = bounded.read_member(path, archive, "config.json", source.max_bytes())
    deep = (
        f"{path}: config.json nests lists and mappings more than {source.MAX_DEPTH} levels "
        "deep (kinit's limit, as for a config file)"
    )
    try:
        config = json.loads(data)
    except RecursionError as exc:
        raise ModelFileError(deep, str(path)) from exc
    except ValueError as exc:
        raise ModelFileError(f"{path}: config.json is not valid JSON ({exc})", str(path)) from exc
    if not isinstance(config, dict):
        raise ModelFileError(
            f"{path}: config.json holds {_json_kind(config)}; expected a mapping (the model's "
            "class_name and config, as model.save writes it)",
            str(path),
        )
    if _depth(config) > source.MAX_DEPTH:
        raise ModelFileError(deep, str(path))
    return config


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    kinds = {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return f"{kinds.get(type(value), type(value).__name__)} ({json.dumps(value)[:40]})"


def _depth(value: Any) -> int:
    """How deep lists and mappings nest in `value` (1: a flat one), counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        deepest = max(deepest, level)
        stack += [(c, level + 1) for c in children if isinstance(c, dict | list)]
    return deepest


def check_contents(path: Path) -> dict[str, Any]:
    """The file's config.json, once every size it declares is checked against what the file
    holds and the memory available: each member, each weights dataset, and the weights its
    layers declare (footprint.check_saved); DeclaredSizeError or ResourceError otherwise."""
    config = read_config(path)
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            bounded.check_member(path, info)
        if WEIGHTS in archive.namelist():
            try:
                with _weights_store(path, archive) as store:
                    bounded.check_hdf5(store, f"{path} ({WEIGHTS})")
            except zipfile.BadZipFile as exc:
                raise ModelFileError(f"{path} is damaged: {exc}", str(path)) from exc
            except (OSError, RuntimeError, ValueError):
                pass  # not an HDF5 file h5py can walk: Keras says what is wrong when it reads it
    footprint.check_saved(config, str(path))
    return config


@contextmanager
def _weights_store(path: Path, archive: Any) -> Iterator[Any]:
    """The archive's weights as an open h5py File, read in place when stored uncompressed
    (as Keras stores it); a compressed member is read whole, its size checked first."""
    import io

    import h5py

    info = archive.getinfo(WEIGHTS)
    if info.compress_type == zipfile.ZIP_STORED:
        with bounded.stored_member(path, info) as member, h5py.File(member, "r") as store:
            yield store
        return
    data = bounded.read_member(path, archive, WEIGHTS)
    with h5py.File(io.BytesIO(data), "r") as store:
        yield store


def _read_without_rebuild(
    path: Path, config: dict[str, Any], safe_mode: bool = True
) -> tuple[Any, dict[int, Any]] | None:
    """The model's structure from config.json with no initializer run, and the values from
    model.weights.h5; None when the file does not fit that reading (load_model then).

    `load_model` builds every layer, which draws every initial value, then overwrites them:
    on a 50M-parameter model that is most of the time. Under Keras's StatelessScope the
    variables are only declared; the values come straight from the HDF5 store, where Keras
    keeps each layer's own variables (trainable, then non-trainable) as layers/<name>/vars/<i>.
    """
    # A copy for each reading (deserializing may change it), without the optimizer: it is
    # not inspected.
    config = copy.deepcopy({k: v for k, v in config.items() if k != "compile_config"})
    try:
        with compat.stateless_scope():
            model = keras().saving.deserialize_keras_object(config, safe_mode=safe_mode)
    except Exception:  # whatever a class raises here, load_model raises again and it is reported
        return None
    try:
        with zipfile.ZipFile(path) as archive, _weights_store(path, archive) as store:
            stored = _stored_values(model, store)
    except (KeyError, OSError, ValueError, zipfile.BadZipFile):  # load_model reads (or reports) it
        return None
    if stored is None or any(id(v) not in stored for v in model.weights):
        return None  # variables of nested layers: leave them to load_model
    return model, stored


def _stored_values(model: Any, store: Any) -> dict[int, Any] | None:
    """Each variable's value from the store, by id; None when a layer's do not match."""
    stored: dict[int, Any] = {}
    for layer in model.layers:
        own = compat.own_variables(layer)
        if not own:
            continue
        group = store["layers"][layer.name]["vars"]
        if len(group) != len(own):
            return None
        for i, variable in enumerate(own):
            dataset = group[str(i)]
            if tuple(dataset.shape) != tuple(variable.shape):
                return None  # compared before the values are read
            stored.setdefault(id(variable), np.asarray(dataset))
    return stored
