"""Bad files in the runs folder never take the page down (AppTest): Draw still answers, one line names the file,
no traceback, no server path.

Each case damages one file the way a crash, a full disk or a hand edit would; the browser test
(tests/e2e/test_e2e_bad_state.py) starts a real server on all of them at once.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from apptest_support import open_tab, run_app
from PIL import Image

from mnist_core.runs import RunStore
from mnist_core.store import sidecar_path

ACTIVE = "20261129-000000-000000-seed.keras"  # the active model's file in the runs folder


def _active_model(runs: RunStore, saved_model: Path) -> Path:
    """A copy of the tiny trained model (and its sidecar) in the store, made active and logged as its run."""
    path = runs.models_dir / ACTIVE
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(saved_model, path)
    shutil.copy(sidecar_path(saved_model), sidecar_path(path))
    runs.set_active(path)
    line = {"finished_at": "2026-11-29T00:00:00+00:00", "preset": "seed", "status": "completed", "message": "ok",
            "config": {"epochs": 1}, "history": [], "test_accuracy": 0.9, "test_loss": 0.3, "seconds": 1.0,
            "model": str(path.resolve())}
    runs.log_file.write_text(json.dumps(line) + "\n")
    return path


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def _line_with(runs: RunStore, **fields) -> bytes:
    good = json.loads(runs.log_file.read_text().splitlines()[0])
    return json.dumps({**good, **fields}).encode() + b"\n"


def damage(case: str, runs: RunStore, model: Path) -> str:
    """Damage one file; returns the name the page must show for it."""
    if case == "log: random bytes appended":
        _append(runs.log_file, np.random.default_rng(0).bytes(300))
    elif case == 'log: "config": null':
        _append(runs.log_file, _line_with(runs, config=None))
    elif case == 'log: "test_accuracy": "high"':
        _append(runs.log_file, _line_with(runs, test_accuracy="high"))
    elif case == "log: a folder":
        runs.log_file.unlink()
        runs.log_file.mkdir()
    elif case == "sidecar: []":
        sidecar_path(model).write_text("[]")
        return sidecar_path(model).name
    elif case == 'sidecar: "test_accuracy": "high"':
        sidecar_path(model).write_text(json.dumps({**json.loads(sidecar_path(model).read_text()),
                                                   "test_accuracy": "high"}))
        return sidecar_path(model).name
    elif case == "sidecar: bad bytes":
        sidecar_path(model).write_bytes(b"\xff\xfe{\x80")
        return sidecar_path(model).name
    elif case == "active.json: not JSON":
        runs.active_file.write_text('{"path": ')
        return runs.active_file.name
    elif case == "active.json: a list":
        runs.active_file.write_text("[]")
        return runs.active_file.name
    elif case == "model: truncated":
        model.write_bytes(model.read_bytes()[:5000])
        return model.name
    elif case == "digits database: not a database":
        (runs.root / "digits.sqlite").write_bytes(b"SQLite format 3\x00" + bytes(200))
        return "digits.sqlite"
    else:
        raise AssertionError(case)
    return runs.log_file.name


CASES = ["log: random bytes appended", 'log: "config": null', 'log: "test_accuracy": "high"', "log: a folder",
         "sidecar: []", 'sidecar: "test_accuracy": "high"', "sidecar: bad bytes", "active.json: not JSON",
         "active.json: a list", "model: truncated", "digits database: not a database"]


def _upload_a_digit(at, mnist) -> None:
    (_, _), (x_test, _) = mnist
    buf = io.BytesIO()
    Image.fromarray(255 - np.kron(x_test[0], np.ones((4, 4), dtype=np.uint8))).save(buf, "PNG")
    at.file_uploader(key="upload").set_value(("seven.png", buf.getvalue(), "image/png")).run()


def _shown(at) -> list[str]:
    return [e.value for e in [*at.error, *at.warning, *at.caption, *at.info]]


@pytest.mark.parametrize("case", CASES)
def test_a_damaged_file_is_named_in_one_line_and_draw_still_answers(runs, saved_model, mnist, case):
    name = damage(case, runs, _active_model(runs, saved_model))
    at = run_app()  # no exception on the first run either
    _upload_a_digit(at, mnist)
    open_tab(at, "My digits")  # drawn only while open; Draw is drawn on every run
    assert not at.exception, [e.value for e in at.exception]
    assert [m.value for m in at.markdown if m.value.startswith("### Uploaded image: ")], "Draw did not answer"
    naming = [s for s in _shown(at) if name.replace("_", "\\_") in s]
    assert naming, _shown(at)
    assert all("\n" not in s and "Traceback" not in s for s in naming), naming
    everything = "\n".join(_shown(at) + [m.value for m in at.markdown])
    assert str(runs.root.parent) not in everything  # the server's own folders are not shown to pages
    assert "Train" in [b.label for b in at.button]  # the Train tab is drawn too


def test_a_failing_tab_says_so_in_one_line_and_the_others_are_drawn(runs, monkeypatch):
    from studio import train_tab

    def broken(visible: bool = True) -> None:
        raise RuntimeError(f"something in {runs.root / 'x'} broke")

    monkeypatch.setattr(train_tab, "render", broken)  # the guard is under test, not the Train tab
    at = run_app()
    (error,) = [e.value for e in at.error if "could not be drawn" in e.value]
    assert error.startswith("The Train tab could not be drawn: RuntimeError: something in runs/x broke")
    assert any("Draw a digit" in i.value for i in at.info)  # Draw, after Train on the page, is there
    assert at.sidebar.subheader  # and the sidebar


def test_a_file_name_is_shown_as_typed_never_as_markdown(runs):
    at = run_app()
    at.file_uploader(key="upload").set_value(("**BOLD** [link](http://evil.example).png", b"not a picture",
                                              "image/png")).run()
    (error,) = [e.value for e in at.error]
    assert error.startswith("\\*\\*BOLD\\*\\* \\[link\\](http:\u200b//evil.example).png: ")  # escaped: shown as typed


def test_startup_puts_a_killed_servers_debris_right_and_says_so(runs, saved_model, mnist):
    model = _active_model(runs, saved_model)
    (runs.models_dir / f".{model.stem}.x1y2.tmp.keras").write_bytes(b"half a model")
    orphan = runs.models_dir / "20261129-000001-000000-seed.keras"
    shutil.copy(model, orphan)
    shutil.copy(sidecar_path(model), sidecar_path(orphan))
    runs.running_file.write_text(json.dumps({"config": {"preset": "fast", "epochs": 2},
                                             "started_at": "2026-11-29T01:00:00+00:00"}))
    at = run_app()
    notes = [c.value for c in at.caption if c.value.startswith("At start-up: ")]
    assert len(notes) == 3, notes
    assert list(runs.models_dir.glob(".*")) == [] and not runs.running_file.exists()
    table = next(d.value for d in at.dataframe if "Status" in d.value.columns)
    assert list(table["Status"]) == ["interrupted", "recovered", "completed"]
    assert list(table["Model"]) == ["not kept", "saved", "active"]
