"""Figure builders: Altair for curves and the confusion matrix (cheap to redraw), a plain Vega-Lite spec for an
answer's probabilities, matplotlib for the digit grid, and plain numpy RGB arrays for saliency, filters and
activation maps."""

from __future__ import annotations

import io
import math
from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd
from matplotlib import colormaps
from PIL import Image

from mnist_core.progress import BatchPoint, EpochPoint

MAX_BATCH_POINTS = 1_000  # per-batch points drawn per chart, however long the run
TRAIN_SERIES = "training (per batch)"
VAL_SERIES = "validation (per epoch)"
BLUE, ORANGE = "#7aa2f7", "#ff9e64"
COLORS = alt.Scale(domain=[TRAIN_SERIES, VAL_SERIES], range=[BLUE, ORANGE])
PAGE_BG_HEX = "#0e1117"  # the dark theme's background


def downsample(points: Sequence, limit: int = MAX_BATCH_POINTS) -> list:
    """At most `limit` points, evenly spaced, always keeping the latest one."""
    n = len(points)
    if n <= limit:
        return list(points)
    idx = np.linspace(0, n - 1, limit).round().astype(int)
    return [points[i] for i in np.unique(idx)]


def curve_frames(batches: Sequence[BatchPoint], epochs: Sequence[EpochPoint]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long-form (epoch, value, series) frames for loss and accuracy; non-finite values dropped."""
    loss, acc = [], []
    for b in downsample(batches):
        loss.append((b.epoch_float, b.loss, TRAIN_SERIES))
        acc.append((b.epoch_float, b.accuracy, TRAIN_SERIES))
    for e in epochs:
        loss.append((float(e.epoch), e.val_loss, VAL_SERIES))
        acc.append((float(e.epoch), e.val_accuracy, VAL_SERIES))
    cols = ["epoch", "value", "series"]
    frames = [pd.DataFrame(rows, columns=cols) for rows in (loss, acc)]
    return tuple(f[np.isfinite(f["value"].astype(float))] for f in frames)


def curve_chart(frame: pd.DataFrame, title: str, epochs: int, percent: bool = False) -> alt.LayerChart:
    """Per-batch training line plus per-epoch validation line with points; x = epochs done (float)."""
    x = alt.X("epoch:Q", title="epoch",
              scale=alt.Scale(domain=[0, max(epochs, 1)], nice=False, padding=6),
              axis=alt.Axis(tickCount=min(max(epochs, 5), 10), format="~r"))
    y = alt.Y("value:Q", title=None,
              scale=alt.Scale(zero=False),
              axis=alt.Axis(format=".0%") if percent else alt.Axis(format="~r"))
    color = alt.Color("series:N", scale=COLORS, legend=alt.Legend(orient="bottom", title=None))
    tooltip = [alt.Tooltip("series:N"), alt.Tooltip("epoch:Q", format=".2f"),
               alt.Tooltip("value:Q", format=".2%" if percent else ".4f", title=title)]
    base = alt.Chart(frame).encode(x=x, y=y, color=color, tooltip=tooltip)
    train = base.transform_filter(alt.datum.series == TRAIN_SERIES).mark_line(strokeWidth=1.5)
    val = base.transform_filter(alt.datum.series == VAL_SERIES).mark_line(point=alt.OverlayMarkDef(size=60),
                                                                          strokeWidth=2.5, opacity=0.9)
    return (train + val).properties(title=title.capitalize(), height=260)


def compare_chart(rows: Sequence[dict], metric: str, percent: bool = False) -> alt.Chart:
    """One line with points per run (mnist_core.compare.curve_rows), one colour each, named in the legend."""
    frame = pd.DataFrame(rows, columns=["run", "epoch", metric]).dropna(subset=[metric])
    y = alt.Y(f"{metric}:Q", title=None, scale=alt.Scale(zero=False),
              axis=alt.Axis(format=".1%") if percent else alt.Axis(format="~r"))
    return alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=50), strokeWidth=2).encode(
        x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1, format="d")),
        y=y,
        color=alt.Color("run:N", title=None, legend=alt.Legend(orient="bottom", labelLimit=400, columns=1),
                        scale=alt.Scale(scheme="tableau10")),
        tooltip=[alt.Tooltip("run:N"), alt.Tooltip("epoch:Q"),
                 alt.Tooltip(f"{metric}:Q", format=".2%" if percent else ".4f")],
    ).properties(title=metric.capitalize(), height=260)


def probability_spec(proba: np.ndarray) -> dict:
    """Bars for the 10 digits, the most probable one highlighted, as a Vega-Lite spec.

    Written out rather than built with Altair: it is drawn with every answer, and Altair's check of a chart
    against the Vega-Lite schema cost the server about 10 ms each time."""
    best = int(np.argmax(proba))
    values = [{"digit": str(d), "probability": float(p), "best": d == best} for d, p in enumerate(proba)]
    return {
        "data": {"values": values},
        "mark": {"type": "bar", "cornerRadiusTopLeft": 3, "cornerRadiusTopRight": 3},
        "encoding": {
            "x": {"field": "digit", "type": "nominal", "title": "digit", "sort": None, "axis": {"labelAngle": 0}},
            "y": {"field": "probability", "type": "quantitative", "title": "probability",
                  "scale": {"domain": [0, 1]}, "axis": {"format": ".0%"}},
            "color": {"condition": {"test": "datum.best", "value": ORANGE}, "value": BLUE},
            "tooltip": [{"field": "digit", "type": "nominal"},
                        {"field": "probability", "type": "quantitative", "format": ".2%"}],
        },
        "height": 220,
    }


def upscale(image: np.ndarray, factor: int = 6) -> np.ndarray:
    """A (28, 28) float image in [0, 1] -> uint8, each pixel a factor x factor block (nearest neighbour)."""
    pixels = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    return np.kron(pixels, np.ones((factor, factor), dtype=np.uint8))


def digit_grid_png(images: np.ndarray, labels: Sequence[int], predictions: Sequence[int] | None = None,
                   columns: int = 10, confidence: Sequence[float] | None = None) -> bytes:
    """The tutorial's grid of digits with their labels, as PNG; wrong predictions in red with a red frame.

    With `confidence`, each prediction says how sure the model was.
    """
    from matplotlib.figure import Figure  # no pyplot: thread-safe, no global figure state

    rows = max(1, math.ceil(len(images) / columns))
    fig = Figure(figsize=(columns * 1.15, rows * (1.55 if predictions is not None else 1.35)), dpi=100,
                 facecolor=PAGE_BG_HEX)
    axes = fig.subplots(rows, columns, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= len(images):
            ax.set_axis_off()
            continue
        ax.imshow(images[i], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        wrong = predictions is not None and int(predictions[i]) != int(labels[i])
        for spine in ax.spines.values():
            spine.set_color("#ff5555" if wrong else "#3a3f4b")
            spine.set_linewidth(3 if wrong else 1)
        ax.set_xlabel(str(int(labels[i])), color="white", fontsize=13, labelpad=2)
        if predictions is not None:
            sure = "" if confidence is None else f" ({confidence[i]:.0%})"
            ax.set_title(f"model: {int(predictions[i])}{sure}", fontsize=9 if confidence is None else 8, pad=3,
                         color="#ff5555" if wrong else "#7ed5b0", fontweight="bold" if wrong else "normal")
    fig.subplots_adjust(left=0.01, right=0.99, top=0.9 if predictions is not None else 0.98, bottom=0.12,
                        wspace=0.12, hspace=0.45 if predictions is not None else 0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor=fig.get_facecolor())
    return buf.getvalue()


def png_28(image: np.ndarray) -> bytes:
    """A (28, 28) float image in [0, 1] as an 8-bit greyscale PNG, pixel for pixel."""
    buf = io.BytesIO()
    Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def _hex_rgb(color: str) -> np.ndarray:
    return np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.float32)


def saliency_overlay(image: np.ndarray, attribution: np.ndarray, factor: int = 8) -> np.ndarray:
    """RGB uint8: the digit dimmed to grey, orange where pixels pushed towards the answer, blue against."""
    grey = np.clip(image, 0, 1)[..., None] * np.array([110, 110, 110], np.float32)
    strength = np.abs(np.clip(attribution, -1, 1))[..., None] ** 0.6  # lift weak but real evidence
    color = np.where(attribution[..., None] >= 0, _hex_rgb(ORANGE), _hex_rgb(BLUE))
    rgb = grey * (1 - strength) + color * strength
    return np.kron(rgb.round().astype(np.uint8), np.ones((factor, factor, 1), dtype=np.uint8))


def map_grid(maps: np.ndarray, columns: int, *, signed: bool, cell_px: int = 36, pad: int = 2) -> np.ndarray:
    """Tiles of (n, h, w) maps as one RGB uint8 image.

    signed (filter weights): each tile scaled by its own largest |weight|, blue negative, orange positive.
    unsigned (activations): all tiles on one scale, the layer's strongest response, dark to bright.
    """
    n, h, w = maps.shape
    if signed:
        peak = np.abs(maps).reshape(n, -1).max(axis=1)[:, None, None]
        v = 0.5 + 0.5 * np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)
        rgb = colormaps["coolwarm"](v)[..., :3]
    else:
        peak = float(maps.max())
        rgb = colormaps["magma"](maps / peak if peak > 0 else np.zeros_like(maps))[..., :3]
    factor = max(1, round(cell_px / max(h, w)))
    tiles = (rgb * 255).round().astype(np.uint8).repeat(factor, axis=1).repeat(factor, axis=2)
    th, tw = tiles.shape[1:3]
    rows = math.ceil(n / columns)
    grid = np.empty((rows * (th + pad) - pad, columns * (tw + pad) - pad, 3), np.uint8)
    grid[:] = _hex_rgb(PAGE_BG_HEX)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        grid[r * (th + pad):r * (th + pad) + th, c * (tw + pad):c * (tw + pad) + tw] = tile
    return grid


CELL = alt.selection_point(name="cell", fields=["true", "predicted", "drawing"], on="click", clear=False)


def confusion_chart(confusion: np.ndarray, selected: tuple[int, int] | None = None,
                    drawing: int = 0) -> alt.LayerChart:
    """Heatmap, rows = true digit, columns = predicted: right answers blue, mistakes orange on a log scale
    (so that one mistake shows beside a thousand right answers), empty cells dark; the chosen cell outlined.

    `drawing` goes into every cell's selection: a new number per drawing makes any click a new selection.
    """
    rows = confusion.sum(axis=1, keepdims=True)
    share = np.divide(confusion, rows, out=np.zeros(confusion.shape), where=rows > 0)
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    top = math.log1p(max(int(off.max()), 1))
    records = []
    for t in range(confusion.shape[0]):
        for p in range(confusion.shape[1]):
            n = int(confusion[t, p])
            # one colour axis for both kinds: [0, 1] mistakes (0 = none), [1, 2] right answers
            heat = 1 + share[t, p] if t == p else (0 if n == 0 else 0.3 + 0.7 * math.log1p(n) / top)
            records.append({"true": t, "predicted": p, "count": n, "label": str(n) if n else "",
                            "share": float(share[t, p]), "heat": heat, "chosen": selected == (t, p),
                            "drawing": drawing})
    base = alt.Chart(pd.DataFrame(records)).encode(
        x=alt.X("predicted:O", title="predicted digit", axis=alt.Axis(orient="top", labelAngle=0, grid=False)),
        y=alt.Y("true:O", title="true digit", axis=alt.Axis(grid=False)),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("heat:Q", legend=None, scale=alt.Scale(domain=[0, 0.3, 1, 1.0001, 2],
                                                               range=["#1c2230", "#5a3a2a", ORANGE, "#2d4a80", BLUE])),
        stroke=alt.condition(alt.datum.chosen, alt.value("#ffffff"), alt.value(PAGE_BG_HEX)),
        strokeWidth=alt.condition(alt.datum.chosen, alt.value(3), alt.value(1)),
        tooltip=[alt.Tooltip("true:O", title="true digit"), alt.Tooltip("predicted:O", title="read as"),
                 alt.Tooltip("count:Q", title="images"), alt.Tooltip("share:Q", title="of this digit", format=".2%")],
    ).add_params(CELL)
    labels = base.mark_text(fontSize=11).encode(
        text="label:N",
        color=alt.condition(alt.datum.heat > 0.75, alt.value(PAGE_BG_HEX), alt.value("#e6e9ef")),
    )
    return (cells + labels).properties(height=420)
