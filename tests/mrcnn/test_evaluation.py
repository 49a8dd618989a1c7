"""Per-image AP with Matterport semantics: hand-computed cases."""

import numpy as np
import pytest

from mrcnn.data.datasets.shapes import ShapesDataset
from mrcnn.evaluation.evaluate import evaluate_dataset, ground_truth
from mrcnn.evaluation.matterport_ap import (
    compute_ap,
    compute_ap_range,
    compute_matches,
    compute_recall,
    trim_zeros,
)
from mrcnn.geometry.boxes import extract_bboxes


def _masks(*rects, shape=(40, 40)):
    masks = np.zeros(shape + (len(rects),), bool)
    for i, (y1, x1, y2, x2) in enumerate(rects):
        masks[y1:y2, x1:x2, i] = True
    return masks


GT_MASKS = _masks((0, 0, 10, 10), (20, 20, 30, 30), (0, 20, 10, 40))
GT_BOXES = extract_bboxes(GT_MASKS)
GT_IDS = np.array([1, 2, 1])


def test_perfect_predictions_give_ap_one():
    ap, precisions, recalls, overlaps = compute_ap(
        GT_BOXES, GT_IDS, GT_MASKS, GT_BOXES, GT_IDS, np.array([0.9, 0.8, 0.7]), GT_MASKS)
    assert ap == pytest.approx(1.0)
    assert overlaps.shape == (3, 3)
    assert recalls[-2] == pytest.approx(1.0)


def test_no_predictions_give_ap_zero():
    ap, _, _, _ = compute_ap(GT_BOXES, GT_IDS, GT_MASKS, np.zeros((0, 4)), np.zeros(0),
                             np.zeros(0), np.zeros((40, 40, 0), bool))
    assert ap == 0.0


def test_hand_computed_ap_with_a_false_positive_ranked_first():
    """Scores: FP 0.95, TP 0.9, TP 0.8; 3 GTs. Hits [0,1,1]: precision [0, .5, .667],
    recall [0, 1/3, 2/3]; envelope gives AP = 1/3 * 2/3 + 1/3 * 2/3 = 4/9."""
    pred_masks = _masks((30, 0, 40, 10), (0, 0, 10, 10), (20, 20, 30, 30))
    pred_boxes = extract_bboxes(pred_masks)
    ap, precisions, recalls, _ = compute_ap(
        GT_BOXES, GT_IDS, GT_MASKS, pred_boxes, np.array([1, 1, 2]), np.array([0.95, 0.9, 0.8]),
        pred_masks)
    assert ap == pytest.approx(4 / 9)
    np.testing.assert_allclose(recalls, [0, 0, 1 / 3, 2 / 3, 1], rtol=1e-6)


def test_wrong_class_or_low_iou_does_not_match():
    pred_masks = _masks((0, 0, 10, 10), (20, 20, 30, 24))  # class wrong; IoU 0.4
    gt_match, pred_match, overlaps = compute_matches(
        GT_BOXES, GT_IDS, GT_MASKS, extract_bboxes(pred_masks), np.array([2, 2]),
        np.array([0.9, 0.8]), pred_masks, iou_threshold=0.5)
    np.testing.assert_array_equal(pred_match, [-1, -1])
    np.testing.assert_array_equal(gt_match, [-1, -1, -1])
    assert overlaps[1, 1] == pytest.approx(0.4)


def test_each_gt_matches_only_once():
    pred_masks = _masks((0, 0, 10, 10), (0, 0, 10, 10))
    gt_match, pred_match, _ = compute_matches(
        GT_BOXES, GT_IDS, GT_MASKS, extract_bboxes(pred_masks), np.array([1, 1]),
        np.array([0.5, 0.9]), pred_masks)
    np.testing.assert_array_equal(pred_match, [0, -1])
    np.testing.assert_array_equal(gt_match, [0, -1, -1])


