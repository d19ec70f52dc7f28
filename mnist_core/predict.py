"""Prediction: softmax probabilities through compiled functions with fixed signatures, and a second look at the
digits the network is unsure of."""

from __future__ import annotations

import os
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from mnist_core.model import INPUT_SHAPE, NUM_CLASSES
from mnist_core.store import load_model

# Images per call when reading many: as fast here as 2,048, and TensorFlow's allocator keeps far less afterwards (a
# reading of the 10,000 test images grew the process by 52 MB, against 435 MB in batches of 2,048).
BATCH = 256

# The second look: a digit whose top probability is under SECOND_LOOK_BELOW is read again shifted one pixel each way,
# and the answer is the mean of the five readings. A sure digit costs nothing more; what it gains on unsure ones is
# measured in docs/handwriting.md.
SECOND_LOOK_BELOW = 0.99
SECOND_LOOK_SHIFTS = ((1, 0), (-1, 0), (0, 1), (0, -1))  # (rows, columns): down, up, right, left
SECOND_LOOK_READINGS = 1 + len(SECOND_LOOK_SHIFTS)  # the first reading and one per shift, averaged


@dataclass(frozen=True)
class Looks:
    """Predictor.look()'s result for N images."""

    first: np.ndarray  # (N, 10) probabilities, the network's first look
    answer: np.ndarray  # (N, 10) probabilities, the answer: the first look, or the readings' mean where unsure
    looked_again: np.ndarray  # (N,) bool: looked at again, moved a pixel each way


class Predictor:
    """Holds a model; predict_proba() and look() take one (28, 28) image or a batch (N, 28, 28) in [0, 1].

    With `second_look` (the studio's way of answering) unsure digits are read again shifted; without it the answer
    is the network's own, as an exported model gives it.
    """

    def __init__(self, model: keras.Model, second_look: bool = True) -> None:
        self.model = model
        self.second_look = second_look
        model = float32_twin(model)

        def proba(x):
            return tf.nn.softmax(tf.cast(model(x, training=False), tf.float32), axis=-1)

        # Concrete functions skip tf.function's per-call signature matching, and model.predict's
        # per-call dataset. One image (a drawing) goes through an XLA-fused graph: about half the
        # latency of the plain graph on a CPU; any batch size through the plain one.
        self._one = tf.function(proba, jit_compile=True).get_concrete_function(
            tf.TensorSpec([1, *INPUT_SHAPE], tf.float32))
        self._many = tf.function(proba).get_concrete_function(tf.TensorSpec([None, *INPUT_SHAPE], tf.float32))
        # One unsure drawing's shifted copies, fused like the drawing itself.
        self._shifted_one = tf.function(proba, jit_compile=True).get_concrete_function(
            tf.TensorSpec([len(SECOND_LOOK_SHIFTS), *INPUT_SHAPE], tf.float32))

    def _network_proba(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) == 1:
            return self._one(tf.constant(batch)).numpy()
        if len(batch) == len(SECOND_LOOK_SHIFTS):
            return self._shifted_one(tf.constant(batch)).numpy()
        return self._many(tf.constant(batch)).numpy()

    def _look(self, batch: np.ndarray) -> Looks:
        first = self._network_proba(batch)
        looked_again = (first.max(axis=1) < SECOND_LOOK_BELOW) & self.second_look
        answer = first.copy()
        if looked_again.any():
            copies = shifted_copies(batch[looked_again])  # (shifts, unsure, 28, 28, 1)
            moved = self._network_proba(copies.reshape(-1, *INPUT_SHAPE)).reshape(*copies.shape[:2], NUM_CLASSES)
            answer[looked_again] = (first[looked_again] + moved.sum(axis=0)) / SECOND_LOOK_READINGS
        return Looks(first, answer, looked_again)

    def warm_up(self) -> None:
        """Compile the paths a drawing takes, so the first drawing (and the first unsure one) waits for none."""
        for n in (1, len(SECOND_LOOK_SHIFTS)):
            self._network_proba(np.zeros((n, *INPUT_SHAPE), np.float32))

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, second_look: bool = True) -> "Predictor":
        """From a .keras file; None is the project's shipped default model."""
        return cls(load_model(path), second_look)

    def look(self, x: np.ndarray, batch_size: int = BATCH) -> Looks:
        """The network's first look at each image, the answer, and which images it looked at again."""
        batch = as_batch(x)
        if len(batch) == 0:  # TensorFlow's convolutions reject an empty batch
            none = np.zeros((0, NUM_CLASSES), np.float32)
            return Looks(none, none, np.zeros(0, bool))
        parts = [self._look(batch[i:i + batch_size]) for i in range(0, len(batch), batch_size)]
        if len(parts) == 1:
            return parts[0]
        return Looks(*map(np.concatenate, zip(*((p.first, p.answer, p.looked_again) for p in parts))))

    def predict_proba(self, x: np.ndarray, batch_size: int = BATCH) -> np.ndarray:
        """Probabilities (N, 10), rows summing to 1: the answers."""
        return self.look(x, batch_size).answer

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


def shifted_copies(batch: np.ndarray) -> np.ndarray:
    """(N, 28, 28, 1) -> (len(SECOND_LOOK_SHIFTS), N, 28, 28, 1): each image moved by each shift, blank where the
    image moved away."""
    size = batch.shape[1]
    padded = np.pad(batch, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return np.stack([padded[:, 1 - dy:1 - dy + size, 1 - dx:1 - dx + size] for dy, dx in SECOND_LOOK_SHIFTS])


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
