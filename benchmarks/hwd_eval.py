"""Measure a model on 1,000 real handwritten digits, read the way the studio reads drawings.

The digits (28x28 grey PNGs, black ink on white) are inverted and drawn onto a 280x280 RGBA
canvas image like the studio's (white ink, alpha = ink) in two ways, then read back through
preprocess_drawing and the model:
  scaled: the whole 28x28 picture scaled up 10x (bilinear);
  placed: the ink alone, scaled to a random size (longer side 40-90% of the canvas) at a random spot.
The raw 28x28 pictures, inverted but not preprocessed, are classified too, for comparison.

Usage: python benchmarks/hwd_eval.py [--model PATH] [--folder DIR] [--seed N]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere: find mnist_core

from mnist_core.predict import Predictor  # noqa: E402
from mnist_core.preprocess import preprocess_drawing  # noqa: E402
from mnist_core.store import ModelFileError  # noqa: E402

DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "shared" / "eval" / "hwd1000"  # beside the repository
CANVAS = 280  # the studio's canvas, pixels
PLACED_SIDE = (0.4, 0.9)  # the placed ink's longer side, as a share of the canvas
WAYS = ("raw", "scaled", "placed")


def to_canvas(ink: np.ndarray) -> np.ndarray:
    """A (h, w) uint8 ink image -> the canvas' RGBA form: white everywhere, alpha = ink."""
    rgba = np.full((*ink.shape, 4), 255, dtype=np.uint8)
    rgba[..., 3] = ink
    return rgba


def render_scaled(ink28: np.ndarray) -> np.ndarray:
    """The whole 28x28 ink image scaled up (bilinear) to a CANVAS x CANVAS RGBA canvas image."""
    return to_canvas(np.asarray(Image.fromarray(ink28).resize((CANVAS, CANVAS), Image.Resampling.BILINEAR)))


def render_placed(ink28: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The ink of a 28x28 image, cropped, scaled to a random size and pasted at a random spot of the canvas."""
    rows, cols = np.flatnonzero(ink28.any(axis=1)), np.flatnonzero(ink28.any(axis=0))
    crop = ink28[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    side = rng.uniform(*PLACED_SIDE) * CANVAS  # the longer side, canvas pixels
    scale = side / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    canvas = np.zeros((CANVAS, CANVAS), dtype=np.uint8)
    top, left = rng.integers(0, CANVAS - h + 1), rng.integers(0, CANVAS - w + 1)
    canvas[top:top + h, left:left + w] = np.asarray(Image.fromarray(crop).resize((w, h), Image.Resampling.BILINEAR))
    return to_canvas(canvas)


def load_hwd(folder: str | Path = DEFAULT_FOLDER) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The digits as (N, 28, 28) uint8 ink (inverted: white on black), their labels, and file names."""
    folder = Path(folder)
    labels_csv = folder / "labels.csv"
    if not labels_csv.is_file():
        raise FileNotFoundError(f"Handwritten digit set not found: {labels_csv} is missing. "
                                f"Lay the shared/ folder beside the repository, or pass --folder.")
    with labels_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    names = [r["file"] for r in rows]
    labels = np.array([int(r["label"]) for r in rows])
    images = np.stack([255 - np.asarray(Image.open(folder / n).convert("L")) for n in names])  # black on white -> ink
    if images.shape[1:] != (28, 28):
        raise ValueError(f"Expected 28x28 pictures in {folder}, got {images.shape[1:]}")
    return images, labels, names


def evaluate_hwd(model_path: str | Path | None = None, folder: str | Path = DEFAULT_FOLDER, seed: int = 0) -> dict:
    """Accuracy of a model (None: the shipped default) on the digits, per way.

    Returns {way: {"accuracy", "n", "per_digit" (10 accuracies), "errors" (misread file names)}}
    for way in raw, scaled, placed.
    """
    images, labels, names = load_hwd(folder)
    rng = np.random.default_rng(seed)
    inputs = {
        "raw": images.astype(np.float32) / 255,
        "scaled": np.stack([preprocess_drawing(render_scaled(ink)) for ink in images]),
        "placed": np.stack([preprocess_drawing(render_placed(ink, rng)) for ink in images]),
    }
    predictor = Predictor.load(model_path)
    results = {}
    for way in WAYS:
        right = predictor.predict(inputs[way]) == labels
        results[way] = {
            "accuracy": float(right.mean()),
            "n": int(len(right)),
            "per_digit": [float(right[labels == d].mean()) for d in range(10)],
            "errors": [n for n, ok in zip(names, right) if not ok],
        }
    return results


def format_table(results: dict) -> str:
    """Way, accuracy, image count and per-digit accuracy, one way per line."""
    lines = [f"{'way':<8}{'accuracy':>9}{'n':>6}   " + " ".join(f"{d:>5}" for d in range(10))]
    for way, r in results.items():
        lines.append(f"{way:<8}{r['accuracy']:>9.2%}{r['n']:>6}   "
                     + " ".join(f"{100 * a:>5.1f}" for a in r["per_digit"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a .keras model file (default: the shipped default model)")
    parser.add_argument("--folder", default=DEFAULT_FOLDER, type=Path,
                        help=f"the digit set: PNGs and labels.csv (default: {DEFAULT_FOLDER})")
    parser.add_argument("--seed", type=int, default=0, help="random sizes and spots of the placed way (default 0)")
    args = parser.parse_args(argv)
    try:
        results = evaluate_hwd(args.model, args.folder, args.seed)
    except (FileNotFoundError, ModelFileError) as exc:
        sys.exit(str(exc))
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
