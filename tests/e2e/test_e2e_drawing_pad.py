"""The drawing pad's JavaScript (studio/drawing_pad.js) alone in Chromium, without Streamlit: the module is
imported into a blank page and given a stand-in for what Streamlit hands a v2 component (its data, a parent
element, setStateValue), and the mouse draws on it for real. What it sends is decoded by the server's own
studio.drawing_pad.decode. Last, on the studio itself: a Clear whose message to the server is lost."""

from __future__ import annotations

import re

import numpy as np
import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from e2e_helpers import (APP_LOAD_TIMEOUT_MS, ROOT, VIEWPORT, draw_polyline, open_tab, prediction_heading, seven,
                         wait_idle)
from mnist_core.canvas import CANVAS_PX
from studio.drawing_pad import decode
from studio.wake import JS as WAKE_JS
from studio.wake import PAD_SENT

PAD_JS = (ROOT / "studio" / "drawing_pad.js").read_text(encoding="utf-8")
RESEND_S = int(re.search(r"const RESEND_MS = (\d+);", PAD_JS).group(1)) / 1000  # the pad's wait before sending again
PREDICTION = ".st-key-prediction"
SLOW_MS = 60_000  # a prediction needs a rerun on a busy 2-core box

# Mount the pad as Streamlit would: `render(data)` is Streamlit drawing the element with new data; every
# setStateValue call is kept in window.sent.
MOUNT = """async (source) => {
    const module = await import(URL.createObjectURL(new Blob([source], {type: 'text/javascript'})));
    const host = () => {
        const parent = document.createElement('div');
        parent.innerHTML = '<div class="pad-host"></div>';
        document.body.appendChild(parent);
        return parent;
    };
    window.sent = [];
    window.parent = host();
    window.render = (data) => module.default({data, key: 'pad', parentElement: window.parent,
                                              setStateValue: (name, value) => window.sent.push({name, value})});
    window.remount = (data) => { window.parent.remove(); window.parent = host(); window.render(data); };
    window.render({side: %d, stroke: 18, clears: 0, read: null});
}""" % CANVAS_PX
# studio/wake.py's JavaScript beside the pad: `wake(ms)` is a run of its fragment; its rings join window.sent.
WAKE_MOUNT = """async ([source, event]) => {
    const module = await import(URL.createObjectURL(new Blob([source], {type: 'text/javascript'})));
    let run = 0;
    window.wake = (ms) => { window.cleanups.push(module.default({data: {ms, event, run: ++run}, key: 'wake',
        setTriggerValue: (name, value) => window.sent.push({name, value})})); };
    window.cleanups = [];  // what each call returned, for Streamlit to call when the element goes
    window.render({side: %d, stroke: 18, clears: 0, read: null, event});
}""" % CANVAS_PX
INK = """() => { // the red channel of every pixel of the pad's canvas, and whether it is in the current parent
    const c = document.querySelector('.pad-host canvas');
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    return [window.parent.contains(c), Array.from(data.filter((v, i) => i % 4 == 0))];
}"""


