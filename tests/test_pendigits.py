"""The vendored pen digits: the data itself, its folds by writer, and its drawings for training."""

import hashlib

import numpy as np
import pytest

from mnist_core import evalsets, pendigits
from mnist_core.data import MAX_SLANT

SHA256 = {  # each array's bytes, as scripts/vendor_pendigits.py wrote them from UCI's pendigits-orig.tra (md5 28e269fb...)
    "points": "293e1c5e162ec6861925b9a04aa8cb04ac7708cdb0610b88859f4614acfe04f0",
    "stroke_ends": "8a8faef3e92f2d094dafbc6cd836f15129151f852da2d94bed13302ae0c594e1",
    "digit_ends": "926b57934987999f6c8ea7b5ee89a8648b6d6f8b3474579b67af3fa8a1d9b4dc",
    "labels": "05ba508605b9900deff899fc2589107537449f7f4c091cbdf868cf77725603b7",
    "writers": "b37e673ea927eb01f04e7adefec2b0baa8587b2cd77253692fa43c64572f1d86",
}
COUNTS = [780, 779, 780, 719, 780, 720, 720, 778, 719, 719]  # per digit, UCI's published counts for the 30 writers


@pytest.fixture(scope="module")
def pen():
    return pendigits.load()


def test_the_vendored_arrays_match_their_recorded_checksums():
    with np.load(pendigits.VENDORED_NPZ, allow_pickle=False) as f:
        assert sorted(f.files) == sorted(SHA256)
        for name, digest in SHA256.items():
            assert hashlib.sha256(np.ascontiguousarray(f[name]).tobytes()).hexdigest() == digest, name


def test_thirty_writers_and_the_published_counts(pen):
    assert len(pen) == 7494 and len(pen.strokes) == 7494
    assert np.bincount(pen.labels, minlength=10).tolist() == COUNTS
    assert np.unique(pen.writers).tolist() == list(range(1, 31))
    assert all(247 <= n <= 250 for n in np.bincount(pen.writers)[1:])


def test_the_vendored_strokes_are_the_original_files_strokes(pen, eval_dir):
    """The test suite's UNIPEN slice (the first 300 digits of the original file) parses to the same strokes."""
    original = evalsets.load_pendigits(eval_dir)
    assert len(original) == 300
    assert (pen.labels[:300] == original.labels).all() and (pen.writers[:300] == original.writers).all()
    for ours, theirs in zip(pen.strokes, original.strokes):
        assert len(ours) == len(theirs) and all(np.array_equal(a, b) for a, b in zip(ours, theirs))


def test_five_folds_of_six_writers_that_never_overlap(pen):
    folds = pendigits.folds(pen.writers)
    assert len(folds) == pendigits.FOLDS == 5
    assert [len(f) for f in folds] == [6] * 5
    assert sorted(w for f in folds for w in f) == list(range(1, 31))
    held = pendigits.select(pen, folds[2], keep=True)
    rest = pendigits.select(pen, folds[2], keep=False)
    assert set(held.writers.tolist()) == set(folds[2]) and not set(rest.writers.tolist()) & set(folds[2])
    assert len(held) + len(rest) == len(pen)


def test_drawings_for_training_are_mnist_like_and_seeded(pen):
    few = pen.head(40)
    x, y = pendigits.render(few, variants=2, seed=3)
    assert x.shape == (80, 28, 28) and x.dtype == np.uint8 and y.tolist() == few.labels.tolist() * 2
    assert (x.reshape(80, -1).max(axis=1) > 200).all()  # every digit has ink
    ink = x.astype(float)
    rows = (ink.sum(axis=2) * np.arange(28)).sum(axis=1) / ink.sum(axis=(1, 2))
    cols = (ink.sum(axis=1) * np.arange(28)).sum(axis=1) / ink.sum(axis=(1, 2))
    assert np.allclose(rows, 13.5, atol=1.5) and np.allclose(cols, 13.5, atol=1.5)  # centred by mass, as MNIST
    again, _ = pendigits.render(few, variants=2, seed=3)
    other, _ = pendigits.render(few, variants=2, seed=4)
    assert np.array_equal(x, again) and not np.array_equal(x, other)
    assert not np.array_equal(x[:40], x[40:])  # the two drawings of a digit differ (pen, size, place, slant)


def test_slant_shears_the_path_about_its_middle():
    stroke = np.array([[0.0, 0.0], [0.0, 10.0], [0.0, 20.0]])  # a vertical bar, y growing downwards
    (leaning,) = pendigits.slanted((stroke,), MAX_SLANT)
    assert leaning[:, 1].tolist() == [0.0, 10.0, 20.0]
    assert leaning[:, 0].tolist() == pytest.approx([10 * MAX_SLANT, 0.0, -10 * MAX_SLANT])  # top to the right


def test_a_run_on_a_slice_of_mnist_takes_the_same_share_of_pen_digits(pen):
    share = pendigits.training_share(pen, 6000, 60000)
    assert len(share) == 749 and set(share.writers.tolist()) == set(range(1, 31))
    assert pendigits.training_share(pen, None, 60000) is pen
    assert len(pendigits.training_share(pen, 1, 60000)) == 1


def test_what_a_run_learned_from_in_words():
    assert pendigits.describe(False) == "MNIST"
    assert pendigits.describe(True) == "MNIST + 7,494 pen digits by 30 writers"
    assert pendigits.describe(True, (1, 2, 3, 4, 5, 6)) == "MNIST + 5,995 pen digits by 24 writers"
