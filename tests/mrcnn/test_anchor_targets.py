"""RPN targets: positives/negatives, balancing, deltas, crowd boxes, empty images."""

import numpy as np
import pytest

from mrcnn.config import tiny_config
from mrcnn.data.anchor_targets import build_rpn_targets
from mrcnn.geometry.anchors import anchors_for_image_shape
from mrcnn.geometry.boxes import apply_box_deltas, compute_overlaps


@pytest.fixture(scope="module")
def config():
    return tiny_config()


@pytest.fixture(scope="module")
def anchors(config):
    return anchors_for_image_shape(config, config.IMAGE_SHAPE, normalized=False)


def test_positive_deltas_decode_back_to_their_gt_box(config, anchors):
    """If the deltas were wrong the RPN would learn to move anchors to the wrong place."""
    gt_boxes = np.array([[10, 10, 30, 40], [35, 5, 60, 25]])
    rpn_match, rpn_bbox = build_rpn_targets(anchors, np.array([1, 2]), gt_boxes, config,
                                            np.random.default_rng(0))
    positive = np.where(rpn_match == 1)[0]
    assert 2 <= len(positive) <= config.RPN_TRAIN_ANCHORS_PER_IMAGE // 2
    overlaps = compute_overlaps(anchors[positive], gt_boxes)
    deltas = rpn_bbox[: len(positive)] * config.RPN_BBOX_STD_DEV
    decoded = apply_box_deltas(anchors[positive], deltas)
    np.testing.assert_allclose(decoded, gt_boxes[overlaps.argmax(axis=1)], atol=1e-3)
    assert not rpn_bbox[len(positive):].any()


def test_counts_balanced_to_anchors_per_image(config, anchors):
    gt_boxes = np.array([[0, 0, 64, 64], [4, 4, 60, 60], [0, 0, 32, 64]])
    rpn_match, _ = build_rpn_targets(anchors, np.array([1, 1, 3]), gt_boxes, config,
                                     np.random.default_rng(1))
    assert rpn_match.dtype == np.int32 and rpn_match.shape == (len(anchors),)
    positives, negatives = np.sum(rpn_match == 1), np.sum(rpn_match == -1)
    assert positives <= config.RPN_TRAIN_ANCHORS_PER_IMAGE // 2
    assert positives + negatives == config.RPN_TRAIN_ANCHORS_PER_IMAGE


def test_iou_thresholds_and_each_gt_best_anchor(config):
    """Hand-built anchors: IoU 1.0 and 0.75 positive, 0.5 neutral, 0 negative; a GT whose
    best IoU is only 0.4 still gets that anchor."""
    anchors = np.array([
        [0, 0, 10, 10],    # IoU 1 with gt0
        [0, 0, 10, 7.5],   # IoU 0.75 with gt0
        [0, 0, 10, 5],     # IoU 0.5 with gt0: neutral
        [50, 50, 60, 60],  # IoU 0: negative
        [20, 20, 30, 30],  # IoU 0.4 with gt1, its best anchor
    ], dtype=np.float32)
    gt_boxes = np.array([[0, 0, 10, 10], [20, 20, 30, 45]])
    rpn_match, _ = build_rpn_targets(anchors, np.array([1, 1]), gt_boxes, config)
    np.testing.assert_array_equal(rpn_match, [1, 1, 0, -1, 1])


def test_image_without_instances_gives_only_negatives(config, anchors):
    rpn_match, rpn_bbox = build_rpn_targets(anchors, np.zeros([0], np.int32), np.zeros([0, 4]),
                                            config)
    assert np.sum(rpn_match == 1) == 0
    assert np.sum(rpn_match == -1) == config.RPN_TRAIN_ANCHORS_PER_IMAGE
    assert rpn_bbox.shape == (config.RPN_TRAIN_ANCHORS_PER_IMAGE, 4) and not rpn_bbox.any()


def test_anchors_on_crowd_boxes_are_not_negatives(config):
    anchors = np.array([[0, 0, 10, 10], [2, 2, 8, 8], [50, 50, 60, 60]], dtype=np.float32)
    rpn_match, _ = build_rpn_targets(anchors, np.array([-1]), np.array([[0, 0, 12, 12]]), config)
    np.testing.assert_array_equal(rpn_match, [0, 0, -1])


def test_mismatched_ids_and_boxes_rejected(config, anchors):
    with pytest.raises(ValueError, match="2 class ids but 1 boxes"):
        build_rpn_targets(anchors, np.array([1, 2]), np.array([[0, 0, 5, 5]]), config)
