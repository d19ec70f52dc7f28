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

_EXPECTED = {  # array name -> (shape, dtype), the layout of keras.datasets.mnist
    "x_train": ((60000, 28, 28), np.uint8),
    "y_train": ((60000,), np.uint8),
    "x_test": ((10000, 28, 28), np.uint8),
    "y_test": ((10000,), np.uint8),
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


def subset(split: Split, n: int | None) -> Split:
    """The first n examples of a split (all of it for None)."""
    x, y = split
    return (x, y) if n is None else (x[:n], y[:n])


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool, seed: int,
                 augment: bool = False):
    """A tf.data pipeline over uint8 images kept in memory: seeded shuffle, batch, scale, prefetch.

    `augment` adds a random affine distortion per image (seeded, so runs repeat exactly).
    """
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32)))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(_scale_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if augment:
        batch_seeds = tf.data.Dataset.random(seed=seed).batch(2)  # one stateless seed pair per batch
        ds = tf.data.Dataset.zip((ds, batch_seeds)).map(
            _augment_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


MAX_ROTATION = 0.2  # radians, about 11 degrees
MAX_ZOOM = 0.1  # +-10% size
MAX_SHIFT = 2.5  # pixels


def _augment_batch(batch, seed):
    """One affine transform per image (rotation, zoom, shift about the centre), in a single op."""
    import tensorflow as tf

    x, y = batch
    n = tf.shape(x)[0]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    angle = tf.random.stateless_uniform([n], seeds[0], -MAX_ROTATION, MAX_ROTATION)
    zoom = tf.random.stateless_uniform([n], seeds[1], 1 - MAX_ZOOM, 1 + MAX_ZOOM)
    shift = tf.random.stateless_uniform([n, 2], seeds[2], -MAX_SHIFT, MAX_SHIFT)
    # The op maps each output pixel back to an input point: input = M (output - c - t) + c.
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    c = 13.5  # centre of a 28 px frame
    ox, oy = c + shift[:, 0], c + shift[:, 1]
    transforms = tf.stack([cos, sin, c - cos * ox - sin * oy,
                           -sin, cos, c + sin * ox - cos * oy,
                           tf.zeros([n]), tf.zeros([n])], axis=1)
    x = tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=transforms, output_shape=[28, 28], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")
    return x, y


def _scale_batch(x, y):
    import tensorflow as tf

    return tf.cast(x, tf.float32)[..., tf.newaxis] / 255.0, y  # scale to [0, 1], add channel axis
