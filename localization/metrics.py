"""Localization metrics: mean box IoU, class accuracy and accuracy@IoU>=threshold.

IoU is computed on normalized xyxy boxes without the "+1" pixel term. ``accuracy@IoU>=0.5``
counts an image as right only when its class is right AND its box has IoU >= 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from localization.boxes import compute_iou


@keras.saving.register_keras_serializable(package="localization")
class MeanBoxIoU(keras.metrics.Mean):
    """Running mean of the per-image IoU between ``[B, 4]`` true and predicted boxes."""

    def __init__(self, name: str = "iou", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(compute_iou(y_true, y_pred), sample_weight=sample_weight)


def compute_localization_metrics(
    true_boxes: np.ndarray,
    true_classes: np.ndarray,
    pred_boxes: np.ndarray,
    pred_classes: np.ndarray,
    class_names: Sequence[str],
    iou_threshold: float = 0.5,
) -> dict:
    """Dataset-level metrics from per-image predictions.

    Args:
        true_boxes, pred_boxes: ``[N, 4]`` normalized xyxy boxes.
        true_classes, pred_classes: ``[N]`` class indices into ``class_names``.
    Returns:
        ``{"images", "mean_iou", "accuracy", "accuracy_at_iou50", "per_class": {name: {...}}}``
        (the joint key is named after ``iou_threshold``, e.g. ``accuracy_at_iou75`` for 0.75).
    """
    true_classes = np.asarray(true_classes).reshape(-1)
    pred_classes = np.asarray(pred_classes).reshape(-1)
    if len(true_boxes) != len(pred_boxes) or len(true_classes) != len(pred_classes):
        raise ValueError(f"got {len(true_boxes)} true and {len(pred_boxes)} predicted boxes, "
                         f"{len(true_classes)} true and {len(pred_classes)} predicted classes; "
                         "expected one of each per image")
    ious = np.asarray(compute_iou(np.asarray(true_boxes), np.asarray(pred_boxes)))
    correct = true_classes == pred_classes
    joint = correct & (ious >= iou_threshold)
    joint_key = f"accuracy_at_iou{round(iou_threshold * 100)}"

    def summarize(mask: np.ndarray) -> dict:
        count = int(mask.sum())
        if count == 0:
            return {"images": 0, "mean_iou": None, "accuracy": None, joint_key: None}
        return {
            "images": count,
            "mean_iou": float(ious[mask].mean()),
            "accuracy": float(correct[mask].mean()),
            joint_key: float(joint[mask].mean()),
        }

    result = summarize(np.ones(len(true_classes), dtype=bool))
    result["per_class"] = {
        name: summarize(true_classes == index) for index, name in enumerate(class_names)
    }
    return result


def baseline_metrics(train_boxes: np.ndarray, train_classes: Sequence[int],
                     true_boxes: np.ndarray, true_classes: Sequence[int],
                     class_names: Sequence[str]) -> dict:
    """The trivial predictors a localizer must beat, scored on the evaluated images.

    ``majority_class``: the training share's most frequent class for every image (accuracy);
    ``mean_box``: the training share's mean box for every image (mean IoU).
    """
    train_classes = np.asarray(train_classes).reshape(-1)
    if len(train_classes) == 0:
        raise ValueError("no training images to compute baselines from")
    majority = int(np.bincount(train_classes, minlength=len(class_names)).argmax())
    mean_box = np.asarray(train_boxes, dtype=np.float64).reshape(-1, 4).mean(axis=0)
    count = len(true_boxes)
    scores = compute_localization_metrics(
        np.asarray(true_boxes), true_classes, np.tile(mean_box, (count, 1)),
        np.full(count, majority), class_names)
    return {"training_images": int(len(train_classes)),
            "majority_class": {"class": class_names[majority], "accuracy": scores["accuracy"]},
            "mean_box": {"box": [round(float(v), 4) for v in mean_box],
                         "mean_iou": scores["mean_iou"]}}
