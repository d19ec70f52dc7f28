"""The Streamlit page through AppTest: tabs, sidebar, Train, Gallery, Draw, and a real tiny training run.

Every test gets its own RunStore folder and fresh caches (the `runs` fixture of tests/conftest.py).
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from apptest_support import job_manager, open_tab, run_app
from PIL import Image
from streamlit.testing.v1 import AppTest

from mnist_core import pendigits
from mnist_core.canvas import DEFAULT_STROKE_WIDTH, draw_bitmap, draw_strokes
from mnist_core.digits_db import DigitStore
from mnist_core.evaluate import evaluate
from mnist_core.gpu import configure_gpu
from mnist_core.model import PRESETS
from mnist_core.predict import Predictor
from mnist_core.preprocess import load_upload, preprocess_drawing, preprocess_image
from mnist_core.runs import RunStore
from mnist_core.store import DEFAULT_MODEL, read_info
from mnist_core.spec import PRESET_LAYERS, REFERENCE_SPEED
from mnist_core.training import SCHEDULES, TrainConfig
from studio import draw_canvas
from studio.runs_view import _run_ids
from studio.train_tab import BATCH_SIZES

TRAIN_DEADLINE_S = 120


@pytest.fixture
def active(runs, saved_model) -> RunStore:
    """The conftest's tiny trained model, made active in this test's RunStore."""
    runs.set_active(saved_model)
    return runs



def sidebar_text(at: AppTest) -> str:
    return "\n".join([m.value for m in at.sidebar.markdown] + [c.value for c in at.sidebar.caption]
                     + [e.value for e in at.sidebar.error])


def all_markdown(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def grid_caption(at: AppTest) -> str:
    captions = [c for img in at.image for c in img.captions if c.startswith("Labels:")]
    assert len(captions) == 1, captions
    return captions[0]


def grid_labels(at: AppTest) -> list[int]:
    return [int(v) for v in re.match(r"Labels: ([\d ]+)", grid_caption(at)).group(1).split()]


def table_with(at: AppTest, column: str):
    """The one dataframe on the page with this column, as a pandas DataFrame."""
    (frame,) = [d.value for d in at.dataframe if column in d.value.columns]
    return frame


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


# --- page, sidebar --------------------------------------------------------------------------------------

def test_page_renders_tabs_and_sidebar(active, saved_model):
    at = run_app()
    labels = [t.label for t in at.tabs]
    assert len(labels) == 5
    for word, label in zip(["Train", "Evaluate", "Gallery", "Draw", "My digits"], labels):
        assert word in label

    text = sidebar_text(at)
    device = configure_gpu()
    assert device.describe() in text
    if device.cpu_only:
        assert "CPU only" in text
    info = read_info(active.active_path())
    assert f"**{info.preset}**" in text
    assert f"{info.test_accuracy:.2%} test accuracy" in text
    assert saved_model.name in text
    assert not at.sidebar.error


def test_default_model_when_nothing_is_active(runs):
    at = run_app()
    text = sidebar_text(at)
    if DEFAULT_MODEL.is_file():  # the shipped model: ready on first launch, no error
        assert "(shipped default)" in text
        assert "Trained on MNIST + 7,494 pen digits by 30 writers" in text
        assert not at.sidebar.error
    else:  # not shipped (yet): a clear error naming the file, and the page still works
        assert any(DEFAULT_MODEL.name in e.value for e in at.sidebar.error)
        assert any("Draw a digit" in i.value for i in at.info)


def test_a_model_made_active_while_the_page_is_drawn_reruns_it_at_the_next_check(runs, saved_model, monkeypatch):
    """Another session's run may end while this page is being drawn: the page keeps the server's state as it was
    before it drew anything, so the watcher's next check sees the change and reruns it, instead of taking the new
    state as shown and leaving the page on the old model."""
    from studio import sidebar, watch

    draw_sidebar = sidebar.render

    def sidebar_drawn_then_a_run_ends() -> None:
        draw_sidebar()
        runs.set_active(saved_model)

    monkeypatch.setattr(sidebar, "render", sidebar_drawn_then_a_run_ends)
    at = run_app()
    assert "(shipped default)" in sidebar_text(at)  # drawn before the change
    assert at.session_state["seen_state"] != watch.server_state()  # so the next check reruns the page


def test_corrupt_active_model_falls_back_with_an_error(runs):
    bad = runs.root / "models" / "broken.keras"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"this is not a zip file")
    runs.set_active(bad)
    at = run_app()
    errors = [e.value for e in at.sidebar.error]
    assert any("broken.keras" in e and "Falling back" in e for e in errors), errors
    assert any("Draw a digit" in i.value for i in at.info)  # the Draw tab still renders


# --- Train tab ------------------------------------------------------------------------------------------

def test_train_tab_presets_recipe_and_summary(runs):
    at = run_app()
    preset = at.radio(key="train_preset")
    assert list(preset.options) == [*PRESETS, "custom"] == ["seed", "fast", "best", "custom"]
    assert any("TensorFlow tutorial" in m for m in all_markdown(at))  # the chosen preset's description
    # The tutorial's recipe by default
    assert at.number_input(key="train_epochs").value == 10
    assert at.selectbox(key="train_batch_size").value == 32
    assert at.number_input(key="train_learning_rate").value == pytest.approx(1e-3)
    assert at.number_input(key="train_images").value == 60_000
    assert at.number_input(key="test_images").value == 10_000

    table = at.dataframe[0].value
    assert list(table.columns) == ["Layer", "Output shape", "Params"]
    total = int(table["Params"].sum())
    assert total == 121_930  # the tutorial's network
    assert f"Total parameters: **{total:,}**" in all_markdown(at)

    # Choosing a preset loads its recipe; the recipe button restores it after edits
    at.radio(key="train_preset").set_value("fast").run()
    fast = PRESETS["fast"]
    assert at.number_input(key="train_epochs").value == fast.epochs
    assert at.selectbox(key="train_batch_size").value == fast.batch_size
    assert at.number_input(key="train_learning_rate").value == pytest.approx(fast.learning_rate)
    assert at.selectbox(key="train_schedule").value == fast.schedule
    assert at.dataframe[0].value["Layer"].tolist() != table["Layer"].tolist()

    at.radio(key="train_preset").set_value("seed").run()
    at.number_input(key="train_epochs").set_value(3).run()
    at.number_input(key="train_learning_rate").set_value(0.01).run()
    assert at.number_input(key="train_epochs").value == 3
    at.button(key="recipe_btn").click().run()
    assert at.number_input(key="train_epochs").value == 10
    assert at.selectbox(key="train_batch_size").value == 32
    assert at.number_input(key="train_learning_rate").value == pytest.approx(1e-3)
    assert not at.exception


def test_train_widgets_default_to_the_values_the_session_holds(runs):
    # A browser that mounts a widget late falls back to the widget's own default and sends it to the server: that
    # default must be the session's value, never the first option (a fresh server's first page trained at batch 8).
    at = run_app()
    at.radio(key="train_preset").set_value("fast").run()
    fast = PRESETS["fast"]
    at.number_input(key="train_images").set_value(5_000).run()
    at.run()  # a later run, where no value was just set: the defaults alone carry the values
    assert at.selectbox(key="train_batch_size").proto.default == BATCH_SIZES.index(fast.batch_size) != 0
    assert at.selectbox(key="train_schedule").proto.default == SCHEDULES.index(fast.schedule)
    assert at.radio(key="train_preset").proto.default == list(PRESETS).index("fast")
    assert at.number_input(key="train_epochs").proto.default == fast.epochs
    assert at.number_input(key="train_learning_rate").proto.default == pytest.approx(fast.learning_rate)
    assert at.number_input(key="train_images").proto.default == 5_000
    assert at.number_input(key="train_seed").proto.default == 42
    assert at.checkbox(key="train_augment").proto.default == fast.augment
    assert not at.exception


def test_a_designed_network_is_measured_refused_when_it_cannot_work_and_trained(runs, monkeypatch):
    from studio import resources

    monkeypatch.setattr(resources, "calibrate", lambda: REFERENCE_SPEED)  # the UI under test, not the stopwatch
    at = run_app()
    at.radio(key="train_preset").set_value("custom").run()
    summary = next(d.value for d in at.dataframe if "Row" in d.value.columns)
    assert summary["Row"].tolist() == ["1", "2", "3", "4", "5", "6", "out"]  # the seed's layers, then the output
    assert int(summary["Params"].sum()) == 121_930
    assert any(m.startswith("Total parameters: **121,930** · about **") and m.endswith("at batch 32 on this machine")
               for m in all_markdown(at))
    assert at.number_input(key="train_epochs").value == 10  # the seed recipe

    at.session_state["design_base"] = "conv32k3,dense64,flatten"  # as if typed into the table
    at.session_state["design_version"] += 1
    at.run()
    assert any(e.value.startswith("Row 2 (dense 64): the input is still an image") for e in at.error)
    assert at.button(key="train_btn").disabled

    at.selectbox(key="design_start").set_value("fast").run()
    at.button(key="design_load_btn").click().run()
    summary = next(d.value for d in at.dataframe if "Row" in d.value.columns)
    assert int(summary["Params"].sum()) == resources.preset_summary("fast")[1] and not at.error
    at.number_input(key="train_epochs").set_value(1).run()
    at.number_input(key="train_images").set_value(1_000).run()
    at.number_input(key="test_images").set_value(500).run()
    at.button(key="train_btn").click().run()
    job = job_manager().job
    assert job.config.preset == "custom" and job.config.layers == PRESET_LAYERS["fast"]
    job.join(TRAIN_DEADLINE_S)
    at.run()
    table = table_with(at, "Status")
    assert table["Preset"].tolist() == [f"custom · {PRESET_LAYERS['fast']}"]

    at.radio(key="train_preset").set_value("seed").run()
    at.button(key="edit_copy_btn").click().run()  # the run's network back in the designer
    assert at.radio(key="train_preset").value == "custom"
    assert at.session_state["design_layers"] == PRESET_LAYERS["fast"]


def test_train_tab_options_follow_the_preset_and_reach_the_run(runs, mnist):
    (x_train, y_train), _ = mnist
    store = DigitStore.in_folder(runs.root)
    for image, label in zip(x_train[:5], y_train[:5]):
        store.add(int(label), image, png(image), "drawn")
    at = run_app()
    boxes = ("train_augment", "train_augment_slant", "train_augment_style", "train_average_weights")
    assert [at.checkbox(key=k).value for k in boxes] == [False] * 4  # the tutorial trains on plain images
    at.radio(key="train_preset").set_value("best").run()
    best = PRESETS["best"]
    assert [at.checkbox(key=k).value for k in boxes] == [best.augment, best.augment_slant, best.augment_style,
                                                         best.average_weights]
    assert best.augment and best.augment_slant and best.augment_style
    for preset in ("fast", "seed"):  # back to the tutorial's network, through one more preset
        at.radio(key="train_preset").set_value(preset).run()
        assert [at.checkbox(key=k).value for k in boxes] == [False] * 4, preset
    at.checkbox(key="train_augment_style").check()
    at.checkbox(key="train_average_weights").check()
    at.checkbox(key="train_augment_slant").check()
    assert at.checkbox(key="train_my_digits").value is False and at.checkbox(key="train_pen_digits").value is False
    at.checkbox(key="train_my_digits").check()
    at.checkbox(key="train_pen_digits").check()
    _press_train_on_a_slice(at, epochs=1)
    job = job_manager().job
    config = job.config
    chosen = (config.augment, config.augment_slant, config.augment_style, config.average_weights)
    assert chosen == (False, True, True, True)
    assert config.my_digits == str(store.path) and not config.is_finetune
    assert config.pen_digits and config.pen_skip_writers == ()
    drawn = 125 * pendigits.VARIANTS  # 1,000 of MNIST's 60,000 images take 1/60 of the 7,494 pen digits
    batches = -(-(1000 + drawn) // 32)
    assert any(c.value.startswith(f"{batches} batches per epoch (with {drawn} pen drawings)") for c in at.caption)
    _wait_for_job_end(at)
    assert any("augmentation: slant, flags and crossbars" in c.value for c in at.caption)
    assert job.result.personal.trained_on == 5 and job.result.personal.held_out == 0
    assert any("`seed` · with pen digits · with your digits" in c.value for c in at.caption)
    assert runs.history()[0].config["my_digits"] == str(store.path) and runs.history()[0].config["pen_digits"]
    captions = [c.value for c in at.sidebar.caption]  # 1,000 of 60,000 images: the same share of the pen digits
    assert "Trained on MNIST + 125 pen digits by 29 writers + your digits" in captions


def _wait_for_job_end(at: AppTest) -> AppTest:
    deadline = time.monotonic() + TRAIN_DEADLINE_S
    while time.monotonic() < deadline:
        time.sleep(1)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if not at.button(key="train_btn").disabled:
            return at
    pytest.fail(f"training did not finish within {TRAIN_DEADLINE_S}s")


def _press_train_on_a_slice(at: AppTest, epochs: int) -> AppTest:
    """Train with the page's other settings on 1,000 training and 500 test images."""
    at.number_input(key="train_epochs").set_value(epochs)
    at.number_input(key="train_images").set_value(1_000)
    at.number_input(key="test_images").set_value(500)
    at.button(key="train_btn").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _start_tiny_run(at: AppTest, epochs: int) -> AppTest:
    at.radio(key="train_preset").set_value("fast").run()
    return _press_train_on_a_slice(at, epochs)



