"""Background training jobs: one at a time per server, each run in its own spawned process.

The process runs the ordinary `train()`; every change to its progress and every weight copy it
publishes comes back over a queue and is replayed into a TrainingProgress and a WeightBoard here, the
objects the page reads. The server's own TensorFlow state (its models, seeds, op determinism) is
never shared with training, a crash or `kill -9` of the process ends the run as failed while the
server keeps serving, training leaves a core to the server so that drawings are answered at once,
and a process whose server is gone ends itself.
"""

from __future__ import annotations

import dataclasses
import itertools
import multiprocessing
import os
import queue as queue_errors
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field

from mnist_core import load_tensorflow

load_tensorflow()  # before the imports below load it: its load lines once here, none in a training process

from mnist_core.live import WeightBoard  # noqa: E402
from mnist_core.progress import ProgressSnapshot, TrainingProgress  # noqa: E402
from mnist_core.retention import Retention, keep_setting  # noqa: E402
from mnist_core.runs import RunStore  # noqa: E402
from mnist_core.store import ModelInfo  # noqa: E402
from mnist_core.training import TrainConfig, TrainResult, train  # noqa: E402

STOP_GRACE_S = 10.0  # a run still training this long after Stop is ended by force
TRAIN_THREADS = max(1, (os.cpu_count() or 2) - 1)  # TensorFlow's threads in the training process: a core is left
POLL_S = 0.25  # how often the follower checks on a silent training process; the process, on its server
# The process sends its batches to the server in bundles this often: a message a batch (`seed`, about 200 a second
# here) cost the server about 2% of a core.
BATCHES_EVERY_S = 0.1
KEPT = "Saved and made active for every session."
UNCHANGED = "The active model is unchanged."


class JobAlreadyRunning(RuntimeError):
    """Only one training job runs at a time."""


@dataclass
class TrainingJob:
    """One run in a training process, followed by a thread of the server that writes only into this object."""

    config: TrainConfig
    number: int = field(default_factory=itertools.count(1).__next__)  # unique in this server, from 1
    progress: TrainingProgress = field(default_factory=TrainingProgress)
    weights: WeightBoard = field(default_factory=WeightBoard)  # the network as it trains, for live readings
    result: TrainResult | None = None  # as the process sent it back, without the model
    saved: ModelInfo | None = None  # set when the run was kept and made active
    outcome: str = ""  # what happened to the model, in words
    process: multiprocessing.process.BaseProcess | None = None
    thread: threading.Thread | None = None  # the follower
    stop_event: object = None  # a multiprocessing Event, seen by the process
    stop_requested_at: float | None = None  # time.monotonic() of the first Stop

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def snapshot(self) -> ProgressSnapshot:
        return self.progress.snapshot()

    def stop(self) -> None:
        if self.stop_requested_at is None:
            self.stop_requested_at = time.monotonic()
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)


