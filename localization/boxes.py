"""Box geometry for one box per image: IoU / GIoU and pixel <-> normalized conversion.

Every box is ``(xmin, ymin, xmax, ymax)`` (xyxy). Normalized boxes live in ``[0, 1]`` relative to
the image width (x) and height (y); IoU is computed without the "+1" pixel term.
The ``compute_*`` functions use ``keras.ops`` so they serve losses, metrics and NumPy callers alike.
"""

from __future__ import annotations

import numpy as np
from keras import ops

EPSILON = 1e-7


def _area(boxes):
    width = ops.maximum(boxes[..., 2] - boxes[..., 0], 0.0)
    height = ops.maximum(boxes[..., 3] - boxes[..., 1], 0.0)
    return width * height


def _intersection_and_union(boxes_a, boxes_b):
    inter_min = ops.maximum(boxes_a[..., :2], boxes_b[..., :2])
    inter_max = ops.minimum(boxes_a[..., 2:], boxes_b[..., 2:])
    inter_wh = ops.maximum(inter_max - inter_min, 0.0)
    intersection = inter_wh[..., 0] * inter_wh[..., 1]
    union = _area(boxes_a) + _area(boxes_b) - intersection
    return intersection, union


def compute_iou(boxes_a, boxes_b):
    """Element-wise IoU of matching boxes.

    Args:
        boxes_a, boxes_b: ``[..., 4]`` xyxy boxes in the same frame (pixels or normalized).
    Returns:
        ``[...]`` IoU in ``[0, 1]``; two empty boxes give 0.
    """
    boxes_a = ops.convert_to_tensor(boxes_a, "float32")
    boxes_b = ops.convert_to_tensor(boxes_b, "float32")
    intersection, union = _intersection_and_union(boxes_a, boxes_b)
    return intersection / (union + EPSILON)


def compute_giou(boxes_a, boxes_b):
    """Element-wise generalized IoU (Rezatofighi et al. 2019), in ``[-1, 1]``.

    Args:
        boxes_a, boxes_b: ``[..., 4]`` xyxy boxes in the same frame.
    Returns:
        ``[...]`` GIoU = IoU - (enclosing area - union) / enclosing area.
    """
    boxes_a = ops.convert_to_tensor(boxes_a, "float32")
    boxes_b = ops.convert_to_tensor(boxes_b, "float32")
    intersection, union = _intersection_and_union(boxes_a, boxes_b)
    iou = intersection / (union + EPSILON)
    enclosing_min = ops.minimum(boxes_a[..., :2], boxes_b[..., :2])
    enclosing_max = ops.maximum(boxes_a[..., 2:], boxes_b[..., 2:])
    enclosing_wh = ops.maximum(enclosing_max - enclosing_min, 0.0)
    enclosing = enclosing_wh[..., 0] * enclosing_wh[..., 1]
    return iou - (enclosing - union) / (enclosing + EPSILON)


def normalize_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Pixel xyxy ``[..., 4]`` -> normalized xyxy ``[..., 4]`` for an image of ``width x height``."""
    scale = np.array([width, height, width, height], dtype=np.float64)
    return np.asarray(boxes, dtype=np.float64) / scale


def denormalize_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Normalized xyxy ``[..., 4]`` -> pixel xyxy ``[..., 4]`` for an image of ``width x height``."""
    scale = np.array([width, height, width, height], dtype=np.float64)
    return np.asarray(boxes, dtype=np.float64) * scale
