"""Real handwriting drawn on the studio's canvas and read through preprocess_drawing: the shipped
model's bars on the vendored sets (tests/data/eval), and the handwriting benchmark's scoring. The
benchmark itself runs in tests/test_benchmark.py."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_core import evalsets, handwriting
from mnist_core.canvas import CANVAS_PX, DEFAULT_STROKE_WIDTH
from mnist_core.predict import Predictor

# Bars for the shipped model, a little under what it reads on these slices (default / random way):
# HwD-1000, whole here, 1,000 digits: 99.9% / 99.8%; the first 200 Semeion scans: 94.5% / 94.0% (the full
# sets' figures are in docs/handwriting.md). It trained on all the pen digits: they are read writer-disjoint,
# by fold models (mnist_core.benchmark_pen).
BARS = {"hwd1000": 0.995, "semeion": 0.92}


@pytest.fixture(scope="module")
def shipped():
    return Predictor.load()


@pytest.mark.parametrize("name", list(BARS))
@pytest.mark.parametrize("way", handwriting.WAYS)
def test_shipped_model_reads_real_handwriting_drawn_on_the_canvas(shipped, eval_dir, name, way):
    digits = evalsets.load(name, eval_dir)
    result = handwriting.score(shipped.predict(handwriting.model_inputs(digits, way)), digits.labels)
    assert result.n == len(digits)
    assert result.accuracy >= BARS[name], (
        f"{name}, {way} way: {result.accuracy:.2%} < {BARS[name]:.1%}; worst digit {result.worst_digit} "
        f"({result.per_digit[result.worst_digit]:.1%}, mostly read as {result.worst_confusion})")


def test_random_way_varies_pen_size_and_place_within_the_canvas_and_repeats(eval_dir):
    digits = evalsets.load("pendigits", eval_dir).head(40)
    images = list(handwriting.canvases(digits, "random", seed=3))
    again = list(handwriting.canvases(digits, "random", seed=3))
    assert all(np.array_equal(a, b) for a, b in zip(images, again))  # seeded
    ink = np.stack([i[..., 0] for i in images])
    assert not ink[:, 0, :].any() and not ink[:, -1, :].any() and not ink[:, :, 0].any() and not ink[:, :, -1].any()
    heights = [np.ptp(np.flatnonzero(i.any(axis=1))) for i in ink]
    centres = [np.flatnonzero(i.any(axis=0)).mean() for i in ink]
    assert min(heights) < 120 < max(heights)  # sizes from 60 to 250 px
    assert np.ptp(centres) > 60  # placed anywhere, not centred


def test_default_way_draws_at_the_default_width_and_size(eval_dir):
    digits = evalsets.load("pendigits", eval_dir).head(5)
    for image in handwriting.canvases(digits, "default"):
        ink = image[..., 0] > 127
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        longer = max(np.ptp(rows), np.ptp(cols)) + 1
        assert longer == pytest.approx(handwriting.DEFAULT_SIDE + DEFAULT_STROKE_WIDTH, abs=3)
        assert (rows[0] + rows[-1]) / 2 == pytest.approx(CANVAS_PX / 2, abs=DEFAULT_STROKE_WIDTH)


def test_score_finds_the_worst_digit_and_its_commonest_misreading(shipped, test_digits):
    x, y = test_digits
    wrong = y.copy()
    wrong[y == 3] = 8  # pretend every 3 is labelled 8: the model reads them as 3
    predicted = shipped.predict(x)
    result = handwriting.score(predicted, wrong)
    assert result.worst_digit == 8 and result.worst_confusion == 3
    # misread: the relabelled 3s, give or take the model's own few mistakes on these digits
    real_mistakes = int((predicted != y).sum())
    assert result.per_digit[8] < 0.5 and len(result.wrong) == pytest.approx((y == 3).sum(), abs=real_mistakes)
