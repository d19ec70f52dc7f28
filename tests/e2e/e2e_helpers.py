"""Helpers for the browser tests: the server process, the browser's settings, and page actions.

Import them in test modules with `from e2e_helpers import ...` (the fixtures are in conftest.py).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator, Sequence

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from mnist_core.canvas import CANVAS_PX  # the drawing pad's side, pixels

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"  # git-ignored screenshots of each run
DOCS = ROOT / "docs"  # README screenshots: written only with UPDATE_DOCS_SCREENSHOTS=1
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage", "--font-render-hinting=none"]
VIEWPORT = {"width": 1400, "height": 1000}
APP_LOAD_TIMEOUT_MS = 90_000  # first load of a fresh server: TensorFlow import + model load on a busy 2-core box

EXCEPTION = '[data-testid="stException"]'
CURVES = ".st-key-training-curves"  # the Train tab's live view of a run
CANVAS = ".st-key-canvas canvas.upper-canvas"  # the Draw tab's canvas: Fabric's pointer target, over its drawing
PREDICTION = ".st-key-prediction"  # the Draw tab's answer, or the hint while nothing is drawn
HINT = "Draw a digit on the black square"
CLEAR = re.compile(r"\bClear$")  # the Draw tab's Clear button's name (after its icon's)
WAIT_MS = 120_000  # the one timeout for anything a page should show (an answer, a caption, a chart): generous, as
# the suite shares 2 cores with its servers, browsers and training runs; a test waits this long only when it fails
RUN_MS = 180_000  # a whole short run on a busy 2-core box, with margin
RUNNING = re.compile(r"batch [1-9][\d,]*/")  # the progress bar once batches are being trained


# --- the server --------------------------------------------------------------------------------------------

def chromium_path() -> str | None:
    """$CHROMIUM_PATH, else the distribution's Chromium, else None (Playwright's own build)."""
    explicit = os.environ.get("CHROMIUM_PATH")
    if explicit:
        return explicit
    for candidate in ("/usr/bin/chromium", shutil.which("chromium") or ""):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, server: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"streamlit did not become healthy in {timeout}s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def run_server(runs_dir: Path, log: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """`streamlit run app.py` on a free port with MNIST_STUDIO_RUNS=runs_dir (and `env`); stopped afterwards,
    pass or fail."""
    port = _free_port()
    env = {**os.environ, "MNIST_STUDIO_RUNS": str(runs_dir), "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],  # edits to the tree while tests run must not rerun the app
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        print(f"streamlit log: {log}")


def new_page(browser, url: str, **context_options) -> Page:
    """The app loaded in a new browser context (its own Streamlit session), its tabs drawn."""
    context = browser.new_context(**{"viewport": VIEWPORT, **context_options})
    p = context.new_page()
    p.set_default_timeout(WAIT_MS)
    p.goto(url)
    expect(p.get_by_role("tab")).to_have_count(5, timeout=APP_LOAD_TIMEOUT_MS)
    return p


def _processes(*files: str) -> Iterator[tuple[int, list[list[bytes]]]]:
    """Each running process's pid and the NUL-separated fields of the given /proc files of it (e.g. "cmdline");
    processes that end while being read are left out."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = [(entry / name).read_bytes().split(b"\0") for name in files]
        except OSError:
            continue
        yield int(entry.name), fields


def training_process(runs: Path) -> int:
    """The pid of the spawned training process of the server that writes to `runs`."""
    for pid, (argv, environ) in _processes("cmdline", "environ"):
        if any(b"spawn_main" in arg for arg in argv) and f"MNIST_STUDIO_RUNS={runs}".encode() in environ:
            return pid
    raise AssertionError(f"no training process found for {runs}")


def shipped_model_line() -> str:
    """The sidebar's line for the shipped default model, e.g. "best · 99.41% test accuracy"."""
    from mnist_core.store import DEFAULT_MODEL, read_info

    info = read_info(DEFAULT_MODEL)
    return f"{info.preset} · {info.test_accuracy:.2%} test accuracy"


# --- helpers -----------------------------------------------------------------------------------------------

def assert_no_exception(page: Page) -> None:
    """No Streamlit exception box (an uncaught error in the script) anywhere on the page, in any tab."""
    boxes = page.locator(EXCEPTION)
    if boxes.count():
        texts = "\n---\n".join(t[:2000] for t in boxes.all_inner_texts())
        pytest.fail(f"Streamlit exception box on the page:\n{texts}", pytrace=False)


def wait_idle(page: Page, timeout: float = WAIT_MS) -> None:
    """Wait until no script run is in progress (the app's own marker of its run state)."""
    expect(page.locator('[data-testid="stApp"]')).to_have_attribute(
        "data-test-script-state", "notRunning", timeout=timeout)


