"""RPN training targets (numpy): which anchors are positive/negative and their box deltas.

Matterport semantics: anchors with IoU >= 0.7 to some GT box are positive, < 0.3 negative,
each GT box's best anchor(s) positive; anchors touching a crowd box (negative class id) are never
negative; the sample is balanced to RPN_TRAIN_ANCHORS_PER_IMAGE with at most half positives.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mrcnn.geometry.boxes import box_refinement, compute_overlaps

POSITIVE_IOU = 0.7
NEGATIVE_IOU = 0.3
# An anchor overlapping a crowd box by more than this is never a negative.
CROWD_IOU = 0.001


def build_rpn_targets(
    anchors: np.ndarray,
    gt_class_ids: np.ndarray,
    gt_boxes: np.ndarray,
    config,
    rng: np.random.Generator | None = None,
    window: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """RPN targets of one image.

    anchors: [A, (y1, x1, y2, x2)] in pixels of the molded image.
    gt_class_ids: int[N]; negative ids mark crowd boxes. gt_boxes: [N, (y1, x1, y2, x2)] pixels.
    config: reads RPN_TRAIN_ANCHORS_PER_IMAGE and RPN_BBOX_STD_DEV.
    rng: picks which surplus anchors are dropped when balancing.
    window: (y1, x1, y2, x2) pixels of the real image in a padded one; anchors that do not
    overlap it (padding only) are left neutral, never trained as background. None: all count.

    Returns rpn_match int32[A] (1 positive, -1 negative, 0 neutral/unsampled) and rpn_bbox
    float32[RPN_TRAIN_ANCHORS_PER_IMAGE, (dy, dx, log(dh), log(dw))] for the positive anchors in
    anchor order, divided by RPN_BBOX_STD_DEV, zero-padded.
    """
    rng = rng if rng is not None else np.random.default_rng()
    anchors = np.asarray(anchors, dtype=np.float32).reshape(-1, 4)
    gt_class_ids = np.asarray(gt_class_ids).reshape(-1)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float32).reshape(-1, 4)
    if len(gt_class_ids) != len(gt_boxes):
        raise ValueError(f"got {len(gt_class_ids)} class ids but {len(gt_boxes)} boxes")
    per_image = int(config.RPN_TRAIN_ANCHORS_PER_IMAGE)
    rpn_match = np.zeros([len(anchors)], dtype=np.int32)
    rpn_bbox = np.zeros((per_image, 4), dtype=np.float32)

    crowd = gt_class_ids < 0
    if crowd.any():
        crowd_iou_max = compute_overlaps(anchors, gt_boxes[crowd]).max(axis=1)
        not_near_crowd = crowd_iou_max < CROWD_IOU
    else:
        not_near_crowd = np.ones([len(anchors)], dtype=bool)
    gt_boxes = gt_boxes[gt_class_ids > 0]

    overlaps = compute_overlaps(anchors, gt_boxes)  # [A, N]
    if gt_boxes.shape[0] > 0:
        anchor_iou_argmax = np.argmax(overlaps, axis=1)
        anchor_iou_max = overlaps[np.arange(len(anchors)), anchor_iou_argmax]
    else:
        anchor_iou_argmax = np.zeros([len(anchors)], dtype=np.int64)
        anchor_iou_max = np.zeros([len(anchors)], dtype=np.float32)

    # Order matters: negatives first, so that a GT's best anchor and IoU >= 0.7 override them.
    rpn_match[(anchor_iou_max < NEGATIVE_IOU) & not_near_crowd] = -1
    if gt_boxes.shape[0] > 0:
        # Every GT gets its best anchor(s), ties included, even when the IoU is below 0.7.
        # A GT that touches no anchor at all (best IoU 0) gets none.
        gt_iou_max = overlaps.max(axis=0)
        best_for_some_gt = (overlaps == gt_iou_max[None, :]) & (gt_iou_max[None, :] > 0)
        rpn_match[best_for_some_gt.any(axis=1)] = 1
    rpn_match[anchor_iou_max >= POSITIVE_IOU] = 1
    if window is not None:
        rpn_match[~_overlaps_window(anchors, window)] = 0

    _drop_surplus(rpn_match, 1, per_image // 2, rng)
    _drop_surplus(rpn_match, -1, per_image - int(np.sum(rpn_match == 1)), rng)

    positive = np.where(rpn_match == 1)[0]
    deltas = box_refinement(anchors[positive], gt_boxes[anchor_iou_argmax[positive]])
    rpn_bbox[: len(positive)] = deltas / np.asarray(config.RPN_BBOX_STD_DEV, dtype=np.float32)
    return rpn_match, rpn_bbox


def _overlaps_window(anchors: np.ndarray, window: Sequence[float]) -> np.ndarray:
    """bool[A]: the anchor shares some area with the window (y1, x1, y2, x2), pixels."""
    y1, x1, y2, x2 = (float(v) for v in window)
    return ((anchors[:, 0] < y2) & (anchors[:, 2] > y1) & (anchors[:, 1] < x2)
            & (anchors[:, 3] > x1))


def _drop_surplus(rpn_match: np.ndarray, label: int, keep: int, rng: np.random.Generator) -> None:
    """Set random anchors labelled ``label`` to 0 (neutral) until at most ``keep`` remain."""
    ids = np.where(rpn_match == label)[0]
    surplus = len(ids) - max(keep, 0)
    if surplus > 0:
        rpn_match[rng.choice(ids, surplus, replace=False)] = 0
