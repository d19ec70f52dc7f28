"""The classroom load benchmark (benchmarks/load.py) in its quick form: it runs, every page case draws and each
drawing is read right, the runs train and are stopped, and the server's capacity comes out of it.

The quick form has each kind of case once, briefly, with its own server and Chromium. Speeds, latencies and CPU
shares belong to the benchmark's printout, not here: this checks behaviour only. The printout is shown with
`pytest -s` or when a test fails.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from e2e_helpers import ROOT

BENCHMARK = ROOT / "benchmarks" / "load.py"
QUICK_CASES = ["solo", "1 open idle", "1 training", "1 idle"]  # benchmarks/load.py's quick_plan
CAPACITY = ("cpu_per_idle_page", "cpu_per_answer_s", "answers_per_core_s", "pupils_per_core")


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("load") / "load.json"
    proc = subprocess.run([sys.executable, str(BENCHMARK), "--quick", "--json", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    print(proc.stdout[-6000:])
    assert proc.returncode == 0, f"benchmarks/load.py --quick failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    report = json.loads(out.read_text())
    return {"cases": {c["name"]: c for c in report["cases"]}, "json": report, "stdout": proc.stdout}


def _tables(stdout: str) -> list[list[str]]:
    """The printed Markdown tables, each as its lines."""
    tables: list[list[str]] = []
    previous = ""
    for line in stdout.splitlines():
        if line.startswith("|"):
            if not previous.startswith("|"):
                tables.append([])
            tables[-1].append(line)
        previous = line
    return tables


def test_the_quick_run_prints_and_writes_a_row_per_case(quick):
    assert [c["name"] for c in quick["json"]["cases"]] == QUICK_CASES
    assert quick["json"]["skipped"] == []
    cases, capacity = _tables(quick["stdout"])
    assert cases[0].startswith("| pages | training | drawings | p50 ms | p95 ms | unanswered | wrong |")
    assert len(cases) == 2 + len(QUICK_CASES), cases  # the header and its rule, then a row a case
    assert capacity[0] == "| measure | value | from |"
    assert len(capacity) == 2 + len(CAPACITY), capacity


def test_every_page_case_opened_its_pages_and_every_drawing_was_read_right(quick):
    for name in QUICK_CASES[1:]:
        case = quick["cases"][name]
        assert case["pages_opened"] == case["pages"], case
        assert case["errors"] == [] and case["exception_boxes"] == 0, case
        assert case["server_peak_mb"] > 100, case  # the server's memory was sampled
        if case["drawing"]:
            assert case["drawings"] >= case["pages"], case  # each page drew at least once
            assert (case["unanswered"], case["wrong"], case["clear_failures"]) == (0, 0, 0), case
            assert case["p50_ms"] > 0 and case["p95_ms"] >= case["p50_ms"], case


def test_each_run_trained_in_its_own_process_and_was_stopped(quick):
    solo = quick["cases"]["solo"]["images_per_s"]
    for name in ("solo", "1 training"):
        case = quick["cases"][name]
        assert case["children_peak_mb"] > 100, case  # the training process, TensorFlow loaded, beside the server
        assert case["cpu_s"]["training"] > 0, case
        assert case["run_status"] == "stopped", case  # runs.jsonl: Stop ended it (written once the process ended)
        assert (case["images_per_s"] is None) == (case["full_epochs"] == 0), case  # a speed needs a whole epoch
        ratio = None if None in (case["images_per_s"], solo) else pytest.approx(case["images_per_s"] / solo)
        assert case["vs_solo"] == ratio, case
    for name in ("1 open idle", "1 idle"):
        assert quick["cases"][name]["run_status"] is None


def test_the_server_capacity_comes_from_the_cases_with_no_run(quick):
    capacity = quick["json"]["capacity"]
    for key in CAPACITY:
        assert math.isfinite(capacity[key]) and capacity[key] > 0, capacity
    assert (capacity["idle_case"], capacity["drawing_cases"]) == ("1 open idle", ["1 idle"])
    assert capacity["answers"] == quick["cases"]["1 idle"]["drawings"]  # every drawing answered
    assert capacity["answers_per_core_s"] == pytest.approx(1 / capacity["cpu_per_answer_s"])
    pupils = next(line for line in _tables(quick["stdout"])[1] if line.startswith("| pupils one server core"))
    assert f"| {capacity['pupils_per_core']:,.0f} |" in pupils


def test_one_idle_page_reports_its_answer_times_with_the_canvas_send_delay(quick):
    case = quick["cases"]["1 idle"]
    line = next(line for line in quick["stdout"].splitlines() if line.startswith("target check: 1 page, idle server"))
    assert f"p50 {case['p50_ms']:,.0f} ms (target ≤ 500), p95 {case['p95_ms']:,.0f} ms" in line
    assert "include the canvas's fixed 200 ms send delay" in line