def open_tab(page: Page, name: str) -> None:
    """Select the tab whose label contains `name` ("Train", "Evaluate", "Gallery", "Draw", "My digits")."""
    tab = page.get_by_role("tab", name=name)
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "true")


def canvas_origin(page: Page) -> tuple[float, float]:
    """Page coordinates of the drawable area's top-left corner (Draw tab open).

    streamlit-drawable-canvas is a v2 component: its Fabric.js canvases live in a shadow root inside
    `.st-key-canvas` (not an iframe); Playwright's CSS engine pierces open shadow roots. The pointer goes to
    Fabric's upper canvas, stacked over the drawing and the background.
    """
    pad = page.locator(CANVAS)
    # Exactly one canvas: Clear empties it in place (a second one on the page would be a stale leftover).
    expect(pad).to_have_count(1)
    expect(pad).to_be_visible()
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    assert box is not None
    assert (round(box["width"]), round(box["height"])) == (CANVAS_PX, CANVAS_PX), box
    return box["x"], box["y"]


def draw_polyline(page: Page, points: Sequence[tuple[float, float]], step_px: float = 3.0) -> None:
    """One stroke with the mouse through `points` (canvas pixels), in small steps, then mouse-up."""
    x0, y0 = canvas_origin(page)
    (px, py) = points[0]
    page.mouse.move(x0 + px, y0 + py)
    page.mouse.down()
    for x, y in points[1:]:
        steps = max(1, round(((x - px) ** 2 + (y - py) ** 2) ** 0.5 / step_px))
        page.mouse.move(x0 + x, y0 + y, steps=steps)
        px, py = x, y
    page.mouse.up()


def draw_touch(page: Page, points: Sequence[tuple[float, float]], step_px: float = 3.0) -> None:
    """One stroke with a finger through `points` (canvas pixels), as a phone's touchscreen sends it (Chrome's
    DevTools protocol: touchstart, touchmoves, touchend); the page's context needs has_touch=True."""
    x0, y0 = canvas_origin(page)
    cdp = page.context.new_cdp_session(page)

    def touch(kind: str, x: float = 0.0, y: float = 0.0) -> None:
        points_now = [] if kind == "touchEnd" else [{"x": x0 + x, "y": y0 + y}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points_now})

    (px, py) = points[0]
    touch("touchStart", px, py)
    for x, y in points[1:]:
        steps = max(1, round(((x - px) ** 2 + (y - py) ** 2) ** 0.5 / step_px))
        for i in range(1, steps + 1):
            touch("touchMove", px + (x - px) * i / steps, py + (y - py) * i / steps)
        px, py = x, y
    touch("touchEnd")
    cdp.detach()


def prediction_heading(page: Page, container: str = PREDICTION):
    """The 'Prediction: N' heading inside a prediction container."""
    return page.locator(container).get_by_role("heading").filter(has_text=":")


def settle(page: Page, timeout: float = 30_000) -> None:
    """Wait until every visible chart has drawn its SVG and every visible image has loaded (for screenshots)."""
    page.wait_for_function(
        """() => {
            const visible = e => e.offsetParent !== null && e.getBoundingClientRect().width > 0;
            const charts = [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')].filter(visible);
            const images = [...document.querySelectorAll('[data-testid="stImage"] img')].filter(visible);
            return charts.every(c => c.querySelector('svg.marks, canvas.marks'))
                && images.every(i => i.complete && i.naturalWidth > 0);
        }""", timeout=timeout, polling=100)


def save_screenshot(page: Page, name: str, docs_name: str | None = None) -> Path:
    """A screenshot of the whole page in test-artifacts/NAME.png; also docs/DOCS_NAME.png with UPDATE_DOCS_SCREENSHOTS=1.

    Streamlit scrolls inside its main container, not the document, so Playwright's full_page alone
    would cut the page at the viewport: for the shot, the viewport is made as tall as the content.
    """
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    try:  # a rerun in progress shows greyed-out stale elements: appearance only, not synchronisation
        wait_idle(page, timeout=10_000)
    except AssertionError:
        pass
    settle(page)
    size = page.viewport_size or VIEWPORT
    height = page.evaluate(
        """() => {
            const main = document.querySelector('[data-testid="stMain"]');
            const block = document.querySelector('[data-testid="stMainBlockContainer"]');
            const content = [...block.children].reduce((b, e) => Math.max(b, e.getBoundingClientRect().bottom), 0);
            return Math.ceil(content + (main ? main.scrollTop : 0));
        }""")
    try:
        page.set_viewport_size({"width": size["width"], "height": min(max(int(height) + 64, 640), 6000)})
        settle(page)
        page.wait_for_timeout(300)  # charts re-lay out at the new size: appearance only, not synchronisation
        page.screenshot(path=str(path), full_page=True, animations="disabled")
    finally:
        page.set_viewport_size(size)
    if docs_name and os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(path, DOCS / f"{docs_name}.png")
    return path


