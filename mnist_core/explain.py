"""Why a model reads a digit as it does: integrated-gradients saliency, first-layer filters, activation maps."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from mnist_core.model import NUM_CLASSES
from mnist_core.predict import as_batch, float32_twin

IG_STEPS = 32  # straight-line steps from a black image to the drawing; 32 keeps the sum within a few %


@dataclass(frozen=True)
class Saliency:
    digit: int  # the class explained: the model's answer unless another was asked for
    attribution: np.ndarray  # (28, 28) in [-1, 1]: + pushed towards `digit`, - against; 0 on black pixels
    total: float  # sum of raw attributions = logit(drawing) - logit(black image), approximately
    logit_gain: float  # logit(drawing) - logit(black image), exactly: the sum should match it


class Explainer:
    """Looks inside one model for one (28, 28) image at a time. Thread-safe; builds its graphs once."""

    def __init__(self, model: keras.Model, steps: int = IG_STEPS) -> None:
        model = float32_twin(model)
        convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
        if len(convs) < 2:
            raise ValueError(f"Model {model.name!r} has {len(convs)} convolution layer(s); the explainer needs 2")
        self.model = model
        kernel = np.asarray(convs[0].kernel.numpy(), dtype=np.float32)  # (k, k, 1, filters); read once (below)
        self._filters = np.moveaxis(kernel[:, :, 0, :], -1, 0)
        taps = keras.Model(model.inputs, [_activated(model, c).output for c in convs[:2]])
        alphas = tf.reshape(tf.linspace(0.0, 1.0, steps + 1), [-1, 1, 1, 1])
        self._lock = threading.Lock()

        def integrated_gradients(x, target):
            path = alphas * x  # (steps + 1, 28, 28, 1): black image ... the drawing
            with tf.GradientTape() as tape:
                tape.watch(path)
                scores = tf.reduce_sum(model(path, training=False) * tf.one_hot(target, NUM_CLASSES), axis=1)
            grads = tape.gradient(scores, path)
            mean_grad = tf.reduce_mean((grads[:-1] + grads[1:]) / 2, axis=0)  # trapezoid rule
            return x[0, ..., 0] * mean_grad[..., 0], scores[-1] - scores[0]

        image = tf.TensorSpec([1, 28, 28, 1], tf.float32)
        self._ig = _Compiled(integrated_gradients, image, tf.TensorSpec([], tf.int32))
        self._taps = _Compiled(lambda x: taps(x, training=False), image)

    def saliency(self, image: np.ndarray, digit: int | None = None) -> Saliency:
        """Integrated gradients of a digit's logit, from a black image to `image` (28, 28) in [0, 1]."""
        x = tf.constant(_one(image))
        if digit is None:
            digit = int(np.argmax(self.model(x, training=False)[0]))
        with self._lock:
            raw, gain = self._ig(x, tf.constant(digit, tf.int32))
        raw = raw.numpy()
        peak = float(np.abs(raw).max())
        return Saliency(digit=digit, attribution=raw / peak if peak > 0 else raw, total=float(raw.sum()),
                        logit_gain=float(gain))

    def first_filters(self) -> np.ndarray:
        """The first convolution's kernels, (filters, k, k) for one input channel.

        Read from the model once: reading a variable costs a few ms after TensorFlow's kernel cache is emptied
        (see _Compiled), and an explainer's model never changes."""
        return self._filters.copy()

    def activations(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feature maps (channels, h, w) after the first and second convolutions' nonlinearity."""
        with self._lock:
            maps = self._taps(tf.constant(_one(image)))
        return tuple(np.moveaxis(m.numpy()[0], -1, 0) for m in maps)


class _Compiled:
    """`fn` as one XLA program for `signature`, or as a plain TensorFlow graph where XLA cannot compile it (a
    MaxPool gradient with op determinism on, an op XLA lacks).

    Why XLA: a host may clear TensorFlow's kernel cache between calls (Streamlit does, after every script run,
    by keras.backend.clear_session()); a graph then builds its kernels again at each call, which made a saliency
    map cost about 50 ms of CPU instead of 10. A compiled XLA program survives that. It is compiled at the first
    call (about a second of CPU), once for all digits.
    """

    def __init__(self, fn, *signature: tf.TensorSpec) -> None:
        self._fn, self._signature = fn, signature
        self._call = tf.function(fn, jit_compile=True).get_concrete_function(*signature)
        self._xla = True

    def __call__(self, *args):
        try:
            return self._call(*args)
        except (tf.errors.UnimplementedError, tf.errors.InvalidArgumentError):
            if not self._xla:
                raise
            self._call, self._xla = tf.function(self._fn).get_concrete_function(*self._signature), False
            return self._call(*args)


def _activated(model: keras.Model, conv: keras.layers.Conv2D) -> keras.layers.Layer:
    """The layer whose output is `conv`'s activation: itself if it has one, else the next ReLU/Activation
    before any other weighted layer (conv-BN-ReLU, conv-pool-ReLU); `conv` itself if there is none."""
    if conv.activation is not keras.activations.linear:
        return conv
    for layer in model.layers[model.layers.index(conv) + 1:]:
        if isinstance(layer, (keras.layers.ReLU, keras.layers.Activation)):
            return layer
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            break
    return conv


def _one(image: np.ndarray) -> np.ndarray:
    batch = as_batch(image)
    if len(batch) != 1:
        raise ValueError(f"Explain one image at a time, got {len(batch)}")
    return batch
