"""MNIST loading and preparation: offline by default, clear errors, tf.data pipelines."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

VENDORED_NPZ = Path(__file__).parent / "assets" / "mnist.npz"
ENV_VAR = "MNIST_NPZ"
KERAS_SOURCE = "keras"  # pass as `path` to download through keras.datasets.mnist instead
KERAS_DOWNLOAD_TIMEOUT_S = 20.0  # a blocked network must fail fast, not hang

TRAIN_IMAGES, TEST_IMAGES = 60_000, 10_000  # MNIST's two splits
_EXPECTED = {  # array name -> (shape, dtype), the layout of keras.datasets.mnist
    "x_train": ((TRAIN_IMAGES, 28, 28), np.uint8),
    "y_train": ((TRAIN_IMAGES,), np.uint8),
    "x_test": ((TEST_IMAGES, 28, 28), np.uint8),
    "y_test": ((TEST_IMAGES,), np.uint8),
}

Split = tuple[np.ndarray, np.ndarray]


class MnistDataError(RuntimeError):
    """The MNIST file is missing, unreadable or not in the expected layout."""


def resolve_path(path: str | os.PathLike | None = None) -> Path:
    """Explicit path, else $MNIST_NPZ, else the copy vendored in this package."""
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else VENDORED_NPZ


def load_mnist(path: str | os.PathLike | None = None) -> tuple[Split, Split]:
    """Return ((x_train, y_train), (x_test, y_test)) as uint8 arrays, like Keras' load_data().

    `path="keras"` downloads through keras.datasets.mnist instead of reading a file.
    """
    if path == KERAS_SOURCE:
        return _load_from_keras()
    npz = resolve_path(path)
    arrays = _read_npz(npz)
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def _read_npz(npz: Path) -> dict[str, np.ndarray]:
    if not npz.is_file():
        raise MnistDataError(f"MNIST file not found: {npz}")
    try:
        with np.load(npz, allow_pickle=False) as f:
            missing = sorted(set(_EXPECTED) - set(f.files))
            if missing:
                raise MnistDataError(f"MNIST file {npz} lacks arrays {missing}; found {sorted(f.files)}")
            arrays = {name: f[name] for name in _EXPECTED}
    except MnistDataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise MnistDataError(f"MNIST file {npz} is unreadable (truncated or not an .npz): {exc}") from exc
    for name, (shape, dtype) in _EXPECTED.items():
        a = arrays[name]
        if a.shape != shape or a.dtype != dtype:
            raise MnistDataError(
                f"MNIST file {npz}: array {name} has shape {a.shape} and dtype {a.dtype}, "
                f"expected {shape} {np.dtype(dtype)}"
            )
    return arrays


def _load_from_keras() -> tuple[Split, Split]:
    import socket

    import keras

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(KERAS_DOWNLOAD_TIMEOUT_S)
    try:
        return keras.datasets.mnist.load_data()
    except Exception as exc:  # keras wraps URL, HTTP and socket errors differently per version
        raise MnistDataError(
            "Downloading MNIST through keras.datasets.mnist failed "
            f"(is the network blocked?): {exc}. Use the vendored copy (path=None) instead."
        ) from exc
    finally:
        socket.setdefaulttimeout(previous)


def to_float_images(x: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1]."""
    return (x.astype(np.float32) / 255.0)[..., np.newaxis]  # scale to [0, 1], add channel axis


