"""Classroom load benchmark: browser pages drawing on the Draw tab, or left open, with and without a run.

python benchmarks/load.py [--pages 1,5] [--open-pages 10] [--seconds 30] [--quick] [--no-training]
                          [--json PATH] [--train-images N] [--budget-minutes 12] [--log PATH] [--stroke-step 12]

One `streamlit run app.py` on 127.0.0.1 (a temporary runs dir) and one headless Chromium; each simulated pupil
is its own browser context (its own Streamlit session), driven with Playwright's async API so that all act at
once. A drawing page draws a 1, a 0 or a 7 in turn (placed a little differently each time; mouse moves
--stroke-step px apart), waits for the answer, checks the digit, looks at it 0.5-1.5 s, presses Clear and waits
for the one empty canvas and the hint. The teacher's page, open throughout on the Gallery tab, warms the server
up first and starts and stops the runs (seed preset, --train-images, 500 test images); after a run the shipped
model is made active again, so every case reads with the same model. A case's pages serve the next case too (as
many as it needs), and the timed part starts once each page's Draw tab says whether a run trains.

Cases, in order: the run alone ("solo"); --open-pages pages left open, not drawing, during a run and with none;
each --pages number drawing with no run, then during a run; the run alone again (a solo run's speed varies a
lot between benchmark runs on a shared machine). --quick, the test suite's form, has each kind of case once,
briefly (see --help).

The table, per case: drawings; mouse-up → "Prediction: N" p50/p95, timed inside the page (its pointerup and a
MutationObserver), so it includes the canvas's fixed 200 ms send delay; unanswered (none within 30 s); wrong
digits; the server's peak RSS; cores (CPU seconds per second of the timed part, from /proc) of the server
process, Chromium and the whole machine; the run's images/s (runs.jsonl) and its ratio to the solo runs' mean.
The notes under it: the training process's and driver's cores, Clear failures (the page is then loaded again),
the slowest /_stcore/health probe, the load average, phase times.

Then what one server core can serve, from the server process's own CPU in the cases with no run:
  CPU per open page   server CPU seconds per second in the open-pages case ÷ its pages (an upper bound: the
                      teacher's page and the health probes are counted with them)
  CPU per answer      the drawing cases' server CPU seconds, less their pages' cost when open and idle, ÷ answers
                      (an answer's run includes its explanation, and the Clear after it)
  answers/s a core    1 ÷ CPU per answer
  pupils a core       each drawing every 5 s: 1 ÷ (CPU per answer ÷ 5 s + CPU per open page)

Targets (printed, judged elsewhere): 1 page, idle server: p50 ≤ 500 ms; pages open, not drawing, during a run:
the run at ≥ 0.85 of its solo images/s.

The browsers share the server's machine: latencies and the run's speed with drawing pages measure them as much
as the server (a classroom's pupils bring their own CPUs); the capacity figures do not. Bounded in time: pages
get 90 s + 15 s a page to open, drawings in progress at a case's end 90 s more, and no case begins after
--budget-minutes (the solo run again excepted). With --json the file is rewritten after each case.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import signal
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from playwright.async_api import Browser, Page, async_playwright, expect  # noqa: E402
from playwright.async_api import Error as PlaywrightError  # noqa: E402
from playwright.async_api import TimeoutError as PlaywrightTimeout  # noqa: E402

from e2e_helpers import (APP_LOAD_TIMEOUT_MS, ARTIFACTS, CANVAS, CANVAS_PX, CHROMIUM_ARGS, CLEAR, CURVES,  # noqa: E402
                         HINT, PREDICTION, RUNNING, VIEWPORT, WAIT_MS, chromium_path, one, run_server, server_pid,
                         seven, zero)

CANVAS_SEND_DELAY_MS = 200  # streamlit-drawable-canvas sends its picture this long after the pen lifts
PAGE_WAIT_MS = 30_000  # the wait for an answer (none by then: "unanswered") or a Clear (none: a Clear failure)
THINK_S = (0.5, 1.5)
# A pen stroke reaches the canvas as one pointer move per screen frame: at 60 Hz and a child's 0.5-1 s for a
# 0 some 180 px tall, 10-16 px apart. Finer steps cost the simulated pupils' browsers (the canvas redraws its
# whole path at every move), not the server: at 3 px a drawing took 0.64 s of Chromium's CPU, at 12 px 0.17 s.
STROKE_STEP_PX = 12.0
QUICK_SECONDS, QUICK_TRAIN_IMAGES = 3.0, 2_000  # --quick: the time of each case, the run's training images
OPEN_AT_ONCE = 3  # pages loading the app at the same time
OPEN_S, OPEN_S_PER_PAGE = 90, 15  # time allowed to open a case's pages; those not open by then are left out
OVERRUN_S = 90  # time allowed past a case's end to finish the drawings in progress
DRAWING_EVERY_S = 5.0  # a pupil's pace, for the class one server core serves
TEST_IMAGES = 500
EPOCHS = 100  # far more than a case lasts: the run is stopped
BATCH = 32  # the seed preset's batch size (not changed in the UI)
# The Draw tab with nothing drawn says whether a run trains (as the page last heard from the server).
JOB_CAPTION = {True: "A network is training: draw a digit", False: "While a network trains (Train tab), it reads"}
EXPLAIN = ".st-key-explain"  # "Why this answer", below the answer

# Inside every page, from its first script on: the time of each pointerup, and each new answer heading.
WATCH_JS = """(() => {
    window.__ups = [];
    window.__answers = [];
    addEventListener('pointerup', () => window.__ups.push(performance.now()), true);
    let last = null;
    const check = () => {
        const h = document.querySelector('.st-key-prediction h3');
        const m = h && /Prediction: (\\d)/.exec(h.textContent);
        const digit = m ? m[1] : null;
        if (digit !== last) {
            last = digit;
            if (digit !== null) window.__answers.push({t: performance.now(), digit});
        }
    };
    new MutationObserver(check).observe(document, {childList: true, subtree: true, characterData: true});
    window.__scriptEnds = [];  // each time the page's script run state becomes notRunning
    new MutationObserver(ms => {
        if (ms.some(m => m.target.getAttribute('data-test-script-state') === 'notRunning'))
            window.__scriptEnds.push(performance.now());
    }).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-test-script-state']});
})();"""
FIRST_ANSWER_AFTER = "(t) => window.__answers.find(a => a.t >= t) || null"
# The canvases on the page that take the pointer (the component's Fabric.js canvases live in its shadow root),
# as a JS expression.
COUNT_CANVASES = ("[...document.querySelectorAll('.st-key-canvas *')].filter(e => e.shadowRoot)"
                  ".reduce((n, h) => n + h.shadowRoot.querySelectorAll('canvas.upper-canvas').length, 0)")
# After Clear (pressed at page time t): "ok" once the hint is shown, no answer heading and exactly one canvas;
# "stuck" when the hint is shown (Clear's run happened) but an old answer or a second canvas is still on the page
# and no script has run for 3 s (nothing more is coming). A Clear whose run has not come yet (a busy server) is
# waited for: it is a failure only after PAGE_WAIT_MS.
CLEARED = """(t) => {
    const canvases = """ + COUNT_CANVASES + """;
    const p = document.querySelector('.st-key-prediction');
    const hint = p && p.innerText.includes(""" + json.dumps(HINT) + """);
    if (hint && !p.querySelector('h3') && canvases === 1) return 'ok';
    const state = document.querySelector('[data-testid="stApp"]')?.getAttribute('data-test-script-state');
    const ends = window.__scriptEnds, last = ends.length ? ends[ends.length - 1] : -1;
    return hint && state === 'notRunning' && last > t && performance.now() - last > 3000 ? 'stuck' : false;
}"""


# --- digits --------------------------------------------------------------------------------------------

DIGITS = [("1", one), ("0", zero), ("7", seven)]


# --- results ------------------------------------------------------------------------------------------------

@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    drawings: int = 0
    unanswered: int = 0
    wrong: int = 0
    clear_failures: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class Case:
    pages: int
    training: bool
    seconds: float
    drawing: bool = True  # False: the pages are opened on the Draw tab and left alone
    again: bool = False  # the solo run once more, after all the other cases
    drawings: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    max_ms: float | None = None
    unanswered: int = 0
    wrong: int = 0
    clear_failures: int = 0
    exception_boxes: int = 0
    errors: list[str] = field(default_factory=list)
    server_peak_mb: float | None = None
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds of each part in the timed part (CpuMeter)
    timed_s: float = 0.0  # wall seconds of the timed part: the pages drawing (or left open) for `seconds`
    children_peak_mb: float | None = None
    full_epochs: int | None = None
    run_status: str | None = None  # how the run ended, as runs.jsonl says ("stopped" when Stop ended it)
    images_per_s: float | None = None
    vs_solo: float | None = None
    pages_opened: int = 0
    health_max_ms: float | None = None  # slowest answer of the server's /_stcore/health (probed every 2 s)
    health_failures: int = 0  # probes unanswered within 5 s
    phases: dict[str, float] = field(default_factory=dict)  # seconds spent opening, starting, drawing, stopping
    load_peak: float | None = None  # the machine's 1-minute load average, highest during the case
    wall_s: float = 0.0

    @property
    def answered(self) -> int:
        return self.drawings - self.unanswered

    def cores(self, part: str) -> float | None:
        """CPU seconds per second of `part` in the timed part (2.00: two cores busy)."""
        return self.cpu_s[part] / self.timed_s if part in self.cpu_s and self.timed_s else None

    @property
    def name(self) -> str:
        if self.pages == 0:
            return "solo again" if self.again else "solo"
        return f"{self.pages} {'' if self.drawing else 'open '}{'training' if self.training else 'idle'}"


@dataclass
class Capacity:
    """What one core of the server serves, from the server process's own CPU (the browsers' left out)."""
    cpu_per_idle_page: float  # server CPU seconds per second for each page open on the Draw tab, not drawing
    cpu_per_answer_s: float  # server CPU seconds per drawing read: its answer, explanation and the Clear after it
    answers_per_core_s: float  # answers a second one core sustains: 1 ÷ cpu_per_answer_s
    pupils_per_core: float  # pupils one core serves, each drawing every DRAWING_EVERY_S
    answers: int  # the answers cpu_per_answer_s is measured over
    idle_case: str  # the case cpu_per_idle_page comes from
    drawing_cases: list[str]  # the cases cpu_per_answer_s comes from


def capacity(cases: list[Case]) -> Capacity | None:
    """What one server core can serve (as the module's docstring says), from the cases with no run; None without
    an open-pages case and an answered drawing case among them."""
    measured = [c for c in cases if not c.training and c.pages_opened and "server" in c.cpu_s and c.timed_s]
    idle = next((c for c in measured if not c.drawing), None)
    drawn = [c for c in measured if c.drawing and c.answered]
    if idle is None or not drawn:
        return None
    per_page = idle.cpu_s["server"] / idle.timed_s / idle.pages_opened
    answers = sum(c.answered for c in drawn)
    per_answer = sum(c.cpu_s["server"] - per_page * c.pages_opened * c.timed_s for c in drawn) / answers
    return Capacity(per_page, per_answer, 1 / per_answer, 1 / (per_answer / DRAWING_EVERY_S + per_page), answers,
                    idle.name, [c.name for c in drawn])


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]  # nearest rank


# --- server memory ------------------------------------------------------------------------------------------

def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def process_table() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command name, CPU seconds used so far: user + system) for every process on the machine."""
    table = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                fields = stat.rsplit(")", 1)[1].split()
                table[int(entry.name)] = (int(fields[1]), stat[stat.index("(") + 1:stat.rindex(")")],
                                          (int(fields[11]) + int(fields[12])) / tick)  # ppid, comm, utime + stime
            except (OSError, IndexError, ValueError):
                continue
    return table


def descendants(table: dict[int, tuple[int, str, float]], pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, (parent, _, _) in table.items() if parent == p]
        found.update(kids)
        todo += kids
    return found


def machine_busy_seconds() -> float:
    """CPU seconds the machine's cores have spent busy since boot (/proc/stat: user, nice, system, irq, softirq)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


PARTS = ("server", "training", "browsers", "driver")  # where a case's CPU went


class CpuMeter:
    """CPU seconds each part used between start() and read(): the server process, its children (the training
    process), Chromium's processes, and the rest of this benchmark's own tree (Playwright's driver and this
    script). Sampled: a process that ends loses what it used since the last sample."""

    def __init__(self, server: int | None) -> None:
        self.server = server
        self._seen: dict[int, float] = {}
        self._used = dict.fromkeys(PARTS, 0.0)
        self._since = self._busy_since = 0.0

    def _part(self, pid: int, name: str, training: set[int], ours: set[int]) -> str | None:
        if pid == self.server:
            return "server"
        if pid in training:
            return "training"
        if pid in ours:
            return "browsers" if "chrom" in name.lower() else "driver"
        return None

    def sample(self, table: dict[int, tuple[int, str, float]], first: bool = False) -> None:
        training = descendants(table, self.server) if self.server else set()
        ours = descendants(table, os.getpid()) | {os.getpid()}
        for pid, (_, name, cpu) in table.items():
            part = self._part(pid, name, training, ours)
            if part is None:
                continue
            before = self._seen.get(pid, cpu if first else 0.0)  # a process born during the case counts from 0
            self._seen[pid] = cpu
            self._used[part] += max(0.0, cpu - before)

    def start(self, table: dict[int, tuple[int, str, float]]) -> None:
        self._seen, self._used = {}, dict.fromkeys(PARTS, 0.0)
        self._since, self._busy_since = time.monotonic(), machine_busy_seconds()
        self.sample(table, first=True)

    def read(self) -> tuple[dict[str, float], float]:
        """CPU seconds per part (no server or training part if the server's process is unknown) and "machine": the
        busy seconds of all the machine's cores, whatever used them; and the wall seconds since start()."""
        used = {k: v for k, v in self._used.items() if self.server or k in ("browsers", "driver")}
        used["machine"] = machine_busy_seconds() - self._busy_since
        return {k: round(v, 3) for k, v in used.items()}, round(time.monotonic() - self._since, 3)


def _health(url: str) -> None:
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as response:
        response.read()


class Sampler:
    """Every `every` s while running: peak RSS of the server and of its children together, the machine's load
    average, the server's /_stcore/health (every 2 s); and from start() to stop() the CPU seconds each part of
    the machine used (CpuMeter)."""

    def __init__(self, pid: int | None, url: str | None = None, every: float = 0.5) -> None:
        self.pid, self.url, self.every = pid, url, every
        self.server_peak = self.children_peak = self.load_peak = self.health_max_ms = 0.0
        self.health_failures = 0
        self.cpu_s: dict[str, float] = {}
        self.timed_s = 0.0
        self._cpu = CpuMeter(pid)
        self._task: asyncio.Task | None = None

    def sample(self, table: dict[int, tuple[int, str, float]] | None = None) -> None:
        self.load_peak = max(self.load_peak, os.getloadavg()[0])
        if self.pid is None:
            return
        table = process_table() if table is None else table
        self.server_peak = max(self.server_peak, rss_mb(self.pid))
        self.children_peak = max(self.children_peak, sum(rss_mb(c) for c in descendants(table, self.pid)))

    async def _loop(self) -> None:
        n = 0
        while True:
            table = process_table()
            self.sample(table)
            self._cpu.sample(table)
            if self.url and n % 4 == 0:  # every 2 s: is the server answering HTTP at all?
                started = time.monotonic()
                try:
                    await asyncio.to_thread(_health, self.url)
                    self.health_max_ms = max(self.health_max_ms, (time.monotonic() - started) * 1000)
                except OSError:
                    self.health_failures += 1
            n += 1
            await asyncio.sleep(self.every)

    def start(self) -> None:
        self.server_peak = self.children_peak = self.load_peak = self.health_max_ms = 0.0
        self.health_failures = 0
        self.cpu_s, self.timed_s = {}, 0.0
        self._cpu.start(process_table())
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        table = process_table()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
            self._cpu.sample(table)
            self.cpu_s, self.timed_s = self._cpu.read()
        self.sample(table)


# --- page actions (async forms of tests/e2e's helpers) ------------------------------------------------------

async def wait_idle(page: Page) -> None:
    """No script run in progress for this page (the app's own marker of its run state)."""
    await expect(page.locator('[data-testid="stApp"]')).to_have_attribute(
        "data-test-script-state", "notRunning", timeout=WAIT_MS)


async def open_tab(page: Page, name: str) -> None:
    tab = page.get_by_role("tab", name=name)
    await tab.click()
    await expect(tab).to_have_attribute("aria-selected", "true")


async def wait_empty_canvas(page: Page, timeout: float) -> None:
    """The hint instead of an answer, and exactly one canvas."""
    await expect(page.locator(PREDICTION)).to_contain_text(HINT, timeout=timeout)
    await expect(page.locator(PREDICTION).get_by_role("heading").filter(has_text="Prediction")).to_have_count(
        0, timeout=timeout)
    await expect(page.locator(CANVAS)).to_have_count(1, timeout=timeout)
    await expect(page.locator(CANVAS)).to_be_visible(timeout=timeout)


async def open_draw_page(browser: Browser, url: str, gate: asyncio.Semaphore, attempts: int = 2) -> Page:
    """A new session on the Draw tab with its empty canvas; loaded again if the canvas does not come."""
    async with gate:
        context = await browser.new_context(viewport=VIEWPORT)
        try:
            await context.add_init_script(WATCH_JS)
            page = await context.new_page()
            page.set_default_timeout(30_000)
            for _ in range(attempts):
                try:
                    await page.goto(url, timeout=APP_LOAD_TIMEOUT_MS)
                    await expect(page.get_by_role("tab")).to_have_count(5, timeout=APP_LOAD_TIMEOUT_MS)
                    await open_tab(page, "Draw")
                    await wait_empty_canvas(page, 45_000)
                    await wait_idle(page)  # its opening costs the server nothing more in the timed part
                    return page
                except (AssertionError, PlaywrightError) as exc:
                    problem = f"{str(exc).splitlines()[0]} ({await page_state(page)})"
            ARTIFACTS.mkdir(exist_ok=True)
            with contextlib.suppress(PlaywrightError):
                await page.screenshot(path=str(ARTIFACTS / "load-open-failure.png"), timeout=10_000)
            raise RuntimeError(f"no empty canvas after {attempts} loads: {problem}")
        except BaseException:  # a failure, or the case's time to open pages is up: this page is not used
            with contextlib.suppress(Exception):
                await context.close()
            raise


async def draw_polyline(page: Page, points: list[tuple[float, float]], step_px: float) -> None:
    upper = page.locator(CANVAS)
    await expect(upper).to_have_count(1, timeout=PAGE_WAIT_MS)
    await upper.scroll_into_view_if_needed()
    box = await upper.bounding_box()
    assert box is not None and round(box["width"]) == CANVAS_PX, box
    x0, y0 = box["x"], box["y"]
    px, py = points[0]
    await page.mouse.move(x0 + px, y0 + py)
    await page.mouse.down()
    for x, y in points[1:]:
        steps = max(1, round(((x - px) ** 2 + (y - py) ** 2) ** 0.5 / step_px))
        await page.mouse.move(x0 + x, y0 + y, steps=steps)
        px, py = x, y
    await page.mouse.up()


async def set_number(page: Page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    await box.fill(str(value))
    await box.press("Enter")
    await expect(box).to_have_value(str(value))


async def set_recipe(page: Page, train_images: int) -> None:
    """The seed preset (the default) with EPOCHS epochs on the first `train_images` images, batch BATCH."""
    await open_tab(page, "Train")
    await expect(page.get_by_test_id("stRadio").filter(has_text="Network preset").get_by_role(
        "radio", name="seed")).to_be_checked()
    for label, value in (("Epochs", EPOCHS), ("Training images", train_images), ("Test images", TEST_IMAGES)):
        await set_number(page, label, value)
    steps = -(-train_images // BATCH)
    # Computed by the server from the widgets: proves the rerun saw every value.
    await expect(page.get_by_text(f"{steps:,} batches per epoch · {steps * EPOCHS:,} in total.")).to_be_visible(
        timeout=30_000)
    await wait_idle(page)


async def start_run(page: Page) -> None:
    train = page.get_by_role("button", name="Train", exact=True)
    await expect(train).to_be_enabled(timeout=WAIT_MS)
    await train.click()
    curves = page.locator(CURVES)
    await expect(curves).to_contain_text("Training run", timeout=30_000)
    await expect(curves.get_by_test_id("stProgress")).to_contain_text(RUNNING, timeout=180_000)


async def stop_run(page: Page) -> None:
    await open_tab(page, "Train")
    stop = page.get_by_role("button", name="Stop", exact=True)
    await expect(stop).to_be_enabled(timeout=30_000)
    await stop.click()
    await expect(page.locator(CURVES)).to_contain_text("Stopped.", timeout=WAIT_MS)


# --- one pupil ----------------------------------------------------------------------------------------------

async def clear(page: Page, url: str, tally: Tally) -> None:
    """Press Clear and wait for the one empty canvas and the hint. A Clear that leaves the old answer, or a second
    canvas, on the page is counted, and the page is loaded afresh."""
    pressed = await page.evaluate("() => performance.now()")
    await page.get_by_role("button", name=CLEAR).click(timeout=PAGE_WAIT_MS)
    try:
        handle = await page.wait_for_function(CLEARED, arg=pressed, timeout=PAGE_WAIT_MS, polling=100)
        outcome = await handle.json_value()
    except PlaywrightTimeout:
        outcome = "timeout"
    if outcome == "ok":
        return
    tally.clear_failures += 1
    tally.errors.append(f"Clear {outcome}: {await page_state(page)}")
    await page.goto(url, timeout=APP_LOAD_TIMEOUT_MS)
    await expect(page.get_by_role("tab")).to_have_count(5, timeout=APP_LOAD_TIMEOUT_MS)
    await open_tab(page, "Draw")
    await wait_empty_canvas(page, WAIT_MS)


async def page_state(page: Page) -> str:
    try:
        return await _page_state(page)
    except PlaywrightError:
        return "page state unreadable"


async def _page_state(page: Page) -> str:
    return await page.evaluate("""() => {
        const canvases = """ + COUNT_CANVASES + """;
        const p = document.querySelector('.st-key-prediction');
        const state = document.querySelector('[data-testid="stApp"]')?.getAttribute('data-test-script-state');
        const headings = p ? p.querySelectorAll('h3').length : 0;
        return `${canvases} canvas(es), script ${state}, ${headings} heading(s) in the answer column: `
            + JSON.stringify((p ? p.innerText : '(none)').slice(0, 80));
    }""")


async def pupil(page: Page, index: int, url: str, start_delay: float, deadline: float, tally: Tally,
                rng: random.Random, stroke_px: float) -> None:
    """Draw, wait for the answer, look at it (think time), Clear; until the deadline (a drawing begun before it
    is finished)."""
    await asyncio.sleep(start_delay)
    turn = index
    while time.monotonic() < deadline:
        digit, shape = DIGITS[turn % len(DIGITS)]
        turn += 1
        cx, cy, h = 140 + rng.uniform(-12, 12), 140 + rng.uniform(-12, 12), rng.uniform(165, 190)
        try:
            await draw_polyline(page, shape(cx, cy, h), stroke_px)
            tally.drawings += 1
            up = await page.evaluate("() => window.__ups.length ? window.__ups[window.__ups.length - 1] : null")
            if up is None:  # no pointerup seen in the page: fall back to "now" in the page's clock
                up = await page.evaluate("() => performance.now()")
            try:
                handle = await page.wait_for_function(FIRST_ANSWER_AFTER, arg=up, timeout=PAGE_WAIT_MS,
                                                      polling=50)
                answer = await handle.json_value()
                tally.latencies_ms.append(answer["t"] - up)
                if answer["digit"] != digit:
                    tally.wrong += 1
            except PlaywrightTimeout:
                tally.unanswered += 1
            await asyncio.sleep(rng.uniform(*THINK_S))
            await clear(page, url, tally)
        except Exception as exc:  # keep the other pupils going; the error is reported
            tally.errors.append(f"page {index}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            if len(tally.errors) > 50 or time.monotonic() >= deadline:
                return
            await asyncio.sleep(1)


# --- one case -----------------------------------------------------------------------------------------------

def run_records(runs_dir: Path) -> list[dict]:
    log = runs_dir / "runs.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []


async def count_exception_boxes(pages: list[Page]) -> int:
    total = 0
    for page in pages:
        try:
            total += await page.locator('[data-testid="stException"]').count()
        except Exception:
            pass
    return total


def lap(case: Case, phase: str, since: float) -> float:
    now = time.monotonic()
    case.phases[phase] = round(now - since, 1)
    return now


async def pages_see_the_job(pages: list[Page], case: Case) -> None:
    """Each page has rerun for what changed on the server (the watch polls every 5 s): its Draw tab says whether
    a run trains, its sidebar that the shipped model is active (the run's model was active for a moment after
    it), and the run has finished. The timed part starts in steady state."""
    caption = JOB_CAPTION[case.training]
    seen = await asyncio.gather(*(see_the_job(p, caption) for p in pages), return_exceptions=True)
    late = [s for s in seen if isinstance(s, BaseException)]
    if late:
        why = "; ".join(" ".join(str(exc).split())[:300] for exc in late)  # which wait ran out, and what the page had
        case.errors.append(f"{len(late)} page(s) did not show {caption!r} and the shipped model within "
                           f"{WAIT_MS // 1000} s, with no script running: {why}")


async def see_the_job(page: Page, caption: str) -> None:
    await expect(page.get_by_text(caption)).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_test_id("stSidebar")).to_contain_text("(shipped default)", timeout=WAIT_MS)
    await wait_idle(page)


async def reusable(page: Page) -> bool:
    """A page kept from the last case shows the one empty canvas and the hint (else it is closed)."""
    try:
        await wait_empty_canvas(page, 5_000)
        return True
    except (AssertionError, PlaywrightError):
        with contextlib.suppress(PlaywrightError):
            await page.context.close()
        return False


async def take_pages(browser: Browser, url: str, kept: list[Page], case: Case) -> list[Page]:
    """`case.pages` pages on the Draw tab, empty: first those the last case left open (the rest are closed), then
    new ones. New pages not open in time are left out, and said so in the case's errors."""
    for page in kept[case.pages:]:
        await page.context.close()
    pages = [p for p in kept[:case.pages] if await reusable(p)]
    gate = asyncio.Semaphore(OPEN_AT_ONCE)
    tasks = [asyncio.create_task(open_draw_page(browser, url, gate)) for _ in range(case.pages - len(pages))]
    allowed = OPEN_S + OPEN_S_PER_PAGE * len(tasks)
    if tasks:
        await asyncio.wait(tasks, timeout=allowed)
    late = [t for t in tasks if not t.done()]
    for t in late:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    pages += [t.result() for t in tasks if not t.cancelled() and t.exception() is None]
    case.errors += [f"a page did not open: {str(t.exception()).splitlines()[0][:300]}" for t in tasks
                    if not t.cancelled() and t.exception() is not None]
    if late:
        case.errors.append(f"{len(late)} page(s) not open after {allowed} s: left out")
    return pages


async def read_run(runs_dir: Path, records_before: int, case: Case) -> None:
    """Wait for the stopped run's line in runs.jsonl and compute its images/s; the shipped model is made active
    again as soon as the run's model was (so that every case reads drawings with the same model)."""
    deadline = time.monotonic() + 90
    while len(run_records(runs_dir)) <= records_before and time.monotonic() < deadline:
        (runs_dir / "active.json").unlink(missing_ok=True)
        await asyncio.sleep(0.1)
    (runs_dir / "active.json").unlink(missing_ok=True)
    records = run_records(runs_dir)
    if len(records) <= records_before:
        case.errors.append("the run was not recorded in runs.jsonl within 90 s of Stop")
        return
    record = records[-1]
    case.run_status = record["status"]
    history = record["history"]
    subset = record["config"].get("train_subset") or 60_000
    case.full_epochs = len(history)
    if history and history[-1].get("train_seconds"):
        case.images_per_s = len(history) * subset / history[-1]["train_seconds"]


async def run_case(browser: Browser, url: str, runs_dir: Path, sampler: Sampler, host: Page, case: Case,
                   seed: int, stroke_px: float, kept: list[Page]) -> list[Page]:
    """Measure `case` (its results filled in): its pages drawing (or, if not `case.drawing`, left alone on the Draw
    tab) for `case.seconds`, with a training run started (and stopped) by `host` if it is a training case. The
    pages the last case left open (`kept`) serve first; this case's are left open for the next.

    A failure is reported in the case's errors; the run, if started, is stopped whatever happens."""
    seconds, drawing = case.seconds, case.drawing
    started = time.monotonic()
    print(f"case {case.name}: {case.pages} page(s)…", flush=True)
    pages = await take_pages(browser, url, kept, case)
    case.pages_opened = len(pages)
    mark = lap(case, "open", started)
    records_before = len(run_records(runs_dir))
    tally = Tally()
    running = False
    try:
        if case.training:
            await open_tab(host, "Train")
            await start_run(host)
            running = True
            mark = lap(case, "start run", mark)
            await open_tab(host, "Gallery")  # off the Train tab, as a teacher would leave it
        await pages_see_the_job(pages, case)
        mark = lap(case, "pages see the job", mark)
        sampler.start()
        deadline = time.monotonic() + seconds
        try:  # a drawing begun before the deadline is finished, within bounds
            await asyncio.wait_for(asyncio.gather(
                *(pupil(p, i, url, i * THINK_S[1] / max(1, len(pages)), deadline, tally,
                        random.Random(seed * 1000 + i), stroke_px) for i, p in enumerate(pages) if drawing),
                asyncio.sleep(seconds)), timeout=seconds + OVERRUN_S)
        except TimeoutError:
            case.errors.append(f"drawing went on {OVERRUN_S} s past the case's end: the pages were stopped")
        await sampler.stop()
        mark = lap(case, "drawing", mark)
        if case.training:
            await stop_run(host)
            running = False
            await read_run(runs_dir, records_before, case)
            await open_tab(host, "Gallery")
            lap(case, "stop and record", mark)
        case.exception_boxes = await count_exception_boxes(pages + [host])
    except Exception as exc:
        case.errors.append(f"case aborted: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    finally:
        await sampler.stop()
        if running:
            try:
                await stop_run(host)
                await read_run(runs_dir, records_before, case)
            except Exception as exc:
                case.errors.append(f"the run could not be stopped: {type(exc).__name__}: {str(exc)[:200]}")
    case.drawings, case.unanswered, case.wrong = tally.drawings, tally.unanswered, tally.wrong
    case.clear_failures, case.errors = tally.clear_failures, case.errors + tally.errors
    case.p50_ms, case.p95_ms = percentile(tally.latencies_ms, 0.50), percentile(tally.latencies_ms, 0.95)
    case.max_ms = max(tally.latencies_ms) if tally.latencies_ms else None
    case.server_peak_mb = round(sampler.server_peak, 1) if sampler.pid else None
    case.children_peak_mb = round(sampler.children_peak, 1) if sampler.pid else None
    case.load_peak = round(sampler.load_peak, 1)
    case.cpu_s, case.timed_s = sampler.cpu_s, sampler.timed_s
    case.health_max_ms = round(sampler.health_max_ms)
    case.health_failures = sampler.health_failures
    case.wall_s = round(time.monotonic() - started, 1)
    print(f"case {case.name}: {case.drawings} drawings, p50 {fmt(case.p50_ms)} ms, p95 {fmt(case.p95_ms)} ms, "
          f"{case.unanswered} unanswered, {case.wrong} wrong, {case.clear_failures} Clear failures, images/s "
          f"{fmt(case.images_per_s)} ({case.full_epochs} full epochs); {notes(case)}", flush=True)
    return pages


# --- the benchmark ------------------------------------------------------------------------------------------

def fmt(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def table(cases: list[Case]) -> str:
    lines = ["| pages | training | drawings | p50 ms | p95 ms | unanswered | wrong | server peak MB | server cores "
             "| browser cores | machine cores | run images/s | vs solo |",
             "|---:|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in cases:
        drew = c.pages and c.drawing
        pages = f"{c.pages}" if c.drawing else f"{c.pages} open, not drawing"
        pages += ", again" if c.again else ""
        lines.append(f"| {pages} | {'yes' if c.training else 'no'} | {c.drawings if drew else '–'} | "
                     f"{fmt(c.p50_ms)} | {fmt(c.p95_ms)} | {c.unanswered if drew else '–'} | "
                     f"{c.wrong if drew else '–'} | {fmt(c.server_peak_mb)} | {fmt(c.cores('server'), 2)} | "
                     f"{fmt(c.cores('browsers'), 2)} | {fmt(c.cores('machine'), 2)} | "
                     f"{fmt(c.images_per_s)} | {'–' if c.vs_solo is None else f'{c.vs_solo:.2f}'} |")
    return "\n".join(lines)


def capacity_table(cap: Capacity | None) -> str:
    if cap is None:
        return "Server capacity: not measured (it needs --open-pages ≥ 1 and --pages)."
    return "\n".join([
        "Server capacity (the server process's own CPU; the browsers' left out):",
        "",
        "| measure | value | from |",
        "|:---|---:|:---|",
        f"| server CPU per answer (its run, explanation and Clear) | {cap.cpu_per_answer_s * 1000:,.0f} ms | "
        f"{cap.answers} answers ({', '.join(cap.drawing_cases)}), less their pages' cost when idle |",
        f"| server CPU per open page, not drawing | {cap.cpu_per_idle_page * 1000:,.1f} ms/s | {cap.idle_case} |",
        f"| answers per second, one server core | {cap.answers_per_core_s:,.1f} | 1 ÷ CPU per answer |",
        f"| pupils one server core serves, a drawing every {DRAWING_EVERY_S:g} s each | {cap.pupils_per_core:,.0f} | "
        f"1 ÷ (CPU per answer ÷ {DRAWING_EVERY_S:g} s + CPU per open page) |"])


def notes(c: Case) -> str:
    extra = [f"{c.full_epochs} full epochs" if c.training else "",
             f"children peak {fmt(c.children_peak_mb)} MB" if c.training else "",
             f"only {c.pages_opened} page(s) opened" if c.pages_opened < c.pages else "",
             f"max {fmt(c.max_ms)} ms" if c.pages and c.drawing else "",
             f"cores: training process {fmt(c.cores('training'), 2)}, Playwright and this script "
             f"{fmt(c.cores('driver'), 2)}" if c.cpu_s else "",
             f"load average up to {fmt(c.load_peak, 1)}",
             f"health probe up to {fmt(c.health_max_ms)} ms"
             + (f", {c.health_failures} unanswered" if c.health_failures else ""),
             f"{c.clear_failures} Clear failures" if c.clear_failures else "",
             f"{c.exception_boxes} exception boxes" if c.exception_boxes else "",
             f"{len(c.errors)} errors: {c.errors[:3]}" if c.errors else "",
             f"{c.wall_s:.0f} s (" + ", ".join(f"{k} {v:.0f} s" for k, v in c.phases.items()) + ")"]
    return ", ".join(e for e in extra if e)


def write_json(path: Path | None, cases: list[Case], **more) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**more, "cases": [{**asdict(c), "name": c.name} for c in cases]}, indent=2))


def targets(cases: list[Case]) -> list[str]:
    out = []
    for c in cases:
        if c.pages == 1 and c.drawing and not c.training:
            out.append(f"1 page, idle server: mouse-up → answer p50 {fmt(c.p50_ms)} ms (target ≤ 500), p95 "
                       f"{fmt(c.p95_ms)} ms; both include the canvas's fixed {CANVAS_SEND_DELAY_MS} ms send delay")
        if c.training and not c.drawing:
            out.append(f"{c.pages} pages open, not drawing, + training: run at {fmt(c.vs_solo, 2)} of solo "
                       "(target ≥ 0.85)")
    return out


def server_log_problems(log: Path, limit: int = 15) -> list[str]:
    """Lines of the server's log that look like errors (TensorFlow's start-up chatter about CUDA left out)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    noise = ("cuInit", "cuda_", "absl::InitializeLog", "computation placer", "oneDNN", "TF_ENABLE_ONEDNN_OPTS",
             "cpu_feature_guard", "rebuild TensorFlow")
    problems = [line for line in lines if re.search(r"Traceback|Error|Exception|error", line)
                and not any(n in line for n in noise)]
    seen: list[str] = []
    for line in problems:
        if line not in seen:
            seen.append(line)
    return seen[:limit]


async def teachers_page(browser: Browser, url: str, stroke_px: float) -> Page:
    """The teacher's page, open throughout. It warms the server up first: the first page of a fresh server
    imports TensorFlow and loads the model, and the first reading and explanation build the model's functions
    (seconds of the server's CPU, kept out of every case); its canvas is then emptied."""
    page = await open_draw_page(browser, url, asyncio.Semaphore(1))
    await draw_polyline(page, one(140, 140, 180), stroke_px)
    await expect(page.locator(EXPLAIN)).to_contain_text("Saliency for", timeout=APP_LOAD_TIMEOUT_MS)
    await page.get_by_role("button", name=CLEAR).click()
    await wait_empty_canvas(page, PAGE_WAIT_MS)
    await wait_idle(page)
    return page


def plan(pages: list[int], open_pages: int, seconds: float) -> list[Case]:
    """The cases, in order: the run alone ("solo"); `open_pages` pages left alone during a run and with none;
    each of `pages` drawing with no run, then during a run; the run alone again."""
    cases = [Case(0, True, seconds)]
    if open_pages:
        cases += [Case(open_pages, True, seconds, drawing=False), Case(open_pages, False, seconds, drawing=False)]
    cases += [Case(n, training, seconds) for n in pages for training in (False, True)]
    return cases + [Case(0, True, seconds, again=True)]


def quick_plan() -> list[Case]:
    """--quick, the test suite's smoke run: each kind of case once, with as few pages and runs as that takes (one
    page serves all three page cases)."""
    return [Case(0, True, QUICK_SECONDS), Case(1, False, QUICK_SECONDS, drawing=False), Case(1, True, QUICK_SECONDS),
            Case(1, False, QUICK_SECONDS)]


async def benchmark(planned: list[Case], train_images: int, seed: int, log: Path | None, budget_s: float,
                    json_path: Path | None = None, stroke_px: float = STROKE_STEP_PX
                    ) -> tuple[list[Case], list[str], list[str]]:
    """The cases of `planned` measured in order; those not begun within budget_s are skipped (their names
    returned), except the solo run again."""
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="load-bench-") as tmp:
        runs_dir = Path(tmp) / "runs"
        runs_dir.mkdir()
        log = log or Path(tmp) / "streamlit.log"
        t0 = time.monotonic()
        with run_server(runs_dir, log) as url:
            assert url.startswith("http://127.0.0.1:"), url
            print(f"server at {url} up in {time.monotonic() - t0:.0f} s", flush=True)
            sampler = Sampler(server_pid(url), url)
            cases: list[Case] = []
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=chromium_path(), headless=True,
                                                   args=CHROMIUM_ARGS)
                try:
                    host = await teachers_page(browser, url, stroke_px)
                    if any(c.training for c in planned):
                        await set_recipe(host, train_images)
                    await open_tab(host, "Gallery")  # left there, as a teacher would
                    pages: list[Page] = []
                    for case in planned:
                        if time.monotonic() - t0 > budget_s and not case.again:
                            skipped.append(case.name)
                            continue
                        pages = await run_case(browser, url, runs_dir, sampler, host, case, seed, stroke_px, pages)
                        cases.append(case)
                        write_json(json_path, cases, partial=True)  # what is done survives an interruption
                finally:
                    await browser.close()
        problems = server_log_problems(log)
    solos = [c.images_per_s for c in cases if c.pages == 0 and c.images_per_s]
    solo = sum(solos) / len(solos) if solos else None
    for c in cases:
        if c.images_per_s is not None and solo:
            c.vs_solo = c.images_per_s / solo
    return cases, problems, skipped


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", default="1,5",
                        help="comma-separated numbers of drawing pages, each with no run and during a run")
    parser.add_argument("--open-pages", type=int, default=10,
                        help="pages opened and left alone, in a case of their own with no run and one during a run "
                             "(0: no such cases)")
    parser.add_argument("--seconds", type=float, default=30, help="drawing time per case")
    parser.add_argument("--quick", action="store_true",
                        help=f"the test suite's smoke run: the run alone, then one page left open, drawing during a run "
                             f"and drawing alone; {QUICK_SECONDS:g} s a case, the run on {QUICK_TRAIN_IMAGES:,} images")
    parser.add_argument("--no-training", action="store_true", help="idle server only (no solo run either)")
    parser.add_argument("--train-images", type=int, default=30_000, help="training images of the run (seed preset)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the positions and think times")
    parser.add_argument("--stroke-step", type=float, default=STROKE_STEP_PX,
                        help="pixels between the mouse moves of a pen stroke (about one per frame at 60 Hz)")
    parser.add_argument("--budget-minutes", type=float, default=12,
                        help="begin no new case after this long (the cases left are listed as skipped)")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    parser.add_argument("--log", type=Path, help="keep the server's log here (default: a temporary file)")
    args = parser.parse_args(argv)
    pages_list = [int(n) for n in args.pages.split(",") if n.strip()]
    if any(n < 1 for n in pages_list) or args.open_pages < 0 or not args.stroke_step > 0:
        parser.error("--pages: each number must be at least 1; --open-pages: at least 0; --stroke-step: above 0")
    seconds, train_images = args.seconds, args.train_images
    cases = plan(pages_list, args.open_pages, seconds)
    if args.quick:
        seconds, train_images, cases = QUICK_SECONDS, QUICK_TRAIN_IMAGES, quick_plan()
    if args.no_training:
        cases = [c for c in cases if not c.training]

    started = time.monotonic()
    signal.signal(signal.SIGTERM, _interrupt)  # `timeout` or a CI kill: stop the server and browser on the way out
    try:
        cases, problems, skipped = asyncio.run(benchmark(cases, train_images, args.seed, args.log,
                                                         args.budget_minutes * 60, args.json, args.stroke_step))
    except KeyboardInterrupt as exc:
        print(f"interrupted ({exc or 'Ctrl-C'}): no table", file=sys.stderr)
        return 130
    wall = time.monotonic() - started

    print()
    run = "" if args.no_training else f", the run: seed preset on {train_images:,} images"
    print(f"Load benchmark: {seconds:g} s of drawing per case{run}; the browsers share this machine's cores with "
          "the server.")
    print()
    print(table(cases))
    print()
    for c in cases:
        print(f"- {c.name}: {notes(c)}")
    cap = capacity(cases)
    print()
    print(capacity_table(cap))
    print()
    for line in targets(cases):
        print(f"target check: {line}")
    if skipped:
        print(f"skipped (over --budget-minutes): {', '.join(skipped)}")
    if problems:
        print("server log lines that look like errors:")
        for line in problems:
            print(f"  {line[:300]}")
    print(f"total {wall:.0f} s")
    write_json(args.json, cases, seconds=seconds, train_images=train_images, stroke_step=args.stroke_step,
               wall_s=round(wall, 1), server_log_problems=problems, skipped=skipped,
               capacity=asdict(cap) if cap else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
