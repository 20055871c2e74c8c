"""Classification metrics, every one derived from a single confusion matrix."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """(K, K) counts; rows are the true class, columns the predicted class."""
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # a class never predicted has precision 0 (scikit-learn's zero_division=0)
    return np.divide(a, b, out=np.zeros_like(a, dtype=float), where=b > 0)


SCORES = ("accuracy", "balanced_accuracy", "precision", "recall", "f1")


def _per_class(cms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """True positives, precision, recall and F1 per class of (..., K, K) matrices: (..., K) each."""
    tp = np.diagonal(cms, axis1=-2, axis2=-1)
    precision = _safe_div(tp, cms.sum(-2))  # column sums: how often the class was predicted
    recall = _safe_div(tp, cms.sum(-1))  # row sums: how often it was the truth
    return tp, precision, recall, _safe_div(2 * precision * recall, precision + recall)


def scores(cms: np.ndarray) -> dict[str, np.ndarray]:
    """``from_confusion``'s five scores (``SCORES``) of a stack of (..., K, K) confusion matrices, each of shape (...).

    The same formulas as ``from_confusion`` (which uses them), vectorised: the bootstrap scores
    all its resamples at once.
    """
    cms = np.asarray(cms, dtype=float)
    tp, precision, recall, f1 = _per_class(cms)
    return {
        "accuracy": tp.sum(-1) / np.maximum(cms.sum((-2, -1)), 1),
        "balanced_accuracy": recall.mean(-1),
        "precision": precision.mean(-1),
        "recall": recall.mean(-1),
        "f1": f1.mean(-1),
    }


def from_confusion(cm: np.ndarray, classes: list[str] | None = None) -> dict:
    """Accuracy and macro precision / recall / F1 (plus per class), all from ``cm``.

    Macro F1 is the mean of per-class F1, so it never exceeds the mean of macro precision
    and macro recall (the paper's Table I breaks this; augkit cannot).
    """
    cm = np.asarray(cm, dtype=float)
    _, precision, recall, f1 = _per_class(cm)
    names = classes or [str(i) for i in range(len(cm))]
    return {
        **{name: float(score) for name, score in scores(cm).items()},
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, cm.sum(1))
        },
        "confusion_matrix": cm.astype(int).tolist(),
    }
