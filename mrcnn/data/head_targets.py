"""Second-stage training targets in numpy (Matterport's debugging path, not used in training).

Training computes these targets in the graph (``mrcnn.modeling.detection_targets``). These are
Matterport's numpy versions, for inspecting targets or training the heads on random ROIs
(``data_generator(random_rois=N, detection_targets=True)``). Boxes are (y1, x1, y2, x2)
pixels of the molded image, y2/x2 exclusive.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mrcnn.geometry.boxes import box_refinement, compute_overlaps, extract_bboxes
from mrcnn.geometry.imaging import expand_mask, resize

POSITIVE_IOU = 0.5


def generate_random_rois(image_shape: Sequence[int], count: int, gt_class_ids: np.ndarray,
                         gt_boxes: np.ndarray, *,
                         rng: np.random.Generator | None = None) -> np.ndarray:
    """``count`` random ROIs int32[count, 4] with non-zero area, like an untrained RPN's.

    90% lie around the GT boxes (within one box size of each), the rest anywhere in the image.
    gt_class_ids is unused (Matterport's signature).
    """
    rng = rng if rng is not None else np.random.default_rng()
    gt_boxes = np.asarray(gt_boxes, dtype=np.int64).reshape(-1, 4)
    height, width = int(image_shape[0]), int(image_shape[1])
    per_box = int(0.9 * count / len(gt_boxes)) if len(gt_boxes) else 0
    rois = [_random_boxes(rng, per_box, max(y1 - (y2 - y1), 0), min(y2 + (y2 - y1), height),
                          max(x1 - (x2 - x1), 0), min(x2 + (x2 - x1), width))
            for y1, x1, y2, x2 in gt_boxes]
    rois.append(_random_boxes(rng, count - per_box * len(gt_boxes), 0, height, 0, width))
    return np.concatenate(rois).astype(np.int32)


def _random_boxes(rng: np.random.Generator, count: int, y_low: int, y_high: int, x_low: int,
                  x_high: int) -> np.ndarray:
    """count boxes with corners drawn in [low, high), sorted, of non-zero height and width."""
    if count <= 0:
        return np.zeros([0, 4], dtype=np.int64)
    if y_high - y_low < 2 or x_high - x_low < 2:
        raise ValueError(f"cannot draw boxes of non-zero area in rows [{y_low}, {y_high}) and "
                         f"columns [{x_low}, {x_high})")
    ys = _distinct_pairs(rng, count, y_low, y_high)
    xs = _distinct_pairs(rng, count, x_low, x_high)
    return np.stack([ys[:, 0], xs[:, 0], ys[:, 1], xs[:, 1]], axis=1)


def _distinct_pairs(rng: np.random.Generator, count: int, low: int, high: int) -> np.ndarray:
    """count sorted pairs (a < b) drawn uniformly from [low, high)."""
    pairs = np.zeros([0, 2], dtype=np.int64)
    while len(pairs) < count:
        draw = np.sort(rng.integers(low, high, (2 * count, 2)), axis=1)
        pairs = np.concatenate([pairs, draw[draw[:, 0] != draw[:, 1]]])
    return pairs[:count]


def mold_mask(mask: np.ndarray, config) -> np.ndarray:
    """One instance mask bool[H, W] -> float32[MASK_SHAPE]: its bounding box, resized.

    The inverse of ``unmold_mask(small, bbox, image_shape)`` with ``bbox`` the mask's box
    (``extract_bboxes``). Matterport left this function unimplemented.
    """
    mask = np.asarray(mask).astype(bool)
    if mask.ndim != 2 or not mask.any():
        raise ValueError(f"mold_mask expects a non-empty [H, W] mask, got shape {mask.shape} "
                         f"with {int(mask.sum())} pixels set")
    y1, x1, y2, x2 = extract_bboxes(mask[:, :, None])[0]
    return resize(mask[y1:y2, x1:x2].astype(np.float32), config.MASK_SHAPE)


def build_detection_targets(rpn_rois: np.ndarray, gt_class_ids: np.ndarray,
                            gt_boxes: np.ndarray, gt_masks: np.ndarray, config, *,
                            rng: np.random.Generator | None = None) -> tuple:
    """Sample TRAIN_ROIS_PER_IMAGE ROIs from ``rpn_rois`` and build the heads' targets.

    rpn_rois [N, 4] pixels; gt_class_ids int32[G] (0 = padding); gt_boxes int32[G, 4];
    gt_masks bool[h, w, G] (mini masks when USE_MINI_MASK). Positives have IoU > 0.5 with a GT
    box, at most TRAIN_ROIS_PER_IMAGE * ROI_POSITIVE_RATIO of them; negatives fill the rest
    (repeated when there are too few). Returns rois [R, 4], class_ids int32[R],
    bboxes float32[R, NUM_CLASSES, 4] (class-specific deltas / BBOX_STD_DEV) and masks
    float32[R, mask_h, mask_w, NUM_CLASSES].
    """
    rng = rng if rng is not None else np.random.default_rng()
    rpn_rois = np.asarray(rpn_rois)
    instances = np.where(np.asarray(gt_class_ids) > 0)[0]
    if len(rpn_rois) == 0 or len(instances) == 0:
        raise ValueError(f"build_detection_targets needs ROIs and instances, got "
                         f"{len(rpn_rois)} ROIs and {len(instances)} instances")
    gt_class_ids, gt_boxes = np.asarray(gt_class_ids)[instances], np.asarray(gt_boxes)[instances]
    gt_masks = np.asarray(gt_masks)[:, :, instances]

    overlaps = compute_overlaps(rpn_rois.astype(np.float32), gt_boxes.astype(np.float32))
    assignment = np.argmax(overlaps, axis=1)
    iou_max = overlaps[np.arange(len(rpn_rois)), assignment]
    total = int(config.TRAIN_ROIS_PER_IMAGE)
    positives = _subsample(rng, np.where(iou_max > POSITIVE_IOU)[0],
                           int(total * config.ROI_POSITIVE_RATIO))
    negatives = _subsample(rng, np.where(iou_max < POSITIVE_IOU)[0], total - len(positives))
    keep = np.concatenate([positives, negatives])
    if len(keep) < total:  # too few ROIs: repeat negatives (or anything) to fill the slots
        pool = negatives if len(negatives) else keep
        keep = np.concatenate([keep, rng.choice(pool, total - len(keep), replace=True)])

    rois = rpn_rois[keep]
    class_ids = np.where(np.arange(total) < len(positives), gt_class_ids[assignment[keep]], 0)
    class_ids = class_ids.astype(np.int32)
    roi_gt = assignment[keep]
    positive_rows = np.arange(len(positives))
    bboxes = np.zeros((total, config.NUM_CLASSES, 4), dtype=np.float32)
    bboxes[positive_rows, class_ids[positive_rows]] = (
        box_refinement(rois[positive_rows], gt_boxes[roi_gt[positive_rows]])
        / np.asarray(config.BBOX_STD_DEV, dtype=np.float32))

    masks = np.zeros((total, *config.MASK_SHAPE, config.NUM_CLASSES), dtype=np.float32)
    for row in positive_rows:
        gt_index = roi_gt[row]
        mask = gt_masks[:, :, gt_index]
        if config.USE_MINI_MASK:
            mask = expand_mask(gt_boxes[gt_index:gt_index + 1], mask[:, :, None],
                               config.IMAGE_SHAPE)[:, :, 0]
        y1, x1, y2, x2 = rois[row].astype(np.int32)
        masks[row, :, :, class_ids[row]] = resize(mask[y1:y2, x1:x2].astype(np.float32),
                                                  config.MASK_SHAPE)
    return rois, class_ids, bboxes, masks


def _subsample(rng: np.random.Generator, ids: np.ndarray, limit: int) -> np.ndarray:
    return rng.choice(ids, limit, replace=False) if len(ids) > limit else ids