def from_float_images(x: np.ndarray) -> np.ndarray:
    """float (N, 28, 28) in [0, 1] -> uint8 (N, 28, 28), as MNIST stores its images."""
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def subset(split: Split, n: int | None) -> Split:
    """The first n examples of a split (all of it for None)."""
    x, y = split
    return (x, y) if n is None else (x[:n], y[:n])


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool, seed: int,
                 augment: bool = False, style: bool = False, stroke: bool = False, slant: bool = False):
    """A tf.data pipeline over uint8 images kept in memory: seeded shuffle, batch, scale, prefetch.

    Random distortions per image, seeded so runs repeat exactly: `style` gives some 1s a flag and
    some 7s a crossbar, `stroke` makes the ink thinner or thicker, then `augment` rotates, zooms
    and shifts and `slant` shears, in one affine op.
    """
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32)))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(_scale_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if augment or style or stroke or slant:
        def distort(batch, seed):
            x, y = batch
            style_seed, affine_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
            if style:
                x = _style(x, y, style_seed)
            if stroke:  # a seed of its own, so runs without it draw exactly as before
                x = _stroke(x, tf.random.experimental.stateless_fold_in(seed, 2))
            if augment or slant:
                x = _affine(x, affine_seed, turn=augment, slant=slant)
            return x, y

        batch_seeds = tf.data.Dataset.random(seed=seed).batch(2)  # one stateless seed pair per batch
        ds = tf.data.Dataset.zip((ds, batch_seeds)).map(distort, num_parallel_calls=tf.data.AUTOTUNE,
                                                        deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


MAX_ROTATION = 0.2  # radians, about 11 degrees
MAX_ZOOM = 0.1  # +-10% size
MAX_SHIFT = 2.5  # pixels
MAX_SLANT = 0.4  # shear: a row shifts sideways by up to 0.4 px per row from the centre (about 22 degrees)
STYLE_SHARE = 0.3  # the share of 1s given a flag, and of 7s given a crossbar
STYLE_WIDTH = (1.6, 2.6)  # the added stroke's width, pixels, about MNIST's median stroke
FLAG_LENGTH = (0.3, 0.6)  # a flag's length, as a share of the digit's height
FLAG_ANGLE = (0.35, 1.05)  # a flag's slope below the horizontal, radians (20-60 degrees)
FOOT_SHARE = 0.5  # the share of flagged 1s that also get a foot
FOOT_LENGTH = (0.3, 0.6)  # a foot's length, as a share of the digit's height
CROSSBAR_ROW = (0.45, 0.6)  # where a crossbar crosses the 7's stem, as a share of the height from the top
CROSSBAR_LENGTH = (0.3, 0.5)  # a crossbar's length, as a share of the digit's height
CROSSBAR_TILT = 0.1  # a crossbar's largest slope, rows per column
MAX_STROKE_CHANGE = 0.6  # the largest blend towards the ink eroded or dilated by one pixel


def _style(x, y, seed):
    """Continental handwriting, rare in MNIST: some 1s get a flag (a stroke from the stem's top down
    to the left), half of those a foot as well, and some 7s a crossbar through the middle of the
    stem; each stroke drawn anti-aliased at a random width."""
    import tensorflow as tf

    n = tf.shape(x)[0]
    u = [tf.random.stateless_uniform([n], s) for s in tf.unstack(tf.random.experimental.stateless_split(
        tf.cast(seed, tf.int64), 6))]
    ink = x[..., 0]
    grid = tf.range(28.0)
    inked_rows = tf.reduce_max(ink, axis=2) > 0.5  # (n, 28)
    top = tf.reduce_min(tf.where(inked_rows, grid, 28.0), axis=1)
    bottom = tf.reduce_max(tf.where(inked_rows, grid, -1.0), axis=1)
    height = bottom - top + 1

    def between(bounds, v):  # bounds[0] .. bounds[1] at v in [0, 1)
        return bounds[0] + (bounds[1] - bounds[0]) * v

    def stem_column(row):  # the ink's mean column in the three rows about `row`
        near = tf.cast(tf.abs(grid[None, :] - row[:, None]) <= 1.0, tf.float32)[..., None]  # (n, 28, 1)
        weight = ink * near
        return tf.reduce_sum(weight * grid, axis=[1, 2]) / tf.maximum(tf.reduce_sum(weight, axis=[1, 2]), 1e-3)

    width = between(STYLE_WIDTH, u[3])

    def segment(r0, c0, r1, c1):  # (n, 28, 28) ink of the stroke (r0, c0)-(r1, c1), falling off over a pixel
        r0, c0, dr, dc = (v[:, None, None] for v in (r0, c0, r1 - r0, c1 - c0))
        pr, pc = grid[None, :, None] - r0, grid[None, None, :] - c0
        t = tf.clip_by_value((pr * dr + pc * dc) / tf.maximum(dr * dr + dc * dc, 1e-6), 0.0, 1.0)
        distance = tf.sqrt((pr - t * dr) ** 2 + (pc - t * dc) ** 2)
        return tf.clip_by_value(width[:, None, None] / 2 + 0.5 - distance, 0.0, 1.0)

    # A 1's flag: from the stem's top, down to the left; its foot: across the stem's bottom. Both
    # start half a pixel inside the ink's top or bottom row (pixel centres are at whole indices).
    flag_len, flag_angle = height * between(FLAG_LENGTH, u[0]), between(FLAG_ANGLE, u[1])
    flag_r, flag_c = top + 0.5, stem_column(top + 1)
    flag = segment(flag_r, flag_c, flag_r + flag_len * tf.sin(flag_angle), flag_c - flag_len * tf.cos(flag_angle))
    foot_r, foot_c, foot_half = bottom - 0.5, stem_column(bottom - 1), height * between(FOOT_LENGTH, u[2]) / 2
    foot = segment(foot_r, foot_c - foot_half, foot_r, foot_c + foot_half)
    one = (tf.equal(y, 1) & (u[4] < STYLE_SHARE))[:, None, None]
    footed = one & (u[5] < FOOT_SHARE)[:, None, None]
    # A 7's crossbar: across the stem, tilted a little.
    bar_r = top + height * between(CROSSBAR_ROW, u[0])
    bar_half, bar_tilt = height * between(CROSSBAR_LENGTH, u[1]) / 2, between((-CROSSBAR_TILT, CROSSBAR_TILT), u[2])
    bar_c = stem_column(bar_r)
    bar = segment(bar_r - bar_half * bar_tilt, bar_c - bar_half, bar_r + bar_half * bar_tilt, bar_c + bar_half)
    seven = (tf.equal(y, 7) & (u[4] < STYLE_SHARE))[:, None, None]
    added = tf.maximum(tf.where(one, flag, 0.0), tf.maximum(tf.where(footed, foot, 0.0), tf.where(seven, bar, 0.0)))
    added = tf.where((height > 4)[:, None, None], added, 0.0)
    return tf.maximum(x, added[..., None])


def _stroke(x, seed):
    """Thinner or thicker ink per image: a random blend towards the ink eroded or dilated by one pixel."""
    import tensorflow as tf

    w = tf.random.stateless_uniform([tf.shape(x)[0], 1, 1, 1], tf.cast(seed, tf.int64), -MAX_STROKE_CHANGE,
                                    MAX_STROKE_CHANGE)
    thick = tf.nn.max_pool2d(x, 3, 1, "SAME")
    thin = -tf.nn.max_pool2d(-x, 3, 1, "SAME")
    return tf.where(w > 0, x + w * (thick - x), x - w * (thin - x))


def _affine(x, seed, *, turn: bool, slant: bool):
    """One affine transform per image, in a single op: `turn` rotates, zooms and shifts (about the centre),
    `slant` shears."""
    import tensorflow as tf

    n = tf.shape(x)[0]
    seed = tf.cast(seed, tf.int64)
    seeds = tf.random.experimental.stateless_split(seed, 3)
    # A part that is off draws from a range of width 0, so the other parts draw the same numbers either way;
    # the slant has a seed of its own (folded in) for the same reason.
    max_rotation, max_zoom, max_shift = (v if turn else 0.0 for v in (MAX_ROTATION, MAX_ZOOM, MAX_SHIFT))
    max_shear = MAX_SLANT if slant else 0.0
    angle = tf.random.stateless_uniform([n], seeds[0], -max_rotation, max_rotation)
    zoom = tf.random.stateless_uniform([n], seeds[1], 1 - max_zoom, 1 + max_zoom)
    shift = tf.random.stateless_uniform([n, 2], seeds[2], -max_shift, max_shift)
    shear = tf.random.stateless_uniform([n], tf.random.experimental.stateless_fold_in(seed, 4), -max_shear, max_shear)
    # The op maps each output pixel back to an input point: input = M (output - c - t) + c, where M
    # undoes the shear (x_out = x_in + shear * y_in), then the rotation and zoom.
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    m00, m01, m10, m11 = cos, sin - cos * shear, -sin, cos + sin * shear
    c = 13.5  # centre of a 28 px frame
    ox, oy = c + shift[:, 0], c + shift[:, 1]
    transforms = tf.stack([m00, m01, c - m00 * ox - m01 * oy,
                           m10, m11, c - m10 * ox - m11 * oy,
                           tf.zeros([n]), tf.zeros([n])], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=transforms, output_shape=[28, 28], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")


def _scale_batch(x, y):
    import tensorflow as tf

    return tf.cast(x, tf.float32)[..., tf.newaxis] / 255.0, y  # scale to [0, 1], add channel axis
