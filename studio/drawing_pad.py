"""The Draw tab's drawing pad: a Streamlit v2 component of the studio's own (drawing_pad.js).

It sends its picture the moment a stroke ends, and after Undo or Clear, which empty it in the browser.
(streamlit-drawable-canvas, used before, waited for 200 ms without a stroke before sending, more than the
rest of an answer took: benchmarks/load.py.) The picture comes as a PNG data URL, tagged with the number of
times the server has emptied the pad (a picture sent before the last of those is not read) and numbered:
each run tells the pad the number it read, and the pad sends a picture again until a run has read it (under
load, a Clear could go unread for many seconds, leaving the old answer beside an empty pad).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from mnist_core.canvas import CANVAS_PX
from studio.wake import PAD_SENT

PNG_PREFIX = "data:image/png;base64,"
MAX_PNG_CHARS = 2_000_000  # a 280 px pad's PNG is a few kB; anything far larger is not from the pad

CSS = """
.pad { display: flex; flex-direction: column; gap: 0.5rem; width: fit-content; }
.pad canvas { touch-action: none; cursor: crosshair; outline: 1px solid var(--st-border-color, lightgrey); }
.tools { display: flex; gap: 0.5rem; }
.tools button {
  font: inherit; color: var(--st-text-color, #31333f); background: var(--st-background-color, #fff);
  border: 1px solid var(--st-border-color, lightgrey); border-radius: var(--st-button-radius, 0.5rem);
  padding: 0.25rem 0.75rem; cursor: pointer;
}
.tools button:hover:not(:disabled) {
  border-color: var(--st-primary-color, #ff4b4b); color: var(--st-primary-color, #ff4b4b);
}
.tools button:disabled { cursor: not-allowed; opacity: 0.4; }
"""

_mount = st.components.v2.component(
    "mnist_studio.drawing_pad",
    html='<div class="pad-host"></div>',
    css=CSS,
    js=(Path(__file__).parent / "drawing_pad.js").read_text(encoding="utf-8"),
)


class PadError(ValueError):
    """The pad sent something that is not a picture of the pad."""


def decode(png_url: str) -> np.ndarray:
    """A PNG data URL from the pad -> its (CANVAS_PX, CANVAS_PX, 4) uint8 RGBA image."""
    if not isinstance(png_url, str) or not png_url.startswith(PNG_PREFIX):
        raise PadError("not a PNG data URL")
    if len(png_url) > MAX_PNG_CHARS:
        raise PadError(f"{len(png_url):,} characters, far more than a drawing")
    try:
        with Image.open(io.BytesIO(base64.b64decode(png_url[len(PNG_PREFIX):], validate=True))) as image:
            if image.size != (CANVAS_PX, CANVAS_PX):
                raise PadError(f"{image.width}×{image.height} pixels, not {CANVAS_PX}×{CANVAS_PX}")
            return np.asarray(image.convert("RGBA"))
    except PadError:
        raise
    except (ValueError, OSError, Image.DecompressionBombError) as exc:  # bad base64 (binascii.Error), a broken PNG
        raise PadError(f"a broken PNG ({exc})") from exc


def drawing_pad(*, stroke_width: int, clears: int, key: str) -> np.ndarray | None:
    """Show the pad; the picture on it as an RGBA image, or None when it is empty or was emptied since.

    `clears` counts the times the server emptied the pad: a new value empties it in the browser.
    Raises PadError when what the browser sent cannot be read.
    """
    drawing = dict(st.session_state.get(key) or {}).get("drawing")  # what the pad sent last (before it is drawn)
    read = drawing.get("seq") if isinstance(drawing, dict) else None
    _mount(key=key, data={"side": CANVAS_PX, "stroke": stroke_width, "clears": clears, "read": read, "event": PAD_SENT},
           default={"drawing": None}, width="content", height="content",
           on_drawing_change=lambda: None)  # declares "drawing" as the pad's state; a change reruns the fragment
    if not isinstance(drawing, dict) or drawing.get("clears") != clears or drawing.get("png") is None:
        return None
    return decode(drawing["png"])
