"""mnist_core.evaluate: confusion matrix, precision, recall and mistakes, checked by hand and against the model."""

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


def hand_example() -> Evaluation:
    """Seven images of digits 0-2, scored by hand below."""
    labels = np.array([0, 0, 1, 2, 2, 2, 1])
    predictions = np.array([0, 1, 1, 2, 0, 2, 1])
    confidence = np.array([0.9, 0.8, 0.7, 0.95, 0.6, 0.5, 0.99])
    return Evaluation(labels=labels, predictions=predictions, confidence=confidence,
                      confusion=confusion_matrix(labels, predictions))


def test_precision_and_recall_by_hand():
    e = hand_example()
    assert e.accuracy == pytest.approx(5 / 7)
    # recall: 0 -> 1 of 2 right; 1 -> 2 of 2; 2 -> 2 of 3; no images of 3-9
    np.testing.assert_allclose(e.recall[:3], [1 / 2, 2 / 2, 2 / 3])
    # precision: answers "0" -> 1 of 2 right (image 4 was a 2); "1" -> 2 of 3 (image 1 was a 0); "2" -> 2 of 2
    np.testing.assert_allclose(e.precision[:3], [1 / 2, 2 / 3, 2 / 2])
    assert np.isnan(e.recall[3:]).all() and np.isnan(e.precision[3:]).all()  # undefined, not 0


def test_cells_and_mistakes_by_hand():
    e = hand_example()
    assert e.cell(0, 1).tolist() == [1]
    assert e.cell(2, 2).tolist() == [3, 5]  # confidence 0.95 before 0.5
    assert e.cell(1, 1).tolist() == [6, 2]  # 0.99 before 0.7
    assert e.cell(3, 3).tolist() == []
    assert e.mistakes().tolist() == [1, 4]  # the 0 read as 1 (80% sure) before the 2 read as 0 (60%)


@pytest.fixture(scope="module")
def scored(trained, test_digits):
    x, y = test_digits
    return evaluate(Predictor(trained.result.model, second_look=False), x, y)  # the network's own answers


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
    np.testing.assert_allclose(scored.recall, np.diag(cm) / cm.sum(axis=1))
    for digit in range(10):
        mask = y == digit
        assert scored.recall[digit] == pytest.approx((scored.predictions[mask] == digit).mean())
        said = scored.predictions == digit
        assert scored.precision[digit] == pytest.approx((y[said] == digit).mean())


def test_mistakes_of_a_real_model(test_digits, scored):
    _, y = test_digits
    wrong = scored.mistakes()
    assert len(wrong) == (scored.predictions != y).sum() > 0
    assert (scored.predictions[wrong] != y[wrong]).all()
    assert (np.diff(scored.confidence[wrong]) <= 0).all()  # most confident first
    cells = sum(len(scored.cell(t, p)) for t in range(10) for p in range(10) if t != p)
    assert cells == len(wrong)


def test_missing_classes_score_nan_without_warnings(trained, test_digits):
    x, y = test_digits
    keep = (y == 0) | (y == 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = evaluate(Predictor(trained.result.model), x[keep], y[keep])
    assert result.confusion.sum() == keep.sum()
    assert np.isnan(result.recall[2:]).all()
    assert result.recall[:2].min() > 0.8
