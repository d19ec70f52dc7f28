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


# --- bad files on disk: named, skipped, never raised --------------------------------------------------------------

BAD_LOG_LINES = {
    "bad bytes": b"\xff\xfe\x00garbage\x80",
    "config null": None,  # filled in below from a real record
    "not an object": b"[1, 2, 3]",
    "accuracy as text": None,
    "history point without a loss": None,
    "deeply nested": b"[" * 100_000 + b"]" * 100_000,
}


def _bad_lines(good: str) -> dict[str, bytes]:
    d = json.loads(good)
    lines = dict(BAD_LOG_LINES)
    lines["config null"] = json.dumps({**d, "config": None}).encode()
    lines["accuracy as text"] = json.dumps({**d, "test_accuracy": "high"}).encode()
    lines["history point without a loss"] = json.dumps({**d, "history": [{"epoch": 1}]}).encode()
    return lines


@pytest.mark.parametrize("case", list(BAD_LOG_LINES))
def test_a_line_that_is_not_a_run_is_skipped_and_named(store, trained, case):
    good = store.record(trained.config, trained.result, "completed", "kept", None)
    with store.log_file.open("ab") as f:
        f.write(_bad_lines(good.to_json())[case] + b"\n")
    store.record(trained.config, trained.result, "stopped", "after it", None)
    records, note = store.read_log()
    assert [r.message for r in records] == ["after it", "kept"]
    assert note.startswith(f"1 line of the run log {store.log_file} is not a run and skipped (line 2: ")
    assert "\n" not in note and len(note) < 300


def test_a_log_that_cannot_be_read_at_all_reads_as_empty_with_a_note(store):
    store.log_file.mkdir(parents=True)  # runs.jsonl is a folder
    records, note = store.read_log()
    assert records == [] and "cannot be read" in note and str(store.log_file) in note


@pytest.mark.parametrize("content, says", [
    ("{not json", "cannot be read"), ("[]", "not valid (it holds a list"), ('{"path": 3}', '"path" is 3, not text'),
    ('{"path": "/nowhere/m.keras"}', "The active model /nowhere/m.keras is gone"),
])
def test_a_broken_active_pointer_falls_back_and_says_why(store, content, says):
    store.root.mkdir(parents=True)
    store.active_file.write_text(content)
    assert store.active_path() == DEFAULT_MODEL
    assert says in store.active_problem() and store.active_problem().endswith("the shipped model is used instead.")


def test_no_active_pointer_is_no_problem(store):
    assert store.active_problem() is None


# --- before a run, and after a kill ------------------------------------------------------------------------------

def test_begin_run_marks_the_run_and_its_record_clears_the_mark(store, trained):
    store.begin_run(trained.config)
    marker = json.loads(store.running_file.read_text())
    assert marker["config"] == json.loads(json.dumps(trained.config.to_dict()))
    assert list(store.models_dir.iterdir()) == []  # the write probe leaves nothing
    store.record(trained.config, trained.result, "completed", "done", None)
    assert not store.running_file.exists()


def test_begin_run_refuses_a_runs_folder_it_cannot_write(store, trained):
    import os

    if os.geteuid() == 0:  # root writes anywhere: make the folder's place a file instead
        store.root.parent.mkdir(parents=True, exist_ok=True)
        store.root.write_text("a file where the runs folder should be")
    else:
        store.models_dir.mkdir(parents=True)
        store.models_dir.chmod(0o500)
    from mnist_core.runs import RunsFolderError

    with pytest.raises(RunsFolderError, match=r"Training cannot start: the runs folder .* cannot be written"):
        store.begin_run(trained.config)


