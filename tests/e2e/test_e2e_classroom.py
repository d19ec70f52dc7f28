"""Browser tests of one server shared by a class while a run trains: Clear and upload removal leave no old
answer, hidden live views stay quiet, a training process killed from outside ends as a failed run while
the page keeps answering, and with a host password only the host's page can train or change the class's digits.

The first test starts a run long enough to outlast it and kills it at the end, leaving the module's server idle; the
last two share a server with a host password, and a pupil's page and the host's on it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from streamlit.proto.BackMsg_pb2 import BackMsg

from e2e_helpers import (APP_LOAD_TIMEOUT_MS, CANVAS, CLEAR, CURVES, HINT, PREDICTION, VIEWPORT, WAIT_MS,
                         assert_no_exception, canvas_origin, draw_polyline, one, open_tab, prediction_heading,
                         new_page, run_server, set_recipe, seven, start_run, training_process, wait_idle)
from mnist_core.digits_db import DigitStore, encode_png
from studio.host import LOCKED, PASSWORD_ENV

EXPLAIN, UPLOAD_PREDICTION = ".st-key-explain", ".st-key-upload-prediction"
QUIET_S = 1.0  # how long a cleared page is watched for an old answer coming back
PASSWORD = "chalk-and-talk"


def start_long_run(page: Page) -> None:
    """A run that outlasts the test: 10 epochs of 60,000 images in batches of 32."""
    set_recipe(page, epochs=10, train_images=60_000, test_images=1_000)
    start_run(page)


def assert_stays_clear(page: Page) -> None:
    """One empty canvas, the hint, and no answer or explanation, now and QUIET_S later."""
    for _ in range(2):
        expect(page.locator(CANVAS)).to_have_count(1)
        expect(page.locator(PREDICTION)).to_contain_text(HINT)
        expect(prediction_heading(page)).to_have_count(0)
        expect(page.locator(EXPLAIN)).to_have_count(0)
        time.sleep(QUIET_S)


class Sent(NamedTuple):
    at: float  # time.monotonic()
    fragment: str  # the fragment to rerun ("" for the whole page)
    timer: bool  # asked by a fragment's run_every timer


def _sent_frames(browser, url: str) -> tuple[Page, list[Sent]]:
    """A new session's page, and the rerun requests it sends to the server."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    sent: list[Sent] = []

    def record(payload: str | bytes) -> None:
        message = BackMsg.FromString(payload) if isinstance(payload, bytes) else None
        if message is not None and message.WhichOneof("type") == "rerun_script":
            rerun = message.rerun_script
            sent.append(Sent(time.monotonic(), rerun.fragment_id, rerun.is_auto_rerun))

    page.on("websocket", lambda ws: ws.on("framesent", record))
    page.goto(url)
    expect(page.get_by_role("tab")).to_have_count(5, timeout=APP_LOAD_TIMEOUT_MS)
    return page, sent


def _frames_within(page: Page, sent: list[Sent], seconds: float) -> list[Sent]:
    wait_idle(page)
    start = time.monotonic()
    page.wait_for_timeout(seconds * 1000)  # not time.sleep: Playwright delivers events only while it waits
    return [s for s in sent if start <= s.at < start + seconds]


def test_a_pupils_page_while_a_run_trains_then_the_training_process_is_killed(server, runs_dir, open_page, browser,
                                                                               mnist, tmp_path):
    """Live views ask for redraws only while shown, the reading in training needs a drawing, and Clear and an
    upload's removal leave no old answer. Then the training process is killed from outside, as the out-of-memory
    killer would: the run ends as a failed one, and the host's page keeps answering."""
    host = open_page(server)
    start_long_run(host)
    # What is checked here needs the run to exist, not to advance: paused, it leaves the cores to the other tests
    # running beside this one. It is killed at the end, pass or fail.
    trainer = training_process(runs_dir)
    os.kill(trainer, signal.SIGSTOP)
    try:
        _pupils_page_checks(browser, server, host, mnist, tmp_path)
    finally:
        os.kill(trainer, signal.SIGKILL)

    open_tab(host, "Train")
    curves = host.locator(CURVES)
    expect(curves).to_contain_text("Failed.")
    expect(curves).to_contain_text("SIGKILL")
    expect(host.get_by_role("button", name="Train", exact=True)).to_be_enabled()
    open_tab(host, "Draw")
    draw_polyline(host, seven(140, 140, 180))
    expect(prediction_heading(host)).to_have_text("Prediction: 7")
    assert_no_exception(host)


