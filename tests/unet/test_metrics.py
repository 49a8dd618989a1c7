"""Dice / IoU / pixel accuracy per image and dataset-wide, with the empty-mask rule."""

import numpy as np
import pytest

from unet import DiceScore, IoUScore, SegmentationEvaluator, compute_confusion


def test_confusion_counts_and_scores():
    prediction = np.array([[1, 1, 0], [0, 1, 0]])
    target = np.array([[1, 0, 0], [1, 1, 0]])
    confusion = compute_confusion(prediction, target)
    assert (confusion.tp, confusion.fp, confusion.fn, confusion.tn) == (2, 1, 1, 2)
    assert confusion.dice == pytest.approx(4 / 6)
    assert confusion.iou == pytest.approx(2 / 4)
    assert confusion.pixel_accuracy == pytest.approx(4 / 6)


def test_empty_mask_rule():
    """Both empty -> 1.0; only one empty -> 0.0."""
    empty, full = np.zeros((4, 4)), np.ones((4, 4))
    assert compute_confusion(empty, empty).dice == 1.0
    assert compute_confusion(empty, empty).iou == 1.0
    assert compute_confusion(full, empty).dice == 0.0
    assert compute_confusion(empty, full).iou == 0.0


def test_per_image_mean_differs_from_dataset_micro():
    evaluator = SegmentationEvaluator()
    big = np.zeros((10, 10))
    big[:5] = 1
    evaluator.add(big, big, "perfect_big")
    small_target = np.zeros((10, 10))
    small_target[0, 0] = 1
    evaluator.add(np.zeros((10, 10)), small_target, "missed_small")
    summary = evaluator.summarize()
    assert summary["images"] == 2
    assert summary["per_image"]["dice"] == pytest.approx(0.5)
    assert summary["dataset"]["dice"] == pytest.approx(100 / 101)
    with pytest.raises(ValueError, match="no images"):
        SegmentationEvaluator().summarize()


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match="differs"):
        compute_confusion(np.zeros((2, 2)), np.zeros((2, 3)))


def test_keras_metrics_agree_with_numpy_evaluation():
    rng = np.random.default_rng(3)
    truth = (rng.random((3, 8, 8, 1)) > 0.6).astype("float32")
    truth[2] = 0
    probabilities = rng.random((3, 8, 8, 1)).astype("float32")
    probabilities[2] = 0.1  # empty prediction on the empty image -> 1.0
    dice, iou = DiceScore(), IoUScore()
    dice.update_state(truth, probabilities)
    iou.update_state(truth, probabilities)
    evaluator = SegmentationEvaluator()
    for t, p in zip(truth, probabilities, strict=True):
        evaluator.add(p > 0.5, t > 0.5)
    summary = evaluator.summarize()["per_image"]
    assert float(dice.result()) == pytest.approx(summary["dice"], abs=1e-6)
    assert float(iou.result()) == pytest.approx(summary["iou"], abs=1e-6)
    logits_dice = DiceScore(from_logits=True)
    logits_dice.update_state(truth, np.log(probabilities / (1 - probabilities)))
    assert float(logits_dice.result()) == pytest.approx(summary["dice"], abs=1e-6)
