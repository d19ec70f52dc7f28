"""Turn canvas drawings and uploaded pictures into MNIST-like 28x28 images.

MNIST's recipe (LeCun et al.): the ink is cropped, scaled with anti-aliasing so its longer
side fills a 20x20 box (aspect ratio kept), and placed in a 28x28 frame so that its centre
of mass sits at the frame's centre. Before the scaling, the strokes are thinned or thickened
to MNIST's typical thickness, so a thin pen, a bold pen, a tiny and a huge drawing read alike.
Both public entry points share that one path.
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

SIZE = 28  # output frame, pixels
BOX = 20  # the ink's longer side after scaling, pixels
# Where the centre of mass goes, 0-based (row, col) pixel indices: MNIST's training digits average (13.99, 14.00).
CENTRE = 14.0
INK_THRESHOLD = 0.1  # ink below this (0..1) is noise: ignored for the bounding box and zeroed
MIN_INK_PIXELS = 12  # fewer ink pixels than this is a speck, not a digit...
MIN_INK_FRACTION = 0.001  # ...as is less ink than this share of the picture's area
MIN_EXTENT = 3  # a digit's ink spans at least this many pixels along its longer side
RESAMPLE = Image.Resampling.BOX  # area averaging: the anti-aliasing MNIST's size normalisation used
MAX_SIDE = 1024  # uploads are downscaled to at most this many pixels per side first, to stay fast
# Stroke width: drawings are redrawn at MNIST's typical stroke thickness before scaling.
WORK_SIDE = 80  # the crop's longer side while its strokes are thickened or thinned, pixels (4x the 20 px box)
THICKNESS = 1.97  # MNIST's median stroke thickness in the 28x28 frame, by stroke_thickness() (its test digits)
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601 weights, as PIL's convert("L")

UPLOAD_FORMATS = ("PNG", "JPEG")  # PIL format names; uploads in any other format are refused
# Pictures decoded whole (PNG, progressive JPEG) may have at most this many pixels: the costliest kind measured, a
# PNG with a transparent palette, peaks at 9 bytes a pixel through load_upload and preprocess_image, so ~90 MB here.
# An A4 page scanned at 300 dpi (8.7 MP) and a 4K screenshot (8.3 MP) fit; a JPEG in one scan of any size PIL
# opens (a 12 MP phone photo) is decoded reduced instead, at 1/2, 1/4 or 1/8 scale: ~30 MB at most, all told.
MAX_PIXELS = 10_000_000


class ImageUploadError(ValueError):
    """An uploaded file is not a usable picture; the message is meant for the user."""


def preprocess_drawing(rgba: np.ndarray) -> np.ndarray | None:
    """A canvas drawing (white ink on black) -> float32 (28, 28) in [0, 1], or None if nothing is drawn.

    Takes (H, W, 4) RGBA, (H, W, 3) RGB or (H, W) grey, integers in 0..255 or floats in [0, 1].
    The ink is luminance times alpha, so a transparent or an opaque black background both read as no ink.
    """
    a = np.asarray(rgba)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ValueError(f"Expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {a.shape}")
    scale = 1 / 255 if np.issubdtype(a.dtype, np.integer) else 1.0  # 0..255 -> [0, 1]
    if a.ndim == 2:
        ink = a.astype(np.float32) * scale
    else:
        ink = a[..., :3] @ (LUMA * np.float32(scale))  # luminance in [0, 1]
        if a.shape[2] == 4:
            ink *= a[..., 3] * np.float32(scale)
    return _to_mnist(ink)


def preprocess_image(image: Image.Image) -> np.ndarray | None:
    """An uploaded picture -> float32 (28, 28) in [0, 1] like preprocess_drawing, or None if it shows no ink.

    Any PIL mode. Dark ink on a light background (paper) is inverted; the background level is
    subtracted and the contrast stretched, so photos of paper work too.
    """
    grey = _grey(image)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    if background > 0.5:  # light background: dark ink on paper, so invert
        grey, background = 1.0 - grey, 1.0 - background
    ink = grey - background
    contrast = float(ink.max())
    if contrast < INK_THRESHOLD:  # a blank picture; stretching would only amplify noise
        return None
    return _to_mnist(ink / contrast)


def load_upload(data: bytes, max_bytes: int = 5 * 1024 * 1024, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open uploaded bytes as a decoded PIL image (EXIF rotation applied), or raise ImageUploadError.

    A picture PIL must decode whole is refused above `max_pixels`, from its header, before anything is decoded.
    A JPEG is decoded at 1/2, 1/4 or 1/8 scale as far as its longer side stays at least MAX_SIDE, and is refused
    above PIL's own limit (Image.MAX_IMAGE_PIXELS). Either refusal names the picture's size and the limit.
    """
    accepted = " or ".join(UPLOAD_FORMATS)
    if not data:
        raise ImageUploadError("The uploaded file is empty.")
    if len(data) > max_bytes:
        raise ImageUploadError(f"The file is too large ({len(data) / 2**20:.3g} MB); "
                               f"the limit is {max_bytes / 2**20:.3g} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # PIL's own limit, as an error
            image = _open_header(data)
            if image.format not in UPLOAD_FORMATS:
                raise ImageUploadError(f"{image.format} pictures are not supported; please upload a {accepted} file.")
            whole = _decoded_whole(image, data)
            limit = max_pixels if whole else Image.MAX_IMAGE_PIXELS
            if image.width * image.height > limit:  # from the header: nothing is decoded yet
                raise ImageUploadError(_too_large(image, limit, whole))
            if image.format == "JPEG":
                image.draft(image.mode, _draft_size(image.size))  # libjpeg's DCT scaling: decoded reduced
            image.load()  # decode now, so corrupt and truncated files fail here and not later
            ImageOps.exif_transpose(image, in_place=True)  # phone photos: turn upright as the camera was held
            return image
    except ImageUploadError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageUploadError(f"This file is not a picture PIL can read; please upload a {accepted} file.") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageUploadError("The picture has too many pixels to open safely.") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # PIL's errors for corrupt or truncated data
        raise ImageUploadError(f"The picture is damaged or incomplete and cannot be read ({exc}).") from exc


def _open_header(data: bytes) -> Image.Image:
    """The picture in `data` with its header read and nothing decoded. A PNG or JPEG is opened by its own PIL plugin,
    as Image.open does but without Image.open's check of PIL's pixel limit, which refuses a picture over twice that
    limit (179 megapixels) without saying its size: load_upload refuses it, naming both. Anything else is opened
    by Image.open, only to name its format."""
    Image.preinit()  # registers the PNG and JPEG plugins
    for fmt in UPLOAD_FORMATS:
        factory, accept = Image.OPEN[fmt]
        if accept(data[:16]):  # what Image.open reads to pick a plugin
            return factory(io.BytesIO(data), None)
    return Image.open(io.BytesIO(data))


def _decoded_whole(image: Image.Image, data: bytes) -> bool:
    """Whether decoding `image` (just opened from `data`) holds the whole picture in memory at full size.

    True for every format but a JPEG in one scan, which libjpeg turns into rows at the drafted scale as it reads.
    A JPEG in several scans (progressive, or a first scan without every colour component) keeps every DCT
    coefficient of the full picture until the last scan: 2 bytes a sample, 3-8 bytes a pixel, however drafted.
    """
    if image.format != "JPEG":
        return True
    if image.info.get("progressive"):
        return True
    sos = data.rfind(b"\xff\xda", 0, image.fp.tell())  # the first scan's header: PIL's parser stops right after it
    return sos < 0 or data[sos + 4] < image.layers  # its component count: fewer than the picture's, more scans follow


def _draft_size(size: tuple[int, int]) -> tuple[int, int]:
    """The size to ask Image.draft for: the picture's aspect, its longer side MAX_SIDE (preprocess_image's own limit).

    PIL picks the largest of 1/2, 1/4 and 1/8 that keeps both sides at least this, so a 4000x3000 photo decodes
    at 2000x1500 (12 MB as RGB instead of 48 MB); a picture smaller than this is decoded as it is.
    """
    scale = MAX_SIDE / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _too_large(image: Image.Image, max_pixels: int, whole: bool) -> str:
    """The message for a picture over the pixel cap, naming its size, the cap, and what to upload instead."""
    if image.format == "PNG":
        kind, instead = "PNG", ", or save it as a JPEG, which is read at a reduced size"
    elif whole:
        kind, instead = "progressive JPEG", ", or save it as a standard (baseline) JPEG"
    else:
        kind, instead = "JPEG", ""
    return (f"The picture is too large ({image.width}x{image.height} pixels); the limit is {max_pixels:,} pixels "
            f"for a {kind}. Please scale it down{instead}.")


def _grey(image: Image.Image) -> np.ndarray:
    """Any PIL image -> float32 (H, W) grey in [0, 1], at most MAX_SIDE a side, transparency filled with background."""
    if image.mode in ("P", "PA", "1"):  # palette indices and bits do not average: expand them first
        has_alpha = image.mode == "PA" or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "L")
    elif image.mode.startswith("I;16"):
        image = image.convert("I")
    factor = math.ceil(max(image.size) / MAX_SIDE)
    if factor > 1:
        image = image.reduce(factor)  # area averaging, before any per-pixel work
    if image.mode in ("I", "F"):  # high bit depth: stretch its own range
        grey = np.asarray(image, dtype=np.float32)
        low, high = float(grey.min()), float(grey.max())
        return (grey - low) / (high - low) if high > low else np.zeros_like(grey)
    grey, alpha = (np.asarray(c, dtype=np.float32) / 255 for c in image.convert("LA").split())
    if alpha.min() == 1.0:
        return grey
    opaque = alpha > 0.5
    ink_is_light = bool(opaque.any()) and float(np.median(grey[opaque])) > 0.5
    # Transparent areas are background: pick the shade the visible ink stands out against.
    fill = 0.0 if ink_is_light else 1.0
    return grey * alpha + fill * (1 - alpha)


