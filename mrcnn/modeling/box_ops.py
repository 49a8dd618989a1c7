"""Box arithmetic on tensors (TensorFlow). Boxes are ``(y1, x1, y2, x2)``, normalized unless noted."""

from __future__ import annotations

import tensorflow as tf


def apply_box_deltas(boxes: tf.Tensor, deltas: tf.Tensor) -> tf.Tensor:
    """Refine boxes [..., 4] by deltas [..., (dy, dx, log(dh), log(dw))] (already de-standardized)."""
    height = boxes[..., 2] - boxes[..., 0]
    width = boxes[..., 3] - boxes[..., 1]
    center_y = boxes[..., 0] + 0.5 * height + deltas[..., 0] * height
    center_x = boxes[..., 1] + 0.5 * width + deltas[..., 1] * width
    height = height * tf.exp(deltas[..., 2])
    width = width * tf.exp(deltas[..., 3])
    y1 = center_y - 0.5 * height
    x1 = center_x - 0.5 * width
    return tf.stack([y1, x1, y1 + height, x1 + width], axis=-1)


def clip_boxes(boxes: tf.Tensor, window: tf.Tensor) -> tf.Tensor:
    """Clip boxes [..., 4] to window (y1, x1, y2, x2); window broadcasts against boxes[..., 0]."""
    wy1, wx1, wy2, wx2 = tf.unstack(tf.cast(window, boxes.dtype), axis=-1)
    y1, x1, y2, x2 = tf.unstack(boxes, axis=-1)
    y1 = tf.maximum(tf.minimum(y1, wy2), wy1)
    x1 = tf.maximum(tf.minimum(x1, wx2), wx1)
    y2 = tf.maximum(tf.minimum(y2, wy2), wy1)
    x2 = tf.maximum(tf.minimum(x2, wx2), wx1)
    return tf.stack([y1, x1, y2, x2], axis=-1)


def box_refinement(boxes: tf.Tensor, gt_boxes: tf.Tensor) -> tf.Tensor:
    """Deltas [N, 4] that turn boxes [N, 4] into gt_boxes [N, 4] (inverse of apply_box_deltas)."""
    boxes = tf.cast(boxes, tf.float32)
    gt_boxes = tf.cast(gt_boxes, tf.float32)
    height = boxes[:, 2] - boxes[:, 0]
    width = boxes[:, 3] - boxes[:, 1]
    center_y = boxes[:, 0] + 0.5 * height
    center_x = boxes[:, 1] + 0.5 * width
    gt_height = gt_boxes[:, 2] - gt_boxes[:, 0]
    gt_width = gt_boxes[:, 3] - gt_boxes[:, 1]
    gt_center_y = gt_boxes[:, 0] + 0.5 * gt_height
    gt_center_x = gt_boxes[:, 1] + 0.5 * gt_width
    return tf.stack(
        [
            (gt_center_y - center_y) / height,
            (gt_center_x - center_x) / width,
            tf.math.log(gt_height / height),
            tf.math.log(gt_width / width),
        ],
        axis=1,
    )


def overlaps(boxes1: tf.Tensor, boxes2: tf.Tensor) -> tf.Tensor:
    """IoU matrix [N1, N2] between boxes1 [N1, 4] and boxes2 [N2, 4]."""
    b1 = tf.expand_dims(boxes1, 1)
    b2 = tf.expand_dims(boxes2, 0)
    y1 = tf.maximum(b1[..., 0], b2[..., 0])
    x1 = tf.maximum(b1[..., 1], b2[..., 1])
    y2 = tf.minimum(b1[..., 2], b2[..., 2])
    x2 = tf.minimum(b1[..., 3], b2[..., 3])
    intersection = tf.maximum(y2 - y1, 0.0) * tf.maximum(x2 - x1, 0.0)
    area1 = (b1[..., 2] - b1[..., 0]) * (b1[..., 3] - b1[..., 1])
    area2 = (b2[..., 2] - b2[..., 0]) * (b2[..., 3] - b2[..., 1])
    union = area1 + area2 - intersection
    return tf.math.divide_no_nan(intersection, union)


def norm_boxes(boxes: tf.Tensor, shape: tf.Tensor) -> tf.Tensor:
    """Pixel boxes -> normalized, for an image of shape (height, width)."""
    h, w = tf.unstack(tf.cast(shape[:2], tf.float32))
    scale = tf.stack([h, w, h, w]) - 1.0
    shift = tf.constant([0.0, 0.0, 1.0, 1.0])
    return (tf.cast(boxes, tf.float32) - shift) / scale


def trim_zero_rows(boxes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Drop all-zero padding rows of boxes [N, 4]; returns (boxes, bool[N] kept)."""
    non_zeros = tf.cast(tf.reduce_sum(tf.abs(boxes), axis=1), tf.bool)
    return tf.boolean_mask(boxes, non_zeros), non_zeros


def denorm_boxes(boxes: tf.Tensor, shape: tf.Tensor) -> tf.Tensor:
    """Normalized boxes -> int32 pixels (y2, x2 exclusive), for an image of shape (height, width)."""
    h, w = tf.unstack(tf.cast(shape[:2], tf.float32))
    scale = tf.stack([h, w, h, w]) - 1.0
    shift = tf.constant([0.0, 0.0, 1.0, 1.0])
    return tf.cast(tf.round(tf.cast(boxes, tf.float32) * scale + shift), tf.int32)
