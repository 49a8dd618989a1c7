"""Mean IoU, accuracy and the joint accuracy@IoU>=0.5 on hand-made predictions."""

import numpy as np
import pytest

from localization.metrics import MeanBoxIoU, baseline_metrics, compute_localization_metrics


def test_joint_accuracy_needs_class_and_box_right():
    true_boxes = np.array([[0.1, 0.1, 0.5, 0.5]] * 4)
    pred_boxes = np.array([
        [0.1, 0.1, 0.5, 0.5],   # IoU 1, class right -> joint hit
        [0.3, 0.3, 0.7, 0.7],   # IoU 0.14, class right -> no joint hit
        [0.1, 0.1, 0.5, 0.5],   # IoU 1, class wrong -> no joint hit
        [0.1, 0.1, 0.5, 0.4],   # IoU 0.75, class right -> joint hit
    ])
    metrics = compute_localization_metrics(true_boxes, [0, 0, 1, 1], pred_boxes, [0, 0, 0, 1],
                                           ["mask", "no-mask"])
    assert metrics["images"] == 4
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["accuracy_at_iou50"] == pytest.approx(0.5)
    assert metrics["mean_iou"] == pytest.approx((1 + 1 / 7 + 1 + 0.75) / 4, abs=1e-5)
    assert metrics["per_class"]["no-mask"]["accuracy"] == pytest.approx(0.5)
    assert metrics["per_class"]["mask"]["images"] == 2


def test_class_without_images_reports_none():
    metrics = compute_localization_metrics(np.zeros((1, 4)) + [0, 0, 1, 1], [0],
                                           np.array([[0, 0, 1, 1]]), [0], ["a", "b"])
    assert metrics["per_class"]["b"] == {"images": 0, "mean_iou": None, "accuracy": None,
                                         "accuracy_at_iou50": None}


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="one of each per image"):
        compute_localization_metrics(np.zeros((2, 4)), [0, 1], np.zeros((1, 4)), [0], ["a"])


def test_keras_mean_iou_metric_accumulates_over_batches():
    metric = MeanBoxIoU()
    metric.update_state(np.array([[0.1, 0.1, 0.5, 0.5]]), np.array([[0.1, 0.1, 0.5, 0.5]]))
    metric.update_state(np.array([[0.1, 0.1, 0.5, 0.5]]), np.array([[0.3, 0.3, 0.7, 0.7]]))
    assert float(metric.result()) == pytest.approx((1 + 0.142857) / 2, abs=1e-5)


def test_joint_accuracy_uses_the_requested_iou_threshold():
    """If this fails, a user asking for accuracy@IoU>=0.75 silently gets the 0.5 number."""
    true_boxes = np.array([[0.0, 0.0, 1.0, 1.0]] * 3)
    pred_boxes = np.array([[0.0, 0.0, 1.0, 1.0],    # IoU 1.0
                           [0.0, 0.0, 1.0, 0.8],    # IoU 0.8
                           [0.0, 0.0, 1.0, 0.6]])   # IoU 0.6: a hit at 0.5, a miss at 0.75
    metrics = compute_localization_metrics(true_boxes, [0, 1, 1], pred_boxes, [0, 1, 1],
                                           ["mask", "no-mask"], iou_threshold=0.75)
    assert "accuracy_at_iou50" not in metrics
    assert metrics["accuracy_at_iou75"] == pytest.approx(2 / 3)
    assert metrics["per_class"]["no-mask"]["accuracy_at_iou75"] == pytest.approx(0.5)


def test_baselines_predict_the_training_majority_and_the_mean_training_box():
    """Always the most frequent training class; always the mean training box (by hand)."""
    train_boxes = np.array([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.25, 0.25, 0.75, 0.75]])
    true_boxes = np.array([[0.25, 0.25, 0.75, 0.75], [0.0, 0.0, 0.5, 0.5]])
    result = baseline_metrics(train_boxes, [1, 1, 0], true_boxes, [1, 0], ["no_mask", "mask"])
    assert result["majority_class"] == {"class": "mask", "accuracy": 0.5}
    assert result["mean_box"]["box"] == [0.25, 0.25, 0.75, 0.75]
    # IoU 1 with the first image's box, 1/7 with the second's (0.0625 / (0.25 + 0.25 - 0.0625)).
    assert result["mean_box"]["mean_iou"] == pytest.approx((1.0 + 1 / 7) / 2)
    assert result["training_images"] == 3
