"""studio.draw_canvas.decode: the canvas's PNG back to its image, and what it refuses."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mnist_core.canvas import CANVAS_PX, DEFAULT_STROKE_WIDTH, draw_strokes
from studio.draw_canvas import MAX_PNG_BYTES, CanvasError, decode


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def test_a_drawing_comes_back_pixel_for_pixel():
    seven = draw_strokes([np.array([[60.0, 40.0], [220.0, 40.0], [120.0, 250.0]])], DEFAULT_STROKE_WIDTH, 200)
    back = decode(encoded(Image.fromarray(seven)))
    assert back.shape == (CANVAS_PX, CANVAS_PX, 4) and back.dtype == np.uint8
    np.testing.assert_array_equal(back, seven)


def test_an_opaque_rgb_png_gets_an_alpha_channel():
    back = decode(encoded(Image.new("RGB", (CANVAS_PX, CANVAS_PX), "white")))
    assert back.shape == (CANVAS_PX, CANVAS_PX, 4) and (back == 255).all()


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header says width × height (checksums right), with the pixels of a 1 × 1 picture."""
    data = bytearray(encoded(Image.new("L", (1, 1))))
    data[16:24] = struct.pack(">II", width, height)  # IHDR's width and height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # IHDR's checksum
    return bytes(data)


@pytest.mark.parametrize("payload, says", [
    (png_declaring(30_000, 30_000), "a broken PNG"),  # a decompression bomb
    (encoded(Image.new("RGB", (CANVAS_PX, CANVAS_PX)), "JPEG"), "a JPEG image, not a PNG"),
    (b"not a png at all", "a broken PNG"),
    (encoded(Image.new("RGBA", (28, 28))), "28×28 pixels, not 280×280"),
    (b"A" * (MAX_PNG_BYTES + 1), "far more than a drawing"),
])
def test_what_is_not_a_picture_of_the_canvas_is_refused_with_a_reason(payload, says):
    with pytest.raises(CanvasError, match=says):
        decode(payload)
