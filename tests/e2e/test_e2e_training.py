"""Browser tests of training in the studio: two sessions and Stop, then a run whose curves and live reading
follow it to its end, when its model becomes active. Real training on MNIST slices, on the CPU.

The two tests share the module's server and run in file order: the first stops its run in its first epoch, which
leaves the job slot idle and the shipped model active, as the second one starts.
"""

from __future__ import annotations

import csv
import os
import re
import signal

import numpy as np
from playwright.sync_api import Page, expect

from e2e_helpers import (CURVES, PREDICTION, RUN_MS, RUNNING, assert_no_exception, draw_polyline, open_tab,
                         prediction_heading, save_screenshot, set_recipe, shipped_model_line, start_run,
                         training_process)
from mnist_core.data import load_mnist
from mnist_core.predict import Predictor

RECORD_CURVES = """() => {
    // From now on, every distinct rendering of the two curve charts while the run is in progress, every 100 ms.
    window.__curveRenders = new Set();
    setInterval(() => {
        const el = document.querySelector('.st-key-training-curves');
        if (el && /batch [1-9][\\d,]*\\//.test(el.innerText)) {
            const svgs = [...el.querySelectorAll('[data-testid="stVegaLiteChart"] svg.marks')];
            if (svgs.length === 2) window.__curveRenders.add(svgs.map(s => s.innerHTML).join('|') + '|' + el.innerText);
        }
    }, 100);
}"""
RECORD_LIVE = """() => {
    // From now on, every distinct text of the live reading (model state + probabilities), every 100 ms.
    window.__liveReadings = [];
    setInterval(() => {
        const el = document.querySelector('.st-key-live-prediction');
        const seen = window.__liveReadings;
        if (el) {
            const text = el.innerText.replace(/answered in \\d+ ms/, '');
            if (seen[seen.length - 1] !== text) seen.push(text);
        }
    }, 100);
}"""


def metric(page: Page, scope: str, label: str) -> str:
    m = page.locator(scope).get_by_test_id("stMetric").filter(has_text=label)
    return m.get_by_test_id("stMetricValue").inner_text()


def test_second_session_predicts_sees_the_running_job_and_stops_it(server, runs_dir, open_page):
    first = open_page(server)
    # A run far longer than this test: 7,500 batches of 8 per epoch, 10 epochs. It is stopped at the end.
    set_recipe(first, epochs=10, train_images=60_000, test_images=1_000, batch_size=8)
    start_run(first)
    # Until its progress is watched, the run only has to exist: paused, it leaves its core to the tests running
    # beside this one. It goes on again before that (or before the server stops, should this test fail).
    trainer = training_process(runs_dir)
    os.kill(trainer, signal.SIGSTOP)
    try:
        second = open_page(server)  # another browser context: another Streamlit session
        expect(second.get_by_test_id("stSidebar")).to_contain_text("Training seed in the Train tab")

        # Drawing still gets an answer while the server has a run (the shipped model: no epoch has finished).
        open_tab(second, "Draw")
        draw_polyline(second, [(140, 50), (140, 230)])
        expect(prediction_heading(second)).to_have_text("Prediction: 1")
        shipped_preset = shipped_model_line().split(" · ")[0]
        expect(second.locator(PREDICTION)).to_contain_text(f"Model: {shipped_preset}")

        # Its Train tab shows the job and cannot start another one.
        open_tab(second, "Train")
        curves = second.locator(CURVES)
        expect(curves).to_contain_text("Training run")
        expect(curves).to_contain_text("10 epoch(s) · batch 8")
        expect(second.get_by_text("A training job is running on this server")).to_be_visible()
        expect(second.get_by_role("button", name="Train", exact=True)).to_be_disabled()
        expect(second.get_by_role("button", name="Stop", exact=True)).to_be_enabled()
    finally:
        os.kill(trainer, signal.SIGCONT)
    # Its view is live.
    progress = curves.get_by_test_id("stProgress")
    expect(progress).to_contain_text(RUNNING, timeout=RUN_MS)  # between two epochs it says "batch 0" a moment
    before = progress.inner_text()
    expect(progress).not_to_have_text(before)  # the second session's view is live too
    save_screenshot(second, "train-running")
    assert_no_exception(second)

    # Either session can stop the run: the other one sees it end. Stopped in its first epoch, it leaves the active
    # model as it was.
    expect(first.locator(CURVES)).to_contain_text("Training run")
    second.get_by_role("button", name="Stop", exact=True).click()
    expect(curves).to_contain_text("Stopped.")
    first_curves = first.locator(CURVES)
    expect(first_curves).to_contain_text("Stopped.")
    expect(first_curves).to_contain_text("Last training run")
    expect(first_curves).to_contain_text("Stopped before one full epoch: the active model is unchanged.")
    assert metric(first, CURVES, "Full epochs") == "0/10"
    expect(first.get_by_role("button", name="Train", exact=True)).to_be_enabled()
    expect(first.get_by_role("button", name="Stop", exact=True)).to_be_disabled()
    sidebar = first.get_by_test_id("stSidebar")
    expect(sidebar).to_contain_text(shipped_model_line())
    expect(sidebar).to_contain_text("(shipped default)")
    expect(sidebar).not_to_contain_text("Training seed")
    assert_no_exception(first)
    save_screenshot(first, "train-stopped")