def _to_mnist(ink: np.ndarray) -> np.ndarray | None:
    """Ink in [0, 1] (H, W) -> crop, scale to the 20 px box, centre by mass in 28x28; None for no digit."""
    mask = ink > INK_THRESHOLD
    box = _ink_box(mask)
    if box is None:
        return None
    crop_mask = mask[box]
    count = int(np.count_nonzero(crop_mask))
    if count < max(MIN_INK_PIXELS, MIN_INK_FRACTION * ink.size) or max(crop_mask.shape) < MIN_EXTENT:
        return None
    crop = normalise_stroke(np.where(crop_mask, ink[box], 0).astype(np.float32, copy=False))
    h, w = crop.shape
    s = BOX / max(h, w)  # output pixels per source pixel

    # Centre of mass of the crop, in continuous source coordinates (pixel i spans [i, i+1]).
    mass = crop.sum()
    cy = float(crop.sum(axis=1) @ np.arange(h, dtype=np.float32)) / mass + 0.5
    cx = float(crop.sum(axis=0) @ np.arange(w, dtype=np.float32)) / mass + 0.5
    # Output pixel j of a resampled region starting at frame index `off` covers source
    # [x0 + j/s, x0 + (j+1)/s]; choose x0 so the centre of mass lands on frame pixel CENTRE's centre.
    off_y = math.floor(CENTRE + 0.5 - cy * s)
    off_x = math.floor(CENTRE + 0.5 - cx * s)
    y0 = cy - (CENTRE + 0.5 - off_y) / s  # in (-1/s, 0]
    x0 = cx - (CENTRE + 0.5 - off_x) / s
    out_h, out_w = math.ceil((h - y0) * s), math.ceil((w - x0) * s)
    pad = math.ceil(1 / s) + 1  # source margin so the resampled region lies inside the padded crop
    padded = Image.fromarray(np.pad(crop, pad))
    small = np.asarray(padded.resize((out_w, out_h), RESAMPLE,
                                     box=(x0 + pad, y0 + pad, x0 + pad + out_w / s, y0 + pad + out_h / s)))

    frame = np.zeros((SIZE, SIZE), dtype=np.float32)
    fy0, fx0 = max(off_y, 0), max(off_x, 0)  # clip the region to the frame
    fy1, fx1 = min(off_y + out_h, SIZE), min(off_x + out_w, SIZE)
    frame[fy0:fy1, fx0:fx1] = small[fy0 - off_y:fy1 - off_y, fx0 - off_x:fx1 - off_x]
    np.clip(frame, 0, None, out=frame)  # resampling filters with negative lobes can undershoot
    return frame / frame.max()