def test_a_run_is_seen_by_another_session_stopped_kept_and_made_active(runs):
    at = run_app()
    assert not at.button(key="train_btn").disabled and at.button(key="stop_btn").disabled
    before = sidebar_text(at)
    at = _start_tiny_run(at, epochs=50)
    job = job_manager().job
    # While it runs: one job per server, so Train is off and Stop is on, with a live progress bar
    assert job.running and at.button(key="train_btn").disabled and not at.button(key="stop_btn").disabled
    assert at.get("progress")
    # A second session sees the server's job and cannot start another
    other = run_app()
    assert other.button(key="train_btn").disabled and not other.button(key="stop_btn").disabled
    assert any("A training job is running on this server" in c.value for c in other.caption)
    deadline = time.monotonic() + TRAIN_DEADLINE_S
    while not job.snapshot().epochs_done and job.running and time.monotonic() < deadline:
        time.sleep(0.5)  # one full epoch, so the stopped run is worth keeping
    at.run()
    at.button(key="stop_btn").click().run()
    at = _wait_for_job_end(at)
    warnings = [w.value for w in at.warning if w.value.startswith("**Stopped.**")]
    assert warnings and "Stopped by request" in warnings[0], [w.value for w in at.warning]
    assert job.result.status == "stopped" and 1 <= job.result.full_epochs < 50

    # Its model, trained for whole epochs, is kept and active for every session
    info = read_info(runs.active_path())
    assert info.preset == "fast" and info.path.parent == runs.root / "models"
    text = sidebar_text(at)
    assert text != before
    assert "**fast**" in text and f"{info.test_accuracy:.2%} test accuracy" in text
    assert info.path.name in text
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Final test accuracy"] == f"{info.test_accuracy:.2%}"
    assert metrics["Full epochs"] == f"{job.result.full_epochs}/50"
    assert at.button(key="stop_btn").disabled

    # The run is logged and listed; its model is the active one, and can be swapped out and back
    (record,) = runs.history()
    assert record.model == str(info.path.resolve()) and record.test_accuracy == info.test_accuracy
    table = table_with(at, "Status")
    assert table["Status"].tolist() == ["stopped"] and table["Model"].tolist() == ["active"]
    assert table["Test accuracy"].iloc[0] == pytest.approx(info.test_accuracy * 100)
    assert at.button(key="make_active_btn").disabled  # already active
    at.button(key="use_default_btn").click().run()
    assert runs.active_path() == DEFAULT_MODEL
    assert "(shipped default)" in sidebar_text(at)
    assert table_with(at, "Status")["Model"].tolist() == ["saved"]
    at.button(key="make_active_btn").click().run()
    assert runs.active_path() == info.path.resolve()
    assert info.path.name in sidebar_text(at)


