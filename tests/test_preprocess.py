"""Drawing and upload preprocessing: real MNIST digits drawn onto canvas images and saved as files."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFile

from mnist_core import evalsets
from mnist_core.canvas import CANVAS_PX, draw_bitmap, draw_strokes, to_rgba
from mnist_core.data import load_mnist
from mnist_core.predict import Predictor
from mnist_core.preprocess import (MAX_PIXELS, THICKNESS, ImageUploadError, load_upload, preprocess_drawing,
                                   preprocess_image, stroke_thickness)

COORDS = np.arange(28)


@pytest.fixture(scope="module")
def mnist_test():
    _, (x, y) = load_mnist()
    return x, y


def centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    """(row, col) with 0-based pixel indices, as the issue measures it."""
    return float(img.sum(axis=1) @ COORDS / img.sum()), float(img.sum(axis=0) @ COORDS / img.sum())


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def png_bytes(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def transparent_canvas(ink: np.ndarray) -> np.ndarray:
    """White everywhere, alpha = ink: a canvas image whose background is transparent."""
    rgba = np.full((*ink.shape, 4), 255, dtype=np.uint8)
    rgba[..., 3] = ink
    return rgba


def render_scaled(ink28: np.ndarray) -> np.ndarray:
    """The whole 28x28 picture scaled up (bilinear) to fill the canvas."""
    return transparent_canvas(np.asarray(Image.fromarray(ink28).resize((CANVAS_PX, CANVAS_PX),
                                                                        Image.Resampling.BILINEAR)))


def render_placed(ink28: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The digit's ink at a random size (longer side 40-90% of the canvas) and a random spot."""
    side = rng.uniform(0.4, 0.9) * CANVAS_PX
    centre = rng.uniform(side / 2, CANVAS_PX - side / 2, size=2)
    return draw_bitmap(ink28, side, tuple(centre))


