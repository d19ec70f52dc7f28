"""mnist_core.data: the vendored MNIST, source order, clear errors, float conversion, tf.data pipelines."""

from __future__ import annotations

import hashlib
import socket

import numpy as np
import pytest

from mnist_core import data
from mnist_core.data import MnistDataError

SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ---------------------------------------------------------------- the data itself


def test_shapes_and_dtypes(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and x_test.dtype == np.uint8
    assert y_test.shape == (10000,) and y_test.dtype == np.uint8


def test_value_ranges(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    for x in (x_train, x_test):
        assert x.min() == 0 and x.max() == 255
        assert 0.10 < (x > 0).mean() < 0.25  # digits are mostly background: real images, not noise or blanks
    for y in (y_train, y_test):
        assert set(np.unique(y).tolist()) == set(range(10))


def test_class_counts(mnist):
    (_, y_train), (_, y_test) = mnist
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test, minlength=10).tolist() == TEST_COUNTS


def test_original_order(mnist):
    (_, y_train), (_, y_test) = mnist
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_vendored_copy_matches_the_recorded_checksums(mnist):
    """sha256 of each array's bytes, recorded from shared/data/mnist.npz (itself checked against the
    original IDX files); the file's own sha256 is 06af5dfe...1b64."""
    (x_train, y_train), (x_test, y_test) = mnist
    for name, ours in [("x_train", x_train), ("y_train", y_train), ("x_test", x_test), ("y_test", y_test)]:
        assert hashlib.sha256(np.ascontiguousarray(ours).tobytes()).hexdigest() == SHA256[name], name


# ---------------------------------------------------------------- where the file comes from


def test_resolve_path_order(monkeypatch, tmp_path):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    assert data.resolve_path() == data.VENDORED_NPZ
    assert data.VENDORED_NPZ.is_file()
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "env.npz"))
    assert data.resolve_path() == tmp_path / "env.npz"
    assert data.resolve_path(tmp_path / "explicit.npz") == tmp_path / "explicit.npz"
    assert data.resolve_path(str(tmp_path / "explicit.npz")) == tmp_path / "explicit.npz"


def test_env_var_beats_vendored_and_explicit_path_beats_env(mnist, monkeypatch, tmp_path):
    (x_train, y_train), (x_test, y_test) = mnist
    marked = y_train.copy()
    marked[0] = 7  # the vendored copy says 5: a copy we can tell apart
    env_file = tmp_path / "env.npz"
    np.savez(env_file, x_train=x_train, y_train=marked, x_test=x_test, y_test=y_test)

    monkeypatch.delenv(data.ENV_VAR, raising=False)
    assert data.load_mnist()[0][1][0] == 5  # vendored

    monkeypatch.setenv(data.ENV_VAR, str(env_file))
    assert data.load_mnist()[0][1][0] == 7  # $MNIST_NPZ beats the vendored copy
    assert data.load_mnist(data.VENDORED_NPZ)[0][1][0] == 5  # an explicit path beats $MNIST_NPZ

    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "nowhere.npz"))
    with pytest.raises(MnistDataError, match="nowhere.npz"):
        data.load_mnist()  # a broken $MNIST_NPZ is reported, not silently replaced by the vendored copy
    assert data.load_mnist(env_file)[0][1][0] == 7


# ---------------------------------------------------------------- clear errors


def test_missing_file(tmp_path):
    missing = tmp_path / "no-such-mnist.npz"
    with pytest.raises(MnistDataError) as err:
        data.load_mnist(missing)
    assert str(missing) in str(err.value)
    assert "not found" in str(err.value)


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(MnistDataError, match="not found"):
        data.load_mnist(tmp_path)


def test_truncated_copy(tmp_path):
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data.VENDORED_NPZ.read_bytes()[:1000])
    with pytest.raises(MnistDataError) as err:
        data.load_mnist(truncated)
    assert str(truncated) in str(err.value)


def test_text_file(tmp_path):
    text = tmp_path / "mnist.npz"
    text.write_text("this is not an npz archive\n" * 20)
    with pytest.raises(MnistDataError) as err:
        data.load_mnist(text)
    assert str(text) in str(err.value)


def test_wrong_shapes(tmp_path):
    bad = tmp_path / "small.npz"
    np.savez(bad, x_train=np.zeros((10, 28, 28), np.uint8), y_train=np.zeros(10, np.uint8),
             x_test=np.zeros((5, 28, 28), np.uint8), y_test=np.zeros(5, np.uint8))
    with pytest.raises(MnistDataError) as err:
        data.load_mnist(bad)
    message = str(err.value)
    assert str(bad) in message and "x_train" in message and "(60000, 28, 28)" in message


def test_wrong_dtype(mnist, tmp_path):
    (x_train, y_train), (x_test, y_test) = mnist
    bad = tmp_path / "int64.npz"
    np.savez(bad, x_train=x_train, y_train=y_train.astype(np.int64), x_test=x_test, y_test=y_test)
    with pytest.raises(MnistDataError) as err:
        data.load_mnist(bad)
    assert str(bad) in str(err.value) and "y_train" in str(err.value) and "int64" in str(err.value)