def test_a_failed_run_is_listed_and_cannot_be_made_active(runs):
    at = run_app()
    assert any("Every finished run will be listed here" in c.value for c in at.caption)
    config = TrainConfig(train_subset=1000, test_subset=500, epochs=1)
    runs.record(config, None, "failed", "Training failed: the disk is full. The active model is unchanged.", None)
    at.run()
    table = table_with(at, "Status")
    assert table["Status"].tolist() == ["failed"] and table["Model"].tolist() == ["not kept"]
    assert at.button(key="make_active_btn").disabled
    assert not at.exception


def _buttons(at: AppTest, key: str) -> list:
    return [b for b in at.button if b.key == key]


def _two_saved_runs(runs, trained):
    """Two logged runs with their models saved; the newer one is active."""
    saved = []
    for message in ("older", "newer"):
        saved.append(runs.save_run(trained.result))
        runs.record(trained.config, trained.result, "completed", message, saved[-1])
    return saved


def test_a_saved_model_can_be_deleted_but_never_the_active_one(runs, trained):
    older, newer = _two_saved_runs(runs, trained)  # the newer one active
    at = run_app()
    assert table_with(at, "Status")["Model"].tolist() == ["active", "saved"]
    assert not _buttons(at, "delete_model_btn")  # the newest run is chosen, and its model is active

    at.selectbox(key="runs_choice").select_index(1).run()
    at.button(key="delete_model_btn").click().run()
    assert not older.path.exists() and not older.path.with_suffix(".json").exists()
    assert newer.path.is_file() and runs.active_path() == newer.path.resolve()
    assert table_with(at, "Status")["Model"].tolist() == ["active", "file deleted"]
    assert not _buttons(at, "delete_model_btn") and not at.error


