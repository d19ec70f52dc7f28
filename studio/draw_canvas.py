"""The Draw tab's canvas: streamlit-drawable-canvas in freedraw mode, white ink on black, and its Clear.

The canvas sends its picture about 200 ms after the pen lifts (the library's fixed delay), and again after its
own toolbar's undo, redo or reset. The server empties it (Clear, or a digit kept) by handing it a new initial
drawing; until the browser sends the emptied picture, the picture that was on it is not read again.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import streamlit as st
from PIL import Image

from mnist_core.canvas import CANVAS_PX

KEY = "drawing_canvas"
MAX_PNG_BYTES = 2_000_000  # a 280 px canvas's PNG is a few kB; anything far larger is not from the canvas


class CanvasError(ValueError):
    """The canvas sent something that is not a picture of the canvas."""


def decode(png: bytes) -> np.ndarray:
    """PNG bytes from the canvas -> its (CANVAS_PX, CANVAS_PX, 4) uint8 RGBA image."""
    if len(png) > MAX_PNG_BYTES:
        raise CanvasError(f"{len(png):,} bytes, far more than a drawing")
    try:
        with Image.open(io.BytesIO(png)) as image:
            if image.format != "PNG":
                raise CanvasError(f"a {image.format} image, not a PNG")
            if image.size != (CANVAS_PX, CANVAS_PX):
                raise CanvasError(f"{image.width}×{image.height} pixels, not {CANVAS_PX}×{CANVAS_PX}")
            return np.asarray(image.convert("RGBA"))
    except CanvasError:
        raise
    except (ValueError, OSError, Image.DecompressionBombError) as exc:  # not an image, a broken PNG
        raise CanvasError(f"a broken PNG ({exc})") from exc


def clear() -> None:
    """Empty the canvas (a callback: Clear, or a digit kept). A new initial drawing empties it in the browser,
    which then sends the empty picture; until then, the picture that was on it is not read."""
    st.session_state["canvas_clears"] += 1
    st.session_state["canvas_cleared"] = st.session_state["canvas_seen"]


def drawing(stroke_width: int) -> np.ndarray | None:
    """Show the canvas; the picture on it as an RGBA image, or None when nothing was sent since it was emptied.

    Raises CanvasError when what the browser sent cannot be read.
    """
    from streamlit_drawable_canvas import st_canvas  # declares its component: only inside a Streamlit run

    result = st_canvas(
        fill_color="rgba(0, 0, 0, 0)",
        stroke_width=stroke_width,
        stroke_color="#FFFFFF",
        background_color="#000000",
        width=CANVAS_PX,
        height=CANVAS_PX,
        drawing_mode="freedraw",
        initial_drawing={"objects": [], "clears": st.session_state["canvas_clears"]},  # a new count: emptied
        return_image_data=True,
        key=KEY,
    )
    try:
        png = result.image_bytes
    except (ValueError, TypeError, AttributeError) as exc:  # not a data URL, bad base64 (binascii.Error)
        raise CanvasError(f"not a PNG data URL ({exc})") from exc
    seen = None if png is None else hashlib.sha1(png).hexdigest()
    st.session_state["canvas_seen"] = seen
    if seen is None or seen == st.session_state["canvas_cleared"]:
        return None
    st.session_state["canvas_cleared"] = None  # the browser has sent a picture since: the emptying is done
    return decode(png)
