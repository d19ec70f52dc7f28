"""Scores of a model on labelled digits: accuracy, per-class precision and recall, confusion, mistakes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnist_core.predict import Predictor


@dataclass(frozen=True)
class Evaluation:
    labels: np.ndarray  # (N,) true digits
    predictions: np.ndarray  # (N,) predicted digits
    confidence: np.ndarray  # (N,) probability of the predicted digit
    confusion: np.ndarray  # (10, 10) counts, rows = true digit, columns = predicted

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.labels).mean()) if len(self.labels) else float("nan")

    @property
    def recall(self) -> np.ndarray:
        """(10,): of the images of each digit, the share recognised; NaN for a digit with no images."""
        return _ratio(np.diag(self.confusion), self.confusion.sum(axis=1))

    @property
    def precision(self) -> np.ndarray:
        """(10,): of the answers naming each digit, the share that were right; NaN if never answered."""
        return _ratio(np.diag(self.confusion), self.confusion.sum(axis=0))

    def cell(self, true: int, predicted: int) -> np.ndarray:
        """Indices of the images of digit `true` read as `predicted`, most confident answer first."""
        idx = np.flatnonzero((self.labels == true) & (self.predictions == predicted))
        return idx[np.argsort(-self.confidence[idx], kind="stable")]

    def mistakes(self) -> np.ndarray:
        """Indices of every misread image, most confident (most wrongly sure) first."""
        idx = np.flatnonzero(self.labels != self.predictions)
        return idx[np.argsort(-self.confidence[idx], kind="stable")]


def _ratio(hits: np.ndarray, totals: np.ndarray) -> np.ndarray:
    return np.divide(hits, totals, out=np.full(len(hits), np.nan), where=totals > 0)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: int = 10) -> np.ndarray:
    m = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return m


def evaluate(predictor: Predictor, images: np.ndarray, labels: np.ndarray) -> Evaluation:
    """images: (N, 28, 28) floats in [0, 1]; labels: (N,) digits."""
    labels = np.asarray(labels, dtype=np.int64)
    proba = predictor.predict_proba(images)
    pred = proba.argmax(axis=1)
    return Evaluation(labels=labels, predictions=pred, confidence=proba.max(axis=1),
                      confusion=confusion_matrix(labels, pred))
