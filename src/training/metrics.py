"""Classifier metrics from scikit-learn: per-class precision/recall/F1, confusion matrix,
balanced accuracy, ROC-AUC."""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix,
                             precision_recall_fscore_support, roc_auc_score)


def classification_metrics(y_true: np.ndarray, probs: np.ndarray,
                           class_names: list[str]) -> tuple[dict, dict]:
    """(metrics, per_class) for integer labels `y_true` and class probabilities `probs` (N, K).

    metrics holds flat floats plus 'confusion_matrix' (nested list) and 'class_names';
    per_class maps a class name to precision, recall, f1 and support.
    """
    y_true = np.asarray(y_true, dtype=int)
    probs = np.asarray(probs, dtype=float)
    labels = list(range(len(class_names)))
    y_pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)
    with warnings.catch_warnings():
        # a class missing from a tiny validation split is reported as 0, not a crash
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.simplefilter("ignore", UserWarning)
        precision, recall, f1, support = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, zero_division=0)
        balanced = balanced_accuracy_score(y_true, y_pred) if len(y_true) else 0.0
    metrics = {
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        "balanced_accuracy": float(balanced),
        "macro_f1": float(np.mean(f1)) if len(f1) else 0.0,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "class_names": list(class_names),
    }
    auc = roc_auc(y_true, probs, len(class_names))
    if auc is not None:
        metrics["roc_auc"] = auc
    per_class = {name: {"precision": float(precision[i]), "recall": float(recall[i]),
                        "f1": float(f1[i]), "support": int(support[i])}
                 for i, name in enumerate(class_names)}
    return metrics, per_class


def roc_auc(y_true: np.ndarray, probs: np.ndarray, num_classes: int) -> float | None:
    """Binary AUC, or macro one-vs-rest AUC; None when a split lacks a class (undefined)."""
    present = np.unique(y_true)
    if len(present) < 2 or len(present) < num_classes:
        return None
    if num_classes == 2:
        return float(roc_auc_score(y_true, probs[:, 1]))
    return float(roc_auc_score(y_true, probs, multi_class="ovr", average="macro",
                               labels=list(range(num_classes))))


def scalar_metrics(metrics: dict) -> dict[str, float]:
    """The flat float metrics only (what goes to events, TensorBoard and the DB)."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))
            and not isinstance(v, bool)}
