"""Figure builders: Altair for live curves and probabilities (cheap to redraw), matplotlib for the digit grid."""

from __future__ import annotations

import io
import math
from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd

from mnist_core.progress import BatchPoint, EpochPoint

MAX_BATCH_POINTS = 1_000  # per-batch points drawn per chart, however long the run
TRAIN_SERIES = "training (per batch)"
VAL_SERIES = "validation (per epoch)"
COLORS = alt.Scale(domain=[TRAIN_SERIES, VAL_SERIES], range=["#7aa2f7", "#ff9e64"])


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


def probability_chart(proba: np.ndarray) -> alt.Chart:
    """Bars for the 10 digits, the most probable one highlighted."""
    best = int(np.argmax(proba))
    frame = pd.DataFrame({"digit": [str(d) for d in range(10)], "probability": proba.astype(float),
                          "best": [d == best for d in range(10)]})
    return (
        alt.Chart(frame)
        .mark_bar(cornerRadiusTopLeft=3, cornerRadiusTopRight=3)
        .encode(
            x=alt.X("digit:N", title="digit", sort=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("probability:Q", title="probability", scale=alt.Scale(domain=[0, 1]),
                    axis=alt.Axis(format=".0%")),
            color=alt.condition(alt.datum.best, alt.value("#ff9e64"), alt.value("#7aa2f7")),
            tooltip=[alt.Tooltip("digit:N"), alt.Tooltip("probability:Q", format=".2%")],
        )
        .properties(height=220)
    )


def upscale(image: np.ndarray, factor: int = 6) -> np.ndarray:
    """A (28, 28) float image in [0, 1] -> uint8, each pixel a factor x factor block (nearest neighbour)."""
    pixels = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    return np.kron(pixels, np.ones((factor, factor), dtype=np.uint8))


def digit_grid_png(images: np.ndarray, labels: Sequence[int], predictions: Sequence[int] | None = None,
                   columns: int = 10) -> bytes:
    """The tutorial's grid of digits with their labels, as PNG; wrong predictions in red with a red frame."""
    from matplotlib.figure import Figure  # no pyplot: thread-safe, no global figure state

    rows = max(1, math.ceil(len(images) / columns))
    fig = Figure(figsize=(columns * 1.15, rows * (1.55 if predictions is not None else 1.35)), dpi=100,
                 facecolor="#0e1117")
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
            ax.set_title(f"model: {int(predictions[i])}", fontsize=9, pad=3,
                         color="#ff5555" if wrong else "#7ed5b0", fontweight="bold" if wrong else "normal")
    fig.subplots_adjust(left=0.01, right=0.99, top=0.9 if predictions is not None else 0.98, bottom=0.12,
                        wspace=0.12, hspace=0.45 if predictions is not None else 0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor=fig.get_facecolor())
    return buf.getvalue()
