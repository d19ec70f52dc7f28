"""studio.drawing_pad.decode: the pad's PNG data URL back to the canvas image, and what it refuses."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mnist_core.canvas import CANVAS_PX, DEFAULT_STROKE_WIDTH, draw_strokes
from studio.drawing_pad import MAX_PNG_CHARS, PNG_PREFIX, PadError, decode


def data_url(image: Image.Image, fmt: str = "PNG", prefix: str = PNG_PREFIX) -> str:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return prefix + base64.b64encode(buf.getvalue()).decode()


def test_a_drawing_comes_back_pixel_for_pixel():
    seven = draw_strokes([np.array([[60.0, 40.0], [220.0, 40.0], [120.0, 250.0]])], DEFAULT_STROKE_WIDTH, 200)
    back = decode(data_url(Image.fromarray(seven)))
    assert back.shape == (CANVAS_PX, CANVAS_PX, 4) and back.dtype == np.uint8
    np.testing.assert_array_equal(back, seven)


def test_an_opaque_rgb_png_gets_an_alpha_channel():
    back = decode(data_url(Image.new("RGB", (CANVAS_PX, CANVAS_PX), "white")))
    assert back.shape == (CANVAS_PX, CANVAS_PX, 4) and (back == 255).all()


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header says width × height (checksums right), with the pixels of a 1 × 1 picture."""
    raw = io.BytesIO()
    Image.new("L", (1, 1)).save(raw, "PNG")
    data = bytearray(raw.getvalue())
    data[16:24] = struct.pack(">II", width, height)  # IHDR's width and height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # IHDR's checksum
    return bytes(data)


@pytest.mark.parametrize("payload, says", [
    (PNG_PREFIX + base64.b64encode(png_declaring(30_000, 30_000)).decode(), "a broken PNG"),  # a decompression bomb
    (None, "not a PNG data URL"),
    ("iVBORw0KGgo=", "not a PNG data URL"),
    (data_url(Image.new("RGB", (CANVAS_PX, CANVAS_PX)), "JPEG", "data:image/jpeg;base64,"), "not a PNG data URL"),
    (PNG_PREFIX + "%%%not base64%%%", "a broken PNG"),
    (PNG_PREFIX + base64.b64encode(b"not a png at all").decode(), "a broken PNG"),
    (data_url(Image.new("RGBA", (28, 28))), "28×28 pixels, not 280×280"),
    (PNG_PREFIX + "A" * MAX_PNG_CHARS, "far more than a drawing"),
])
def test_what_is_not_a_picture_of_the_pad_is_refused_with_a_reason(payload, says):
    with pytest.raises(PadError, match=says):
        decode(payload)
