"""Writes the data of configs/table.yaml and configs/images.yaml, from data scikit-learn
bundles (no download): `make examples`, or `python configs/make_examples.py [FOLDER]`.

- FOLDER/iris.csv: Fisher's 150 irises, four measurements in cm and the species by name.
- FOLDER/digits/CLASS/NNNN.png: the 1,797 8x8 handwritten digits as grayscale PNGs, one
  folder per digit (pixel values 0..16 scaled to 0..255).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits, load_iris


def write_iris(path: Path) -> None:
    iris = load_iris()
    columns = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(columns)
        for row, target in zip(iris.data, iris.target, strict=True):
            out.writerow([*(f"{v:g}" for v in row), iris.target_names[target]])


def write_digits(folder: Path) -> None:
    digits = load_digits()
    pixels = np.round(digits.images * (255 / 16)).astype(np.uint8)
    for i, (image, target) in enumerate(zip(pixels, digits.target, strict=True)):
        place = folder / str(target)
        place.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(place / f"{i:04d}.png")


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "data"
    folder.mkdir(parents=True, exist_ok=True)
    write_iris(folder / "iris.csv")
    write_digits(folder / "digits")
    print(f"wrote {folder / 'iris.csv'} and {folder / 'digits'}/0..9/*.png")


if __name__ == "__main__":
    main()