def small_off_centre(ink28: np.ndarray) -> np.ndarray:
    """The digit's ink scaled to 60 px high, near the canvas' top-left corner."""
    rows, cols = np.flatnonzero(ink28.any(axis=1)), np.flatnonzero(ink28.any(axis=0))
    crop = Image.fromarray(ink28[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
    scale = 60 / max(crop.size)
    crop = crop.resize((round(crop.width * scale), round(crop.height * scale)), Image.Resampling.BILINEAR)
    canvas = np.zeros((CANVAS_PX, CANVAS_PX), dtype=np.uint8)
    canvas[15:15 + crop.height, 25:25 + crop.width] = np.asarray(crop)
    return transparent_canvas(canvas)


def test_output_is_28x28_float32_in_unit_range(mnist_test):
    out = preprocess_drawing(render_scaled(mnist_test[0][0]))
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() == pytest.approx(1.0)


@pytest.mark.parametrize("i", range(5))
def test_small_off_centre_and_huge_centred_digit_agree(mnist_test, i):
    ink = mnist_test[0][i]
    small, huge = preprocess_drawing(small_off_centre(ink)), preprocess_drawing(render_scaled(ink))
    assert np.abs(small - huge).mean() < 0.05
    assert corr(small, huge) > 0.9


def test_placed_digit_comes_back_like_the_mnist_original(mnist_test):
    """Pixel-level: off MNIST's conventions (a 22 px box, centre 13.5) the mean correlation falls to about 0.85."""
    x = mnist_test[0][:100]
    rng = np.random.default_rng(6)
    out = np.stack([preprocess_drawing(render_placed(ink, rng)) for ink in x])
    assert np.mean([corr(o, ink) for o, ink in zip(out, x)]) > 0.93  # 0.96 measured
    assert np.abs(out - x / np.float32(255)).mean() < 0.04  # 0.03 measured


def test_centre_of_mass_is_at_14_14(mnist_test):
    rng = np.random.default_rng(1)
    for ink in mnist_test[0][:50]:
        row, col = centre_of_mass(preprocess_drawing(render_placed(ink, rng)))
        assert abs(row - 14) < 0.5 and abs(col - 14) < 0.5


def test_rgb_grey_and_opaque_background_read_like_transparent_rgba(mnist_test):
    ink = render_placed(mnist_test[0][3], np.random.default_rng(2))[..., 0]
    expected = preprocess_drawing(transparent_canvas(ink))
    opaque = np.dstack([ink, ink, ink, np.full_like(ink, 255)])  # white ink on an opaque black background
    for variant in (opaque, opaque[..., :3], ink, ink / np.float32(255)):
        np.testing.assert_allclose(preprocess_drawing(variant), expected, atol=1e-5)


def test_transparent_pixels_are_no_ink_whatever_their_colour():
    rgba = np.zeros((CANVAS_PX, CANVAS_PX, 4), dtype=np.uint8)
    rgba[..., :3] = 255  # white, but fully transparent
    assert preprocess_drawing(rgba) is None


@pytest.mark.parametrize("background", [(0, 0, 0, 0), (0, 0, 0, 255)], ids=["transparent", "black"])
def test_empty_canvas_is_none(background):
    assert preprocess_drawing(np.tile(np.array(background, dtype=np.uint8), (CANVAS_PX, CANVAS_PX, 1))) is None


def test_specks_and_faint_noise_are_none():
    canvas = np.zeros((CANVAS_PX, CANVAS_PX), dtype=np.uint8)
    for r, c in ((30, 40), (200, 90), (120, 250)):  # three 3x3 specks far apart
        canvas[r:r + 3, c:c + 3] = 255
    assert preprocess_drawing(to_rgba(canvas)) is None
    noise = np.random.default_rng(3).integers(0, 20, (CANVAS_PX, CANVAS_PX), dtype=np.uint8)  # below 10% brightness
    assert preprocess_drawing(to_rgba(noise)) is None


def test_bad_shape_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        preprocess_drawing(np.zeros((28, 28, 2), dtype=np.uint8))


def test_dark_on_light_upload_is_inverted(mnist_test):
    ink = np.asarray(Image.fromarray(mnist_test[0][7]).resize((140, 140), Image.Resampling.BILINEAR))
    on_paper = preprocess_image(load_upload(png_bytes(Image.fromarray(255 - ink))))
    on_black = preprocess_image(load_upload(png_bytes(Image.fromarray(ink))))
    np.testing.assert_allclose(on_paper, on_black, atol=1e-5)
    assert corr(on_paper, preprocess_drawing(ink)) > 0.99


def test_uploads_in_other_modes_read_alike(mnist_test):
    ink = np.asarray(Image.fromarray(mnist_test[0][9]).resize((112, 112), Image.Resampling.BILINEAR))
    expected = preprocess_image(Image.fromarray(255 - ink))
    black_on_clear = np.zeros((*ink.shape, 4), dtype=np.uint8)
    black_on_clear[..., 3] = ink  # black ink on a transparent background
    variants = {
        "palette": Image.fromarray(255 - ink).convert("P"),
        "RGBA transparent, black ink": Image.fromarray(black_on_clear),
        "RGBA transparent, white ink": Image.fromarray(transparent_canvas(ink)),
        "I;16": Image.fromarray((255 - ink).astype(np.uint16) * 257),
        "JPEG": load_upload(png_bytes(Image.fromarray(255 - ink).convert("RGB"), "JPEG", quality=90)),
    }
    for name, image in variants.items():
        assert corr(preprocess_image(image), expected) > 0.97, name


def test_load_upload_turns_photos_upright():
    image = Image.new("L", (40, 20), 255)
    exif = image.getexif()
    exif[0x0112] = 6  # EXIF orientation: the camera was turned 90 degrees
    assert load_upload(png_bytes(image, "JPEG", exif=exif.tobytes())).size == (20, 40)


def test_blank_upload_is_none():
    assert preprocess_image(Image.new("RGB", (300, 200), "white")) is None


def test_large_upload_is_downscaled_and_read():
    image = Image.new("L", (3000, 2000), 255)
    image.paste(0, (1300, 600, 1500, 1400))  # a thick black bar: a "1"
    out = preprocess_image(image)
    assert out is not None and out.shape == (28, 28)


def test_load_upload_accepts_png_and_jpeg():
    image = Image.new("RGB", (40, 30), "white")
    for fmt in ("PNG", "JPEG"):
        loaded = load_upload(png_bytes(image, fmt))
        assert loaded.size == (40, 30) and loaded.format == fmt


@pytest.mark.parametrize("case", ["empty", "text", "truncated", "too many bytes", "GIF", "BMP", "too many pixels"])
def test_load_upload_rejects_bad_files(case):
    png = png_bytes(Image.fromarray(np.random.default_rng(5).integers(0, 256, (64, 64), dtype=np.uint8)))
    data, kwargs, message = {
        "empty": (b"", {}, "empty"),
        "text": (b"this is a text file, named digit.png\n" * 10, {}, "not a picture"),
        "truncated": (png[:len(png) // 2], {}, "damaged"),
        "too many bytes": (png, {"max_bytes": 1000}, "too large"),
        "GIF": (png_bytes(Image.new("P", (8, 8)), "GIF"), {}, "PNG or JPEG"),
        "BMP": (png_bytes(Image.new("RGB", (8, 8)), "BMP"), {}, "PNG or JPEG"),
        "too many pixels": (png, {"max_pixels": 64 * 63}, "limit is 4,032 pixels"),
    }[case]
    with pytest.raises(ImageUploadError, match=message):
        load_upload(data, **kwargs)


def paper_seven(width: int, height: int, mode: str = "L") -> Image.Image:
    """A dark 7 on light paper filling about half the picture's height."""
    image = Image.new(mode, (width, height), "white")
    s, cx, cy = min(width, height), width / 2, height / 2
    ImageDraw.Draw(image).line([(cx - 0.15 * s, cy - 0.25 * s), (cx + 0.15 * s, cy - 0.25 * s),
                                (cx - 0.05 * s, cy + 0.25 * s)], fill="black", width=s // 30)
    return image


def bomb_png(width: int, height: int, rows: int | None = None) -> bytes:
    """An all-zero RGBA PNG written row by row: a few hundred KB that decode to width * height * 4 bytes (only the
    first `rows` rows are written, when given: a header for a picture that is never decoded)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    z, row = zlib.compressobj(9), bytes(1 + 4 * width)  # each row: filter type 0, then RGBA zeros
    idat = b"".join(z.compress(row) for _ in range(height if rows is None else rows)) + z.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8 bits, colour type 6 (RGBA)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture
def no_decoding(monkeypatch):
    """Any attempt to decode a picture fails the test (AssertionError is not one of the errors load_upload catches)."""
    def load(self):
        raise AssertionError(f"{self.format} {self.size} was decoded")
    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


def test_large_jpeg_is_read_at_reduced_size_and_upright():
    photo = paper_seven(4000, 3000, "RGB")  # a 12 MP phone photo
    data = png_bytes(photo, "JPEG", quality=90)
    loaded = load_upload(data)
    assert (loaded.format, loaded.size) == ("JPEG", (2000, 1500))  # decoded at 1/2 scale: 12 MB, not 48 MB
    assert corr(preprocess_image(loaded), preprocess_image(photo)) > 0.98
    exif = Image.new("L", (1, 1)).getexif()
    exif[0x0112] = 6  # EXIF orientation: the camera was turned 90 degrees
    assert load_upload(png_bytes(photo, "JPEG", exif=exif.tobytes())).size == (1500, 2000)


def test_jpeg_of_any_size_pil_opens_is_read_at_eighth_scale():
    loaded = load_upload(png_bytes(paper_seven(9600, 7200), "JPEG", quality=80))  # 69 MP, under PIL's 89 MP
    assert loaded.size == (1200, 900)
    assert preprocess_image(loaded) is not None


def test_png_at_the_cap_is_accepted():
    width = 4000
    assert load_upload(png_bytes(paper_seven(width, MAX_PIXELS // width))).size == (4000, 2500)


def test_png_above_the_cap_is_refused_naming_its_size_and_the_cap(no_decoding):
    with pytest.raises(ImageUploadError) as refused:
        load_upload(png_bytes(paper_seven(4000, 2501)))
    assert str(refused.value) == ("The picture is too large (4000x2501 pixels); the limit is 10,000,000 pixels "
                                  "for a PNG. Please scale it down, or save it as a JPEG, which is read at a "
                                  "reduced size.")


def test_decompression_bomb_png_is_refused_without_decoding(no_decoding):
    data = bomb_png(6000, 5000)  # 30 MP: 120 MB as RGBA, under PIL's own 89 MP limit
    assert len(data) < 200_000
    with pytest.raises(ImageUploadError, match=r"too large \(6000x5000 pixels\); the limit is 10,000,000 pixels"):
        load_upload(data)


def test_a_400_megapixel_png_is_refused_naming_its_size_and_the_cap(no_decoding):
    """Over twice PIL's own limit, where Image.open refuses it at once without saying its size."""
    data = bomb_png(20_000, 20_000, rows=1)  # its header says 20000x20000; nothing past it is read
    with pytest.raises(ImageUploadError) as refused:
        load_upload(data)
    assert str(refused.value).startswith("The picture is too large (20000x20000 pixels); the limit is 10,000,000 "
                                         "pixels for a PNG.")


def test_a_baseline_jpeg_above_pils_limit_is_refused_naming_its_size_and_that_limit(no_decoding):
    """Decoded at 1/8 scale, a baseline JPEG may be large, but not beyond PIL's own limit (89 MP here)."""
    data = png_bytes(Image.new("L", (64, 48), "white"), "JPEG")
    sof = data.index(b"\xff\xc0")  # the frame header: length (2 bytes), precision (1), height (2), width (2)
    data = data[:sof + 5] + (65_000).to_bytes(2, "big") * 2 + data[sof + 9:]
    with pytest.raises(ImageUploadError) as refused:
        load_upload(data)
    assert str(refused.value) == (f"The picture is too large (65000x65000 pixels); the limit is "
                                  f"{Image.MAX_IMAGE_PIXELS:,} pixels for a JPEG. Please scale it down.")


def test_progressive_jpeg_above_the_cap_is_refused_without_decoding(no_decoding):
    """libjpeg keeps every coefficient of a progressive JPEG at full size (3-8 bytes a pixel), drafted or not."""
    data = png_bytes(paper_seven(4000, 3000, "RGB"), "JPEG", progressive=True)
    with pytest.raises(ImageUploadError, match=r"\(4000x3000 pixels\); the limit is 10,000,000 pixels for a "
                                               r"progressive JPEG\. Please scale it down, or save it as a "
                                               r"standard \(baseline\) JPEG\."):
        load_upload(data)


def test_jpeg_whose_first_scan_lacks_a_component_counts_as_decoded_whole(no_decoding):
    """A sequential JPEG whose scans each hold one component is buffered whole like a progressive one."""
    data = png_bytes(Image.new("RGB", (4000, 3000), "white"), "JPEG")
    sos = data.index(b"\xff\xda")
    assert data[sos + 4] == 3  # PIL writes one interleaved scan of Y, Cb and Cr
    one_component = bytes.fromhex("ffda0008010100003f00")  # SOS: 1 component (Y), then Ss=0, Se=63, Ah/Al=0
    data = data[:sos] + one_component + data[sos + 2 + 12:]
    with pytest.raises(ImageUploadError, match="4000x3000 pixels"):
        load_upload(data)


def test_small_progressive_jpeg_is_read():
    image = paper_seven(400, 300, "RGB")
    loaded = load_upload(png_bytes(image, "JPEG", progressive=True, quality=90))
    assert loaded.size == (400, 300) and loaded.info.get("progressive")
    assert corr(preprocess_image(loaded), preprocess_image(image)) > 0.98


def test_placed_canvas_digits_are_read_as_well_as_plain_ones(mnist_test):
    """Measured: 500 test digits drawn at random sizes and spots lose at most 1 point of accuracy."""
    x, y = mnist_test[0][:500], mnist_test[1][:500]
    rng = np.random.default_rng(0)
    drawn = np.stack([preprocess_drawing(render_placed(ink, rng)) for ink in x])
    predictor = Predictor.load()
    plain = (predictor.predict(x / np.float32(255)) == y).mean()
    read = (predictor.predict(drawn) == y).mean()
    assert read >= plain - 0.01, f"plain {plain:.1%}, drawn on a canvas {read:.1%}"


def test_thickness_target_is_mnists_median(mnist_test):
    measured = np.median([stroke_thickness(ink / np.float32(255)) for ink in mnist_test[0]])  # all 10,000
    assert measured == pytest.approx(THICKNESS, abs=0.1)


def test_stroke_thickness_of_a_bar():
    bar = np.zeros((60, 60), np.float32)
    bar[10:50, 20:26] = 1.0  # 6 px wide, 40 long: outline 2 * (40 + 6)
    assert stroke_thickness(bar) == pytest.approx(2 * 240 / 92)
    assert stroke_thickness(np.zeros((5, 5))) == 0.0


@pytest.mark.parametrize("i", range(4))
def test_thin_and_bold_pens_reach_the_network_alike(eval_dir, i):
    """The same pen strokes at 8 px and at 30 px come out with MNIST's stroke thickness, and alike."""
    strokes = evalsets.load("pendigits", eval_dir).strokes[i]
    thin, bold = (preprocess_drawing(draw_strokes(strokes, width, side=200)) for width in (8, 30))
    for out in (thin, bold):
        assert stroke_thickness(out) == pytest.approx(THICKNESS, abs=0.45)
    assert corr(thin, bold) > 0.85
