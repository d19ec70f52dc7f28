"""How a model reads real handwriting drawn the way the studio's canvas draws it.

Each digit of a set (mnist_core.evalsets) is put on the canvas' 280x280 RGBA image in two ways,
then read through preprocess_drawing, exactly like a drawing on the Draw tab:
  default: pen strokes at the canvas' default width, the digit about DEFAULT_SIDE px, centred;
  random:  a random pen width, size and place (seeded), like people who draw small, large,
           thin or bold, anywhere on the canvas.
Bitmaps (scans and pixel sets) have no pen: their ink is scaled to the same sizes and places.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from mnist_core.canvas import CANVAS_PX, DEFAULT_STROKE_WIDTH, draw_bitmap, draw_strokes
from mnist_core.evalsets import DigitSet
from mnist_core.model import NUM_CLASSES
from mnist_core.preprocess import preprocess_drawing

WAYS = ("default", "random")
DEFAULT_SIDE = 200  # the digit's longer side in the default way, canvas pixels
RANDOM_WIDTH = (8.0, 30.0)  # pen widths of the random way, canvas pixels
RANDOM_SIDE = (60.0, 250.0)  # digit sizes of the random way (longer side), canvas pixels


def random_pen(rng: np.random.Generator) -> tuple[float, float, tuple[float, float]]:
    """A random pen width, digit size (longer side) and centre, canvas pixels, the whole digit on the canvas."""
    width, side = rng.uniform(*RANDOM_WIDTH), rng.uniform(*RANDOM_SIDE)
    margin = (side + width) / 2  # keep the whole digit, pen included, on the canvas
    return width, side, (rng.uniform(margin, CANVAS_PX - margin), rng.uniform(margin, CANVAS_PX - margin))


def canvases(digits: DigitSet, way: str, seed: int = 0) -> Iterator[np.ndarray]:
    """Each digit of the set as the canvas' (280, 280, 4) uint8 RGBA image, drawn the given way."""
    if way not in WAYS:
        raise ValueError(f"Unknown way {way!r}; choose one of {', '.join(WAYS)}")
    rng = np.random.default_rng(seed)
    for i in range(len(digits)):
        width, side, centre = DEFAULT_STROKE_WIDTH, DEFAULT_SIDE, (CANVAS_PX / 2, CANVAS_PX / 2)
        if way == "random":
            width, side, centre = random_pen(rng)
        if digits.strokes is not None:
            yield draw_strokes(digits.strokes[i], width, side, centre)
        else:
            yield draw_bitmap(digits.bitmaps[i], side, centre)


def model_inputs(digits: DigitSet, way: str, seed: int = 0) -> np.ndarray:
    """The set drawn the given way and read through preprocess_drawing: float32 (N, 28, 28) in [0, 1]."""
    return np.stack([preprocess_drawing(image) for image in canvases(digits, way, seed)])


@dataclass(frozen=True)
class SetScore:
    """One model on one set drawn one way."""

    accuracy: float
    n: int
    per_digit: tuple[float, ...]  # accuracy on each digit (NaN where the set has none)
    worst_digit: int
    worst_confusion: int | None  # what the worst digit is most often misread as (None: never misread)
    wrong: np.ndarray  # indices of the misread digits


def score(predicted: np.ndarray, labels: np.ndarray) -> SetScore:
    """Digits read (N,) against their labels (N,)."""
    right = predicted == labels
    per_digit = tuple(float(right[labels == d].mean()) if (labels == d).any() else float("nan")
                      for d in range(NUM_CLASSES))
    worst = int(np.nanargmin(per_digit))
    misread = predicted[(labels == worst) & ~right]
    confusion = int(np.bincount(misread, minlength=NUM_CLASSES).argmax()) if misread.size else None
    return SetScore(float(right.mean()), len(labels), per_digit, worst, confusion, np.flatnonzero(~right))
