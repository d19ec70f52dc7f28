"""mnist_core.live: weight copies published during real training, and a model that reads them."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from mnist_core.live import LiveModel, PublishedWeights, WeightBoard
from mnist_core.predict import Predictor
from mnist_core.spec import CUSTOM
from mnist_core.training import TrainConfig, train


class RecordingBoard(WeightBoard):
    """A real board that also keeps every publication, for the test to inspect."""

    def __init__(self) -> None:
        super().__init__()
        self.all: list[PublishedWeights] = []

    def publish(self, weights, epoch, step) -> None:
        super().publish(weights, epoch, step)
        self.all.append(self.latest())


def test_the_board_keeps_copies_and_counts_versions():
    board = WeightBoard()
    assert board.latest() is None
    w = [np.ones((2, 2), np.float32)]
    board.publish(w, 0.0, 0)
    w[0][:] = 5  # the publisher goes on training
    assert board.latest().weights[0].tolist() == [[1, 1], [1, 1]]
    board.publish(w, 0.5, 10)
    latest = board.latest()
    assert (latest.version, latest.epoch, latest.step) == (1, 0.5, 10)
    assert latest.label == "after 0.50 epochs (10 batches)"


def test_the_board_expects_the_next_publication_after_the_same_gap():
    board = WeightBoard()
    w = [np.ones((2, 2), np.float32)]
    board.publish(w, 0.0, 0)
    assert board.next_due() is None  # one publication says nothing about the pace
    time.sleep(0.2)
    board.publish(w, 0.5, 10)
    gap = board.next_due() - board.latest().at
    assert 0.2 <= gap < 1.0
    time.sleep(0.05)
    board.publish(w, 1.0, 20)  # a quicker one: the next is expected sooner
    assert board.next_due() - board.latest().at < gap


@pytest.fixture(scope="module")
def published():
    """250 batches of 8 in one epoch: published before the first batch, at batch 200 and at the end."""
    board = RecordingBoard()
    result = train(TrainConfig(train_subset=2000, test_subset=500, epochs=1, batch_size=8), board=board)
    return board, result


def test_publications_during_training(published):
    board, result = published
    assert [(p.version, p.step) for p in board.all] == [(0, 0), (1, 200), (2, 250)]
    assert [p.epoch for p in board.all] == [0.0, 0.8, 1.0]
    assert board.all[0].label == "untrained, before the first batch"
    final = result.model.get_weights()
    assert len(board.all[-1].weights) == len(final)
    for published_w, model_w in zip(board.all[-1].weights, final):
        np.testing.assert_array_equal(published_w, model_w)  # the last copy is the trained network
    assert not np.array_equal(board.all[0].weights[0], final[0])  # the first one was untrained


def test_published_weights_are_copies(published):
    board, result = published
    before = result.model.get_weights()[0].copy()
    board.latest().weights[0][:] = 0  # a careless reader
    np.testing.assert_array_equal(result.model.get_weights()[0], before)


def test_live_model_follows_the_board(published, test_digits):
    board, result = published
    x, _ = test_digits
    live = LiveModel("seed")
    assert live.published is None
    job_board = WeightBoard()
    job_board.publish(list(board.all[0].weights), 0.0, 0)
    assert live.refresh(job_board).step == 0
    untrained = live.predict_proba(x[:200])
    job_board.publish(result.model.get_weights(), 1.0, 250)
    assert live.refresh(job_board).version == 1
    assert live.refresh(job_board).version == 1  # nothing newer: nothing reloaded
    np.testing.assert_allclose(live.predict_proba(x[:200]), Predictor(result.model).predict_proba(x[:200]),
                               atol=1e-5)
    assert not np.allclose(untrained, live.predict_proba(x[:200]), atol=1e-2)

    next_job = WeightBoard()  # another run: its version 0 replaces the old run's version 1
    next_job.publish(list(board.all[0].weights), 0.0, 0)
    assert live.refresh(next_job).version == 0
    np.testing.assert_allclose(live.predict_proba(x[:200]), untrained, atol=1e-6)


def test_reading_while_training_does_not_change_the_run(trained, test_digits):
    """The conftest run again, now with a reader hammering the published weights: identical metrics."""
    x, _ = test_digits
    board = WeightBoard()
    live = LiveModel(trained.config.preset)
    done = threading.Event()
    reads = []

    def reader():
        while not done.is_set():
            if live.refresh(board) is not None:
                reads.append(live.predict_proba(x[0]))
            time.sleep(0.005)  # a busy reader, not a spinning one (2 cores)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        result = train(trained.config, board=board)
    finally:
        done.set()
        thread.join()
    assert len(reads) > 10
    assert [(p.loss, p.accuracy, p.val_loss, p.val_accuracy) for p in result.history] == \
        [(p.loss, p.accuracy, p.val_loss, p.val_accuracy) for p in trained.result.history]


def test_weights_of_a_mixed_precision_network_load_into_the_float32_reader(test_digits):
    from mnist_core.model import build_model

    x, _ = test_digits
    mixed = build_model("fast", dtype="mixed_bfloat16")
    board = WeightBoard()
    board.publish(mixed.get_weights(), 0.0, 0)
    live = LiveModel("fast")
    live.refresh(board)
    np.testing.assert_allclose(live.predict_proba(x[:50]), Predictor(mixed).predict_proba(x[:50]), atol=1e-5)


def test_live_model_of_a_custom_network_reads_its_published_weights(test_digits):
    x, _ = test_digits
    board = RecordingBoard()
    config = TrainConfig.for_preset(CUSTOM, layers="conv8k5-same,bn,relu,pool2,gap,dense16", epochs=1,
                                    train_subset=1000, test_subset=200, batch_size=8)  # 125 batches
    result = train(config, board=board)
    assert [p.step for p in board.all] == [0, 125]
    live = LiveModel(config.preset, config.layers)
    assert live.refresh(board).version == 1
    np.testing.assert_allclose(live.predict_proba(x[:200]), Predictor(result.model).predict_proba(x[:200]),
                               atol=1e-5)  # batch-norm statistics included: they are weights too
    first = WeightBoard()
    first.publish(list(board.all[0].weights), 0.0, 0)
    assert live.refresh(first).step == 0  # the untrained network reads differently
    assert not np.allclose(live.predict_proba(x[:200]), Predictor(result.model).predict_proba(x[:200]), atol=1e-2)
