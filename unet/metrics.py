"""Dice, IoU and pixel accuracy for binary masks: NumPy evaluation and Keras training metrics.

Empty-mask rule (the same everywhere): when the target and the prediction are both empty, Dice
and IoU are 1.0; when exactly one of them is empty they are 0.0.

Two reductions are reported:
- ``per_image``: the score of each image, then the mean over images (Kaggle / PicsArt style);
- ``dataset``: TP/FP/FN/TN summed over all pixels of all images, then one score ("micro").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
from keras import ops

from unet.blocks import PACKAGE


@dataclass(frozen=True)
class Confusion:
    """Pixel counts of one image (or of a dataset)."""

    tp: int
    fp: int
    fn: int
    tn: int

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn,
                         self.tn + other.tn)

    @property
    def dice(self) -> float:
        denominator = 2 * self.tp + self.fp + self.fn
        return 1.0 if denominator == 0 else 2 * self.tp / denominator

    @property
    def iou(self) -> float:
        denominator = self.tp + self.fp + self.fn
        return 1.0 if denominator == 0 else self.tp / denominator

    @property
    def pixel_accuracy(self) -> float:
        total = self.tp + self.fp + self.fn + self.tn
        return (self.tp + self.tn) / total if total else 1.0


def compute_confusion(prediction: np.ndarray, target: np.ndarray) -> Confusion:
    """Counts for two binary ``(H, W)`` (or ``(H, W, 1)``) masks of the same shape."""
    prediction, target = np.asarray(prediction).astype(bool), np.asarray(target).astype(bool)
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction shape {prediction.shape} differs from target shape {target.shape}"
        )
    tp = int(np.count_nonzero(prediction & target))
    fp = int(np.count_nonzero(prediction & ~target))
    fn = int(np.count_nonzero(~prediction & target))
    return Confusion(tp, fp, fn, prediction.size - tp - fp - fn)


@dataclass
class SegmentationEvaluator:
    """Accumulates images, then reports per-image means and dataset-wide (micro) scores."""

    image_scores: list[dict] = field(default_factory=list)
    total: Confusion = field(default_factory=lambda: Confusion(0, 0, 0, 0))

    def add(self, prediction: np.ndarray, target: np.ndarray, name: str = "") -> dict:
        """Adds one image's binary masks; returns its scores."""
        confusion = compute_confusion(prediction, target)
        self.total = self.total + confusion
        scores = {"image": name, "dice": confusion.dice, "iou": confusion.iou,
                  "pixel_accuracy": confusion.pixel_accuracy}
        self.image_scores.append(scores)
        return scores

    def summarize(self) -> dict:
        """``{"images": N, "per_image": {...means}, "dataset": {...micro}}``."""
        if not self.image_scores:
            raise ValueError("no images were evaluated")
        keys = ("dice", "iou", "pixel_accuracy")
        per_image = {k: float(np.mean([s[k] for s in self.image_scores])) for k in keys}
        dataset = {k: float(getattr(self.total, k)) for k in keys}
        return {"images": len(self.image_scores), "per_image": per_image, "dataset": dataset}


class _ThresholdedScore(keras.metrics.Metric):
    """Mean over images of a hard score at ``threshold`` (empty-mask rule above)."""

    def __init__(self, threshold=0.5, from_logits=False, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.threshold = float(threshold)
        self.from_logits = bool(from_logits)
        self.score_sum = self.add_variable(shape=(), initializer="zeros", name="score_sum")
        self.image_count = self.add_variable(shape=(), initializer="zeros", name="image_count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.cast(y_pred, "float32")
        if self.from_logits:
            y_pred = ops.sigmoid(y_pred)
        predicted = ops.cast(y_pred > self.threshold, "float32")
        target = ops.cast(ops.reshape(y_true, ops.shape(predicted)) > 0.5, "float32")
        intersection = ops.sum(predicted * target, axis=(1, 2, 3))
        union_like = self.denominator(predicted, target, intersection)
        scores = ops.where(union_like > 0, self.numerator(intersection) / ops.maximum(
            union_like, 1.0), 1.0)
        self.score_sum.assign_add(ops.sum(scores))
        self.image_count.assign_add(ops.cast(ops.shape(scores)[0], "float32"))

    def result(self):
        return self.score_sum / ops.maximum(self.image_count, 1.0)

    def reset_state(self):
        self.score_sum.assign(0.0)
        self.image_count.assign(0.0)

    def get_config(self):
        return {"threshold": self.threshold, "from_logits": self.from_logits, "name": self.name}


@keras.saving.register_keras_serializable(package=PACKAGE)
class DiceScore(_ThresholdedScore):
    """Hard Dice per image, averaged over images; logged as ``dice`` / ``val_dice``."""

    def __init__(self, threshold=0.5, from_logits=False, name="dice", dtype=None):
        super().__init__(threshold, from_logits, name=name, dtype=dtype)

    def numerator(self, intersection):
        return 2.0 * intersection

    def denominator(self, predicted, target, intersection):
        return ops.sum(predicted, axis=(1, 2, 3)) + ops.sum(target, axis=(1, 2, 3))


@keras.saving.register_keras_serializable(package=PACKAGE)
class IoUScore(_ThresholdedScore):
    """Hard IoU per image, averaged over images; logged as ``iou`` / ``val_iou``."""

    def __init__(self, threshold=0.5, from_logits=False, name="iou", dtype=None):
        super().__init__(threshold, from_logits, name=name, dtype=dtype)

    def numerator(self, intersection):
        return intersection

    def denominator(self, predicted, target, intersection):
        total = ops.sum(predicted, axis=(1, 2, 3)) + ops.sum(target, axis=(1, 2, 3))
        return total - intersection