def test_tidy_removes_temporary_files_adopts_unlisted_models_and_logs_an_interrupted_run(store, trained):
    kept = store.save_run(trained.result)
    store.record(trained.config, trained.result, "completed", "listed", kept)
    orphan = store.save_run(trained.result)  # saved and made active, then the server died before logging it
    other = dataclasses.replace(trained.config, epochs=3)
    store.begin_run(other)  # a second run was training when the server was killed
    debris = [store.models_dir / ".x.abc123.tmp.keras", store.models_dir / ".x.abc123.tmp.json",
              store.root / ".running.tmp.json"]
    for path in debris:
        path.write_bytes(b"half")

    done = store.tidy()
    assert len(done) == 3 and done[0].startswith("Removed 3 temporary files")
    assert not any(p.exists() for p in debris) and not store.running_file.exists()
    interrupted, recovered, listed = store.history()
    assert (interrupted.status, interrupted.model, interrupted.config["epochs"]) == ("interrupted", None, 3)
    assert "Interrupted: the server stopped while this run trained" in interrupted.message
    assert recovered.status == "recovered" and recovered.model == str(orphan.path.resolve())
    assert recovered.test_accuracy == trained.result.test_accuracy and recovered.preset == trained.config.preset
    assert listed.message == "listed"
    assert store.active_path() == orphan.path.resolve() and kept.path.is_file()  # no model is touched
    assert store.tidy() == []  # a second start finds nothing to do


def test_a_run_killed_after_saving_is_recovered_once_not_also_interrupted(store, trained):
    store.begin_run(trained.config)
    saved = store.save_run(trained.result)  # the server died here, before the record
    done = store.tidy()
    (record,) = store.history()
    assert record.status == "recovered" and record.model == str(saved.path.resolve()) and len(done) == 1


# --- retention ---------------------------------------------------------------------------------------------------

def test_prune_keeps_the_newest_the_active_and_the_pinned_and_says_which_went(store, trained, monkeypatch):
    from mnist_core.retention import Retention

    saved = [store.save_run(trained.result) for _ in range(5)]  # oldest first; the last one is active
    for info in saved:
        store.record(trained.config, trained.result, "completed", info.path.name, info)
    store.set_active(saved[1].path)
    retention = Retention(store, keep=2)
    retention.pin(saved[0].path, True)
    assert retention.prune() == [saved[2].path.name]  # 4 and 3 are the newest two; 1 active, 0 pinned
    assert [p.path.is_file() for p in saved] == [True, True, False, True, True]
    assert not saved[2].path.with_suffix(".json").exists()
    assert retention.pruned() == {saved[2].path.name}
    assert len(store.history()) == 5  # every run stays listed
    retention.pin(saved[0].path, False)
    assert retention.prune() == [saved[0].path.name]


def test_prune_deletes_nothing_when_the_pins_cannot_be_read(store, trained):
    from mnist_core.retention import Retention

    saved = [store.save_run(trained.result) for _ in range(3)]
    retention = Retention(store, keep=1)
    retention.pins_file.write_text("{broken")
    assert retention.prune() == [] and all(s.path.is_file() for s in saved)


@pytest.mark.parametrize("value, keep, wrong", [("", 20, False), ("5", 5, False), ("0", 20, True), ("many", 20, True)])
def test_the_keep_setting(monkeypatch, value, keep, wrong):
    from mnist_core.retention import KEEP_ENV, keep_setting

    monkeypatch.setenv(KEEP_ENV, value)
    assert keep_setting()[0] == keep and (keep_setting()[1] is not None) == wrong


def test_clear_log_forgets_runs_without_a_model_and_keeps_the_others(store, trained):
    kept = store.save_run(trained.result)
    gone = store.save_run(trained.result)
    store.record(trained.config, trained.result, "completed", "kept", kept)
    store.record(trained.config, None, "failed", "failed", None)
    store.record(trained.config, trained.result, "completed", "deleted later", gone)
    store.set_active(kept.path)
    store.delete_model(gone.path)
    with store.log_file.open("ab") as f:
        f.write(b"\xff not a run\n")
    assert store.clear_log() == 3
    assert [r.message for r in store.history()] == ["kept"] and store.read_log()[1] is None
    assert store.tidy() == []  # nothing left unlisted


def test_begin_run_refuses_a_nearly_full_disk_in_one_message(store, trained, monkeypatch):
    from mnist_core import runs as runs_module
    from mnist_core.runs import RunsFolderError

    monkeypatch.setattr(runs_module, "MIN_FREE_BYTES", 10**18)  # more than any disk has free
    with pytest.raises(RunsFolderError) as err:
        store.begin_run(trained.config)
    assert str(err.value).startswith("Training cannot start: only ") and "cannot be written" not in str(err.value)
    assert not store.running_file.exists()
