"""Browser tests of the studio's page, Draw tab (canvas and upload) and Gallery tab.

A real `streamlit run app.py` (one per module), the shipped model, system Chromium; the tests share one page (a
phone's aside), each opening its tab, the drawing tests each leaving its canvas empty. Training, which changes the
server's state, lives in test_e2e_training.py.
MNIST arrays come from the `mnist` fixture of tests/conftest.py: the vendored file, which the app reads too.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from e2e_helpers import (CANVAS, CLEAR, HINT, PREDICTION, assert_no_exception, draw_polyline, draw_touch, new_page,
                         one, open_tab, prediction_heading, save_screenshot, seven, shipped_model_line, wait_idle,
                         zero)
from mnist_core.canvas import DEFAULT_STROKE_WIDTH

UPLOAD_PREDICTION = ".st-key-upload-prediction"
EXPLAIN = ".st-key-explain"


# --- the page --------------------------------------------------------------------------------------------

def expected_device_text() -> str:
    """What the sidebar must say about this machine: the same report the server makes."""
    from mnist_core.gpu import configure_gpu

    return configure_gpu().describe()


@pytest.fixture(scope="module")
def page(browser, server):
    """One page for the module's tests (instead of conftest's page a test), each opening the tab it needs (the phone's
    has its own): a new page costs a full run of the app and a whole layout in the browser, about 3 CPU-seconds on
    this 2-core machine."""
    page = new_page(browser, server)
    yield page
    page.context.close()


def test_page_loads_with_tabs_device_and_no_errors(page: Page):
    tabs = page.get_by_role("tab")
    expect(tabs).to_have_count(5)
    for i, name in enumerate(["Train", "Evaluate", "Gallery", "Draw", "My digits"]):
        expect(tabs.nth(i)).to_contain_text(name)

    sidebar = page.get_by_test_id("stSidebar")
    device = expected_device_text()
    expect(sidebar.get_by_text(device, exact=True)).to_be_visible()
    if device.startswith("CPU only"):
        expect(sidebar).not_to_contain_text("GPUs seen")
    else:
        expect(sidebar).to_contain_text("GPUs seen")
    # The shipped model is active on a fresh server.
    expect(sidebar).to_contain_text(shipped_model_line())
    expect(sidebar).to_contain_text("(shipped default)")

    # Every tab renders its content without an exception box.
    open_tab(page, "Train")
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_enabled()
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_disabled()
    expect(page.get_by_text("Total parameters")).to_be_visible()
    assert_no_exception(page)
    save_screenshot(page, "tab-train")

    open_tab(page, "Evaluate")
    expect(page.get_by_text("Confusion matrix")).to_be_visible()
    assert_no_exception(page)

    open_tab(page, "Gallery")
    expect(page.get_by_text(re.compile(r"^Labels: "))).to_be_visible()
    assert_no_exception(page)
    save_screenshot(page, "tab-gallery")

    open_tab(page, "Draw")
    expect(page.locator(CANVAS)).to_be_visible()
    expect(page.locator(PREDICTION)).to_contain_text(HINT)
    expect(page.get_by_test_id("stFileUploader").filter(has_text="Digit image")).to_be_visible()
    wait_idle(page)
    assert_no_exception(page)
    save_screenshot(page, "tab-draw")


# --- drawing ---------------------------------------------------------------------------------------------

SHAPES = {"1": one, "0": zero, "7": seven}
PLACES = {
    "large": (140, 140, 180),  # centre x, centre y, height on the 280 px canvas
    "small": (62, 64, 70),  # ~70 px tall in the top-left quadrant
}
DRAWINGS = [pytest.param(d, p, id=f"{d}-{p}") for p in PLACES for d in SHAPES]


@pytest.fixture
def canvas_page(page):
    """The module's page on the Draw tab, its canvas emptied (Clear) after each test, pass or fail."""
    open_tab(page, "Draw")
    yield page
    if prediction_heading(page).count():
        page.get_by_role("button", name=CLEAR).click()
    expect(page.locator(PREDICTION)).to_contain_text(HINT)
    assert_no_exception(page)


@pytest.mark.parametrize("digit, place", DRAWINGS)
def test_drawing_is_read(canvas_page: Page, digit: str, place: str):
    page = canvas_page
    wait_idle(page)
    # The app's default stroke width (on the 280 px canvas) is what these drawings use.
    stroke = page.get_by_test_id("stSlider").filter(has_text="Stroke width").get_by_role("slider")
    expect(stroke).to_have_value(str(DEFAULT_STROKE_WIDTH))
    expect(page.locator(PREDICTION)).not_to_contain_text("Prediction")
    draw_polyline(page, SHAPES[digit](*PLACES[place]))
    expect(prediction_heading(page)).to_have_text(f"Prediction: {digit}")
    expect(page.locator(PREDICTION)).to_contain_text("sure")
    expect(page.locator(PREDICTION)).to_contain_text("What the model sees")
    expect(page.locator(PREDICTION).get_by_test_id("stVegaLiteChart").locator("svg.marks")).to_be_visible()
    why = page.locator(EXPLAIN)
    expect(why).to_contain_text(f"Saliency for {digit}:")  # explains the answer it gave
    expect(why).to_contain_text("filters of the first convolution")
    expect(why).to_contain_text("Second convolution")
    expect(why.locator('[data-testid="stImage"] img')).to_have_count(4)
    assert_no_exception(page)
    if place == "large":
        save_screenshot(page, f"draw-{digit}", docs_name="draw" if digit == "7" else None)
        with page.expect_download() as download:
            page.get_by_role("button", name="Download the 28×28 drawing").click()
        drawing = Image.open(download.value.path())
        assert (drawing.size, drawing.mode) == ((28, 28), "L")
        assert np.asarray(drawing).max() > 200 and np.asarray(drawing)[0].max() == 0  # ink, black border


