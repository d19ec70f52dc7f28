"""The benchmarks run end to end in --quick form (CI proves they work; no test asserts a time), and the handwriting
benchmark's parts: every unseen set read by each model, pen digits read writer-disjoint by tiny fold models (trained
once for this file), missing sets named, and a fold model that saw its writers retrained."""

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


def test_quick_benchmark_prints_every_table_and_reads_every_unseen_set_for_each_model(saved_model, eval_dir, folds,
                                                                                       capsys):
    assert cli.main(["benchmark", "--quick", "--eval-dir", str(eval_dir), "--models", str(saved_model),
                     "--fold-dir", str(folds)]) == 0
    out = capsys.readouterr().out
    assert "| tensorflow |" in out and "| auto precision |" in out  # the machine it ran on
    for preset in ("seed", "fast", "best"):
        assert re.search(rf"^\| {preset} \| 1 \| .+ \| \d+ s \| \d+\.\d\d% \| [\d,]+ \| \d+\.\d\d× \|$", out, re.M), preset
    assert re.search(r"^\| seed \| .* \| 1\.00× \|$", out, re.M)  # the baseline is measured in the same run
    assert re.search(r"^\| cost \| -?\d+\.\d% \|$", out, re.M)
    for what in ("one image the network is sure of", "one image it is unsure of", "one test digit after another",
                 "the network alone, one image", "model.predict, one image",
                 "preprocess_drawing, 280×280 canvas", "1,000 test images"):  # --quick: 1,000
        assert re.search(rf"^\| [^|]*{re.escape(what)}[^|]* \| \d+\.\d\d ms \| \d+\.\d\d ms \|$", out, re.M), what

    # the handwriting sets, each read by every model that never trained on it
    unseen = {"shipped": MEASURING_SETS, str(saved_model): (*MEASURING_SETS, "pendigits")}  # it trained on MNIST only
    for model, sets in unseen.items():
        for name in evalsets.LOADERS:
            row = re.search(rf"^\| {re.escape(model)} \| {name} \| 100 \| \d+\.\d\d% \| \d+\.\d\d% \| [-+]\d+\.\d\d "
                            rf"\| \d: \d+\.\d%( \(as \d\))? \|$", out, re.M)
            assert bool(row) == (name in sets), (model, name)
        assert re.search(rf"^\| {re.escape(model)} \| mean \| ", out, re.M)
        assert re.search(rf"^\| {re.escape(model)} \| MNIST test \| 1,000 \| \d+\.\d\d% \|", out, re.M)
        assert re.search(rf"^\| {re.escape(model)} \| MNIST test, the network alone \| 1,000 \| \d+\.\d\d% \|", out,
                         re.M)
    assert "missing" not in out

    # pen digits writer-disjoint: each fold's writers read by the fold's own model, then all 30 writers
    for fold, (first, last) in enumerate([(1, 6), (7, 12), (13, 18), (19, 24), (25, 30)], start=1):
        assert re.search(rf"^\| fold {fold} \| {first}-{last} \| 60 \| \d+\.\d\d% \| \d+\.\d\d% \| \d+: ", out, re.M)
    assert re.search(r"^\| \*\*all writers\*\* \| 1-30 \| 300 \| ", out, re.M)
    assert sorted(p.name for p in (folds / "quick").glob("*.keras")) == [f"pen-fold-{k}.keras" for k in range(1, 6)]

    # the personal benchmark: writers 1 and 2 teach their fold's model (which never saw them), read before and after
    writers = re.findall(r"^\| (\d+) \| (\d+) \| (\d+) \| \d+\.\d\d% \| \d+\.\d\d% \| .+ \| \d+\.\d+ \|$", out, re.M)
    assert [w for w, _, _ in writers] == ["1", "2"], writers
    assert all(int(taught) >= 10 and int(tested) > 0 for _, taught, tested in writers), writers
    assert re.search(r"^mean error rate: \d+\.\d\d% before, \d+\.\d\d% after; MNIST [+-]\d+\.\d\d points", out, re.M)


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
