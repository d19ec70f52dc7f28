"""mnist_core.progress: the thread-safe progress record, read while a real training run writes it."""

from __future__ import annotations

import dataclasses
import math
import threading
import time

import pytest

from mnist_core.progress import EpochPoint, ProgressSnapshot, TrainingProgress
from mnist_core.training import TrainConfig, train


def test_pending_before_training():
    s = TrainingProgress().snapshot()
    assert s.status == "pending"
    assert s.message == "waiting to start"
    assert (s.epoch, s.epochs, s.batch, s.batches_per_epoch) == (0, 0, 0, 0)
    assert s.fraction == 0.0 and s.eta_seconds is None and s.elapsed_seconds == 0.0
    assert s.batches == () and s.epochs_done == ()


def test_snapshot_is_an_immutable_copy():
    p = TrainingProgress()
    p.begin(epochs=2, batches_per_epoch=10, batch_size=32)
    p.begin_epoch(1)
    p.record_batch(1, 2.0, 0.1)
    s = p.snapshot()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.batch = 5
    assert isinstance(s.batches, tuple) and isinstance(s.epochs_done, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.batches[0].loss = 0.0
    p.record_batch(2, 1.5, 0.2)
    p.record_epoch(EpochPoint(1, 1.0, 0.5, 0.9, 0.6))
    assert s.batch == 1 and len(s.batches) == 1 and s.epochs_done == ()  # later writes don't reach it
    s2 = p.snapshot()
    assert s2.batch == 2 and len(s2.batches) == 2 and len(s2.epochs_done) == 1


def test_running_fraction_eta_and_points():
    p = TrainingProgress()
    p.begin(epochs=2, batches_per_epoch=10, batch_size=32)
    p.begin_epoch(1)
    time.sleep(0.01)
    for b in range(1, 6):
        p.record_batch(b, 1.0 / b, 0.1 * b)
    s = p.snapshot()
    assert s.status == "running"
    assert s.fraction == pytest.approx(5 / 20)
    assert s.images_per_sec > 0
    assert s.eta_seconds == pytest.approx(15 * 32 / s.images_per_sec)  # 15 batches of 32 left
    assert [b.step for b in s.batches] == [1, 2, 3, 4, 5]
    assert [b.epoch_float for b in s.batches] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    p.begin_epoch(2)
    p.record_batch(1, 0.3, 0.9)
    s = p.snapshot()
    assert s.epoch == 2 and s.batch == 1
    assert s.fraction == pytest.approx(11 / 20)
    assert s.batches[-1].step == 6 and s.batches[-1].epoch_float == pytest.approx(1.1)


@pytest.mark.parametrize("status", ["completed", "stopped", "failed"])
def test_finish(status):
    p = TrainingProgress()
    p.begin(epochs=1, batches_per_epoch=4, batch_size=8)
    p.begin_epoch(1)
    p.record_batch(1, 1.0, 0.5)
    p.finish(status, f"the run {status}")
    s = p.snapshot()
    assert s.status == status and s.message == f"the run {status}"
    assert s.eta_seconds is None  # no ETA once not running
    elapsed = s.elapsed_seconds
    time.sleep(0.02)
    assert p.snapshot().elapsed_seconds == elapsed  # the clock stops at the finish


def test_fraction_is_capped():
    s = ProgressSnapshot(status="running", message="", epoch=3, epochs=2, batch=5, batches_per_epoch=4,
                         images_per_sec=0.0, eta_seconds=None, elapsed_seconds=0.0, batches=(), epochs_done=())
    assert s.fraction == 1.0


def test_set_message():
    p = TrainingProgress()
    p.set_message("loading MNIST")
    assert p.snapshot().message == "loading MNIST"


def test_concurrent_reader_during_real_training():
    """A reader polling snapshot() while train() writes never fails and sees steady progress."""
    config = TrainConfig(train_subset=1500, test_subset=200, epochs=2)  # 47 batches per epoch
    progress = TrainingProgress()
    outcome: dict = {}

    def work():
        try:
            outcome["result"] = train(config, progress)
        except BaseException as exc:  # report in the main thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    snaps = []
    while worker.is_alive():
        snaps.append(progress.snapshot())
        time.sleep(0.002)
    worker.join()
    assert "error" not in outcome, outcome.get("error")
    snaps.append(progress.snapshot())
    running = [s for s in snaps if s.status == "running"]
    assert len(running) >= 5, "the reader never saw the run in progress"
    assert len({len(s.batches) for s in running}) >= 3
    for before, after in zip(snaps, snaps[1:]):
        assert len(after.batches) >= len(before.batches)
        assert after.batches[:len(before.batches)] == before.batches  # only ever appended to
        assert len(after.epochs_done) >= len(before.epochs_done)
        assert after.fraction >= before.fraction
        assert (after.epoch, after.batch) >= (before.epoch, before.batch)
    for s in snaps:
        assert [b.step for b in s.batches] == list(range(1, len(s.batches) + 1))
        assert 0.0 <= s.fraction <= 1.0
    final = snaps[-1]
    assert final.status == "completed" and final.fraction == 1.0
    assert len(final.batches) == 2 * 47 and len(final.epochs_done) == 2
    assert outcome["result"].history == final.epochs_done


def test_a_long_run_keeps_evenly_spaced_batches_and_the_latest(monkeypatch):
    from mnist_core import progress

    monkeypatch.setattr(progress, "BATCH_POINTS_KEPT", 8)
    p = TrainingProgress()
    p.begin(epochs=1, batches_per_epoch=1000, batch_size=32)
    p.begin_epoch(1)
    for b in range(1, 8):
        p.record_batch(b, 1.0, 0.5)
    assert [b.step for b in p.snapshot().batches] == list(range(1, 8))  # every batch, under the limit
    for b in range(8, 101):
        p.record_batch(b, 1.0 / b, 0.5)
    steps = [b.step for b in p.snapshot().batches]
    assert steps == [1, 17, 33, 49, 65, 81, 97, 100]  # every 16th, then the latest
    assert p.snapshot().batches[-1].loss == pytest.approx(0.01)
    p.record_batch(101, 1.0, 0.5)
    assert [b.step for b in p.snapshot().batches][-2:] == [97, 101]


def test_steps_count_batches_with_steps_per_execution():
    """With several batches per compiled call, points still carry global batch numbers."""
    config = TrainConfig(train_subset=1000, test_subset=100, epochs=2, batch_size=100, steps_per_execution=4)
    progress = TrainingProgress()
    result = train(config, progress)
    assert result.status == "completed"
    s = progress.snapshot()
    assert s.batches_per_epoch == 10
    # 10 batches per epoch in calls of 4, 4 and 2: a point after batches 4, 8, 10 of each epoch
    assert [b.step for b in s.batches] == [4, 8, 10, 14, 18, 20]
    assert [b.epoch_float for b in s.batches] == pytest.approx([0.4, 0.8, 1.0, 1.4, 1.8, 2.0])
    assert s.batch == 10 and s.fraction == 1.0
    assert all(math.isfinite(b.loss) for b in s.batches)