def test_on_a_phone_the_answer_is_in_sight_below_the_canvas(open_page, server):
    phone = open_page(server, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    open_tab(phone, "Draw")
    draw_touch(phone, [(70, 60), (210, 60), (120, 230)])  # a 7, with a finger
    heading = prediction_heading(phone)
    expect(heading).to_have_text("Prediction: 7")
    phone.locator(".st-key-canvas").scroll_into_view_if_needed()
    canvas, answer = phone.locator(".st-key-canvas").bounding_box(), heading.bounding_box()
    assert canvas["width"] <= 390 and canvas["y"] >= 0  # the whole canvas on screen, and under it…
    assert canvas["y"] + canvas["height"] < answer["y"] and answer["y"] + answer["height"] <= 844, (canvas, answer)
    save_screenshot(phone, "draw-phone")


def test_clear_removes_drawing_and_prediction(canvas_page: Page):
    page = canvas_page
    wait_idle(page)
    draw_polyline(page, seven(140, 140, 180))
    expect(prediction_heading(page)).to_have_text("Prediction: 7")

    page.get_by_role("button", name=CLEAR).click()
    expect(page.locator(PREDICTION)).not_to_contain_text("Prediction")
    expect(page.locator(PREDICTION)).to_contain_text(HINT)
    # The canvas is empty again: a new drawing is read alone, not on top of the old 7.
    wait_idle(page)
    draw_polyline(page, one(140, 140, 180))
    expect(prediction_heading(page)).to_have_text("Prediction: 1")
    assert_no_exception(page)


# --- upload ----------------------------------------------------------------------------------------------

def test_upload_reads_a_digit_and_reports_a_bad_file(page: Page, mnist, tmp_path):
    (_, _), (x_test, y_test) = mnist
    assert int(y_test[0]) == 7
    # MNIST test image 0 (a 7) as dark ink on white paper, 140x140: the app must invert it.
    paper = Image.fromarray(255 - x_test[0]).resize((140, 140), Image.Resampling.BILINEAR)
    good = tmp_path / "seven-on-paper.png"
    paper.save(good)
    bad = tmp_path / "notes.png"
    bad.write_text("These are my shopping notes, not a picture.\n")

    open_tab(page, "Draw")
    uploader = page.get_by_test_id("stFileUploader").filter(has_text="Digit image").locator('input[type="file"]')

    uploader.set_input_files(good)
    expect(prediction_heading(page, UPLOAD_PREDICTION)).to_have_text("Uploaded image: 7")
    expect(page.get_by_test_id("stImageCaption").filter(has_text="seven-on-paper.png")).to_be_visible()
    save_screenshot(page, "upload-7")

    uploader.set_input_files(bad)
    error = page.get_by_test_id("stAlert").filter(has_text="notes.png")
    expect(error).to_be_visible()
    expect(error).to_contain_text("not a picture")
    expect(page.locator(UPLOAD_PREDICTION)).to_have_count(0)
    assert_no_exception(page)

    # The page still works: a good upload and a drawing are both read.
    uploader.set_input_files(good)
    expect(prediction_heading(page, UPLOAD_PREDICTION)).to_have_text("Uploaded image: 7")
    expect(error).to_have_count(0)
    draw_polyline(page, one(140, 140, 180))
    expect(prediction_heading(page)).to_have_text("Prediction: 1")
    assert_no_exception(page)


def test_upload_light_on_dark(page: Page, mnist, tmp_path):
    (_, _), (x_test, y_test) = mnist
    path = tmp_path / f"mnist-test-1-{int(y_test[1])}.png"
    Image.fromarray(x_test[1]).resize((140, 140), Image.Resampling.NEAREST).save(path)

    open_tab(page, "Draw")
    uploader = page.get_by_test_id("stFileUploader").filter(has_text="Digit image").locator('input[type="file"]')
    uploader.set_input_files(path)
    expect(prediction_heading(page, UPLOAD_PREDICTION)).to_have_text(f"Uploaded image: {int(y_test[1])}")
    assert_no_exception(page)


# --- gallery ---------------------------------------------------------------------------------------------

def gallery_labels(page: Page) -> list[int]:
    caption = page.get_by_text(re.compile(r"^Labels: "))
    expect(caption).to_be_visible()
    return [int(v) for v in caption.inner_text().removeprefix("Labels: ").split("·")[0].split()]


def test_gallery_shows_labelled_digits_and_filters(page: Page, mnist):
    (_, y_train), (_, _) = mnist
    open_tab(page, "Gallery")

    expect(page.get_by_text(re.compile(r"^Page 1 of 3,000 · images 1–20 of 60,000"))).to_be_visible()
    first = " ".join(str(int(v)) for v in y_train[:20])
    expect(page.get_by_text(re.compile(r"^Labels: "))).to_have_text(f"Labels: {first}")
    gallery = page.get_by_role("tabpanel")  # the open tab's panel: the others are hidden
    image = gallery.get_by_test_id("stImage").locator("img").first
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth > 500"), "the digit grid did not render"
    save_screenshot(page, "gallery", docs_name="gallery")

    # Filter: only 3s, and every label on the page says 3.
    gallery.get_by_test_id("stSelectbox").filter(has_text="Digit").click()
    page.get_by_role("option", name="3", exact=True).click()
    n_threes = int(np.count_nonzero(y_train == 3))
    expect(page.get_by_text(re.compile(rf"images 1–20 of {n_threes:,} "))).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Labels: "))).to_have_text("Labels: " + " ".join(["3"] * 20))

    # The next page and the test split hold only 3s as well.
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text(re.compile(rf"^Page 2 of .* images 21–40 of {n_threes:,} "))).to_be_visible()
    assert gallery_labels(page) == [3] * 20
    page.get_by_test_id("stRadio").filter(has_text="Split").get_by_text("Test set").click()
    expect(page.get_by_text(re.compile(r"^Page 1 of .* images 1–20 of 1,010 "))).to_be_visible()
    assert gallery_labels(page) == [3] * 20

    # With the model's predictions shown, the caption lists them too.
    page.get_by_text("Show the active model's prediction").click()
    caption = page.get_by_text(re.compile(r"^Labels: "))
    expect(caption).to_contain_text("model predictions:")
    assert re.search(r"· (\d+) of 20 wrong$", caption.inner_text())
    save_screenshot(page, "gallery-threes-predictions")
    assert_no_exception(page)


