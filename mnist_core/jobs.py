"""Background training jobs: one at a time per process, readable from any thread."""

from __future__ import annotations

import itertools
import threading
import traceback
from dataclasses import dataclass, field

from mnist_core.live import WeightBoard
from mnist_core.progress import ProgressSnapshot, TrainingProgress
from mnist_core.runs import RunStore
from mnist_core.store import ModelInfo
from mnist_core.training import TrainConfig, TrainResult, train


class JobAlreadyRunning(RuntimeError):
    """Only one training job runs at a time."""


@dataclass
class TrainingJob:
    """One run in a worker thread. The thread writes only into `progress`, `weights` and the fields below."""

    config: TrainConfig
    number: int = field(default_factory=itertools.count(1).__next__)  # unique in this process, from 1
    progress: TrainingProgress = field(default_factory=TrainingProgress)
    weights: WeightBoard = field(default_factory=WeightBoard)  # the network as it trains, for live readings
    stop_event: threading.Event = field(default_factory=threading.Event)
    result: TrainResult | None = None
    saved: ModelInfo | None = None  # set when the run was kept and made active
    outcome: str = ""  # what happened to the model, in words
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def snapshot(self) -> ProgressSnapshot:
        return self.progress.snapshot()

    def stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)


class JobManager:
    """Owns the single training slot; every finished run is logged in the RunStore, and kept if worth it."""

    def __init__(self, runs: RunStore) -> None:
        self.runs = runs
        self._lock = threading.Lock()
        self._job: TrainingJob | None = None

    @property
    def job(self) -> TrainingJob | None:
        """The running job, or the last one."""
        return self._job

    def start(self, config: TrainConfig) -> TrainingJob:
        with self._lock:
            if self._job is not None and self._job.running:
                raise JobAlreadyRunning("A training job is already running; stop it or wait for it to finish.")
            job = TrainingJob(config)
            job.thread = threading.Thread(target=self._run, args=(job,), name="mnist-training", daemon=True)
            self._job = job
            job.thread.start()
            return job

    def _run(self, job: TrainingJob) -> None:
        try:
            job.result = result = train(job.config, job.progress, job.stop_event, job.weights)
            if result.usable:
                job.progress.set_message("saving the model")
                job.saved = self.runs.save_run(result)
                job.outcome = "Saved and made active for every session."
            elif result.status == "stopped":
                job.outcome = "Stopped before one full epoch: the active model is unchanged."
            else:
                job.outcome = "The active model is unchanged."
            status, message = result.status, f"{result.message} {job.outcome}"
        except Exception as exc:  # the worker must report, never die silently
            traceback.print_exc()
            job.outcome = "The active model is unchanged."
            status, message = "failed", f"Training failed: {exc}. {job.outcome}"
        try:
            self.runs.record(job.config, job.result, status, message, job.saved)
        except Exception as exc:  # e.g. a full disk: the log is secondary to saying how the run ended
            message += f" (The run could not be logged: {exc})"
        job.progress.finish(status, message)