def test_zero_padded_gt_rows_are_ignored():
    padded_boxes = np.concatenate([GT_BOXES, np.zeros((2, 4), np.int32)])
    padded_masks = np.concatenate([GT_MASKS, np.zeros((40, 40, 2), bool)], axis=-1)
    ap, _, _, _ = compute_ap(padded_boxes, np.array([1, 2, 1, 0, 0]), padded_masks, GT_BOXES,
                             GT_IDS, np.array([0.9, 0.8, 0.7]), GT_MASKS)
    assert ap == pytest.approx(1.0)
    np.testing.assert_array_equal(trim_zeros(padded_boxes), GT_BOXES)


def test_image_without_ground_truth():
    empty = np.zeros((40, 40, 0), bool)
    none = (np.zeros((0, 4)), np.zeros(0), empty)
    assert compute_ap(*none, np.zeros((0, 4)), np.zeros(0), np.zeros(0), empty)[0] == 1.0
    assert compute_ap(*none, GT_BOXES, GT_IDS, np.ones(3), GT_MASKS)[0] == 0.0


def test_ap_range_drops_for_a_loose_mask():
    """A prediction with IoU 0.8 counts at thresholds 0.5 and 0.75, not at 0.9."""
    pred_masks = _masks((0, 0, 10, 8))
    ap = compute_ap_range(GT_BOXES[:1], GT_IDS[:1], GT_MASKS[..., :1], extract_bboxes(pred_masks),
                          np.array([1]), np.array([0.9]), pred_masks,
                          iou_thresholds=[0.5, 0.75, 0.9], verbose=0)
    assert ap == pytest.approx(2 / 3)


def test_compute_recall_counts_distinct_gt_boxes():
    preds = np.array([[0, 0, 10, 10], [0, 0, 10, 9], [100, 100, 110, 110]])
    recall, positive_ids = compute_recall(preds, GT_BOXES, 0.5)
    assert recall == pytest.approx(1 / 3)
    np.testing.assert_array_equal(positive_ids, [0, 1])


class _ReplayDetector:
    """Answers detect() with given per-image results, as a trained model would (no network)."""

    def __init__(self, dataset, make_result):
        self.results = {dataset.load_image(i).tobytes(): make_result(i)
                        for i in dataset.image_ids}

    def detect(self, images, verbose=0):
        return [self.results[image.tobytes()] for image in images]


def _gt_result(dataset, image_id, drop_every_other=False, shift=0):
    gt = ground_truth(dataset, image_id)
    keep = np.arange(len(gt["class_ids"]))
    if drop_every_other:
        keep = keep[::2]
    masks = np.roll(gt["masks"][..., keep], shift, axis=1)
    return {"rois": extract_bboxes(masks), "class_ids": gt["class_ids"][keep],
            "scores": np.linspace(0.99, 0.9, len(keep)).astype(np.float32), "masks": masks}


@pytest.fixture(scope="module")
def shapes_val():
    dataset = ShapesDataset()
    dataset.load_shapes(6, 64, 64, seed=5)
    dataset.prepare()
    return dataset


def test_evaluate_dataset_scores_perfect_partial_and_misplaced_detections(shapes_val):
    """The numbers users compare runs by must follow the detections: 1.0 when every object is
    found exactly, lower when objects are missed, 0 when every box is in the wrong place."""
    perfect = evaluate_dataset(_ReplayDetector(shapes_val, lambda i: _gt_result(shapes_val, i)),
                               shapes_val, progress=False)
    assert perfect["mAP50"] == pytest.approx(1.0) and perfect["mAP"] == pytest.approx(1.0)
    assert perfect["segm"]["AP"] == pytest.approx(1.0) and perfect["images"] == 6

    partial = evaluate_dataset(_ReplayDetector(
        shapes_val, lambda i: _gt_result(shapes_val, i, drop_every_other=True)), shapes_val,
        progress=False)
    many = [i for i in shapes_val.image_ids if len(shapes_val.load_mask(i)[1]) > 1]
    assert many, "the generated images must include some with several objects"
    assert 0.2 < partial["mAP50"] < 0.99

    misplaced = evaluate_dataset(_ReplayDetector(
        shapes_val, lambda i: _gt_result(shapes_val, i, shift=32)), shapes_val, progress=False)
    assert misplaced["mAP50"] < 0.5 * partial["mAP50"]
