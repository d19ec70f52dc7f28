"""mnist_core.jobs: the background training slot, its live weights and its run log, with real training."""

from __future__ import annotations

import pytest

from mnist_core.jobs import JobAlreadyRunning, JobManager
from mnist_core.runs import RunStore
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


def test_a_job_trains_publishes_keeps_and_logs(manager):
    job = manager.start(SMALL)
    with pytest.raises(JobAlreadyRunning):
        manager.start(SMALL)
    job.join(300)
    assert not job.running
    snap = job.snapshot()
    assert snap.status == "completed" and "Saved and made active" in snap.message
    assert manager.runs.active_path() == job.saved.path.resolve()
    published = job.weights.latest()
    assert published.step == 32 and published.epoch == 1.0  # 1,000 images in batches of 32
    (record,) = manager.runs.history()
    assert record.status == "completed" and record.model == str(job.saved.path.resolve())
    assert record.test_accuracy == job.result.test_accuracy
    assert manager.start(SMALL) is not job  # the slot is free again


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
