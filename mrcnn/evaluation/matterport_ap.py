"""Per-image detection metrics with Matterport's semantics (mask-IoU matching, VOC AP).

Inputs are the ground truth of one image (boxes [N, (y1, x1, y2, x2)] pixels, class ids [N],
masks bool[H, W, N]) and the detections of that image (boxes, class ids, scores [M], masks
[H, W, M]). A "mAP" over a dataset is the mean of these per-image APs, as in Matterport's
samples; the COCO dataset-level metrics live in :mod:`mrcnn.evaluation.coco`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from mrcnn.geometry.boxes import compute_overlaps, compute_overlaps_masks

logger = logging.getLogger(__name__)


def trim_zeros(x: np.ndarray) -> np.ndarray:
    """Drop the all-zero rows of a 2-D array (the padding of fixed-size box tensors)."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"trim_zeros expects a 2-D array, got shape {x.shape}")
    return x[~np.all(x == 0, axis=1)]


def compute_matches(
    gt_boxes: np.ndarray,
    gt_class_ids: np.ndarray,
    gt_masks: np.ndarray,
    pred_boxes: np.ndarray,
    pred_class_ids: np.ndarray,
    pred_scores: np.ndarray,
    pred_masks: np.ndarray,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedily match predictions (by descending score) to ground truth on mask IoU.

    A prediction matches the unmatched GT of the same class with the highest IoU, if that IoU
    is >= iou_threshold; candidate GTs with IoU < score_threshold are not considered.
    Zero-padded rows of gt_boxes/pred_boxes are trimmed first.

    Returns gt_match [N] (index of the matched prediction or -1), pred_match [M] (index of the
    matched GT or -1), both in score order for predictions, and overlaps [M, N] (mask IoUs).
    """
    gt_boxes = trim_zeros(np.asarray(gt_boxes).reshape(-1, 4))
    gt_masks = np.asarray(gt_masks)[..., : gt_boxes.shape[0]]
    gt_class_ids = np.asarray(gt_class_ids)[: gt_boxes.shape[0]]
    pred_boxes = trim_zeros(np.asarray(pred_boxes).reshape(-1, 4))
    pred_scores = np.asarray(pred_scores)[: pred_boxes.shape[0]]

    order = np.argsort(pred_scores, kind="stable")[::-1]
    pred_class_ids = np.asarray(pred_class_ids)[order]
    pred_masks = np.asarray(pred_masks)[..., order]

    overlaps = compute_overlaps_masks(pred_masks, gt_masks)
    pred_match = -1 * np.ones([len(order)])
    gt_match = -1 * np.ones([gt_boxes.shape[0]])
    for i in range(len(order)):
        candidates = np.argsort(overlaps[i], kind="stable")[::-1]
        candidates = candidates[overlaps[i, candidates] >= score_threshold]
        for j in candidates:
            if gt_match[j] > -1:
                continue
            if overlaps[i, j] < iou_threshold:
                break
            if pred_class_ids[i] == gt_class_ids[j]:
                gt_match[j] = i
                pred_match[i] = j
                break
    return gt_match, pred_match, overlaps


def compute_ap(
    gt_boxes: np.ndarray,
    gt_class_ids: np.ndarray,
    gt_masks: np.ndarray,
    pred_boxes: np.ndarray,
    pred_class_ids: np.ndarray,
    pred_scores: np.ndarray,
    pred_masks: np.ndarray,
    iou_threshold: float = 0.5,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """VOC all-point average precision of one image at ``iou_threshold``.

    Returns (AP, precisions, recalls, overlaps); precisions/recalls carry the sentinel end
    points [0, ..., 0] and [0, ..., 1] as in Matterport. An image with no ground truth scores
    1.0 when there are no predictions either, else 0.0 (Matterport divides by zero there).
    """
    gt_match, pred_match, overlaps = compute_matches(
        gt_boxes, gt_class_ids, gt_masks, pred_boxes, pred_class_ids, pred_scores, pred_masks,
        iou_threshold,
    )
    hits = np.cumsum(pred_match > -1)
    precisions = hits / (np.arange(len(pred_match)) + 1)
    if len(gt_match) == 0:
        recalls = np.ones(len(pred_match), dtype=np.float32)
    else:
        recalls = hits.astype(np.float32) / len(gt_match)
    precisions = np.concatenate([[0], precisions, [0]])
    recalls = np.concatenate([[0], recalls, [1]])
    # Precision envelope: each point takes the best precision at any higher recall.
    precisions = np.maximum.accumulate(precisions[::-1])[::-1]
    if len(gt_match) == 0:
        return (1.0 if len(pred_match) == 0 else 0.0), precisions, recalls, overlaps
    steps = np.where(recalls[:-1] != recalls[1:])[0] + 1
    ap = float(np.sum((recalls[steps] - recalls[steps - 1]) * precisions[steps]))
    return ap, precisions, recalls, overlaps


def compute_ap_range(
    gt_box: np.ndarray,
    gt_class_id: np.ndarray,
    gt_mask: np.ndarray,
    pred_box: np.ndarray,
    pred_class_id: np.ndarray,
    pred_score: np.ndarray,
    pred_mask: np.ndarray,
    iou_thresholds: Sequence[float] | None = None,
    verbose: int = 1,
) -> float:
    """Mean of :func:`compute_ap` over IoU thresholds (default 0.5:0.05:0.95, COCO style)."""
    if iou_thresholds is None:
        iou_thresholds = np.arange(0.5, 1.0, 0.05)
    aps = []
    for threshold in iou_thresholds:
        ap, _, _, _ = compute_ap(gt_box, gt_class_id, gt_mask, pred_box, pred_class_id,
                                 pred_score, pred_mask, iou_threshold=threshold)
        if verbose:
            logger.info("AP @%.2f:\t %.3f", threshold, ap)
        aps.append(ap)
    mean_ap = float(np.mean(aps))
    if verbose:
        logger.info("AP @%.2f-%.2f:\t %.3f", iou_thresholds[0], iou_thresholds[-1], mean_ap)
    return mean_ap


def compute_recall(
    pred_boxes: np.ndarray, gt_boxes: np.ndarray, iou: float
) -> tuple[float, np.ndarray]:
    """Box recall: the fraction of GT boxes that some prediction overlaps with IoU >= ``iou``.

    Returns (recall, indices of the predictions whose best IoU reaches ``iou``).
    """
    pred_boxes = np.asarray(pred_boxes).reshape(-1, 4)
    gt_boxes = np.asarray(gt_boxes).reshape(-1, 4)
    if len(gt_boxes) == 0:
        raise ValueError("compute_recall needs at least one ground-truth box, got none")
    if len(pred_boxes) == 0:
        return 0.0, np.zeros([0], dtype=np.int64)
    overlaps = compute_overlaps(pred_boxes, gt_boxes)
    iou_max = np.max(overlaps, axis=1)
    iou_argmax = np.argmax(overlaps, axis=1)
    positive_ids = np.where(iou_max >= iou)[0]
    recall = len(set(iou_argmax[positive_ids].tolist())) / gt_boxes.shape[0]
    return recall, positive_ids