def server_pid(url: str) -> int | None:
    """The pid of the `streamlit run` process that run_server started for `url` (found by its command line)."""
    port = url.rsplit(":", 1)[-1].strip("/")
    wanted = [b"--server.port", port.encode()]
    found = [pid for pid, (argv,) in _processes("cmdline")
             if b"streamlit" in argv and any(argv[i:i + 2] == wanted for i in range(len(argv) - 1))]
    return min(found) if found else None


# --- digits drawn with the mouse (canvas pixels) -----------------------------------------------------------

def one(cx: float, cy: float, h: float) -> list[tuple[float, float]]:
    return [(cx, cy - h / 2), (cx, cy + h / 2)]


def zero(cx: float, cy: float, h: float, n: int = 40) -> list[tuple[float, float]]:
    """An upright ellipse, 0.62 as wide as tall, as a closed polyline of n points from the top."""
    rx, ry = 0.31 * h, h / 2
    return [(cx + rx * math.sin(2 * math.pi * k / n), cy - ry * math.cos(2 * math.pi * k / n))
            for k in range(n + 1)]


def seven(cx: float, cy: float, h: float) -> list[tuple[float, float]]:
    """Top bar left to right, then the diagonal down to the bottom, in one stroke."""
    w = 0.62 * h
    return [(cx - w / 2, cy - h / 2), (cx + w / 2, cy - h / 2), (cx - w / 10, cy + h / 2)]


# --- the Train tab ------------------------------------------------------------------------------------------

def set_number(page: Page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    expect(box).to_have_value(str(value))


def choose(page: Page, option, open_list, what: str, timeout_ms: int) -> None:
    """Click `option` in a dropdown that `open_list()` opens. On a loaded machine a click that opens a list can be
    lost (seen in full suite runs beside other browser tests): the list is opened again, up to three times."""
    for _ in range(3):
        if not option.is_visible():
            open_list()
        try:
            option.click(timeout=timeout_ms)
            return
        except PlaywrightTimeoutError:
            page.keyboard.press("Escape")
    raise AssertionError(f"{what} after three tries")


def set_batch_size(page: Page, value: int) -> None:
    # A rerun still in flight (from the last number typed) can overwrite the box's new value when it lands, so
    # the server never hears of it: start from an idle page.
    wait_idle(page)
    box = page.get_by_test_id("stSelectbox").filter(has_text="Batch size")
    box.get_by_role("combobox").click()
    page.get_by_role("option", name=str(value), exact=True).click()
    expect(box.get_by_role("combobox")).to_have_value(str(value))


def set_recipe(page: Page, *, epochs: int, train_images: int, test_images: int, batch_size: int = 32) -> None:
    """Fill the Train tab's controls (the seed preset, the default) and wait until the server has them."""
    open_tab(page, "Train")
    expect(page.get_by_test_id("stRadio").filter(has_text="Network preset").get_by_role("radio", name="seed")
           ).to_be_checked()
    steps = -(-train_images // batch_size)
    # The caption is computed by the server from the widget values: it proves the rerun saw them all.
    caption = page.get_by_text(f"{steps:,} batches per epoch · {steps * epochs:,} in total.")
    for attempt in range(3):  # a rerun still in flight (the tab switch's) can drop a new value: set them again
        if attempt:
            wait_idle(page)
        for label, value in (("Epochs", epochs), ("Training images", train_images), ("Test images", test_images)):
            if attempt:  # the box may already show the value the server missed: typing it again sends nothing
                set_number(page, label, value - 1 if value > 1_000 else value + 1)  # within the box's bounds
            set_number(page, label, value)
        if batch_size != 32:
            set_batch_size(page, batch_size)
        try:
            expect(caption).to_be_visible(timeout=15_000)
            break
        except AssertionError:
            if attempt == 2:
                raise
    wait_idle(page)


def start_run(page: Page) -> None:
    train = page.get_by_role("button", name="Train", exact=True)
    expect(train).to_be_enabled()
    train.click()
    curves = page.locator(CURVES)
    expect(curves).to_contain_text("Training run")
    expect(curves.get_by_test_id("stProgress")).to_contain_text(RUNNING, timeout=RUN_MS)
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_disabled()
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_enabled()