def test_the_run_picker_follows_the_newest_run_until_one_is_picked(runs, trained):
    _two_saved_runs(runs, trained)  # the same minute, preset, status and accuracy: the same words
    at = run_app()
    picker = at.selectbox(key="runs_choice")
    assert len(set(picker.options)) == 2 and picker.index == 0  # told apart, the newest chosen
    runs.record(trained.config, None, "failed", "a third run", None)  # finished while the page is open
    at.run()
    picker = at.selectbox(key="runs_choice")
    assert picker.index == 0 and "failed" in picker.options[0] and len(picker.options) == 3
    at.selectbox(key="runs_choice").select_index(2).run()  # the user picks the oldest
    runs.record(trained.config, None, "stopped", "a fourth run", None)
    at.run()
    picker = at.selectbox(key="runs_choice")
    assert picker.index == 3 and len(picker.options) == 4  # the pick stays, though a newer run came
    assert not at.exception


def test_deleting_a_model_another_session_just_made_active_is_refused(runs, trained):
    older, newer = _two_saved_runs(runs, trained)
    at = run_app()
    at.selectbox(key="runs_choice").select_index(1).run()
    runs.set_active(older.path)  # another session, between this page's drawing and the click
    at.button(key="delete_model_btn").click().run()
    assert older.path.is_file() and runs.active_path() == older.path.resolve()
    assert any("That model was not deleted" in e.value and "active model" in e.value for e in at.error)


