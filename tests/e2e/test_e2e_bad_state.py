"""A real server started on a damaged runs folder: the page draws, Draw answers, each bad file is named in one line.

The AppTest twin (tests/test_app_bad_state.py) damages one file at a time; here several at once, as a crash or a
hand edit would leave them, and a real browser looks at the result.
"""

from __future__ import annotations

import json
import shutil

from e2e_helpers import assert_no_exception, draw_polyline, open_tab, prediction_heading, run_server
from playwright.sync_api import expect

from mnist_core.store import DEFAULT_MODEL, sidecar_path

MODEL = "20261129-000000-000000-best.keras"


def _damaged_runs_folder(runs):
    """The shipped model copied in and made active, with a sidecar of the wrong shape; a run log with a good line,
    a torn line of bad bytes and a line whose config is null; a half-written model and a run that was training."""
    models = runs / "models"
    models.mkdir(parents=True)
    model = models / MODEL
    shutil.copy(DEFAULT_MODEL, model)
    sidecar_path(model).write_text("[]")
    (runs / "active.json").write_text(json.dumps({"path": str(model)}))
    good = {"finished_at": "2026-11-29T00:00:00+00:00", "preset": "best", "status": "completed", "message": "ok",
            "config": {"epochs": 1}, "history": [], "test_accuracy": 0.99, "test_loss": 0.03, "seconds": 1.0,
            "model": str(model)}
    (runs / "runs.jsonl").write_bytes(json.dumps(good).encode() + b"\n\xff\xfe\x00\x80 torn\n"
                                      + json.dumps({**good, "config": None}).encode() + b"\n")
    (models / f".{model.stem}.a1b2.tmp.keras").write_bytes(b"half a model")
    (runs / "running.json").write_text(json.dumps({"config": {"preset": "seed", "epochs": 3},
                                                   "started_at": "2026-11-29T01:00:00+00:00"}))


def test_a_damaged_runs_folder_is_named_and_the_studio_still_reads_digits(tmp_path, open_page):
    runs = tmp_path / "runs"
    _damaged_runs_folder(runs)
    with run_server(runs, tmp_path / "streamlit.log") as url:
        page = open_page(url)
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar).to_contain_text(f"Model sidecar runs/models/{MODEL[:-6]}.json is not valid: it holds a list, "
                                        "not an object")
        warning = page.get_by_text("2 lines of the run log runs/runs.jsonl are not a run and skipped (line 2:")
        expect(warning).to_be_visible()
        expect(page.get_by_text("At start-up: Removed 1 temporary file")).to_be_visible()
        expect(page.get_by_text("At start-up: Logged the run that was training when the server stopped")
               ).to_be_visible()

        open_tab(page, "Draw")
        draw_polyline(page, [(70, 60), (210, 60), (120, 230)])  # a 7, read by the active model despite its sidecar
        expect(prediction_heading(page)).to_have_text("Prediction: 7")

        assert_no_exception(page)
        text = page.locator("body").inner_text()
        assert "Traceback" not in text and str(tmp_path) not in text
    assert not list((runs / "models").glob(".*")) and not (runs / "running.json").exists()
