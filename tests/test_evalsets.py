"""mnist_core.evalsets and mnist_core.canvas: the real handwriting sets (vendored slices in
tests/data/eval) parsed right, and drawn on canvas images the way the studio's canvas draws."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mnist_core import evalsets
from mnist_core.canvas import CANVAS_PX, draw_bitmap, draw_strokes, to_rgba

def labels_csv(root: Path, name: str) -> list[int]:
    with (root / name / "labels.csv").open(newline="") as f:
        return [int(row["label"]) for row in csv.DictReader(f)]


def test_pendigits_strokes_labels_and_writers(eval_dir):
    digits = evalsets.load("pendigits", eval_dir)
    assert len(digits) == 300 and digits.labels.tolist() == labels_csv(eval_dir, "pendigits")
    assert digits.bitmaps is None and len(digits.strokes) == 300
    assert digits.labels[:3].tolist() == [8, 2, 1] and digits.writers[0] == 12  # ".COMMENT 8 12 224"
    assert sorted(set(digits.writers.tolist())) == list(range(1, 31))
    first = digits.strokes[0]
    assert len(first) == 1 and first[0].shape[1] == 2
    # The file's first point is (267, 333) with y growing upwards; on a canvas y grows downwards.
    np.testing.assert_array_equal(first[0][0], [267, evalsets.PENDIGITS_BOX - 333])
    assert max(len(d) for d in digits.strokes) >= 2  # multi-stroke digits keep their strokes apart


def test_semeion_bitmaps_and_labels(eval_dir):
    digits = evalsets.load("semeion", eval_dir)
    assert len(digits) == 200 and digits.labels.tolist() == labels_csv(eval_dir, "semeion")
    assert digits.bitmaps.shape == (200, 16, 16) and digits.bitmaps.dtype == np.uint8
    assert set(np.unique(digits.bitmaps).tolist()) == {0, 255}  # binary scans, ink white
    assert 0.2 < (digits.bitmaps > 0).mean() < 0.6


def test_hwd1000_is_inverted_to_white_ink(eval_dir):
    digits = evalsets.load("hwd1000", eval_dir)
    assert len(digits) == 1000 and np.bincount(digits.labels).tolist() == [100] * 10
    assert digits.bitmaps.shape == (1000, 28, 28)
    assert np.median(digits.bitmaps[:, 0, :]) == 0  # the border is background: black after inverting


def test_head_takes_the_first_digits(eval_dir):
    digits = evalsets.load("pendigits", eval_dir).head(10)
    assert len(digits) == 10 and len(digits.strokes) == 10 and len(digits.writers) == 10


def test_missing_set_says_where_it_looked(tmp_path, eval_dir):
    with pytest.raises(evalsets.EvalSetMissing, match=f"{tmp_path}.*semeion.data"):
        evalsets.load("semeion", tmp_path)
    with pytest.raises(ValueError, match="Unknown handwriting set"):
        evalsets.load("emnist", eval_dir)


def test_eval_dir_follows_the_environment(monkeypatch, tmp_path, eval_dir):
    monkeypatch.setenv(evalsets.ENV_VAR, str(tmp_path))
    assert evalsets.eval_dir() == tmp_path
    assert evalsets.eval_dir(eval_dir) == eval_dir


def test_strokes_are_drawn_round_and_anti_aliased_at_the_asked_size():
    line = [np.array([[0.0, 0.0], [0.0, 100.0]])]  # one vertical stroke
    image = draw_strokes(line, width=20, side=200, centre=(140, 140))
    assert image.shape == (CANVAS_PX, CANVAS_PX, 4) and image.dtype == np.uint8
    assert (image[..., 3] == 255).all() and (image[..., 0] == image[..., 1]).all()  # opaque, grey
    ink = image[..., 0]
    rows, cols = np.flatnonzero(ink.max(axis=1) > 127), np.flatnonzero(ink.max(axis=0) > 127)
    assert rows[-1] - rows[0] + 1 == pytest.approx(200 + 20, abs=2)  # the path's 200 px plus the round caps
    assert cols[-1] - cols[0] + 1 == pytest.approx(20, abs=2)
    assert 0 < np.count_nonzero((ink > 0) & (ink < 255)) < 2 * np.count_nonzero(ink == 255)  # soft edges
    # The path runs from y = 40 to y = 240; its round cap reaches 10 px (half the width) beyond each end.
    assert ink[33, 140] > 127 and ink[247, 140] > 127
    assert ink[26, 140] == 0 and ink[254, 140] == 0 and ink[33, 131] < 64  # a cap is round, not square


def test_two_strokes_are_not_joined():
    strokes = [np.array([[0.0, 0.0], [0.0, 100.0]]), np.array([[100.0, 0.0], [100.0, 100.0]])]
    ink = draw_strokes(strokes, width=10, side=200)[..., 0]
    assert ink[140, 140] == 0  # between the two bars
    assert ink[140, 40] == 255 and ink[140, 240] == 255


def test_bitmap_is_scaled_and_placed():
    bitmap = np.zeros((16, 16), np.uint8)
    bitmap[2:14, 6:10] = 255  # a bar 12 high, 4 wide
    ink = draw_bitmap(bitmap, side=120, centre=(60, 200))[..., 0]
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    assert rows[-1] - rows[0] + 1 == 120 and cols[-1] - cols[0] + 1 == 40
    assert (rows[0] + rows[-1]) / 2 == pytest.approx(200, abs=1) and (cols[0] + cols[-1]) / 2 == pytest.approx(60, abs=1)
    np.testing.assert_array_equal(to_rgba(ink)[..., 2], ink)
