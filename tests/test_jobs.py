"""mnist_core.jobs: the background training slot, its process, live weights and run log, with real training."""

from __future__ import annotations

import os
import signal
import time

import pytest

from mnist_core import jobs
from mnist_core.jobs import JobAlreadyRunning, JobManager
from mnist_core.runs import RunsFolderError, RunStore
from mnist_core.store import DEFAULT_MODEL
from mnist_core.training import TrainConfig

SMALL = TrainConfig(train_subset=1000, test_subset=200, epochs=1)


@pytest.fixture
def manager(tmp_path) -> JobManager:
    m = JobManager(RunStore(tmp_path / "runs"))
    yield m
    if m.job is not None:
        m.job.stop()
        m.job.join(60)


def test_a_job_trains_in_its_own_process_publishes_keeps_logs_and_prunes(manager, trained, monkeypatch):
    from mnist_core.retention import KEEP_ENV

    monkeypatch.setenv(KEEP_ENV, "1")  # keep the newest model only
    old = manager.runs.save_run(trained.result)
    job = manager.start(SMALL)
    assert job.process.pid != os.getpid() and job.process.is_alive()
    with pytest.raises(JobAlreadyRunning):
        manager.start(SMALL)
    job.join(300)
    assert not job.running  # the slot is free again (what start() checks)
    assert job.process.exitcode == 0
    assert job.result.model is None and job.result.test_accuracy > 0.5  # the model came back as a file
    assert job.snapshot().epochs_done == job.result.history  # progress replayed into the server's record
    snap = job.snapshot()
    assert snap.status == "completed" and "Saved and made active" in snap.message
    assert manager.runs.active_path() == job.saved.path.resolve()
    published = job.weights.latest()
    assert published.step == 32 and published.epoch == 1.0  # 1,000 images in batches of 32
    assert [b.step for b in snap.batches] == list(range(1, 33))  # every batch, sent in bundles, replayed in order
    (record,) = manager.runs.history()
    assert record.status == "completed" and record.model == str(job.saved.path.resolve())
    assert record.test_accuracy == job.result.test_accuracy
    assert not old.path.exists() and job.saved.path.is_file()
    assert snap.message.endswith("1 older model was deleted to keep the newest 1 (see Runs).")


def test_the_process_sends_batches_in_bundles_and_before_any_other_change(monkeypatch):
    import queue

    monkeypatch.setattr(jobs, "BATCHES_EVERY_S", 60.0)
    messages = queue.Queue()
    progress = jobs._ForwardedProgress(messages)
    progress.begin(1, 100, 32)
    progress.begin_epoch(1)
    for b in range(1, 51):
        progress.record_batch(b, 0.5, 0.9)
    progress.set_message("evaluating on the test set")
    sent = [messages.get_nowait() for _ in range(messages.qsize())]
    assert [m[0] for m in sent] == ["progress", "progress", "batches", "progress"]
    assert [args[0] for args in sent[2][1]] == list(range(1, 51)) and sent[3][1] == "set_message"

    monkeypatch.setattr(jobs, "BATCHES_EVERY_S", 0.0)
    progress.record_batch(51, 0.5, 0.9)  # a bundle is due: sent at once
    assert messages.get_nowait() == ("batches", [(51, 0.5, 0.9)])


def test_start_refuses_a_runs_folder_that_cannot_take_the_model(tmp_path):
    (tmp_path / "runs").write_text("a file where the runs folder should be")
    manager = JobManager(RunStore(tmp_path / "runs"))
    assert manager.tidied and "could not be tidied" in manager.tidied[0]
    with pytest.raises(RunsFolderError, match="Training cannot start"):
        manager.start(SMALL)
    assert manager.job is None  # nothing started


def test_a_failing_job_is_logged_and_changes_nothing(manager, tmp_path):
    job = manager.start(TrainConfig(train_subset=1000, test_subset=200, epochs=1,
                                    data_path=str(tmp_path / "missing.npz")))
    job.join(120)
    snap = job.snapshot()
    assert snap.status == "failed" and "missing.npz" in snap.message
    assert "The active model is unchanged" in snap.message
    (record,) = manager.runs.history()
    assert (record.status, record.model, record.history) == ("failed", None, ())
    assert "missing.npz" in record.message
    assert manager.runs.active_path() == DEFAULT_MODEL


def test_a_job_stopped_before_one_epoch_is_logged_not_kept(manager):
    job = manager.start(TrainConfig(train_subset=5000, test_subset=200, epochs=1))
    job.stop()  # before or during the first batches
    job.join(120)
    assert job.snapshot().status == "stopped"
    (record,) = manager.runs.history()
    assert record.status == "stopped" and record.model is None
    assert manager.runs.active_path() == DEFAULT_MODEL


def _wait_until_training(job, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = job.snapshot()
        if snap.status == "running" and snap.batch > 0:
            return
        time.sleep(0.1)
    pytest.fail(f"the run did not start training within {timeout}s: {job.snapshot().message}")


def test_a_killed_training_process_is_a_failed_run_and_the_slot_frees(manager):
    job = manager.start(TrainConfig(train_subset=20_000, test_subset=200, epochs=3))
    _wait_until_training(job)
    os.kill(job.process.pid, signal.SIGKILL)  # as the out-of-memory killer would
    job.join(60)
    snap = job.snapshot()
    assert not job.running and snap.status == "failed"  # the slot is free again (what start() checks)
    assert "ended unexpectedly" in snap.message and "SIGKILL" in snap.message and "unchanged" in snap.message
    (record,) = manager.runs.history()
    assert record.status == "failed" and record.model is None and "SIGKILL" in record.message
    assert manager.runs.active_path() == DEFAULT_MODEL


def test_stop_names_its_run_and_a_run_that_does_not_stop_is_ended(manager, monkeypatch):
    job = manager.start(TrainConfig(train_subset=20_000, test_subset=200, epochs=3))
    assert not manager.stop(job.number + 1)  # a click meant for another run stops nothing
    _wait_until_training(job)
    os.kill(job.process.pid, signal.SIGSTOP)  # a process that no longer answers
    monkeypatch.setattr(jobs, "STOP_GRACE_S", 1.0)
    assert manager.stop(job.number)
    job.join(60)
    snap = job.snapshot()
    assert snap.status == "stopped" and "did not stop within 1 s and was ended" in snap.message
    assert not job.process.is_alive()
    assert manager.runs.history()[0].status == "stopped"