# --- Evaluate tab ----------------------------------------------------------------------------------------

def cell(page: Page, true: int, predicted: int):
    """One rectangle of the confusion heatmap (Vega gives every mark an aria-label)."""
    return page.locator(f'[aria-roledescription="rect mark"][aria-label^="predicted digit: {predicted}; '
                        f'true digit: {true};"]')


def cell_count(page: Page, true: int, predicted: int) -> int:
    return int(re.search(r"images: (\d+)", cell(page, true, predicted).get_attribute("aria-label")).group(1))


def test_evaluate_shows_scores_and_a_clicked_cells_images(page: Page, mnist):
    from mnist_core.data import to_float_images
    from mnist_core.evaluate import evaluate
    from mnist_core.predict import Predictor

    open_tab(page, "Evaluate")
    _, (x_test, y_test) = mnist
    studio = evaluate(Predictor.load(), to_float_images(x_test), y_test)  # as the Draw tab reads
    value = page.get_by_test_id("stMetric").filter(has_text="Test accuracy").get_by_test_id("stMetricValue")
    expect(value).to_have_text(f"{studio.accuracy:.2%}")  # 99.64%; the sidebar's record is the network alone's
    expect(cell(page, 0, 0)).to_have_count(1)
    counts = {(t, p): cell_count(page, t, p) for t in range(10) for p in range(10)}
    assert sum(counts.values()) == 10_000

    def shows(true: int, predicted: int) -> None:
        what = f"{true}s read correctly" if true == predicted else f"{true}s read as {predicted}"
        expect(page.get_by_text(f"{counts[true, predicted]:,} {what}")).to_be_visible()
        expect(page.get_by_role("combobox", name="True digit")).to_have_value(str(true))
        expect(page.get_by_role("combobox", name="Read as")).to_have_value(str(predicted))
        expect(page.locator(".st-key-cell-images img")).to_be_visible()

    def click(true: int, predicted: int) -> None:
        expect(cell(page, true, predicted)).to_have_count(1)  # a new choice redraws the chart
        cell(page, true, predicted).click()
        shows(true, predicted)

    worst = max((k for k in counts if k[0] != k[1]), key=counts.get)
    click(2, 2)
    click(*worst)
    for name, value in zip(["True digit", "Read as"], (5, 5)):  # the boxes choose cells too
        page.get_by_role("combobox", name=name).click()
        page.get_by_role("option", name=str(value), exact=True).click()
    shows(5, 5)
    click(*worst)  # the cell clicked before can be clicked again
    wrong = sum(n for (t, p), n in counts.items() if t != p)
    expect(page.get_by_text(f"All {wrong:,} misread test digits")).to_be_visible()
    expect(page.locator(".st-key-mistakes img")).to_be_visible()
    assert_no_exception(page)
    page.mouse.move(0, 0)  # no tooltip or chart toolbar in the picture
    save_screenshot(page, "evaluate", docs_name="evaluate")
