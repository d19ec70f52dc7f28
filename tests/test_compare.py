"""mnist_core.compare: what differs between runs, and their curves as rows."""

from __future__ import annotations

import dataclasses
import math

from mnist_core.compare import curve_rows, differences
from mnist_core.progress import EpochPoint
from mnist_core.runs import RunRecord
from mnist_core.training import TrainConfig


def _record(config: TrainConfig, accuracies: list[float], seconds: float | None = 10.0) -> RunRecord:
    history = tuple(EpochPoint(epoch=i, loss=0.5 / i, accuracy=a, val_loss=0.4 / i, val_accuracy=a)
                    for i, a in enumerate(accuracies, 1))
    return RunRecord(finished_at="2026-11-29T10:00:00+00:00", preset=config.preset, status="completed", message="",
                     config=config.to_dict(), history=history, test_accuracy=accuracies[-1] if accuracies else None,
                     test_loss=None, seconds=seconds, model=None)


def test_only_the_rows_that_differ_then_accuracy_and_time():
    seed = _record(TrainConfig.for_preset("seed", epochs=2), [0.97, 0.98])
    fast = _record(TrainConfig.for_preset("fast", epochs=2, augment=True, average_weights=True), [0.975, 0.985],
                   seconds=4.25)
    rows = dict(differences([seed, fast]))
    assert rows["Network"] == ["seed", "fast"]
    assert rows["Batch size"] == ["32", "128"] and rows["Learning rate"] == ["0.001", "0.005"]
    assert rows["Schedule"] == ["constant", "onecycle"] and rows["Weights kept"] == ["last", "averaged"]
    assert rows["Augmentation"] == ["none", "rotate/zoom/shift"]
    assert rows["Test accuracy"] == ["98.00%", "98.50%"] and rows["Training time"] == ["10.0 s", "4.2 s"]
    assert "Epochs (full / asked)" not in rows and "Seed" not in rows  # the same in both: not shown
    assert list(rows)[-2:] == ["Test accuracy", "Training time"]


def test_equal_runs_still_show_accuracy_and_time():
    a = _record(TrainConfig(epochs=1), [0.9])
    b = dataclasses.replace(a, test_accuracy=None, seconds=None)
    assert differences([a, b]) == [("Test accuracy", ["90.00%", "—"]), ("Training time", ["10.0 s", "—"])]


def test_curve_rows_one_per_run_and_epoch_with_missing_values_as_none():
    a = _record(TrainConfig(epochs=2), [0.9, 0.95])
    b = _record(TrainConfig(epochs=1), [0.8])
    b = dataclasses.replace(b, history=(dataclasses.replace(b.history[0], val_loss=math.nan),))
    rows = curve_rows([a, b], ["A", "B"])
    assert [(r["run"], r["epoch"], r["test accuracy"]) for r in rows] == [("A", 1, 0.9), ("A", 2, 0.95), ("B", 1, 0.8)]
    assert rows[-1]["test loss"] is None