@pytest.fixture(params=[1, 2], ids=["screen-1x", "screen-2x"])
def pad(browser, request) -> Page:
    """The pad on a plain screen, and on one with two device pixels per CSS pixel (drawn sharp, sent at 280 px)."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=request.param)
    page = context.new_page()
    page.goto("about:blank")
    page.evaluate(MOUNT, PAD_JS)
    yield page
    context.close()


def stroke(page: Page, x0: float, y0: float, x1: float, y1: float) -> None:
    box = page.locator("canvas").bounding_box()
    page.mouse.move(box["x"] + x0, box["y"] + y0)
    page.mouse.down()
    page.mouse.move(box["x"] + x1, box["y"] + y1, steps=15)
    page.mouse.up()


def sent(page: Page) -> list[dict]:
    return page.evaluate("window.sent")


def test_a_stroke_is_sent_the_moment_it_ends_and_undo_and_clear_send_what_is_left(pad):
    assert sent(pad) == []  # mounting sends nothing
    side, ratio = pad.evaluate("[document.querySelector('.pad-host canvas').width, devicePixelRatio]")
    assert side == CANVAS_PX * ratio  # one canvas pixel per screen pixel
    stroke(pad, 140, 40, 140, 240)  # an upright bar down the middle
    (first,) = sent(pad)
    assert first["name"] == "drawing" and first["value"]["seq"] == 1 and first["value"]["clears"] == 0
    ink = decode(first["value"]["png"])[..., 0]
    assert ink.shape == (CANVAS_PX, CANVAS_PX)
    assert ink[140, 140] == 255 and ink[140, 60] == 0 and ink[10, 140] == 0  # on the bar, beside it, above it
    cols = np.flatnonzero(ink[140] > 127)
    assert 16 <= len(cols) <= 20, cols  # the default pen: 18 px wide

    stroke(pad, 40, 140, 240, 140)
    two = decode(sent(pad)[-1]["value"]["png"])[..., 0]
    assert two[140, 60] == 255 and sent(pad)[-1]["value"]["seq"] == 2
    pad.get_by_role("button", name="Undo").click()
    np.testing.assert_array_equal(decode(sent(pad)[-1]["value"]["png"])[..., 0], ink)  # back to the bar alone
    pad.get_by_role("button", name="Clear").click()
    assert sent(pad)[-1]["value"]["png"] is None and sent(pad)[-1]["value"]["seq"] == 4
    for name in ("Undo", "Clear"):  # nothing left to take away
        assert pad.get_by_role("button", name=name).is_disabled()


def test_a_picture_no_run_has_read_is_sent_again_and_a_read_one_is_not(pad):
    stroke(pad, 140, 40, 140, 240)
    pad.wait_for_timeout(RESEND_S * 1000 + 1500)
    again = sent(pad)
    assert len(again) == 2 and again[1]["value"]["tries"] == 1  # the server never said it read it
    assert {k: v for k, v in again[1]["value"].items() if k != "tries"} == again[0]["value"]
    pad.evaluate("window.render({side: %d, stroke: 18, clears: 0, read: 1})" % CANVAS_PX)  # a run read it
    pad.wait_for_timeout(RESEND_S * 1000 + 1500)
    assert len(sent(pad)) == 2


def test_the_server_empties_the_pad_by_a_new_count_without_a_send(pad):
    stroke(pad, 140, 40, 140, 240)
    pad.evaluate("window.render({side: %d, stroke: 30, clears: 1, read: 1})" % CANVAS_PX)  # a digit was kept
    assert len(sent(pad)) == 1  # the server knows it is empty: nothing to send
    assert max(pad.evaluate(INK)[1]) == 0  # black all over
    stroke(pad, 40, 140, 240, 140)  # the next stroke: the new pen width, under the new count
    last = sent(pad)[-1]["value"]
    assert last["clears"] == 1 and last["seq"] == 2
    rows = np.flatnonzero(decode(last["png"])[:, 140, 0] > 127)
    assert 28 <= len(rows) <= 32, rows


def test_a_pad_mounted_anew_keeps_its_drawing_and_sends_nothing(pad):
    stroke(pad, 140, 40, 140, 240)
    _, before = pad.evaluate(INK)
    pad.evaluate("window.remount({side: %d, stroke: 18, clears: 0, read: 1})" % CANVAS_PX)  # a new parent element
    assert pad.locator("canvas").count() == 1
    inside, after = pad.evaluate(INK)
    assert inside and after == before and max(after) == 255  # the same canvas, moved, with its stroke
    assert len(sent(pad)) == 1


def test_the_wake_rings_once_after_its_delay_or_right_after_the_pad_sends_a_picture(pad):
    pad.evaluate(WAKE_MOUNT, [WAKE_JS, PAD_SENT])
    names = lambda: [s["name"] for s in sent(pad)]  # noqa: E731
    pad.evaluate("window.wake(300)")
    pad.wait_for_timeout(1_000)
    assert names() == ["rang"]  # once, and only once
    pad.evaluate("window.wake(null)")  # a run with no weights due: only a new picture wakes it
    pad.wait_for_timeout(1_000)
    assert names() == ["rang"]
    stroke(pad, 140, 40, 140, 240)
    pad.wait_for_timeout(200)
    assert names() == ["rang", "drawing", "rang"]  # after the pad's own message: the drawing is read first
    pad.evaluate("window.wake(300); window.wake(null)")  # a later run's alarm replaces the one before
    pad.wait_for_timeout(1_000)
    assert names() == ["rang", "drawing", "rang"]
    pad.evaluate("window.wake(300); window.cleanups.at(-2)()")  # an earlier call's cleanup, run late
    pad.wait_for_timeout(1_000)
    assert names() == ["rang", "drawing", "rang", "rang"]  # the newer alarm still rings


def test_a_clear_whose_message_the_server_never_gets_still_removes_the_answer(browser, server):
    """The pad's Clear empties it at once; its message to the server is dropped here (standing in for one a busy
    server leaves unread), so the old answer stays until the pad sends the empty picture again, within RESEND_S."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    dropping, dropped, resent = [False], [], []

    def route(ws: WebSocketRoute) -> None:
        server_ws = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            raw = message.encode() if isinstance(message, str) else message
            if dropping[0] and not dropped and b'"png":null' in raw:
                dropped.append(raw)  # the Clear's empty picture: lost on the way
                return
            if b'"tries"' in raw:
                resent.append(raw)
            server_ws.send(message)

        ws.on_message(from_page)  # from the server, messages go through untouched

    try:
        page.route_web_socket(re.compile(r"/_stcore/stream"), route)
        page.goto(server)
        expect(page.get_by_role("tab")).to_have_count(5, timeout=APP_LOAD_TIMEOUT_MS)
        open_tab(page, "Draw")
        wait_idle(page)
        draw_polyline(page, seven(140, 140, 180))
        expect(prediction_heading(page)).to_have_text("Prediction: 7", timeout=SLOW_MS)
        wait_idle(page)
        dropping[0] = True
        page.get_by_role("button", name="Clear").click()
        page.wait_for_timeout(2_000)
        assert len(dropped) == 1
        expect(prediction_heading(page)).to_have_text("Prediction: 7")  # the server never heard of the Clear
        expect(page.locator(PREDICTION)).to_contain_text("Draw a digit on the black square",
                                                         timeout=(RESEND_S + 5) * 1000)
        expect(prediction_heading(page)).to_have_count(0)
        assert resent and b'"png":null' in resent[0]
    finally:
        context.close()
