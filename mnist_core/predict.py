"""Prediction: softmax probabilities through compiled functions with fixed signatures."""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from mnist_core.store import load_model

# Images per call when reading many: as fast here as 2,048, and TensorFlow's allocator keeps far less afterwards (a
# reading of the 10,000 test images grew the process by 52 MB, against 435 MB in batches of 2,048).
BATCH = 256


class Predictor:
    """Holds a model; predict_proba() takes one (28, 28) image or a batch (N, 28, 28) in [0, 1]."""

    def __init__(self, model: keras.Model) -> None:
        self.model = model
        model = float32_twin(model)

        def proba(x):
            return tf.nn.softmax(tf.cast(model(x, training=False), tf.float32), axis=-1)

        # Concrete functions skip tf.function's per-call signature matching, and model.predict's
        # per-call dataset. One image (a drawing) goes through an XLA-fused graph: about half the
        # latency of the plain graph on a CPU; any batch size through the plain one.
        self._one = tf.function(proba, jit_compile=True).get_concrete_function(
            tf.TensorSpec([1, 28, 28, 1], tf.float32))
        self._many = tf.function(proba).get_concrete_function(tf.TensorSpec([None, 28, 28, 1], tf.float32))

    def _proba(self, batch: np.ndarray) -> np.ndarray:
        fn = self._one if len(batch) == 1 else self._many
        return fn(tf.constant(batch)).numpy()

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "Predictor":
        """From a .keras file; None is the project's shipped default model."""
        return cls(load_model(path))

    def predict_proba(self, x: np.ndarray, batch_size: int = BATCH) -> np.ndarray:
        """Probabilities (N, 10), rows summing to 1."""
        batch = as_batch(x)
        if len(batch) == 0:
            return np.zeros((0, 10), np.float32)  # TensorFlow's convolutions reject an empty batch
        if len(batch) <= batch_size:
            return self._proba(batch)
        return np.concatenate([self._proba(batch[i:i + batch_size]) for i in range(0, len(batch), batch_size)])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The most probable digit for each image, shape (N,)."""
        return self.predict_proba(x).argmax(axis=1)


def float32_twin(model: keras.Model) -> keras.Model:
    """The same network and weights computing in float32: a model trained with mixed precision
    answers one image sooner this way (no casts around every layer) and no less accurately."""
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model
    config = model.get_config()
    for layer in config["layers"]:
        if "dtype" in layer["config"]:
            layer["config"]["dtype"] = "float32"
    twin = model.__class__.from_config(config)
    twin.set_weights(model.get_weights())
    return twin


def as_batch(x: np.ndarray) -> np.ndarray:
    """(28, 28), (N, 28, 28) or (N, 28, 28, 1) floats in [0, 1] -> float32 (N, 28, 28, 1)."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"Images must be floats in [0, 1], got dtype {x.dtype} (divide uint8 pixels by 255)")
    if x.shape == (28, 28):
        x = x[np.newaxis]
    if x.ndim == 4 and x.shape[1:] == (28, 28, 1):
        x = x[..., 0]
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"Expected one (28, 28) image or a batch (N, 28, 28), got shape {x.shape}")
    if x.size and not (x.min() >= 0 and x.max() <= 1):  # NaN fails both comparisons
        raise ValueError("Image values must lie in [0, 1]")
    return np.ascontiguousarray(x, dtype=np.float32)[..., np.newaxis]
