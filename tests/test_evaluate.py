"""mnist_core.evaluate: confusion matrix and scores, checked by hand and against the model itself."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tensorflow as tf

from mnist_core.evaluate import Evaluation, confusion_matrix, evaluate
from mnist_core.predict import Predictor


def test_confusion_matrix_by_hand():
    y_true = [0, 0, 1, 2, 2, 2, 1]
    y_pred = [0, 1, 1, 2, 0, 2, 1]
    m = confusion_matrix(y_true, y_pred, classes=3)
    assert m.tolist() == [[1, 1, 0],  # true 0: one right, one taken for 1
                          [0, 2, 0],  # true 1: both right
                          [1, 0, 2]]  # true 2: one taken for 0
    assert m.dtype == np.int64


def test_confusion_matrix_repeated_pairs_and_default_size():
    m = confusion_matrix(np.array([9, 9, 9, 3], np.uint8), np.array([4, 4, 9, 3], np.uint8))
    assert m.shape == (10, 10) and m.sum() == 4
    assert m[9, 4] == 2 and m[9, 9] == 1 and m[3, 3] == 1  # repeated pairs all counted


@pytest.fixture(scope="module")
def scored(trained, test_digits):
    x, y = test_digits
    return evaluate(Predictor(trained.result.model), x, y)


def test_evaluate_matches_the_models_own_predictions(trained, test_digits, scored):
    x, y = test_digits
    logits = trained.result.model(x[..., None], training=False)
    argmax = np.asarray(logits).argmax(axis=1)
    assert isinstance(scored, Evaluation)
    np.testing.assert_array_equal(scored.predictions, argmax)
    assert scored.accuracy == pytest.approx((argmax == y).mean(), abs=1e-12)
    proba = tf.nn.softmax(logits).numpy()
    np.testing.assert_allclose(scored.confidence, proba.max(axis=1), rtol=0, atol=1e-6)
    assert (scored.confidence >= 0.1).all() and (scored.confidence <= 1).all()
    # the same 1,000 images Keras scored after training (its accuracy metric, float32)
    assert scored.accuracy == pytest.approx(trained.result.test_accuracy, abs=1e-6)


def test_confusion_and_per_class_are_consistent(test_digits, scored):
    _, y = test_digits
    cm = scored.confusion
    assert cm.shape == (10, 10) and cm.sum() == len(y)
    assert cm.sum(axis=1).tolist() == np.bincount(y, minlength=10).tolist()  # rows: true digits
    assert cm.sum(axis=0).tolist() == np.bincount(scored.predictions, minlength=10).tolist()  # columns: predicted
    assert np.trace(cm) / cm.sum() == pytest.approx(scored.accuracy)
    np.testing.assert_allclose(scored.per_class_accuracy, np.diag(cm) / cm.sum(axis=1))
    for digit in range(10):
        mask = y == digit
        assert scored.per_class_accuracy[digit] == pytest.approx((scored.predictions[mask] == digit).mean())


def test_missing_classes_score_zero_without_warnings(trained, test_digits):
    x, y = test_digits
    keep = (y == 0) | (y == 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = evaluate(Predictor(trained.result.model), x[keep], y[keep])
    assert result.confusion.sum() == keep.sum()
    assert result.per_class_accuracy[2:].tolist() == [0.0] * 8
    assert result.per_class_accuracy[:2].min() > 0.8
