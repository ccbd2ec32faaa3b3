"""`Splits`: the examples of one data set, split and shaped for the model, with the record
of how they were prepared (preprocessing.py) that predict and evaluate repeat."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kinit_cli.data.preprocessing import Preprocessing, SplitRecord


@dataclass
class Splits:
    """The examples of one data set, split and shaped for the model.

    Pixels stored as uint8 stay uint8, and `scale` says what to divide them by: a quarter of
    the memory of float32, and a quarter of the bytes each batch gathers. The pipelines
    (pipeline.py) normalise each batch with the same float32 division NumPy would have
    made, so the model sees bit-identical inputs. `scale` None: the arrays are already the
    model's float32. For an image folder, x holds the files' absolute paths, decoded batch by
    batch (image_pipeline.py) and by model_input.
    """

    name: str
    source: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    scale: float | None = None
    preprocessing: Preprocessing | None = None
    split: SplitRecord | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def files(self) -> bool:
        """x holds image file paths, not values."""
        return self.preprocessing is not None and self.preprocessing.kind == "images"

    def model_input(self, x: np.ndarray) -> np.ndarray:
        """Examples of one split as the model takes them: float32, normalised."""
        if self.files:
            from kinit_cli.data import images

            assert self.preprocessing is not None and self.preprocessing.images is not None
            x = images.decode(list(x), self.preprocessing.images)
            if self.preprocessing.flatten:
                x = x.reshape(len(x), -1)
            if self.scale is None:
                return x.astype(np.float32)
        return x if self.scale is None else divided(x, self.scale)

    @property
    def sizes(self) -> dict[str, int]:
        """Examples per split (validation 0 when there is none)."""
        validation = 0 if self.x_val is None else len(self.x_val)
        return {"train": len(self.x_train), "validation": validation, "test": len(self.x_test)}


def shape_fits(input_shape: tuple[int | None, ...], example: tuple[int, ...]) -> bool:
    """Whether examples of this shape fit the model's input (None matches any size)."""
    return len(example) == len(input_shape) and all(
        want is None or want == have for want, have in zip(input_shape, example, strict=True)
    )


def divided(x: np.ndarray, scale: float) -> np.ndarray:
    """x / scale in float32: the division the pipelines repeat batch by batch."""
    out = x.astype(np.float32)  # a copy: safe to divide in place, no float64 temporary
    out /= np.float32(scale)
    return out
