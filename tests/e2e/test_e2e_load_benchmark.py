"""The classroom load benchmark (benchmarks/load.py) in its quick form: it runs, and what it measures makes sense.

A smoke run (pages 1 and 2, 15 s a case, a short training run, its own server and Chromium). Speed targets
belong to the benchmark's printout, not here: this checks behaviour only. The quick run prints its table,
shown with `pytest -s` or when the test fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from e2e_helpers import ROOT

BENCHMARK = ROOT / "benchmarks" / "load.py"
# (pages, training); 0 pages: the solo run, first and last
QUICK_CASES = [(0, True), (1, False), (1, True), (2, False), (2, True), (0, True)]
MIN_DRAWINGS = 2  # per page-case in 15 s, even on a busy 2-core box


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("load") / "load.json"
    proc = subprocess.run([sys.executable, str(BENCHMARK), "--quick", "--json", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=720)
    print(proc.stdout[-6000:])
    assert proc.returncode == 0, f"benchmarks/load.py --quick failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return {"json": json.loads(out.read_text()), "stdout": proc.stdout}


def _case(report: dict, pages: int, training: bool) -> dict:
    return next(c for c in report["json"]["cases"] if (c["pages"], c["training"]) == (pages, training))


def test_quick_load_benchmark_has_a_row_per_case(quick):
    cases = quick["json"]["cases"]
    assert [(c["pages"], c["training"]) for c in cases] == QUICK_CASES
    table = [line for line in quick["stdout"].splitlines() if line.startswith("| ")]
    assert table[0].startswith("| pages | training | drawings | p50 ms | p95 ms | unanswered | wrong |")
    assert len(table) == 1 + len(QUICK_CASES), table  # the header, then one row a case


def test_every_page_case_drew_and_was_answered(quick):
    for pages, training in QUICK_CASES[1:-1]:  # the page cases, between the two solo runs
        case = _case(quick, pages, training)
        assert case["drawings"] >= MIN_DRAWINGS, case
        answered = case["drawings"] - case["unanswered"]
        assert answered >= 1 and case["p50_ms"] is not None and case["p50_ms"] > 0, case
        assert case["exception_boxes"] == 0, case
        assert case["server_peak_mb"] and case["server_peak_mb"] > 100, case  # the server's RSS was sampled
        assert case["cores"].get("server") is not None and 0 < case["cores"]["server"] < 2, case  # its CPU measured


def test_cores_are_split_by_part_of_the_machine(quick):
    for case in quick["json"]["cases"]:
        cores = case["cores"]
        assert set(cores) == {"server", "training", "browsers", "driver", "machine"}, case
        parts = cores["server"] + cores["training"] + cores["browsers"] + cores["driver"]
        assert 0 < parts <= cores["machine"] * 1.1 + 0.1, case  # the parts are some of what the machine did
        assert cores["machine"] <= os.cpu_count() + 0.05, case
        if case["pages"]:
            assert cores["browsers"] > 0.02, case  # the pages' drawing and answers cost their Chromium
        if case["training"]:
            assert cores["training"] > 0.2, case  # the training process, not the server, trains


def test_one_idle_page_gets_every_drawing_read_right(quick):
    case = _case(quick, 1, False)
    assert case["unanswered"] == 0, case
    assert case["wrong"] == 0, case


def test_training_rows_measure_the_run(quick):
    first, last = [c for c in quick["json"]["cases"] if c["pages"] == 0]
    assert (first["name"], last["name"]) == ("solo", "solo again")
    for solo in (first, last):
        assert solo["images_per_s"] and solo["images_per_s"] > 0, solo
    baseline = (first["images_per_s"] + last["images_per_s"]) / 2  # the two solo runs' mean
    assert first["vs_solo"] + last["vs_solo"] == pytest.approx(2.0)
    for pages in (1, 2):
        case = _case(quick, pages, True)
        assert case["full_epochs"] and case["full_epochs"] >= 1, case
        assert case["images_per_s"] and case["images_per_s"] > 0, case
        assert case["vs_solo"] == pytest.approx(case["images_per_s"] / baseline)
        assert case["children_peak_mb"] and case["children_peak_mb"] > 100, case  # the training process was seen
