"""Box arithmetic on tensors (``keras.ops``). Boxes are ``(y1, x1, y2, x2)``, normalized unless noted."""

from __future__ import annotations

from keras import ops


def apply_box_deltas(boxes, deltas):
    """Refine boxes [..., 4] by deltas [..., (dy, dx, log(dh), log(dw))] (already de-standardized)."""
    height = boxes[..., 2] - boxes[..., 0]
    width = boxes[..., 3] - boxes[..., 1]
    center_y = boxes[..., 0] + 0.5 * height + deltas[..., 0] * height
    center_x = boxes[..., 1] + 0.5 * width + deltas[..., 1] * width
    height = height * ops.exp(deltas[..., 2])
    width = width * ops.exp(deltas[..., 3])
    y1 = center_y - 0.5 * height
    x1 = center_x - 0.5 * width
    return ops.stack([y1, x1, y1 + height, x1 + width], axis=-1)


def clip_boxes(boxes, window):
    """Clip boxes [..., 4] to window (y1, x1, y2, x2); window broadcasts against boxes[..., 0]."""
    window = ops.cast(window, boxes.dtype)
    wy1, wx1, wy2, wx2 = (window[..., i] for i in range(4))
    y1, x1, y2, x2 = (boxes[..., i] for i in range(4))
    y1 = ops.maximum(ops.minimum(y1, wy2), wy1)
    x1 = ops.maximum(ops.minimum(x1, wx2), wx1)
    y2 = ops.maximum(ops.minimum(y2, wy2), wy1)
    x2 = ops.maximum(ops.minimum(x2, wx2), wx1)
    return ops.stack([y1, x1, y2, x2], axis=-1)


def box_refinement(boxes, gt_boxes):
    """Deltas [N, 4] that turn boxes [N, 4] into gt_boxes [N, 4] (inverse of apply_box_deltas)."""
    boxes = ops.cast(boxes, "float32")
    gt_boxes = ops.cast(gt_boxes, "float32")
    height = boxes[:, 2] - boxes[:, 0]
    width = boxes[:, 3] - boxes[:, 1]
    center_y = boxes[:, 0] + 0.5 * height
    center_x = boxes[:, 1] + 0.5 * width
    gt_height = gt_boxes[:, 2] - gt_boxes[:, 0]
    gt_width = gt_boxes[:, 3] - gt_boxes[:, 1]
    gt_center_y = gt_boxes[:, 0] + 0.5 * gt_height
    gt_center_x = gt_boxes[:, 1] + 0.5 * gt_width
    return ops.stack(
        [
            (gt_center_y - center_y) / height,
            (gt_center_x - center_x) / width,
            ops.log(gt_height / height),
            ops.log(gt_width / width),
        ],
        axis=1,
    )


def overlaps(boxes1, boxes2):
    """IoU matrix [..., N1, N2] between boxes1 [..., N1, 4] and boxes2 [..., N2, 4] (leading
    axes, e.g. a batch, broadcast)."""
    b1 = ops.expand_dims(boxes1, -2)
    b2 = ops.expand_dims(boxes2, -3)
    y1 = ops.maximum(b1[..., 0], b2[..., 0])
    x1 = ops.maximum(b1[..., 1], b2[..., 1])
    y2 = ops.minimum(b1[..., 2], b2[..., 2])
    x2 = ops.minimum(b1[..., 3], b2[..., 3])
    intersection = ops.maximum(y2 - y1, 0.0) * ops.maximum(x2 - x1, 0.0)
    area1 = (b1[..., 2] - b1[..., 0]) * (b1[..., 3] - b1[..., 1])
    area2 = (b2[..., 2] - b2[..., 0]) * (b2[..., 3] - b2[..., 1])
    union = area1 + area2 - intersection
    return ops.divide_no_nan(intersection, union)


def _pixel_scale(shape):
    """(scale, shift) between normalized and pixel boxes, for an image of shape (height, width)."""
    h, w = (ops.cast(shape[i], "float32") for i in range(2))
    scale = ops.stack([h, w, h, w]) - 1.0
    return scale, ops.convert_to_tensor([0.0, 0.0, 1.0, 1.0], "float32")


def norm_boxes(boxes, shape):
    """Pixel boxes -> normalized, for an image of shape (height, width) (ints or a tensor)."""
    scale, shift = _pixel_scale(shape)
    return (ops.cast(boxes, "float32") - shift) / scale


def denorm_boxes(boxes, shape):
    """Normalized boxes -> int32 pixels (y2, x2 exclusive), for an image of shape (height, width)."""
    scale, shift = _pixel_scale(shape)
    return ops.cast(ops.round(ops.cast(boxes, "float32") * scale + shift), "int32")