def _pupils_page_checks(browser, url: str, host: Page, mnist, tmp_path: Path) -> None:
    open_tab(host, "Gallery")  # the host's page must not redraw either
    (_, _), (x_test, y_test) = mnist
    paper = Image.fromarray(255 - x_test[0]).resize((140, 140), Image.Resampling.BILINEAR)
    assert int(y_test[0]) == 7

    page, sent = _sent_frames(browser, url)  # a pupil's page, beside the host's
    live = page.locator(".st-key-live-prediction")

    def timers() -> set[str]:
        """The fragments whose timers asked for a redraw in the next 4 s."""
        return {s.fragment for s in _frames_within(page, sent, 4) if s.timer}

    def switch_to(name: str) -> None:
        """Open a tab, and wait until the page has asked for the tab's run: the tab is marked at the click, the run
        asked for a moment later, and until then a timer of the tab left can still tick (on a busy machine, within
        the next timers() window)."""
        since = time.monotonic()
        open_tab(page, name)
        while not any(s.at >= since and not s.timer and not s.fragment for s in sent):
            assert time.monotonic() < since + WAIT_MS / 1000, f"opening {name} asked for no run"
            page.wait_for_timeout(50)  # not time.sleep: Playwright delivers events only while it waits

    try:
        switch_to("Gallery")
        hidden = timers()
        switch_to("Train")
        expect(page.locator(CURVES)).to_contain_text("Training run")
        shown = timers()
        switch_to("Evaluate")
        hidden_again = timers()
        switch_to("Draw")
        expect(page.get_by_text("A network is training: draw a digit")).to_be_visible()
        expect(live).to_have_count(0)  # nothing drawn: no reading in training, and no timer
        empty_canvas = timers()
        for digit, shape in (("7", seven), ("1", one)):
            draw_polyline(page, shape(140, 140, 180))
            expect(prediction_heading(page)).to_have_text(f"Prediction: {digit}")
            expect(page.locator(EXPLAIN)).to_contain_text(f"Saliency for {digit}")
            expect(live).to_contain_text("In training")
            if digit == "7":
                drawn = timers()
            page.get_by_role("button", name=CLEAR).click()  # the reading goes with the drawing
            assert_stays_clear(page)
            expect(live).to_have_count(0)
            expect(page.get_by_text("A network is training: draw a digit")).to_be_visible()
            if digit == "7":
                cleared = timers()
            canvas_origin(page)  # one canvas of the right size, ready for the next drawing

        uploader = page.get_by_test_id("stFileUploader").filter(has_text="Digit image")
        picture = tmp_path / "seven.png"
        paper.save(picture)
        uploader.locator('input[type="file"]').set_input_files(picture)
        expect(prediction_heading(page, UPLOAD_PREDICTION)).to_have_text("Uploaded image: 7")
        uploader.get_by_role("button", name=f"Remove {picture.name}").click()
        for _ in range(2):
            expect(page.locator(UPLOAD_PREDICTION)).to_have_count(0)
            expect(page.get_by_test_id("stImageCaption").filter(has_text=picture.name)).to_have_count(0)
            time.sleep(QUIET_S)
        assert_no_exception(page)
    finally:
        page.context.close()
    print(f"timed fragments: Gallery {hidden}, Train {shown}, Evaluate {hidden_again}, Draw with nothing drawn "
          f"{empty_canvas}, Draw with a drawing {drawn}, Draw cleared {cleared}")
    # Hidden, or with nothing drawn, only the watcher's timer runs (every 5 s: a run that starts or ends elsewhere);
    # open, the Train tab's live view (every second) and the Draw tab's reading in training (every 2 s) add theirs.
    watcher = hidden | hidden_again | empty_canvas | cleared
    assert len(watcher) <= 1, (hidden, hidden_again, empty_canvas, cleared)
    assert shown - watcher and drawn - watcher and shown - watcher != drawn - watcher, (watcher, shown, drawn)