def test_missing_arrays(tmp_path):
    bad = tmp_path / "half.npz"
    np.savez(bad, x_train=np.zeros((60000, 28, 28), np.uint8), y_train=np.zeros(60000, np.uint8))
    with pytest.raises(MnistDataError) as err:
        data.load_mnist(bad)
    message = str(err.value)
    assert str(bad) in message and "x_test" in message and "y_test" in message


def test_pickled_objects_are_refused(tmp_path):
    bad = tmp_path / "pickled.npz"
    np.savez(bad, x_train=np.array([{"evil": 1}], dtype=object), y_train=np.zeros(3, np.uint8),
             x_test=np.zeros(3, np.uint8), y_test=np.zeros(3, np.uint8))
    with pytest.raises(MnistDataError) as err:
        data.load_mnist(bad)
    assert str(bad) in str(err.value)


@pytest.mark.timeout(60)
def test_keras_download_fails_fast_without_network(monkeypatch, tmp_path):
    """There is no internet here: the download option must fail quickly with a clear MnistDataError."""
    import keras.src.backend.config as keras_config

    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path))  # no cached download can answer instead
    before = socket.getdefaulttimeout()
    with pytest.raises(MnistDataError) as err:  # the test's timeout bounds the wait (docs/testing.md)
        data.load_mnist(data.KERAS_SOURCE)
    assert "network" in str(err.value)
    assert socket.getdefaulttimeout() == before  # the process-wide socket timeout is restored


# ---------------------------------------------------------------- preparation


def test_to_float_images(mnist):
    (x_train, _), _ = mnist
    x = x_train[:100]
    f = data.to_float_images(x)
    assert f.shape == (100, 28, 28, 1) and f.dtype == np.float32
    assert f.min() == 0.0 and f.max() == 1.0
    np.testing.assert_allclose(f[..., 0], x / 255.0, rtol=0, atol=1e-7)


def test_subset(mnist):
    train_split, _ = mnist
    x, y = data.subset(train_split, 5)
    assert x.shape == (5, 28, 28) and y.tolist() == [5, 0, 4, 1, 9]
    np.testing.assert_array_equal(x, train_split[0][:5])
    x_all, y_all = data.subset(train_split, None)
    assert x_all is train_split[0] and y_all is train_split[1]
    assert len(data.subset(train_split, 10**9)[0]) == 60000


def _labels(ds) -> list[int]:
    return np.concatenate([y.numpy() for _, y in ds]).tolist()


def test_make_dataset_batches(mnist):
    (x_train, y_train), _ = mnist
    x, y = x_train[:1000], y_train[:1000]
    batches = list(data.make_dataset(x, y, 64, shuffle=False, seed=0))
    assert len(batches) == 16  # 15 full batches of 64 and one of 40
    for i, (xb, yb) in enumerate(batches):
        n = 40 if i == 15 else 64
        assert tuple(xb.shape) == (n, 28, 28, 1) and xb.dtype.name == "float32"
        assert tuple(yb.shape) == (n,) and yb.dtype.name == "int32"
    xs = np.concatenate([xb.numpy() for xb, _ in batches])
    assert xs.min() == 0.0 and xs.max() == 1.0
    np.testing.assert_allclose(xs, data.to_float_images(x), rtol=0, atol=1e-7)  # unshuffled: original order
    assert _labels(batches) == y.tolist()


def test_make_dataset_seeded_shuffle(mnist):
    (x_train, y_train), _ = mnist
    x, y = x_train[:1000], y_train[:1000]
    first = _labels(data.make_dataset(x, y, 100, shuffle=True, seed=1))
    again = _labels(data.make_dataset(x, y, 100, shuffle=True, seed=1))
    other = _labels(data.make_dataset(x, y, 100, shuffle=True, seed=2))
    assert first == again
    assert first != other
    assert first != y.tolist()  # actually shuffled
    assert sorted(first) == sorted(y.tolist()) == sorted(other)  # a permutation: nothing lost or repeated


def test_make_dataset_reshuffles_each_epoch(mnist):
    (x_train, y_train), _ = mnist
    ds = data.make_dataset(x_train[:500], y_train[:500], 50, shuffle=True, seed=3)
    epoch1, epoch2 = _labels(ds), _labels(ds)
    assert epoch1 != epoch2 and sorted(epoch1) == sorted(epoch2)