def test_a_run_redraws_its_curves_the_draw_tab_reads_with_it_and_its_model_becomes_active(server, open_page,
                                                                                            tmp_path):
    page = open_page(server)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar).to_contain_text(shipped_model_line())
    expect(sidebar).to_contain_text("(shipped default)")
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_enabled()  # the slot is idle

    # A second session draws first. A 1 with a long flag, half a 7: a network in training is never sure of it (a
    # clear 7 reads "100.0% sure" from its first published weights on, and the changing probabilities could not be
    # seen in the text).
    reader = open_page(server)
    open_tab(reader, "Draw")
    draw_polyline(reader, [(110, 90), (160, 50), (160, 230)])
    expect(prediction_heading(reader)).to_have_text(re.compile(r"Prediction: \d"))
    answer = prediction_heading(reader).inner_text()

    # 2 epochs of 625 batches of 32: ~20 s alone on 2 cores. The curves redraw every second; the worker publishes
    # its weights at the start, every 200 batches and at each epoch's end, about 9 times, and the Draw tab reads
    # the drawing again as they come (at most every 2 s).
    set_recipe(page, epochs=2, train_images=20_000, test_images=1_000)
    start_run(page)
    page.evaluate(RECORD_CURVES)
    expect(sidebar).to_contain_text("Training seed in the Train tab")

    live = reader.locator(".st-key-live-prediction")
    expect(live).to_contain_text("Network being trained: seed")
    expect(live).to_contain_text("In training:")
    reader.evaluate(RECORD_LIVE)
    # The active model's answer stays beside it, unchanged by training.
    expect(prediction_heading(reader)).to_have_text(answer)
    shipped_preset = shipped_model_line().split(" · ")[0]
    expect(reader.locator(PREDICTION)).to_contain_text(f"Model: {shipped_preset}")
    expect(live).to_contain_text(re.compile(r"after 1\.\d\d epochs"), timeout=RUN_MS)  # in the second epoch
    save_screenshot(reader, "draw-live", docs_name="live")

    # When the run ends the live reading goes (for good: no late redraw brings it back) and the drawing is read
    # by the new active model.
    expect(live).to_have_count(0, timeout=RUN_MS)
    expect(reader.get_by_text("While a network trains (Train tab), it reads your drawing here too")).to_be_visible()
    expect(reader.locator(PREDICTION)).to_contain_text("Model: seed")
    assert_no_exception(reader)
    readings = reader.evaluate("() => window.__liveReadings")
    states = []
    for text in readings:
        m = re.search(r"Network being trained: seed, (.+?) · updates by itself", text)
        if m and (not states or states[-1] != m.group(1)):
            states.append(m.group(1))
    sure = {re.search(r"\d+\.\d% sure", t).group(0) for t in readings if re.search(r"\d+\.\d% sure", t)}
    print(f"{len(readings)} distinct live readings; model states: {states}; confidences: {sorted(sure)}")
    # Without any input from the user, the reading moved on at least twice, always forwards, and the
    # probabilities for the same drawing changed with it.
    assert len(states) >= 3, readings
    batches = [int(re.search(r"\(([\d,]+) batches\)", s).group(1).replace(",", "")) if "batches" in s else 0
               for s in states]
    assert batches == sorted(batches) and len(set(batches)) == len(batches), states
    assert len(sure) >= 2, readings

    # The curves were redrawn while it ran: 4 distinct renderings = 3 changes, all during the run. The run's end
    # reruns the whole page while the live view's fragment may be redrawing: for a moment the page can hold the
    # old view beside the new one. Wait for the end in either, then for one view alone.
    expect(page.locator(CURVES).filter(has_text="Completed.").first).to_be_visible(timeout=RUN_MS)
    renders = page.evaluate("() => window.__curveRenders.size")
    print(f"distinct curve renderings during the run: {renders}")
    assert renders >= 4, renders
    curves = page.locator(CURVES)
    expect(curves).to_have_count(1)
    expect(curves).to_contain_text("Completed.")
    expect(curves).to_contain_text("Last training run")
    expect(curves).to_contain_text("Saved and made active for every session.")
    accuracy = metric(page, CURVES, "Final test accuracy")
    assert re.fullmatch(r"\d{1,3}\.\d\d%", accuracy), accuracy
    assert float(accuracy[:-1]) > 90, f"2 epochs on 20,000 images should reach >90%, got {accuracy}"
    assert metric(page, CURVES, "Full epochs") == "2/2"
    charts = curves.get_by_test_id("stVegaLiteChart")
    expect(charts).to_have_count(2)
    expect(curves).to_contain_text("Loss")
    expect(curves).to_contain_text("Accuracy")

    # The sidebar names the new model, with the accuracy the run reported, and no longer the default.
    expect(sidebar).to_contain_text(f"seed · {accuracy} test accuracy")
    expect(sidebar).not_to_contain_text("shipped default")
    expect(sidebar).to_contain_text(re.compile(r"\d{8}-\d{6}-\d+-seed\.keras"))
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_enabled()
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_disabled()
    assert_no_exception(page)
    save_screenshot(page, "train-finished", docs_name="train")

    # The run is listed with its model, and both can be downloaded. This page's run picker showed the stopped run
    # of the test above, the newest then; nobody picked one, so it follows the new run.
    runs = page.get_by_test_id("stDataFrame").filter(has_text="Finished (UTC)")
    expect(runs).to_be_visible()
    picker = page.get_by_test_id("stSelectbox").filter(has=page.get_by_text("Run", exact=True))
    expect(picker.get_by_role("combobox")).to_have_value(re.compile(r" · completed · "))
    with page.expect_download() as download:
        page.get_by_role("button", name="Metrics (CSV)").click()
    rows = list(csv.reader(open(download.value.path())))
    assert rows[0] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "train_seconds"]
    assert len(rows) == 3 and f"{float(rows[2][4]):.2%}" == accuracy  # epoch 2's validation = the final score
    sidebar.get_by_role("button", name="Download model").click()  # a popover: .keras, TFLite, SavedModel
    with page.expect_download() as download:
        page.get_by_role("button", name="Keras (.keras)").click()
    name = download.value.suggested_filename
    assert re.fullmatch(r"\d{8}-\d{6}-\d+-seed\.keras", name)
    download.value.save_as(tmp_path / name)
    model = Predictor.load(tmp_path / name)
    assert model.model.name == "seed" and model.model.count_params() == 121_930
    with page.expect_download() as download:  # converted on the click: a second or two
        page.get_by_role("button", name="TFLite (float32)").click()
    assert download.value.suggested_filename == name.replace(".keras", ".tflite")
    download.value.save_as(tmp_path / "model.tflite")
    digits = load_mnist()[1][0][:200].astype("float32")[..., None] / 255  # 200 test digits, as the model reads
    lite = tflite_probabilities(tmp_path / "model.tflite", digits)
    assert (lite.argmax(1) == model.predict_proba(digits[..., 0]).argmax(1)).mean() == 1.0


def tflite_probabilities(path, images):
    """Run a TFLite file (the studio's export: input `image`, output `probabilities`) image by image."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))  # LiteRT, as a phone would run it
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    rows = []
    for image in images:
        interpreter.set_tensor(inp["index"], image[None])
        interpreter.invoke()
        rows.append(interpreter.get_tensor(out["index"])[0])
    return np.stack(rows)