def unlock(page: Page, password: str, answer: str) -> None:
    """Type the password in the sidebar's box, press Enter, and wait for the sidebar's answer."""
    box = page.get_by_test_id("stSidebar").get_by_label("Host password")
    box.fill(password)
    box.press("Enter")
    expect(page.get_by_test_id("stSidebar")).to_contain_text(answer)


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory):
    """A server with a host password, for the last two tests; its runs folder holds the class's digits."""
    runs = tmp_path_factory.mktemp("locked") / "runs"
    runs.mkdir()
    with run_server(runs, runs.parent / "streamlit.log", env={PASSWORD_ENV: PASSWORD}) as url:
        yield url, runs


@pytest.fixture(scope="module")
def class_pages(browser, locked_server):
    """A pupil's page and the host's, unlocked with the password, on the locked server, for the last two tests."""
    url, _ = locked_server
    pupil, teacher = new_page(browser, url), new_page(browser, url)
    try:
        unlock(teacher, PASSWORD, "Unlocked on this page")
        yield pupil, teacher
    finally:
        for page in (pupil, teacher):
            page.context.close()


def test_with_a_host_password_only_an_unlocked_page_can_train(class_pages):
    pupil, teacher = class_pages
    open_tab(pupil, "Train")
    expect(pupil.get_by_role("button", name="Train", exact=True)).to_be_disabled()
    open_tab(pupil, "Draw")  # drawing stays open to everyone
    draw_polyline(pupil, seven(140, 140, 180))
    expect(prediction_heading(pupil)).to_have_text("Prediction: 7")

    unlock(pupil, "guess", "Wrong password")
    open_tab(pupil, "Train")
    expect(pupil.get_by_role("button", name="Train", exact=True)).to_be_disabled()

    open_tab(teacher, "Train")
    expect(teacher.get_by_role("button", name="Train", exact=True)).to_be_enabled()
    expect(pupil.get_by_role("button", name="Train", exact=True)).to_be_disabled()
    assert_no_exception(pupil)
    assert_no_exception(teacher)


def _digit_controls(page: Page, ident: int) -> dict:
    """The My digits tab's controls that change or export the class's digits, for the digit `ident` (a control with a
    tooltip is in the page twice: its first copy)."""
    controls = {"relabel": f".st-key-mine_relabel_{ident} input", "delete": f".st-key-mine_delete_pop_{ident} button",
                "export": ".st-key-mine_export button", "import a zip": ".st-key-mine_import input[type=file]",
                "import": ".st-key-mine_import_btn button"}
    return {name: page.locator(selector).first for name, selector in controls.items()}


def test_a_locked_page_browses_the_class_digits_and_cannot_change_them(class_pages, locked_server):
    """A pupil's page shows the class's digits but cannot import, export, relabel or delete them; the host's unlocked
    page can (AppTest, tests/test_app_host.py, sends the refused changes anyway)."""
    (pupil, teacher), (_, runs) = class_pages, locked_server
    store = DigitStore.in_folder(runs)  # the server reads the digits afresh on every page run, as a tab switch
    image = np.zeros((28, 28), np.uint8)
    ident = [store.add(label, image, encode_png(image), "drawn") for label in (3, 5)][-1]
    open_tab(pupil, "My digits")
    expect(pupil.get_by_text(f"#{ident} · label 5")).to_be_visible()  # browsing is open
    for name, control in _digit_controls(pupil, ident).items():
        expect(control, name).to_be_disabled()
    pupil.locator(f".st-key-mine_delete_pop_{ident}").hover()
    expect(pupil.get_by_text(LOCKED).first).to_be_visible()  # the reason, on the disabled control

    open_tab(teacher, "My digits")
    for name, control in _digit_controls(teacher, ident).items():
        if name != "import":  # enabled once a zip is chosen
            expect(control, name).to_be_enabled()
    teacher.locator(f".st-key-mine_relabel_{ident}").click()
    teacher.get_by_role("option", name="Label: 7").click()
    expect(teacher.get_by_text(f"#{ident} is now labelled 7.")).to_be_visible()
    assert store.get(ident).label == 7
    assert_no_exception(pupil)
    assert_no_exception(teacher)
