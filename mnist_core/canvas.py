"""The studio's drawing canvas, and digits drawn onto it the way it draws them.

The Draw tab's canvas is CANVAS_PX square, black, and draws white round-capped, round-joined
strokes; it hands the page an RGBA image. Pen strokes and bitmaps from real handwriting sets are
drawn here into the same kind of image, so they can be read through preprocess_drawing exactly
like a user's drawing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

CANVAS_PX = 280  # the canvas' side, pixels
DEFAULT_STROKE_WIDTH = 18  # the pen's width when the Draw tab opens, canvas pixels
SUPERSAMPLE = 4  # strokes are drawn this many times larger and averaged down: anti-aliased edges like a browser's


def to_rgba(ink: np.ndarray) -> np.ndarray:
    """(H, W) uint8 ink (0 = black, 255 = white) -> the canvas' opaque RGBA image, white ink on black."""
    rgba = np.empty((*ink.shape, 4), dtype=np.uint8)
    rgba[..., :3] = ink[..., None]
    rgba[..., 3] = 255
    return rgba


def fit(points: np.ndarray, side: float, centre: tuple[float, float]) -> np.ndarray:
    """Scale and move (N, 2) x, y points so that their bounding box's longer side is `side` and its
    centre is `centre` (canvas pixels); the aspect ratio is kept."""
    low, high = points.min(axis=0), points.max(axis=0)
    extent = float((high - low).max()) or 1.0
    return (points - (low + high) / 2) * (side / extent) + np.asarray(centre, dtype=np.float64)


def draw_strokes(strokes: Sequence[np.ndarray], width: float, side: float,
                 centre: tuple[float, float] = (CANVAS_PX / 2, CANVAS_PX / 2)) -> np.ndarray:
    """Pen strokes, each (N, 2) x, y points with y growing downwards, drawn as round-capped lines
    `width` canvas pixels wide; the path's bounding box is scaled to `side` pixels about `centre`.
    Returns the canvas' (CANVAS_PX, CANVAS_PX, 4) uint8 RGBA image."""
    placed = fit(np.concatenate(strokes), side, centre) * SUPERSAMPLE
    big = Image.new("L", (CANVAS_PX * SUPERSAMPLE, CANVAS_PX * SUPERSAMPLE), 0)
    pen = ImageDraw.Draw(big)
    radius = width * SUPERSAMPLE / 2
    for pts in np.split(placed, np.cumsum([len(s) for s in strokes])[:-1]):
        xy = [tuple(p) for p in pts]
        if len(xy) > 1:
            pen.line(xy, fill=255, width=max(1, round(2 * radius)))
        for x, y in xy:  # round caps and joins: a disc at every point
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    small = big.resize((CANVAS_PX, CANVAS_PX), Image.Resampling.BOX)
    return to_rgba(np.asarray(small))


def draw_bitmap(ink: np.ndarray, side: float,
                centre: tuple[float, float] = (CANVAS_PX / 2, CANVAS_PX / 2)) -> np.ndarray:
    """A (h, w) uint8 ink picture (white on black): its ink's bounding box scaled (bilinear) so the
    longer side is `side` canvas pixels, centred on `centre`, on the canvas' RGBA image."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        raise ValueError("The bitmap has no ink to draw")
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    scale = side / max(crop.shape)
    h = min(CANVAS_PX, max(1, round(crop.shape[0] * scale)))
    w = min(CANVAS_PX, max(1, round(crop.shape[1] * scale)))
    top = int(np.clip(round(centre[1] - h / 2), 0, CANVAS_PX - h))
    left = int(np.clip(round(centre[0] - w / 2), 0, CANVAS_PX - w))
    canvas = np.zeros((CANVAS_PX, CANVAS_PX), dtype=np.uint8)
    canvas[top:top + h, left:left + w] = np.asarray(Image.fromarray(crop).resize((w, h), Image.Resampling.BILINEAR))
    return to_rgba(canvas)
