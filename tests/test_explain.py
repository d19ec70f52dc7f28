"""mnist_core.explain: integrated-gradients saliency, first-layer filters and activation maps on real digits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from mnist_core.explain import Explainer
from mnist_core.model import build_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def explainer(trained) -> Explainer:
    return Explainer(trained.result.model)


@pytest.fixture(scope="module")
def digit(test_digits) -> np.ndarray:
    """A real 7 from the test split, read correctly by the tiny model."""
    x, y = test_digits
    return x[0]


def test_saliency_shape_range_and_answer(explainer, trained, digit):
    s = explainer.saliency(digit)
    logits = np.asarray(trained.result.model(digit[None, ..., None], training=False))[0]
    assert s.digit == int(np.argmax(logits)) == 7
    assert s.attribution.shape == (28, 28) and s.attribution.dtype == np.float32
    assert np.isfinite(s.attribution).all()
    assert np.abs(s.attribution).max() == pytest.approx(1.0)  # normalised: the strongest pixel is +-1
    assert s.attribution.max() == pytest.approx(1.0)  # and the strongest pushes towards the answer


def test_saliency_is_complete(explainer, digit):
    """Integrated gradients add up to the logit's rise from a black image to the digit."""
    s = explainer.saliency(digit)
    assert s.logit_gain > 1
    assert s.total == pytest.approx(s.logit_gain, rel=0.05)


def test_saliency_highlights_ink_not_background(explainer, digit):
    s = explainer.saliency(digit)
    weight = np.abs(s.attribution)
    ink = digit > 0.3
    assert ink.sum() < 0.25 * digit.size  # most of the picture is background
    assert weight[ink].sum() > 0.9 * weight.sum()
    assert (weight[digit == 0] == 0).all()  # black pixels carry no attribution at all
    assert weight[ink].mean() > 20 * weight[~ink].mean()


def test_saliency_for_another_digit_and_for_a_blank_image(explainer, digit):
    other = explainer.saliency(digit, digit=1)
    assert other.digit == 1
    assert other.total == pytest.approx(other.logit_gain, rel=0.05, abs=0.05)
    blank = explainer.saliency(np.zeros((28, 28), np.float32))
    assert (blank.attribution == 0).all() and blank.total == 0  # nothing drawn, nothing to credit


def test_one_image_at_a_time(explainer, test_digits):
    x, _ = test_digits
    with pytest.raises(ValueError, match="one image"):
        explainer.saliency(x[:2])
    with pytest.raises(ValueError, match="shape"):
        explainer.activations(np.zeros((27, 27), np.float32))


def test_first_filters_are_the_first_kernels(explainer, trained):
    filters = explainer.first_filters()
    kernel = trained.result.model.layers[0].kernel.numpy()  # (3, 3, 1, 32)
    assert filters.shape == (32, 3, 3)
    np.testing.assert_array_equal(filters[5], kernel[:, :, 0, 5])


def test_activation_maps_of_the_seed_network(explainer, trained, digit):
    first, second = explainer.activations(digit)
    assert first.shape == (32, 26, 26) and second.shape == (64, 11, 11)
    assert first.min() >= 0 and second.min() >= 0  # after ReLU
    # the first map is the first convolution's output, computed by hand with the layer itself
    conv = trained.result.model.layers[0]
    expected = np.moveaxis(np.asarray(conv(digit[None, ..., None]))[0], -1, 0)
    np.testing.assert_allclose(first, expected, atol=1e-5)
    assert first.reshape(32, -1).max(axis=1).max() > 0  # the digit excites some filter


@pytest.mark.parametrize("preset, shapes", [
    ("fast", [(32, 12, 12), (64, 4, 4)]),  # conv-pool-ReLU: the maps are taken after the ReLU
    ("best", [(32, 26, 26), (32, 24, 24)]),  # conv-BN-ReLU
])
def test_activation_maps_follow_the_nonlinearity(preset, shapes, digit):
    e = Explainer(build_model(preset))
    maps = e.activations(digit)
    assert [m.shape for m in maps] == shapes
    assert all(m.min() >= 0 for m in maps)
    assert e.saliency(digit).attribution.shape == (28, 28)


def test_mixed_precision_models_are_explained_in_float32(digit):
    e = Explainer(build_model("fast", dtype="mixed_bfloat16"))
    assert all(layer.dtype_policy.name == "float32" for layer in e.model.layers)
    assert e.activations(digit)[0].dtype == np.float32


def test_a_network_without_two_convolutions_is_refused():
    dense = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    with pytest.raises(ValueError, match="convolution"):
        Explainer(dense)


XLA_CHECK = """
import json
import keras, numpy as np, tensorflow as tf
from mnist_core.explain import Explainer
from mnist_core.predict import Predictor
from mnist_core.store import DEFAULT_MODEL
x = np.zeros((28, 28), np.float32)
x[4:24, 12:16] = 1  # a 1
model = Predictor.load(DEFAULT_MODEL).model
compiled = Explainer(model)
first = compiled.saliency(x, 1)
keras.backend.clear_session()  # what Streamlit does after every script run: TensorFlow's kernel cache is emptied
again, maps = compiled.saliency(x, 1), compiled.activations(x)
tf.config.experimental.enable_op_determinism()  # XLA has no deterministic MaxPool gradient: the plain graph
plain = Explainer(model)
ref, ref_maps = plain.saliency(x, 1), plain.activations(x)
print(json.dumps({
    "xla": compiled._ig._xla and compiled._taps._xla, "fallback": not plain._ig._xla,
    "again": bool(np.array_equal(first.attribution, again.attribution)),
    "saliency": float(np.abs(again.attribution - ref.attribution).max()),
    "gain": abs(again.logit_gain - ref.logit_gain),
    "maps": max(float(np.abs(a - b).max()) for a, b in zip(maps, ref_maps))}))
"""


def test_explanations_are_xla_programs_that_outlive_a_cleared_kernel_cache_and_match_the_plain_graph():
    """In a fresh process (this one has op determinism on, from seeded training): the shipped model's saliency and
    activation maps run as XLA programs, read the same after keras.backend.clear_session(), and agree with the
    plain TensorFlow graph the explainer falls back to where XLA cannot compile."""
    done = subprocess.run([sys.executable, "-c", XLA_CHECK], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["xla"] and result["fallback"] and result["again"], result
    assert result["saliency"] < 1e-3 and result["gain"] < 1e-3 and result["maps"] < 1e-3, result
