"""A `.keras` file's weights read from its own files, without Keras: config.json names each
stored variable (model.builtin_layers), model.weights.h5 gives its values one at a time.

Statistics need neither TensorFlow (seconds and most of a gigabyte to import) nor a rebuilt
model, so where every layer of the file is one of Keras's own, inspect-weights reads at the
speed of the file and holds one variable's values at a time: a model larger than memory is
still inspected. Anything else (a plugin's layer, a nested model, a Lambda) goes to Keras.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kinit_cli.model import builtin_layers, saved
from kinit_cli.model.build import snake_case
from kinit_cli.model.saved import Loaded
from kinit_cli.model.variables import WeightInfo
from kinit_cli.storage import bounded

# Model classes whose config lists its layers, each stored under layers/<name>.
_CONTAINERS = {("keras.src.models.functional", "Functional"), ("keras", "Sequential")}


@dataclass
class FileLoaded(Loaded):
    """A Loaded with no model: each variable's `variable` is its HDF5 path in the file, and
    its values are read from the file when asked for, never all at once. The file is opened
    (and its checksum checked) once, at the first read, and stays open with the object."""

    _open: tuple[ExitStack, Any] | None = field(default=None, repr=False, compare=False)

    def array(self, variable: Any) -> Any:
        return np.asarray(self._store()[variable])

    def each(self, weights: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
        store = self._store()
        for w in weights:
            yield w, np.asarray(store[w.variable])

    def _store(self) -> Any:
        if self._open is None:
            assert self.file is not None
            stack = ExitStack()
            self._open = (stack, stack.enter_context(saved._weights_file(Path(self.file))))
        return self._open[1]


def read(path: Path, config: dict[str, Any], kind: str, source: str) -> FileLoaded | None:
    """`path`'s variables named from its `config` (config.json, as saved.check_contents
    returns it once every declared size is checked), with their values left in the file;
    None when a layer (or an initializer) is not one of Keras's own that
    model.builtin_layers knows, or the file stores other variables than the config implies:
    Keras reads it."""
    planned = _plan(config)
    if planned is None:
        return None
    with saved._weights_file(path) as store:
        stored = _stored(store)
        expected = {w.variable for w in planned}
        if set(stored) != expected:
            return None  # nested layers, or a class that stores more than its table says
        for w in planned:
            dtype = stored[w.variable].dtype
            if dtype.kind not in "fiub":
                return None  # bfloat16 and friends: Keras knows how it stored them
            w.shape = tuple(int(d) for d in stored[w.variable].shape)
            w.dtype = str(dtype)
    loaded = FileLoaded(kind, source, None, planned)
    loaded.file = str(path)
    return loaded


def _plan(config: dict[str, Any]) -> list[WeightInfo] | None:
    """Every variable the model's layers make, as WeightInfos with HDF5 paths (shapes and
    dtypes filled from the file later); None when any layer is not in the table."""
    if (config.get("module"), config.get("class_name")) not in _CONTAINERS:
        return None
    model = config.get("config")
    layers = model.get("layers") if isinstance(model, dict) else None
    if not isinstance(layers, list) or not all(isinstance(e, dict) for e in layers):
        return None
    if (
        config["class_name"] == "Sequential"
        and layers
        and layers[0].get("class_name") == ("InputLayer")
    ):
        layers = layers[1:]  # Sequential.layers leaves its input out, and so does the file
    frozen = model.get("trainable") is False
    out: list[WeightInfo] = []
    for entry, group in zip(layers, _group_names(layers), strict=True):
        slots = builtin_layers.slots(entry)
        if slots is None:
            return None
        layer = entry["config"]
        name = layer.get("name")
        if slots and (group is None or not isinstance(name, str)):
            return None
        trainable = not frozen and layer.get("trainable", True) is not False
        for i, slot in enumerate(slots):
            initializer = builtin_layers.initializer_record(layer, slot)
            if initializer is None:
                return None
            out.append(
                WeightInfo(
                    f"{name}/{slot.name}",
                    (),
                    "",
                    slot.trainable and trainable,
                    initializer,
                    [name],
                    variable=f"layers/{group}/vars/{i}",
                )
            )
    return out


def _group_names(layers: list[dict[str, Any]]) -> list[str | None]:
    """The group each layer's state is stored under, as Keras's saving names it: the
    snake_case class name, numbered from _1 on its repeats (`conv2d`, `conv2d_1`), never
    the layer's own name; None for an operation (`x + 3.0`), which is not a layer and is
    not stored."""
    used: dict[str, int] = {}
    out: list[str | None] = []
    for entry in layers:
        module = entry.get("module")
        if isinstance(module, str) and module.startswith("keras.src.ops."):
            out.append(None)
            continue
        name = snake_case(str(entry.get("class_name")))
        if name in used:
            used[name] += 1
            name = f"{name}_{used[name]}"
        else:
            used[name] = 0
        out.append(name)
    return out


def _stored(store: Any) -> dict[str, Any]:
    """The model's datasets by name, the optimizer's left out (saved.check_contents has
    checked that each stores what it declares)."""
    return {n: d for n, d in bounded.datasets(store) if not n.startswith("optimizer/")}
