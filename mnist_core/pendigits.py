"""Real pen strokes to learn from: the 30 writers of UCI's pen digits, vendored, drawn like the canvas draws.

`assets/pendigits.npz` holds the 7,494 pen trajectories of UCI's Pen-Based Recognition of Handwritten
Digits (CC BY 4.0; credit and checksum in assets/PENDIGITS.md), written by scripts/vendor_pendigits.py.
Training (TrainConfig.pen_digits) draws each digit on the studio's canvas with a random pen width, size,
place and slant and reads it through preprocess_drawing, exactly like a user's drawing.

Measuring is writer-disjoint: the writers fall into FOLDS folds, and a fold's model trains on the
other folds' writers only, so no model is scored on a hand it has seen.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from mnist_core import handwriting
from mnist_core.canvas import draw_strokes
from mnist_core.data import MAX_SLANT, TRAIN_IMAGES, from_float_images
from mnist_core.evalsets import DigitSet
from mnist_core.preprocess import preprocess_drawing

VENDORED_NPZ = Path(__file__).parent / "assets" / "pendigits.npz"
FOLDS = 5  # writer-disjoint folds of 6 writers each
VARIANTS = 1  # renderings of each pen digit in a training run (random pen, size, place, slant); 2 cost MNIST accuracy


def load(path: str | os.PathLike | None = None) -> DigitSet:
    """The vendored pen digits (or another file of the same layout): strokes with y growing downwards."""
    with np.load(path or VENDORED_NPZ, allow_pickle=False) as f:
        points, stroke_ends, digit_ends = f["points"].astype(np.float64), f["stroke_ends"], f["digit_ends"]
        labels, writers = f["labels"].astype(np.int64), f["writers"].astype(np.int64)
    strokes = np.split(points, stroke_ends[:-1])
    digits = tuple(tuple(strokes[a:b]) for a, b in zip(np.r_[0, digit_ends[:-1]], digit_ends))
    return DigitSet("pendigits", labels, strokes=digits, writers=writers)


def folds(writers: np.ndarray, k: int = FOLDS) -> list[tuple[int, ...]]:
    """The writers split into k folds of consecutive writer numbers (1-6, 7-12, ... for the 30 writers)."""
    return [tuple(int(w) for w in fold) for fold in np.array_split(np.unique(writers), k)]


def select(digits: DigitSet, writers: tuple[int, ...], keep: bool) -> DigitSet:
    """The digits of the given writers (keep=True) or of all the others (keep=False)."""
    index = np.flatnonzero(np.isin(digits.writers, writers) == keep)
    return DigitSet(digits.name, digits.labels[index], tuple(digits.strokes[i] for i in index),
                    writers=digits.writers[index])


def slanted(strokes: tuple[np.ndarray, ...], slant: float) -> tuple[np.ndarray, ...]:
    """The strokes sheared: each point moves sideways by `slant` times its height above the path's middle."""
    middle = np.concatenate(strokes)[:, 1].mean()
    return tuple(s + np.c_[slant * (middle - s[:, 1]), np.zeros(len(s))] for s in strokes)


def _render_one(strokes: tuple[np.ndarray, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    width, side, centre = handwriting.random_pen(rng)
    return preprocess_drawing(draw_strokes(slanted(strokes, rng.uniform(-MAX_SLANT, MAX_SLANT)), width, side, centre))


def render(digits: DigitSet, variants: int = VARIANTS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Each digit drawn `variants` times on the canvas (random pen, size, place, slant) and read through
    preprocess_drawing: uint8 (N * variants, 28, 28) images and their labels. Seeded: the same call, the
    same images, whatever the threads (one per core) do first."""
    jobs = [(digits.strokes[i], seed * 1_000_003 + v * len(digits) + i) for v in range(variants)
            for i in range(len(digits))]
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        images = list(pool.map(lambda job: _render_one(*job), jobs))
    return from_float_images(np.stack(images)), np.tile(digits.labels, variants)


def training_share(digits: DigitSet, train_subset: int | None, mnist_images: int) -> DigitSet:
    """The pen digits a run trains on: all of them, or for a run on a subset of MNIST the same share of
    them (at least one), taken evenly across writers."""
    if train_subset is None:
        return digits
    index = _share(len(digits), train_subset, mnist_images)
    return DigitSet(digits.name, digits.labels[index], tuple(digits.strokes[i] for i in index),
                    writers=digits.writers[index])


def _share(n: int, train_subset: int, mnist_images: int) -> np.ndarray:
    """Indices of the share train_subset / mnist_images of n items (at least one), spread evenly."""
    count = min(n, max(1, round(n * train_subset / mnist_images)))
    return np.linspace(0, n - 1, count).round().astype(int)


def training_count(skip_writers=(), train_subset: int | None = None) -> tuple[int, int]:
    """How many pen digits, by how many writers, a run with these settings trains on (each drawn VARIANTS times)."""
    kept = _writers()[~np.isin(_writers(), tuple(skip_writers))]
    if train_subset is not None:
        kept = kept[_share(len(kept), train_subset, TRAIN_IMAGES)]
    return len(kept), len(np.unique(kept))


def describe(pen_digits: bool, skip_writers=(), train_subset: int | None = None) -> str:
    """What a run learned from, in words: "MNIST", or "MNIST + 5,995 pen digits by 24 writers"."""
    if not pen_digits:
        return "MNIST"
    digits, writers = training_count(skip_writers, train_subset)
    return f"MNIST + {digits:,} pen digits by {writers} writers"


def check_skipped(skip_writers: tuple[int, ...]) -> None:
    """Refuse writers that are not in the set, or leaving none."""
    known = set(np.unique(_writers()).tolist())
    unknown = sorted(set(skip_writers) - known)
    if unknown:
        raise ValueError(f"pen_skip_writers: no pen-digit writer {unknown}; the writers are {min(known)}-{max(known)}")
    if known <= set(skip_writers):
        raise ValueError("pen_skip_writers leaves out every pen-digit writer: leave pen_digits off instead")


@functools.lru_cache(maxsize=1)
def _writers() -> np.ndarray:
    """Each vendored pen digit's writer."""
    with np.load(VENDORED_NPZ, allow_pickle=False) as f:
        return f["writers"]
