"""Live training progress: a thread-safe record written by a Keras callback, read by anyone."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import keras


# Points of the per-batch curve kept, evenly spaced: a long run's every batch, kept, slowed every script run of the
# server (Streamlit's two garbage collections after each run scan them all: 200,000 points cost about 0.09 s a run).
BATCH_POINTS_KEPT = 4_000


@dataclass(frozen=True)
class BatchPoint:
    step: int  # global batch number, counted from 1
    epoch_float: float  # epochs done, fractional: the x axis of the curves
    loss: float  # running mean over the epoch so far, as Keras reports it
    accuracy: float


@dataclass(frozen=True)
class EpochPoint:
    epoch: int  # counted from 1
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    train_seconds: float = math.nan  # training time up to this epoch's end, validation excluded


@dataclass(frozen=True)
class ProgressSnapshot:
    """A consistent copy of the progress at one moment; safe to keep and draw."""

    status: str  # "pending" | "running" | "completed" | "stopped" | "failed"
    message: str
    epoch: int  # current epoch, from 1 (0 before the first)
    epochs: int
    batch: int  # batches done in the current epoch
    batches_per_epoch: int
    images_per_sec: float
    eta_seconds: float | None
    elapsed_seconds: float
    batches: tuple[BatchPoint, ...]  # evenly spaced, at most BATCH_POINTS_KEPT, and the latest batch last
    epochs_done: tuple[EpochPoint, ...]

    @property
    def fraction(self) -> float:
        total = self.epochs * self.batches_per_epoch
        done = max(self.epoch - 1, 0) * self.batches_per_epoch + self.batch
        return 0.0 if total == 0 else min(done / total, 1.0)


class TrainingProgress:
    """Written by the training thread, read by any other thread through snapshot()."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status = "pending"
        self._message = "waiting to start"
        self._epoch = 0
        self._epochs = 0
        self._batch = 0
        self._batches_per_epoch = 0
        self._batch_size = 0
        self._images_per_sec = 0.0
        self._started = None  # time.monotonic() at the first batch of training
        self._epoch_started = None
        self._finished_at = None
        self._batches: list[BatchPoint] = []  # every `_stride`-th batch
        self._stride = 1
        self._recorded = 0  # batches recorded
        self._latest: BatchPoint | None = None
        self._epochs_done: list[EpochPoint] = []
        self._step = 0

    def begin(self, epochs: int, batches_per_epoch: int, batch_size: int) -> None:
        with self._lock:
            self._status, self._message = "running", "training"
            self._epochs, self._batches_per_epoch, self._batch_size = epochs, batches_per_epoch, batch_size
            self._started = time.monotonic()

    def begin_epoch(self, epoch: int) -> None:
        with self._lock:
            self._epoch, self._batch = epoch, 0
            self._epoch_started = time.monotonic()

    def record_batch(self, batch: int, loss: float, accuracy: float) -> None:
        now = time.monotonic()
        with self._lock:
            self._step += max(batch - self._batch, 1)  # global batch number, also with steps_per_execution > 1
            self._batch = batch
            seconds = now - (self._epoch_started or now)
            if seconds > 0:
                self._images_per_sec = batch * self._batch_size / seconds
            epoch_float = self._epoch - 1 + batch / max(self._batches_per_epoch, 1)
            self._latest = BatchPoint(self._step, epoch_float, loss, accuracy)
            if self._recorded % self._stride == 0:
                self._batches.append(self._latest)
                if len(self._batches) >= BATCH_POINTS_KEPT:  # keep every other one, and from now on half as many
                    del self._batches[1::2]
                    self._stride *= 2
            self._recorded += 1

    def record_epoch(self, point: EpochPoint) -> None:
        with self._lock:
            self._epochs_done.append(point)

    def set_message(self, message: str) -> None:
        with self._lock:
            self._message = message

    def finish(self, status: str, message: str) -> None:
        with self._lock:
            self._status, self._message = status, message
            self._finished_at = time.monotonic()

    def snapshot(self) -> ProgressSnapshot:
        with self._lock:
            now = self._finished_at or time.monotonic()
            elapsed = 0.0 if self._started is None else now - self._started
            return ProgressSnapshot(
                status=self._status,
                message=self._message,
                epoch=self._epoch,
                epochs=self._epochs,
                batch=self._batch,
                batches_per_epoch=self._batches_per_epoch,
                images_per_sec=self._images_per_sec,
                eta_seconds=self._eta(),
                elapsed_seconds=elapsed,
                batches=self._batch_points(),
                epochs_done=tuple(self._epochs_done),
            )

    def _batch_points(self) -> tuple[BatchPoint, ...]:
        if self._latest is None or (self._batches and self._batches[-1] is self._latest):
            return tuple(self._batches)
        return (*self._batches, self._latest)

    def _eta(self) -> float | None:
        if self._status != "running" or self._images_per_sec <= 0:
            return None
        batches_left = (self._epochs - self._epoch) * self._batches_per_epoch + self._batches_per_epoch - self._batch
        return batches_left * self._batch_size / self._images_per_sec


class ProgressCallback(keras.callbacks.Callback):
    """Feeds TrainingProgress, honours a stop event within one batch, halts on a NaN/inf loss."""

    def __init__(self, progress: TrainingProgress, stop: threading.Event | None, epochs: int,
                 batches_per_epoch: int, batch_size: int, validation=None) -> None:
        super().__init__()
        self.progress = progress
        self.stop = stop
        self.epochs, self.batches_per_epoch, self.batch_size = epochs, batches_per_epoch, batch_size
        self.validation = validation  # evaluated here, after full epochs only: fit() would also run it after a stop
        self.stop_reason: str | None = None  # "stopped" or "nan" once training was halted
        self.nan_message = ""
        self.full_epochs = 0
        self.train_seconds = 0.0  # time spent in training steps, validation excluded
        self._epoch_started = 0.0

    def on_train_begin(self, logs=None):
        self.progress.begin(self.epochs, self.batches_per_epoch, self.batch_size)

    def on_epoch_begin(self, epoch, logs=None):
        self.progress.begin_epoch(epoch + 1)
        self._epoch_started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        loss = float(logs.get("loss", math.nan))
        # Keras passes the index of the last batch run (several with steps_per_execution), unclipped
        # at an epoch's short last call.
        done = min(batch + 1, self.batches_per_epoch)
        self.progress.record_batch(done, loss, float(logs.get("accuracy", math.nan)))
        if not math.isfinite(loss):
            self.stop_reason = "nan"
            self.nan_message = f"loss became {loss} in epoch {self.progress.snapshot().epoch}, batch {done}"
            self.model.stop_training = True
        elif self.stop is not None and self.stop.is_set():
            self.stop_reason = "stopped"
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.train_seconds += time.perf_counter() - self._epoch_started
        if self.stop_reason is not None:
            return  # a partial epoch: not a full one, and its averages cover only part of the data
        self.full_epochs = epoch + 1
        val = {}
        if self.validation is not None:
            self.progress.set_message(f"validating epoch {epoch + 1}")
            val = self.model.evaluate(self.validation, verbose=0, return_dict=True)
            self.progress.set_message("training")
        self.progress.record_epoch(
            EpochPoint(
                epoch=epoch + 1,
                loss=float(logs.get("loss", math.nan)),
                accuracy=float(logs.get("accuracy", math.nan)),
                val_loss=float(val.get("loss", math.nan)),
                val_accuracy=float(val.get("accuracy", math.nan)),
                train_seconds=self.train_seconds,
            )
        )
