"""The network being trained, readable while it trains: the worker publishes weight copies, readers load them.

Training never waits for a reader: publishing copies the weights into a new immutable snapshot,
and a reader sets them into its own, separate model.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import keras
import numpy as np

from mnist_core.predict import Looks, Predictor
from mnist_core.spec import build_network

PUBLISH_EVERY = 200  # batches between publications, besides the start and every epoch's end


@dataclass(frozen=True)
class PublishedWeights:
    version: int  # 0, 1, 2... in publishing order
    epoch: float  # epochs completed, fractional: 1.5 = halfway through the second
    step: int  # global batch number (0 = before the first batch)
    weights: tuple[np.ndarray, ...]  # copies, in model.get_weights() order
    at: float  # time.monotonic() when it reached the board

    @property
    def label(self) -> str:
        if self.step == 0:
            return "untrained, before the first batch"
        return f"after {self.epoch:.2f} epochs ({self.step:,} batches)"


class WeightBoard:
    """The latest published weights of one training run; written by the worker, read by anyone."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: PublishedWeights | None = None
        self._gap: float | None = None  # seconds between the last two publications

    def publish(self, weights: list[np.ndarray], epoch: float, step: int) -> None:
        """Store copies, so that nothing a reader does can reach the arrays the caller passed."""
        copies = tuple(np.array(w, copy=True) for w in weights)
        now = time.monotonic()
        with self._lock:
            previous = self._latest
            self._gap = None if previous is None else now - previous.at
            version = 0 if previous is None else previous.version + 1
            self._latest = PublishedWeights(version, epoch, step, copies, now)

    def latest(self) -> PublishedWeights | None:
        with self._lock:
            return self._latest

    def next_due(self) -> float | None:
        """When (time.monotonic()) the next publication may be expected: as long after the last as that one came
        after the one before; None before there are two."""
        with self._lock:
            return None if self._gap is None else self._latest.at + self._gap


class WeightPublisher(keras.callbacks.Callback):
    """Publishes the model's weights at the start, every `every` batches and at every epoch's end."""

    def __init__(self, board: WeightBoard, batches_per_epoch: int, every: int = PUBLISH_EVERY) -> None:
        super().__init__()
        self.board, self.batches_per_epoch, self.every = board, batches_per_epoch, every
        self._epoch = 0  # current epoch, from 0
        self._done = 0  # batches done in it
        self._last = 0  # global step of the last publication

    def _publish(self) -> None:
        self._last = self._epoch * self.batches_per_epoch + self._done
        self.board.publish(self.model.get_weights(), self._epoch + self._done / self.batches_per_epoch, self._last)

    def on_train_begin(self, logs=None):
        self._publish()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._done = epoch, 0

    def on_train_batch_end(self, batch, logs=None):
        self._done = min(batch + 1, self.batches_per_epoch)  # several batches per call with steps_per_execution
        step = self._epoch * self.batches_per_epoch + self._done
        if step - self._last >= self.every and self._done < self.batches_per_epoch:  # the epoch's end publishes
            self._publish()

    def on_epoch_end(self, epoch, logs=None):
        self._publish()


class LiveModel:
    """A private float32 copy of a run's network that follows a WeightBoard. Thread-safe."""

    def __init__(self, preset: str, layers: str | None = None) -> None:
        """The network of TrainConfig(preset=..., layers=...): `layers` is the spec string of a "custom" one."""
        self._predictor = Predictor(build_network(preset, layers))
        self._lock = threading.Lock()
        self._board: WeightBoard | None = None  # the board followed; another board starts afresh
        self.published: PublishedWeights | None = None  # what the model holds now

    def refresh(self, board: WeightBoard) -> PublishedWeights | None:
        """Load the board's latest weights if they are newer; returns what the model now holds."""
        latest = board.latest()
        with self._lock:
            if board is not self._board:
                self._board, self.published = board, None
            if latest is not None and (self.published is None or latest.version > self.published.version):
                self._predictor.model.set_weights(list(latest.weights))
                self.published = latest
            return self.published

    def look(self, x: np.ndarray) -> Looks:
        with self._lock:
            return self._predictor.look(x)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.look(x).answer
