"""Box and mask geometry in numpy, with Matterport's semantics.

Boxes are ``(y1, x1, y2, x2)`` in pixels with ``(y2, x2)`` exclusive, unless a docstring says
otherwise. Masks are ``bool[H, W, N]`` (one channel per instance).
"""

from __future__ import annotations

import numpy as np

# Largest number of IoU cells computed at once by compute_overlaps (bounds temporary memory).
_OVERLAP_CHUNK_CELLS = 4_000_000


def extract_bboxes(mask: np.ndarray) -> np.ndarray:
    """Tight boxes of instance masks.

    mask: bool[H, W, N]. Returns int32[N, (y1, x1, y2, x2)] in pixels, (y2, x2) exclusive;
    an empty mask gets the all-zero box.
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"extract_bboxes expects a mask [H, W, N], got shape {mask.shape}")
    rows = np.any(mask, axis=1)  # [H, N]: instance i has a pixel in row y
    cols = np.any(mask, axis=0)  # [W, N]
    present = rows.any(axis=0)
    height, width = mask.shape[:2]
    y1 = np.argmax(rows, axis=0)
    y2 = height - np.argmax(rows[::-1], axis=0)
    x1 = np.argmax(cols, axis=0)
    x2 = width - np.argmax(cols[::-1], axis=0)
    boxes = np.stack([y1, x1, y2, x2], axis=1).astype(np.int32)
    boxes[~present] = 0
    return boxes


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """Areas of boxes [N, (y1, x1, y2, x2)] as float32[N]."""
    boxes = np.asarray(boxes, dtype=np.float32)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def compute_iou(
    box: np.ndarray, boxes: np.ndarray, box_area: float, boxes_area: np.ndarray
) -> np.ndarray:
    """IoU of one box [4] with each of boxes [N, 4], given their precomputed areas. float[N]."""
    y1 = np.maximum(box[0], boxes[:, 0])
    y2 = np.minimum(box[2], boxes[:, 2])
    x1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[3], boxes[:, 3])
    intersection = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    union = box_area + boxes_area - intersection
    return _safe_divide(intersection, union)


def compute_overlaps(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU matrix float32[N1, N2] between boxes1 [N1, 4] and boxes2 [N2, 4] (same frame)."""
    boxes1 = np.asarray(boxes1, dtype=np.float32).reshape(-1, 4)
    boxes2 = np.asarray(boxes2, dtype=np.float32).reshape(-1, 4)
    overlaps = np.zeros((len(boxes1), len(boxes2)), dtype=np.float32)
    if overlaps.size == 0:
        return overlaps
    area1 = box_areas(boxes1)[:, None]
    area2 = box_areas(boxes2)
    step = max(1, _OVERLAP_CHUNK_CELLS // len(boxes1))
    for start in range(0, len(boxes2), step):
        part = boxes2[start : start + step]
        y1 = np.maximum(boxes1[:, None, 0], part[None, :, 0])
        x1 = np.maximum(boxes1[:, None, 1], part[None, :, 1])
        y2 = np.minimum(boxes1[:, None, 2], part[None, :, 2])
        x2 = np.minimum(boxes1[:, None, 3], part[None, :, 3])
        intersection = np.maximum(y2 - y1, 0) * np.maximum(x2 - x1, 0)
        union = area1 + area2[None, start : start + step] - intersection
        overlaps[:, start : start + step] = _safe_divide(intersection, union)
    return overlaps


def compute_overlaps_masks(masks1: np.ndarray, masks2: np.ndarray) -> np.ndarray:
    """Mask IoU matrix float32[N1, N2] between masks1 [H, W, N1] and masks2 [H, W, N2]."""
    masks1, masks2 = np.asarray(masks1), np.asarray(masks2)
    if masks1.shape[-1] == 0 or masks2.shape[-1] == 0:
        return np.zeros((masks1.shape[-1], masks2.shape[-1]), dtype=np.float32)
    if masks1.shape[:-1] != masks2.shape[:-1]:
        raise ValueError(
            f"masks must have the same height and width, got {masks1.shape} and {masks2.shape}"
        )
    flat1 = np.reshape(masks1 > 0.5, (-1, masks1.shape[-1])).astype(np.float32)
    flat2 = np.reshape(masks2 > 0.5, (-1, masks2.shape[-1])).astype(np.float32)
    area1 = flat1.sum(axis=0)
    area2 = flat2.sum(axis=0)
    intersections = flat1.T @ flat2
    union = area1[:, None] + area2[None, :] - intersections
    return _safe_divide(intersections, union)


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy NMS. Returns int32 indices of the kept boxes, highest score first.

    boxes: [N, (y1, x1, y2, x2)]; scores: [N]; a box is dropped when its IoU with an already
    kept box is above ``threshold``.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores)
    if len(boxes) != len(scores):
        raise ValueError(f"got {len(boxes)} boxes but {len(scores)} scores")
    areas = box_areas(boxes)
    order = np.argsort(scores, kind="stable")[::-1]
    keep = []
    while order.size > 0:
        best = order[0]
        keep.append(best)
        rest = order[1:]
        iou = compute_iou(boxes[best], boxes[rest], areas[best], areas[rest])
        order = rest[iou <= threshold]
    return np.array(keep, dtype=np.int32)


def apply_box_deltas(boxes: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """Refine boxes [N, (y1, x1, y2, x2)] by deltas [N, (dy, dx, log(dh), log(dw))].

    The inverse of :func:`box_refinement`. Works in any frame; returns float32[N, 4].
    """
    boxes = np.asarray(boxes, dtype=np.float32)
    deltas = np.asarray(deltas, dtype=np.float32)
    height = boxes[:, 2] - boxes[:, 0]
    width = boxes[:, 3] - boxes[:, 1]
    center_y = boxes[:, 0] + 0.5 * height + deltas[:, 0] * height
    center_x = boxes[:, 1] + 0.5 * width + deltas[:, 1] * width
    height = height * np.exp(deltas[:, 2])
    width = width * np.exp(deltas[:, 3])
    y1 = center_y - 0.5 * height
    x1 = center_x - 0.5 * width
    return np.stack([y1, x1, y1 + height, x1 + width], axis=1).astype(np.float32)


def box_refinement(box: np.ndarray, gt_box: np.ndarray) -> np.ndarray:
    """Deltas float32[N, (dy, dx, log(dh), log(dw))] that turn ``box`` [N, 4] into ``gt_box``.

    dy, dx are center shifts in units of the box's height/width. Boxes must have positive size.
    """
    box = np.asarray(box, dtype=np.float32)
    gt_box = np.asarray(gt_box, dtype=np.float32)
    height = box[:, 2] - box[:, 0]
    width = box[:, 3] - box[:, 1]
    center_y = box[:, 0] + 0.5 * height
    center_x = box[:, 1] + 0.5 * width
    gt_height = gt_box[:, 2] - gt_box[:, 0]
    gt_width = gt_box[:, 3] - gt_box[:, 1]
    gt_center_y = gt_box[:, 0] + 0.5 * gt_height
    gt_center_x = gt_box[:, 1] + 0.5 * gt_width
    dy = (gt_center_y - center_y) / height
    dx = (gt_center_x - center_x) / width
    dh = np.log(gt_height / height)
    dw = np.log(gt_width / width)
    return np.stack([dy, dx, dh, dw], axis=1).astype(np.float32)


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator with 0 where the denominator is 0 (empty boxes or masks)."""
    numerator = np.asarray(numerator, dtype=np.float32)
    denominator = np.asarray(denominator, dtype=np.float32)
    out = np.zeros(np.broadcast(numerator, denominator).shape, dtype=np.float32)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out