def _ink_box(mask: np.ndarray) -> tuple[slice, slice] | None:
    """The (rows, cols) slices of the smallest box holding every True pixel, or None if there is none."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def stroke_thickness(ink: np.ndarray) -> float:
    """The mean stroke thickness of an ink image (H, W) in [0, 1], in its pixels: twice the ink's
    mass (relative to its brightest pixel) over the outline length of the ink at half that
    brightness (a stroke of width t and length L has mass t L and outline 2 L)."""
    peak = float(ink.max(initial=0.0))
    mask = ink > 0.5 * peak  # half the brightest ink: faint pencil too
    outline = np.count_nonzero(mask[1:] != mask[:-1]) + np.count_nonzero(mask[:, 1:] != mask[:, :-1])
    outline += np.count_nonzero(mask[[0, -1]]) + np.count_nonzero(mask[:, [0, -1]])  # edges on the border
    return 2 * float(ink.sum()) / peak / outline if outline else 0.0


def normalise_stroke(crop: np.ndarray) -> np.ndarray:
    """A cropped ink image -> the same strokes at MNIST's typical thickness, cropped to the ink again.

    The crop is resampled so its longer side is WORK_SIDE, then dilated or eroded by a disc whose
    radius is half the gap between its measured thickness and THICKNESS (at WORK_SIDE scale), so a
    thin pen, a thick pen, a tiny and a huge drawing all reach the network alike.
    """
    h, w = crop.shape
    f = WORK_SIDE / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    resample = RESAMPLE if f < 1 else Image.Resampling.BILINEAR
    work = np.asarray(Image.fromarray(crop).resize(size, resample))
    # The 28x28 frame shows the crop at BOX / WORK_SIDE of this size: the target in working pixels.
    gap = THICKNESS * WORK_SIDE / BOX - stroke_thickness(work)
    # A disc of radius r changes the thickness by 2r but also the ink's box by 2r, which is then
    # scaled back to BOX: r = gap / 2 / (1 - THICKNESS / BOX) lands on THICKNESS.
    radius = round(abs(gap) / 2 / (1 - THICKNESS / BOX))
    if radius == 0:
        return crop
    # The margin of `radius` zeros stands for everything outside the crop, so shifting inside the
    # padded image is enough: a pixel whose neighbour would fall outside it is itself in the margin.
    pad = np.pad(work, radius)
    pick = np.maximum if gap > 0 else np.minimum  # dilate a thin pen, erode a thick one
    out, (H, W) = pad.copy(), pad.shape
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy * dy + dx * dx <= radius * radius + radius:  # a disc, slightly rounded out
                moved = out[max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)]
                pick(moved, pad[max(-dy, 0):H - max(dy, 0), max(-dx, 0):W - max(dx, 0)], out=moved)
    kept = out > INK_THRESHOLD
    box = _ink_box(kept)
    if box is None:  # eroded away: keep the strokes as drawn
        return work
    return np.where(kept, out, 0)[box]
