"""mnist_core.runs: the run log, saved runs and the active-model pointer, on real files."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math

import pytest

from mnist_core.runs import RunRecord, RunStore
from mnist_core.store import DEFAULT_MODEL


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "runs")


def test_nothing_logged_and_the_shipped_model_active(store):
    assert store.history() == []
    assert store.active_path() == DEFAULT_MODEL


def test_a_kept_run_is_saved_made_active_and_logged(store, trained):
    saved = store.save_run(trained.result)
    assert store.active_path() == saved.path.resolve()
    record = store.record(trained.config, trained.result, "completed", "Completed 1 epoch(s).", saved)
    assert record.model == str(saved.path.resolve())
    (logged,) = store.history()
    assert logged == record  # read back from disk, field for field
    assert logged.preset == "seed" and logged.status == "completed"
    assert logged.config == trained.config.to_dict()
    assert logged.full_epochs == 1 and logged.history == trained.result.history
    assert logged.test_accuracy == trained.result.test_accuracy
    assert logged.seconds == trained.result.seconds


def test_runs_that_were_not_kept_are_logged_too_newest_first(store, trained):
    store.record(trained.config, trained.result, "completed", "first", None)
    store.record(trained.config, None, "failed", "Training failed: disk on fire.", None)
    newest, oldest = store.history()
    assert (newest.message, newest.status, newest.model, newest.history, newest.test_accuracy) == \
        ("Training failed: disk on fire.", "failed", None, (), None)
    assert oldest.message == "first"


def test_a_damaged_log_line_is_skipped(store, trained):
    store.record(trained.config, trained.result, "completed", "kept", None)
    with store.log_file.open("a") as f:
        f.write('{"finished_at": "2026-11-28T03:00:00+00:00", "pres')  # a crash mid-write
    assert [r.message for r in store.history()] == ["kept"]
    store.record(trained.config, trained.result, "stopped", "after the crash", None)
    assert [r.message for r in store.history()] == ["after the crash", "kept"]


def test_metrics_csv(trained):
    point = trained.result.history[0]
    second = dataclasses.replace(point, epoch=2, loss=0.1, accuracy=0.97, val_loss=math.nan, val_accuracy=0.95,
                                 train_seconds=4.0)
    record = RunRecord(finished_at="2026-11-28T03:00:00+00:00", preset="seed", status="completed", message="",
                       config={}, history=(point, second), test_accuracy=0.95, test_loss=0.2, seconds=4.0,
                       model=None)
    assert math.isnan(RunRecord.from_json(record.to_json()).history[1].val_loss)
    assert '"val_loss": null' in record.to_json()  # strict JSON: any reader takes it
    json.loads(record.to_json(), parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    rows = list(csv.reader(io.StringIO(record.metrics_csv())))
    assert rows[0] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "train_seconds"]
    assert rows[1] == [str(v) for v in (point.epoch, point.loss, point.accuracy, point.val_loss,
                                        point.val_accuracy, point.train_seconds)]
    assert rows[2] == ["2", "0.1", "0.97", "", "0.95", "4.0"]  # a missing value is an empty cell
    assert len(rows) == 3


def test_set_active_and_its_fallbacks(store, saved_model, tmp_path):
    store.set_active(saved_model)
    assert store.active_path() == saved_model.resolve()
    assert json.loads(store.active_file.read_text()) == {"path": str(saved_model.resolve())}
    with pytest.raises(FileNotFoundError):
        store.set_active(tmp_path / "nowhere.keras")
    assert store.active_path() == saved_model.resolve()  # a refused change changes nothing
    store.active_file.write_text("{not json")
    assert store.active_path() == DEFAULT_MODEL


def test_an_unusable_result_is_not_kept(store, trained):
    stopped = dataclasses.replace(trained.result, status="stopped", history=(), test_accuracy=None)
    with pytest.raises(ValueError, match="Refusing"):
        store.save_run(stopped)
    assert not (store.root / "models").exists()


def test_delete_model_removes_a_saved_model_but_never_the_active_one(store, trained):
    first = store.save_run(trained.result)
    second = store.save_run(trained.result)  # now the active one
    store.record(trained.config, trained.result, "completed", "first run", first)
    with pytest.raises(ValueError, match="active model"):
        store.delete_model(second.path)
    assert second.path.is_file()

    store.delete_model(first.path)
    assert not first.path.exists() and not first.path.with_suffix(".json").exists()
    assert second.path.is_file() and store.active_path() == second.path.resolve()
    (logged,) = store.history()  # the run and its metrics stay in the log
    assert logged.model == str(first.path.resolve()) and logged.history == trained.result.history


def test_delete_model_refuses_files_the_store_did_not_save(store, saved_model):
    for outsider in (saved_model, DEFAULT_MODEL):
        with pytest.raises(ValueError, match="Only models trained in this studio"):
            store.delete_model(outsider)
        assert outsider.is_file()