def test_pins_pruning_and_clearing_the_log(runs, trained):
    from mnist_core.retention import Retention

    older, newer = _two_saved_runs(runs, trained)
    runs.record(trained.config, None, "failed", "no model", None)
    at = run_app()
    assert any("newest 20 (`MNIST_STUDIO_KEEP_MODELS`)" in c.value for c in at.caption)
    at.selectbox(key="runs_choice").select_index(2).run()  # the older run
    at.button(key="pin_btn").click().run()
    assert Retention(runs, 1).pinned() == {older.path.name}
    assert table_with(at, "Status")["Pinned"].tolist() == [False, False, True]
    assert Retention(runs, keep=0).prune() == []  # the active one and the pinned one stay
    at.button(key="pin_btn").click().run()  # unpin
    assert Retention(runs, keep=0).prune() == [older.path.name]
    at.run()
    assert table_with(at, "Status")["Model"].tolist() == ["not kept", "active", "pruned"]

    at.button(key="clear_log_btn").click().run()  # inside the popover that asks once more
    assert any(s.value == "Cleared 2 runs without a model from the log." for s in at.success)
    assert table_with(at, "Status")["Model"].tolist() == ["active"] and not at.error


def test_two_runs_compared_on_one_chart_with_what_differs(runs, trained):
    runs.record(trained.config, trained.result, "completed", "seed run", None)
    runs.record(TrainConfig.for_preset("fast", epochs=1, train_subset=5000, test_subset=1000), trained.result,
                "stopped", "fast run", None)
    at = run_app()
    ids = list(_run_ids(runs.history()))  # fast, seed: often the same second, and no model, yet two ids
    assert len(set(ids)) == 2
    at.multiselect(key="compare_runs").set_value(ids).run()
    assert not at.exception
    (expander,) = [e for e in at.expander if e.label == "Compare runs"]
    charts = expander.get("vega_lite_chart")
    assert len(charts) == 2  # test accuracy and test loss, one line per run
    table = expander.get("table")[0].value
    assert list(table.loc["Network"]) == ["fast", "seed"]
    assert list(table.loc["Batch size"]) == ["128", "32"] and "Test accuracy" in table.index
    assert "Seed" not in table.index  # the same in both runs


# --- Evaluate tab ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_scores(saved_model, mnist):
    """The conftest model on all 10,000 test digits, computed here without the app."""
    (_, _), (x_test, y_test) = mnist
    return evaluate(Predictor.load(saved_model), x_test.astype(np.float32) / 255.0, y_test)


def test_evaluate_tab_scores_the_active_model(active, tiny_scores):
    ev = tiny_scores
    at = open_tab(run_app(), "Evaluate")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test accuracy"] == f"{ev.accuracy:.2%}"
    wrong = int((ev.predictions != ev.labels).sum())
    assert metrics["Mistakes"] == f"{wrong:,} of 10,000"
    table = table_with(at, "Precision")
    assert table["Images"].tolist() == np.bincount(ev.labels, minlength=10).tolist()
    np.testing.assert_allclose(table["Recall"], ev.recall * 100)
    np.testing.assert_allclose(table["Precision"], ev.precision * 100)
    # the cell view opens on the commonest confusion
    off = ev.confusion.copy()
    np.fill_diagonal(off, -1)
    t, p = np.unravel_index(np.argmax(off), off.shape)
    assert (at.selectbox(key="eval_true").value, at.selectbox(key="eval_pred").value) == (t, p)
    assert any(c.value.startswith(f"{off[t, p]:,} {t}s read as {p}") for c in at.caption)
    at.run()  # and says so in the boxes' own defaults, which a browser that mounts them late sends back
    assert (at.selectbox(key="eval_true").proto.default, at.selectbox(key="eval_pred").proto.default) == (t, p)
    assert not at.exception