class JobManager:
    """Owns the single training slot; every finished run is logged in the RunStore, and kept if worth it."""

    def __init__(self, runs: RunStore) -> None:
        self.runs = runs
        try:
            self.tidied = runs.tidy()  # what the last server or training process left, put right; in words
        except OSError as exc:  # a read-only or vanished runs folder: the studio still reads digits
            self.tidied = [f"The runs folder {runs.root} could not be tidied at start-up: {exc.strerror or exc}."]
        self.tidied += [problem] if (problem := keep_setting()[1]) else []
        self._lock = threading.Lock()
        self._job: TrainingJob | None = None
        self._context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of the server's TF

    @property
    def job(self) -> TrainingJob | None:
        """The running job, or the last one."""
        return self._job

    def start(self, config: TrainConfig) -> TrainingJob:
        with self._lock:
            if self._job is not None and self._job.running:
                raise JobAlreadyRunning("A training job is already running; stop it or wait for it to finish.")
            self.runs.begin_run(config)  # RunsFolderError when its model could not be kept
            messages = self._context.Queue()
            job = TrainingJob(config, stop_event=self._context.Event())
            job.progress.set_message("starting the training process")
            job.process = self._context.Process(target=_train_in_process, name=f"mnist-training-{job.number}",
                                                args=(config, str(self.runs.root), messages, job.stop_event),
                                                daemon=True)
            job.thread = threading.Thread(target=self._follow, args=(job, messages), daemon=True,
                                          name=f"mnist-training-{job.number}-follower")
            self._job = job
            job.process.start()
            job.thread.start()
            return job

    def stop(self, number: int) -> bool:
        """Stop run `number` if it is the one running (a late click never stops a newer run)."""
        job = self._job
        if job is None or job.number != number or not job.running:
            return False
        job.stop()
        return True

    def _follow(self, job: TrainingJob, messages) -> None:
        """Replay the process' messages until it ends; then log the run and say how it ended."""
        status = message = None
        exited = False  # the process had ended at the last empty poll
        try:
            while status is None:
                try:
                    kind, *payload = messages.get(timeout=POLL_S)
                except queue_errors.Empty:
                    if job.process.is_alive():
                        status, message = self._stop_if_overdue(job)
                    elif exited:  # a second empty poll after it ended: nothing more is coming
                        status, message = self._died(job)
                    exited = not job.process.is_alive()
                    continue
                if kind == "progress":
                    name, args = payload
                    getattr(job.progress, name)(*args)
                elif kind == "batches":
                    for args in payload[0]:
                        job.progress.record_batch(*args)
                elif kind == "weights":
                    job.weights.publish(*payload)
                elif kind == "result":
                    status, message = self._ended(job, *payload)
                else:  # "error": train() or saving raised in the process
                    status, message = "failed", f"Training failed: {payload[0]}. {UNCHANGED}"
                    job.outcome = UNCHANGED
        except Exception as exc:  # the follower must report, never die silently
            traceback.print_exc()
            status, message = "failed", f"Training failed: {exc}. {UNCHANGED}"
        job.process.join(STOP_GRACE_S)
        if job.process.is_alive():
            job.process.kill()
        try:
            self.runs.record(job.config, job.result, status, message, job.saved)
        except Exception as exc:  # e.g. a full disk: the log is secondary to saying how the run ended
            message += f" (The run could not be logged: {exc})"
        if job.saved is not None:
            keep = keep_setting()[0]
            try:
                pruned = Retention(self.runs, keep).prune()
            except Exception as exc:  # the run is kept either way: say so, and still end the job below
                pruned, message = [], message + f" (Older models were not pruned: {exc})"
            if pruned:
                message += (f" {len(pruned)} older model{'s were' if len(pruned) > 1 else ' was'} deleted to keep "
                            f"the newest {keep} (see Runs).")
        job.progress.finish(status, message)

    def _ended(self, job: TrainingJob, result: TrainResult, saved: ModelInfo | None) -> tuple[str, str]:
        job.result, job.saved = result, saved
        if saved is not None:
            job.outcome = KEPT
        elif result.status == "stopped":
            job.outcome = "Stopped before one full epoch: the active model is unchanged."
        else:
            job.outcome = UNCHANGED
        return result.status, f"{result.message} {job.outcome}"

    @staticmethod
    def _died(job: TrainingJob) -> tuple[str, str]:
        """The process ended without a result: killed, out of memory, or a crash of TensorFlow itself."""
        job.outcome = UNCHANGED
        code = job.process.exitcode
        how = (f"it was killed ({signal.Signals(-code).name}: out of memory, or ended by hand)" if code and code < 0
               else f"it exited with status {code}")
        return "failed", f"Training failed: the training process ended unexpectedly; {how}. {UNCHANGED}"

    @staticmethod
    def _stop_if_overdue(job: TrainingJob) -> tuple[str | None, str | None]:
        """A run still training STOP_GRACE_S after Stop is ended by force; (None, None) otherwise."""
        late = job.stop_requested_at is not None and time.monotonic() - job.stop_requested_at > STOP_GRACE_S
        if late and job.progress.snapshot().status in ("pending", "running"):
            job.process.kill()
            job.process.join()
            job.outcome = UNCHANGED
            return "stopped", (f"Stopped: the training process did not stop within {STOP_GRACE_S:.0f} s and was "
                               f"ended. {UNCHANGED}")
        return None, None


# --- in the training process -----------------------------------------------------------------------------

def _forwarded(name: str):
    def method(self, *args):
        getattr(TrainingProgress, name)(self, *args)
        self.send_batches()  # first: the server replays everything in order
        self.messages.put(("progress", name, args))

    method.__name__ = name
    return method


class _ForwardedProgress(TrainingProgress):
    """The process' progress record; each change is also sent to the server, which replays it. Batches go in
    bundles, at most BATCHES_EVERY_S apart, and before any other change."""

    def __init__(self, messages) -> None:
        super().__init__()
        self.messages = messages
        self._unsent: list[tuple] = []  # record_batch's arguments since the last bundle
        self._sent_at = time.monotonic()

    def record_batch(self, *args) -> None:
        super().record_batch(*args)
        self._unsent.append(args)
        if time.monotonic() - self._sent_at >= BATCHES_EVERY_S:
            self.send_batches()

    def send_batches(self) -> None:
        if self._unsent:
            self.messages.put(("batches", self._unsent))
            self._unsent = []
        self._sent_at = time.monotonic()

    begin = _forwarded("begin")
    begin_epoch = _forwarded("begin_epoch")
    record_epoch = _forwarded("record_epoch")
    set_message = _forwarded("set_message")
    finish = _forwarded("finish")


class _ForwardedBoard(WeightBoard):
    """Each weight copy published in the process is sent to the server's board."""

    def __init__(self, messages) -> None:
        super().__init__()
        self.messages = messages

    def publish(self, weights, epoch: float, step: int) -> None:
        self.messages.put(("weights", list(weights), epoch, step))


def _exit_with_the_server() -> None:
    """Watch the server from a thread of the training process; end the process if the server is gone."""
    server = multiprocessing.parent_process()
    while server.is_alive():
        time.sleep(POLL_S)
    os._exit(1)  # no clean-up: nobody is left to read the result


def _train_in_process(config: TrainConfig, runs_root: str, messages, stop) -> None:
    """The training process: train, keep the model if worth it, and send back the result without the model."""
    import tensorflow as tf

    threading.Thread(target=_exit_with_the_server, daemon=True).start()
    tf.config.threading.set_intra_op_parallelism_threads(TRAIN_THREADS)  # before TensorFlow starts its pools
    tf.config.threading.set_inter_op_parallelism_threads(TRAIN_THREADS)
    try:
        result = train(config, _ForwardedProgress(messages), stop, _ForwardedBoard(messages))
        saved = None
        if result.usable:
            messages.put(("progress", "set_message", ("saving the model",)))
            saved = RunStore(runs_root).save_run(result)
        messages.put(("result", dataclasses.replace(result, model=None), saved))
    except Exception as exc:
        traceback.print_exc()
        messages.put(("error", str(exc)))
    messages.close()
    messages.join_thread()  # everything sent before the process exits