def test_augmentation_is_seeded_and_keeps_digits_recognisable(mnist):
    (x_train, y_train), _ = mnist
    x, y = x_train[:256], y_train[:256]
    plain = np.concatenate([xb.numpy() for xb, _ in data.make_dataset(x, y, 64, shuffle=False, seed=0)])
    runs = [np.concatenate([xb.numpy() for xb, _ in data.make_dataset(x, y, 64, shuffle=False, seed=s,
                                                                       augment=True)]) for s in (5, 5, 6)]
    np.testing.assert_array_equal(runs[0], runs[1])  # same seed, same distortions
    assert not np.array_equal(runs[0], runs[2])
    aug = runs[0]
    assert aug.shape == plain.shape and aug.dtype == np.float32
    assert aug.min() >= 0.0 and aug.max() <= 1.0
    assert not np.allclose(aug, plain)
    ink_ratio = aug.sum(axis=(1, 2, 3)) / plain.sum(axis=(1, 2, 3))  # zoom of +-10% scales ink by ~0.8-1.2
    assert 0.7 < ink_ratio.min() and ink_ratio.max() < 1.35
    corr = [np.corrcoef(a.ravel(), p.ravel())[0, 1] for a, p in zip(aug, plain)]
    assert np.median(corr) > 0.5  # still the same digit, moved a little


def test_slant_leans_strokes_further_than_rotation():
    bar = np.zeros((256, 28, 28), np.uint8)
    bar[:, 4:24, 13:15] = 255  # an upright stroke, 20 px tall
    rows, cols = np.mgrid[0:28, 0:28]

    def leans(seed=1, **kinds):  # columns moved per row down each stroke (its ink's least-squares slope)
        out = _batches(data.make_dataset(bar, np.ones(256, np.uint8), 64, shuffle=False, seed=seed, **kinds))[..., 0]
        w = out / out.sum(axis=(1, 2), keepdims=True)
        r, c = (w * rows).sum(axis=(1, 2), keepdims=True), (w * cols).sum(axis=(1, 2), keepdims=True)
        return np.abs((w * (rows - r) * (cols - c)).sum(axis=(1, 2)) / (w * (rows - r) ** 2).sum(axis=(1, 2)))

    rotated, slanted, both = leans(augment=True), leans(slant=True), leans(augment=True, slant=True)
    assert rotated.max() < np.tan(data.MAX_ROTATION) + 0.03
    assert 0.8 * data.MAX_SLANT < slanted.max() < data.MAX_SLANT + 0.03
    assert 0.25 * data.MAX_SLANT < np.median(slanted) < 0.75 * data.MAX_SLANT  # spread over the range
    assert rotated.max() + 0.1 < both.max() < np.tan(data.MAX_ROTATION) + data.MAX_SLANT + 0.05
    np.testing.assert_array_equal(leans(slant=True), slanted)  # seeded
    assert not np.allclose(leans(seed=2, slant=True), slanted)


def _batches(ds) -> np.ndarray:
    return np.concatenate([xb.numpy() for xb, _ in ds])


def test_style_augmentation_flags_some_ones_and_crosses_some_sevens_only(mnist):
    import tensorflow as tf

    tf.random.set_seed(0)  # Dataset.random's draws also follow the global seed, which training tests set
    (x_train, y_train), _ = mnist
    x, y = x_train[:512], y_train[:512]
    plain = _batches(data.make_dataset(x, y, 128, shuffle=False, seed=0))
    styled = _batches(data.make_dataset(x, y, 128, shuffle=False, seed=4, style=True))
    np.testing.assert_array_equal(styled, _batches(data.make_dataset(x, y, 128, shuffle=False, seed=4, style=True)))
    changed = np.abs(styled - plain).max(axis=(1, 2, 3)) > 0.5
    assert not changed[(y != 1) & (y != 7)].any()  # other digits are left alone
    for digit in (1, 7):
        share = changed[y == digit].mean()
        assert data.STYLE_SHARE - 0.15 < share < data.STYLE_SHARE + 0.15, (digit, share)
    assert (styled >= plain - 1e-6).all()  # ink is only added
    added = (styled - plain)[..., 0]
    assert (added[changed].sum(axis=(1, 2)) > 2).all() and (added[changed].sum(axis=(1, 2)) < 70).all()
    rows, cols = np.arange(28)[:, None], np.arange(28)[None, :]
    for i in np.flatnonzero(changed):
        ink_rows = np.flatnonzero(plain[i, ..., 0].max(axis=1) > 0.5)
        top, height = ink_rows[0], ink_rows[-1] - ink_rows[0] + 1
        new_ink = added[i] > 0.5
        stem_top = plain[i, top:top + 3, :, 0]
        stem_col = (stem_top * cols).sum() / stem_top.sum()  # where the stem starts
        if y[i] == 1:  # a flag from the top down to the left (and maybe a foot at the bottom)
            upper = new_ink & (rows < top + height / 2)
            assert upper.any() and (upper * cols).sum() / upper.sum() < stem_col, i  # to the left
            assert np.flatnonzero(upper.any(axis=1))[0] <= top + height / 3, i  # starts where the stem starts
        else:  # a crossbar across the middle of the stem
            bar_rows = np.flatnonzero(new_ink.any(axis=1))
            assert top + 0.3 * height <= bar_rows.mean() <= top + 0.7 * height, i