def test_evaluate_tab_cells_and_mistakes(active, tiny_scores):
    ev = tiny_scores
    at = open_tab(run_app(), "Evaluate")
    at.selectbox(key="eval_true").set_value(4).run()
    at.selectbox(key="eval_pred").set_value(9).run()
    n = len(ev.cell(4, 9))
    assert any(c.value.startswith(f"{n:,} 4s read as 9") for c in at.caption)
    at.selectbox(key="eval_pred").set_value(4).run()
    n = len(ev.cell(4, 4))
    assert any(c.value.startswith(f"{n:,} 4s read correctly; the 40 the model was surest of") for c in at.caption)
    open_tab(open_tab(at, "Gallery"), "Evaluate")  # drawn only while open: the cell shown is kept
    assert (at.selectbox(key="eval_true").value, at.selectbox(key="eval_pred").value) == (4, 4)

    wrong = len(ev.mistakes())
    pages = -(-wrong // 40)
    assert pages > 1
    assert any(c.value.endswith(f"page 1 of {pages}") for c in at.caption)
    assert at.button(key="mistakes_prev").disabled
    at.button(key="mistakes_next").click().run()
    assert any(c.value.endswith(f"page 2 of {pages}") for c in at.caption)
    assert not at.exception


def test_evaluation_is_computed_once_per_model(active):
    from studio import resources

    at = open_tab(run_app(), "Evaluate")
    first = {m.label: m.value for m in at.metric}["Test accuracy"]
    model = resources.active_model()
    assert resources.evaluation(model) is resources.evaluation(resources.active_model())  # cached
    active.set_active(DEFAULT_MODEL)
    at.run()
    shipped = {m.label: m.value for m in at.metric}["Test accuracy"]
    assert shipped != first
    assert shipped == f"{resources.evaluation(resources.active_model()).accuracy:.2%}"


# --- Gallery tab ----------------------------------------------------------------------------------------

def test_gallery_pages_filters_and_shuffles(active, mnist):
    (_, y_train), (_, y_test) = mnist
    at = open_tab(run_app(), "Gallery")
    assert grid_labels(at) == [int(v) for v in y_train[:20]]  # the tutorial's first 20 training digits
    assert any(c.value.startswith("Page 1 of 3,000") for c in at.caption)

    at.button(key="gallery_next").click().run()
    assert grid_labels(at) == [int(v) for v in y_train[20:40]]
    at.button(key="gallery_prev").click().run()
    assert grid_labels(at) == [int(v) for v in y_train[:20]]

    at.selectbox(key="gallery_digit").set_value("3").run()
    ordered = grid_labels(at)
    assert ordered == [3] * 20
    at.button(key="gallery_shuffle").click().run()
    assert grid_labels(at) == [3] * 20
    at.radio(key="gallery_split").set_value("test").run()
    threes = np.flatnonzero(y_test == 3)
    assert any(c.value.startswith(f"Page 1 of {-(-len(threes) // 20)}") for c in at.caption)

    at.checkbox(key="gallery_predictions").check().run()
    caption = grid_caption(at)
    assert "model predictions:" in caption and re.search(r"\d+ of 20 wrong", caption)
    assert not at.exception

    # The tab is drawn only while open; what was chosen in it is kept meanwhile
    at = open_tab(at, "Draw")
    assert "gallery_split" not in [r.key for r in at.radio]
    assert not [c for img in at.image for c in img.captions if c.startswith("Labels:")]
    at = open_tab(at, "Gallery")
    assert (at.radio(key="gallery_split").value, at.selectbox(key="gallery_digit").value) == ("test", "3")
    assert at.checkbox(key="gallery_predictions").value and grid_caption(at) == caption
    assert at.radio(key="gallery_split").proto.default == 1  # the kept choice is its default (train_tab)


# --- Draw tab -------------------------------------------------------------------------------------------

def test_draw_tab_shows_the_hint_and_no_prediction_when_empty(active):
    at = run_app()
    assert any(i.value.startswith("Draw a digit") for i in at.info)
    assert not [m for m in all_markdown(at) if "Prediction:" in m]
    assert at.slider(key="stroke_width").value == DEFAULT_STROKE_WIDTH


def canvas_sends(at: AppTest, picture: np.ndarray | str) -> AppTest:
    """Run the page as after the canvas sent `picture` (an RGBA image, or the raw data URL)."""
    url = picture if isinstance(picture, str) else "data:image/png;base64," + base64.b64encode(png(picture)).decode()
    at.session_state[draw_canvas.KEY] = {"drawing": {"raw": {"objects": []}, "data": url}}
    return at.run()


def canvas_data(at: AppTest) -> dict:
    """The data the server last gave the canvas."""
    (canvas,) = at.get("bidi_component")
    return json.loads(canvas.proto.json)


ONE = draw_strokes([np.array([[140.0, 40.0], [140.0, 240.0]])], DEFAULT_STROKE_WIDTH, 200)


def test_a_drawing_is_read_and_a_kept_one_is_not_read_again(active, saved_model):
    at = run_app()
    data = canvas_data(at)
    assert (data["drawingMode"], data["strokeColor"], data["backgroundColor"]) == ("freedraw", "#FFFFFF", "#000000")
    assert (data["canvasWidth"], data["canvasHeight"], data["strokeWidth"]) == (280, 280, DEFAULT_STROKE_WIDTH)
    canvas_sends(at, ONE)
    assert not at.exception
    expected = int(Predictor.load(saved_model).predict(preprocess_drawing(ONE))[0])
    assert f"### Prediction: {expected}" in all_markdown(at)
    assert len(_teach_buttons(at, "teach")) == 10
    # A label click keeps the digit and empties the canvas: the picture it sent before is not read again.
    at.button(key=f"teach_{expected}").click().run()
    assert at.session_state["canvas_clears"] == 1 and canvas_data(at)["initialDrawing"]["clears"] == 1
    assert not [m for m in all_markdown(at) if "Prediction:" in m]
    assert any(s.value.startswith(f"Saved as {expected}") for s in at.success)
    canvas_sends(at, np.roll(ONE, 4, axis=1))  # a new drawing on the emptied canvas: read
    assert f"### Prediction: {expected}" in all_markdown(at)


def test_clear_removes_the_answer_at_once_and_the_empty_canvas_shows_the_hint(active):
    at = canvas_sends(run_app(), ONE)
    assert [m for m in all_markdown(at) if "Prediction:" in m]
    at.button(key="clear_canvas").click().run()
    assert not at.exception
    assert not [m for m in all_markdown(at) if "Prediction:" in m] and not _teach_buttons(at, "teach")
    assert any(i.value.startswith("Draw a digit") for i in at.info)
    canvas_sends(at, np.zeros_like(ONE))  # what the emptied canvas sends back: still nothing to read
    assert not [m for m in all_markdown(at) if "Prediction:" in m]
    assert any(i.value.startswith("Draw a digit") for i in at.info)


def test_the_stroke_width_slider_sets_the_pen(active):
    at = run_app()
    at.slider(key="stroke_width").set_value(30).run()
    assert canvas_data(at)["strokeWidth"] == 30


@pytest.mark.parametrize("url", ["data:image/png;base64,bm90IGEgcG5n", "no data url at all"],
                         ids=["not-a-png", "not-a-data-url"])
def test_a_garbled_picture_from_the_canvas_is_reported(active, url):
    at = canvas_sends(run_app(), url)
    assert not at.exception
    assert any(e.value.startswith("The canvas sent an unreadable picture") for e in at.error)
    assert any(i.value.startswith("Draw a digit") for i in at.info)


def test_upload_of_a_paper_digit_is_predicted(active, saved_model, mnist):
    (_, _), (x_test, _) = mnist
    paper = 255 - np.kron(x_test[0], np.ones((4, 4), dtype=np.uint8))  # dark ink on white, 112x112
    data = png(paper)
    at = run_app()
    at.file_uploader(key="upload").set_value(("seven.png", data, "image/png")).run()
    assert not at.exception
    expected = int(Predictor.load(saved_model).predict(preprocess_image(load_upload(data)))[0])
    headings = [m for m in all_markdown(at) if m.startswith("### ")]
    assert headings == [f"### Uploaded image: {expected}"]  # and no drawing prediction
    assert any(re.fullmatch(r"\d+\.\d% sure", m) for m in all_markdown(at))
    assert any("Draw a digit" in i.value for i in at.info)  # the empty canvas still shows its hint
    # why: saliency for the answer, the first layer's 32 filters, 32 + 64 activation maps
    (why_box,) = [e for e in at.expander if e.label == "Why this answer"]
    why = [c for img in why_box.image for c in img.captions]
    assert any(c.startswith(f"Saliency for {expected}:") for c in why), why
    assert any(c.startswith("The 32 filters of the first convolution (3×3)") for c in why)
    assert any("32 activation maps of the first convolution (26×26)" in c for c in why)
    assert any(c.startswith("Second convolution: 64 maps (11×11)") for c in why)


def _teach_buttons(at: AppTest, row: str) -> list:
    return [b for b in at.button if (b.key or "").startswith(f"{row}_")]


def test_an_empty_canvas_offers_no_label_buttons(active):
    at = run_app()
    assert not _teach_buttons(at, "teach") and not _teach_buttons(at, "teach-upload")


def test_an_upload_is_labelled_and_kept_with_the_models_reading(active, saved_model, mnist):
    (_, _), (x_test, _) = mnist
    data = png(255 - np.kron(x_test[0], np.ones((4, 4), dtype=np.uint8)))  # a 7, dark ink on white paper
    at = run_app()
    at.file_uploader(key="upload").set_value(("seven.png", data, "image/png")).run()
    x = preprocess_image(load_upload(data))
    proba = Predictor.load(saved_model).predict_proba(x)[0]
    buttons = _teach_buttons(at, "teach-upload")
    assert [b.label for b in buttons] == [str(d) for d in range(10)]
    assert [b.proto.type for b in buttons].count("primary") == 1
    assert buttons[int(proba.argmax())].proto.type == "primary"  # the model's answer is marked
    at.button(key="teach-upload_3").click().run()  # the user says it is a 3
    assert not at.exception
    assert any(s.value == "Saved as 3 · 1 of your digits" for s in at.success)
    (kept,) = DigitStore.in_folder(active.root).page()
    assert (kept.label, kept.source) == (3, "uploaded")
    assert kept.reading.digit == int(proba.argmax()) and kept.reading.confidence == pytest.approx(proba.max())
    assert Path(kept.reading.model) == Path(saved_model).resolve()
    assert np.array_equal(kept.image, np.round(x * 255).astype(np.uint8))  # what the model read
    original = Image.open(io.BytesIO(DigitStore.in_folder(active.root).original_png(kept.id)))
    assert original.size == (112, 112)


def _upload_bytes(kind: str) -> bytes:
    if kind == "not-an-image":
        return b"definitely not a picture"
    if kind == "too-large":  # over the 5 MB limit of load_upload (and of server.maxUploadSize)
        return b"\x89PNG\r\n\x1a\n" + bytes(6 * 1024 * 1024)
    return png(np.full((64, 64), 255, dtype=np.uint8))  # blank white paper


@pytest.mark.parametrize("kind, name, message", [
    ("not-an-image", "notes.png", "not a picture"),
    ("too-large", "huge.png", "too large"),
    ("blank", "blank.png", "no digit found"),
], ids=["not-an-image", "too-large", "blank"])
def test_bad_uploads_show_a_clear_message(active, kind, name, message):
    at = run_app()
    at.file_uploader(key="upload").set_value((name, _upload_bytes(kind), "image/png")).run()
    assert not at.exception
    shown = [e.value for e in at.error] + [w.value for w in at.warning]
    assert any(name in s and message in s for s in shown), shown
    assert not [m for m in all_markdown(at) if m.startswith("### ")]


def test_a_drawing_the_model_is_unsure_of_says_it_was_looked_at_again(active, saved_model, mnist):
    (_, _), (x_test, _) = mnist
    seven = draw_bitmap(x_test[0], 200)  # the first test digit, a clear 7, 200 px tall on the canvas
    predictor = Predictor.load(saved_model)
    at = run_app()
    looked_again = []
    for drawing in (seven, ONE):
        canvas_sends(at, drawing)
        assert not at.exception
        looks = predictor.look(preprocess_drawing(drawing))
        looked_again.append(bool(looks.looked_again[0]))
        said = [c.value for c in at.caption if "unsure at first" in c.value]
        first = looks.first[0]
        expected = (f"unsure at first ({first.max():.0%} for {first.argmax()}), so it looked again with the drawing "
                    "moved a pixel each way: the bars are the mean of 5 readings")
        assert [c.split(" · ")[-1] for c in said] == ([expected] if looked_again[-1] else []), said
    assert looked_again == [False, True]  # the tiny model is sure of the 7, not of the drawn 1
