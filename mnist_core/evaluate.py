"""Scores of a model on labelled digits: accuracy, per-class accuracy, confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnist_core.predict import Predictor


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    per_class_accuracy: np.ndarray  # (10,): recall of each digit
    confusion: np.ndarray  # (10, 10) counts, rows = true digit, columns = predicted
    predictions: np.ndarray  # (N,) predicted digits
    confidence: np.ndarray  # (N,) probability of the predicted digit


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: int = 10) -> np.ndarray:
    m = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return m


def evaluate(predictor: Predictor, images: np.ndarray, labels: np.ndarray) -> Evaluation:
    """images: (N, 28, 28) floats in [0, 1]; labels: (N,) digits."""
    proba = predictor.predict_proba(images)
    pred = proba.argmax(axis=1)
    cm = confusion_matrix(labels, pred)
    totals = cm.sum(axis=1)
    per_class = np.divide(np.diag(cm), totals, out=np.zeros(10), where=totals > 0)
    return Evaluation(
        accuracy=float((pred == labels).mean()),
        per_class_accuracy=per_class,
        confusion=cm,
        predictions=pred,
        confidence=proba.max(axis=1),
    )
