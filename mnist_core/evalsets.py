"""Real handwriting from outside MNIST, for measuring how drawn digits are read.

Three sets, each in its own folder under an evaluation directory (by default `shared/eval`
beside the repository, or $MNIST_EVAL_DIR): `pendigits/` (UCI pen trajectories of 30 writers),
`semeion/` (UCI scanned 16x16 bitmaps, about 80 writers) and `hwd1000/` (1,000 28x28 PNGs, one
writer). Pen sets come as strokes (y growing downwards, as on a screen), bitmap sets as white-on-black
uint8 ink. Semeion and HwD-1000 never train a model; the pen digits train from the studio's own copy
(mnist_core.pendigits, written from this loader's parse) and are measured writer-disjoint.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ENV_VAR = "MNIST_EVAL_DIR"
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "eval"  # beside the repository, never shipped
PENDIGITS_FILE = "pendigits-orig.tra"
PENDIGITS_BOX = 500  # the tablet box each pen digit was written in; its y axis grows upwards (flipped here,
# and kept inside the box so points stay positive; drawing rescales and moves them anyway)


class EvalSetMissing(FileNotFoundError):
    """A handwriting set is not where it was looked for; the message says where and how to fix it."""


@dataclass(frozen=True)
class DigitSet:
    """One handwriting set: labels, and either strokes (pen sets) or bitmaps (scanned or pixel sets)."""

    name: str
    labels: np.ndarray  # (N,) int
    strokes: tuple[tuple[np.ndarray, ...], ...] | None = None  # per digit, its strokes, each (n, 2) float x, y
    bitmaps: np.ndarray | None = None  # (N, h, w) uint8, white ink on black
    writers: np.ndarray | None = None  # (N,) int writer ids, where the set has them

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, n: int) -> "DigitSet":
        """The first n digits (all of them if there are fewer)."""
        return DigitSet(self.name, self.labels[:n], None if self.strokes is None else self.strokes[:n],
                        None if self.bitmaps is None else self.bitmaps[:n],
                        None if self.writers is None else self.writers[:n])


def eval_dir(path: str | os.PathLike | None = None) -> Path:
    """An explicit folder, else $MNIST_EVAL_DIR, else shared/eval beside the repository."""
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEFAULT_DIR


def _folder(root: Path, name: str, needed: str) -> Path:
    folder = root / name
    if not (folder / needed).is_file():
        raise EvalSetMissing(f"The {name} handwriting set is missing: {folder / needed} does not exist. "
                             f"Lay shared/ beside the repository, set ${ENV_VAR}, or pass the folder.")
    return folder


def load_pendigits(root: str | os.PathLike | None = None) -> DigitSet:
    """UCI pen digits (UNIPEN text): each digit's pen-down strokes, flipped so y grows downwards."""
    folder = _folder(eval_dir(root), "pendigits", PENDIGITS_FILE)
    labels, writers, digits = [], [], []
    strokes: list[np.ndarray] = []
    points: list[tuple[float, float]] | None = None
    for line in (folder / PENDIGITS_FILE).read_text(encoding="ascii").splitlines():
        word = line.split(maxsplit=1)[0] if line.strip() else ""
        if word == ".SEGMENT":
            strokes = []
            digits.append(strokes)
            labels.append(int(line.rsplit('"', 2)[1]))
        elif word == ".COMMENT":
            writers.append(int(line.split()[2]))
        elif word == ".PEN_DOWN":
            points = []
        elif word == ".PEN_UP":
            strokes.append(np.array(points, dtype=np.float64) * (1, -1) + (0, PENDIGITS_BOX))  # y up -> down
            points = None
        elif points is not None and word:
            x, y = line.split()
            points.append((float(x), float(y)))
    return DigitSet("pendigits", np.array(labels), strokes=tuple(tuple(d) for d in digits),
                    writers=np.array(writers))


def load_semeion(root: str | os.PathLike | None = None) -> DigitSet:
    """UCI Semeion: 16x16 binary scans (1 = ink), one-hot labels, one digit a line."""
    folder = _folder(eval_dir(root), "semeion", "semeion.data")
    values = np.loadtxt(folder / "semeion.data", dtype=np.float32, ndmin=2)
    if values.shape[1] != 266:
        raise ValueError(f"{folder / 'semeion.data'}: expected 266 values a line, got {values.shape[1]}")
    bitmaps = (values[:, :256].reshape(-1, 16, 16) * 255).astype(np.uint8)  # ink 1 -> white 255
    return DigitSet("semeion", values[:, 256:].argmax(axis=1), bitmaps=bitmaps)


def load_hwd1000(root: str | os.PathLike | None = None) -> DigitSet:
    """HwD-1000: 28x28 grey PNGs, black ink on white (inverted here), labels in labels.csv."""
    folder = _folder(eval_dir(root), "hwd1000", "labels.csv")
    with (folder / "labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    bitmaps = np.stack([255 - np.asarray(Image.open(folder / r["file"]).convert("L")) for r in rows])
    if bitmaps.shape[1:] != (28, 28):
        raise ValueError(f"Expected 28x28 pictures in {folder}, got {bitmaps.shape[1:]}")
    return DigitSet("hwd1000", np.array([int(r["label"]) for r in rows]), bitmaps=bitmaps)


LOADERS = {"pendigits": load_pendigits, "semeion": load_semeion, "hwd1000": load_hwd1000}


def load(name: str, root: str | os.PathLike | None = None) -> DigitSet:
    if name not in LOADERS:
        raise ValueError(f"Unknown handwriting set {name!r}; choose one of {', '.join(LOADERS)}")
    return LOADERS[name](root)
