"""The handwriting benchmark in its --quick form: every unseen set read by each model, pen digits read
writer-disjoint by tiny fold models, missing sets named, and a fold model that saw its writers retrained.
(Its own file, so that pytest-xdist runs it beside tests/test_benchmark.py.)"""

from __future__ import annotations

import json
import re

import pytest

from mnist_core import benchmark_pen, cli, evalsets, pendigits
from mnist_core.benchmark import MEASURING_SETS
from mnist_core.store import read_info, sidecar_path


@pytest.fixture(scope="module")
def folds(tmp_path_factory):
    """The quick benchmark's fold models, trained by the first test that needs them and reused by the rest."""
    return tmp_path_factory.mktemp("folds")


def test_quick_handwriting_benchmark_reads_every_unseen_set_for_each_model(saved_model, eval_dir, folds, capsys):
    assert cli.main(["benchmark", "--quick", "--only", "handwriting", "--eval-dir", str(eval_dir),
                     "--models", str(saved_model), "--fold-dir", str(folds)]) == 0
    out = capsys.readouterr().out
    unseen = {"shipped": MEASURING_SETS, str(saved_model): (*MEASURING_SETS, "pendigits")}  # it trained on MNIST only
    for model, sets in unseen.items():
        for name in evalsets.LOADERS:
            row = re.search(rf"^\| {re.escape(model)} \| {name} \| 100 \| \d+\.\d\d% \| \d+\.\d\d% \| [-+]\d+\.\d\d "
                            rf"\| \d: \d+\.\d%( \(as \d\))? \|$", out, re.M)
            assert bool(row) == (name in sets), (model, name)
        assert re.search(rf"^\| {re.escape(model)} \| mean \| ", out, re.M)
        assert re.search(rf"^\| {re.escape(model)} \| MNIST test \| 1,000 \| \d+\.\d\d% \|", out, re.M)
    # pen digits writer-disjoint: each fold's writers read by the fold's own model, then all 30 writers
    for fold, (first, last) in enumerate([(1, 6), (7, 12), (13, 18), (19, 24), (25, 30)], start=1):
        assert re.search(rf"^\| fold {fold} \| {first}-{last} \| 60 \| \d+\.\d\d% \| \d+\.\d\d% \| \d+: ", out, re.M)
    assert re.search(r"^\| \*\*all writers\*\* \| 1-30 \| 300 \| ", out, re.M)
    assert sorted(p.name for p in (folds / "quick").glob("*.keras")) == [f"pen-fold-{k}.keras" for k in range(1, 6)]
    assert "missing" not in out


def test_handwriting_benchmark_says_which_sets_are_missing(tmp_path, folds, capsys):
    assert cli.main(["benchmark", "--quick", "--only", "handwriting", "--eval-dir", str(tmp_path),
                     "--fold-dir", str(folds)]) == 0
    out = capsys.readouterr().out
    for name in MEASURING_SETS:
        assert f"missing: The {name} handwriting set is missing: {tmp_path / name}" in out
    assert re.search(r"^\| shipped \| MNIST test \| 1,000 \| ", out, re.M)  # the rest still runs
    assert re.search(r"^\| \*\*all writers\*\* \| 1-30 \| ", out, re.M)  # the pen digits ship with the studio


def test_a_fold_model_that_saw_its_own_writers_is_trained_again(folds):
    writers = pendigits.folds(pendigits.load().writers)[0]
    path = benchmark_pen.fold_model(folds, 0, writers, quick=True)  # made by the benchmark above, or now
    side = sidecar_path(path)
    sidecar = json.loads(side.read_text())
    sidecar["config"]["pen_skip_writers"] = []  # as if it had trained on every writer
    side.write_text(json.dumps(sidecar))
    said = []
    assert benchmark_pen.fold_model(folds, 0, writers, quick=True, say=said.append) == path
    assert said[0].startswith(f"{path} was trained another way (pen_skip_writers [],")
    assert read_info(path).config["pen_skip_writers"] == list(writers)
    assert read_info(path).trained_on == pendigits.describe(True, writers, benchmark_pen.QUICK["train_subset"])
