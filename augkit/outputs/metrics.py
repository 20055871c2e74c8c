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


def from_confusion(cm: np.ndarray, classes: list[str] | None = None) -> dict:
    """Accuracy and macro precision / recall / F1 (plus per class), all from ``cm``.

    Macro F1 is the mean of per-class F1, so it never exceeds the mean of macro precision
    and macro recall (the paper's Table I breaks this; augkit cannot).
    """
    cm = np.asarray(cm, dtype=float)
    tp = np.diag(cm)
    precision = _safe_div(tp, cm.sum(0))
    recall = _safe_div(tp, cm.sum(1))
    f1 = _safe_div(2 * precision * recall, precision + recall)
    names = classes or [str(i) for i in range(len(cm))]
    return {
        "accuracy": float(tp.sum() / max(cm.sum(), 1)),
        "balanced_accuracy": float(recall.mean()),
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, cm.sum(1))
        },
        "confusion_matrix": cm.astype(int).tolist(),
    }
