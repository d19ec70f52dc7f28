"""The benchmarks run end to end in --quick mode (CI proves they work; no test asserts a time)."""

from __future__ import annotations

import re

from mnist_core import cli, evalsets
from mnist_core.benchmark import MEASURING_SETS


def test_quick_benchmark_prints_every_table(capsys, monkeypatch, eval_dir, tmp_path):
    monkeypatch.setenv(evalsets.ENV_VAR, str(eval_dir))  # the vendored slices
    assert cli.main(["benchmark", "--quick", "--fold-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| tensorflow |" in out and "| auto precision |" in out  # the machine it ran on
    for preset in ("seed", "fast", "best"):
        assert re.search(rf"^\| {preset} \| 1 \| .+ \| \d+ s \| \d+\.\d\d% \| [\d,]+ \| \d+\.\d\d× \|$", out, re.M), preset
    assert re.search(r"^\| seed \| .* \| 1\.00× \|$", out, re.M)  # the baseline is measured in the same run
    assert re.search(r"^\| cost \| -?\d+\.\d% \|$", out, re.M)
    for what in ("Predictor.predict_proba, one image", "model.predict, one image",
                 "preprocess_drawing, 280×280 canvas", "10,000 test images"):
        assert re.search(rf"^\| [^|]*{re.escape(what)}[^|]* \| \d+\.\d\d ms \| \d+\.\d\d ms \|$", out, re.M), what
    for name in MEASURING_SETS:
        assert re.search(rf"^\| shipped \| {name} \| 100 \| ", out, re.M), name
    assert re.search(r"^\| \*\*all writers\*\* \| 1-30 \| 300 \| ", out, re.M)  # pen digits, writer-disjoint
    # the personal benchmark: writers 1 and 2 teach their fold's model (which never saw them), read before and after
    writers = re.findall(r"^\| (\d+) \| (\d+) \| (\d+) \| \d+\.\d\d% \| \d+\.\d\d% \| .+ \| \d+\.\d+ \|$", out, re.M)
    assert [w for w, _, _ in writers] == ["1", "2"], writers
    assert all(int(taught) >= 10 and int(tested) > 0 for _, taught, tested in writers), writers
    assert re.search(r"^mean error rate: \d+\.\d\d% before, \d+\.\d\d% after; MNIST [+-]\d+\.\d\d points", out, re.M)
