"""Crop-and-resize and greedy NMS in ``keras.ops``, with fixed output shapes (any backend).

They reproduce TensorFlow's kernels (``tf.image.crop_and_resize``, ``non_max_suppression``),
which :mod:`mrcnn.modeling.backend_ops` keeps using on the TensorFlow backend. Boxes are
``(y1, x1, y2, x2)``, normalized to the image they are cut from.
"""

from __future__ import annotations

from collections.abc import Sequence

from keras import ops


def pyramid_crop_and_resize(feature_maps: Sequence, boxes, box_indices, levels,
                            crop_size: tuple[int, int]):
    """Bilinear crops [N, crop_h, crop_w, C] (float32), box ``i`` cut from image
    ``box_indices[i]`` of ``feature_maps[levels[i]]`` (maps [B, h_l, w_l, C], one C).

    TensorFlow's sampling exactly: row ``i`` of a crop samples y = y1 * (h - 1) +
    i * (y2 - y1) * (h - 1) / (crop_h - 1) (the box centre when crop_h is 1), columns alike,
    and samples outside [0, h - 1] x [0, w - 1] are 0. All levels' pixels stand in one table,
    so every box costs one gather whatever its level.
    """
    channels = feature_maps[0].shape[-1]
    table = ops.concatenate([ops.reshape(m, (-1, channels)) for m in feature_maps], axis=0)
    shapes = [ops.shape(m) for m in feature_maps]
    sizes = [s[0] * s[1] * s[2] for s in shapes]
    starts = [0]
    for size in sizes[:-1]:
        starts.append(starts[-1] + size)
    levels = ops.cast(levels, "int32")

    def per_box(values):
        return ops.take(ops.stack([ops.cast(v, "int32") for v in values]), levels)

    height, width = per_box([s[1] for s in shapes]), per_box([s[2] for s in shapes])
    first = per_box(starts) + ops.cast(box_indices, "int32") * height * width
    boxes = ops.cast(boxes, "float32")
    y_valid, top, bottom, y_lerp = _sample_axis(boxes[:, 0], boxes[:, 2], height, crop_size[0])
    x_valid, left, right, x_lerp = _sample_axis(boxes[:, 1], boxes[:, 3], width, crop_size[1])

    def corner(rows, columns):
        index = first[:, None, None] + rows[:, :, None] * width[:, None, None] + columns[:, None, :]
        return ops.cast(ops.take(table, index, axis=0), "float32")

    x_lerp = x_lerp[:, None, :, None]
    upper = corner(top, left) + (corner(top, right) - corner(top, left)) * x_lerp
    lower = corner(bottom, left) + (corner(bottom, right) - corner(bottom, left)) * x_lerp
    crops = upper + (lower - upper) * y_lerp[:, :, None, None]
    valid = y_valid[:, :, None, None] & x_valid[:, None, :, None]
    return ops.where(valid, crops, 0.0)


def _sample_axis(low, high, size, count: int):
    """Where each box samples along one axis, [N, count] each: (inside the image, the pixel
    below and the one above (int32, clamped into the image), the weight of the one above)."""
    extent = ops.cast(size, "float32") - 1.0
    if count > 1:
        step = (high - low) * extent / float(count - 1)
        steps = ops.cast(ops.arange(count), "float32")
        coordinate = low[:, None] * extent[:, None] + steps[None, :] * step[:, None]
    else:
        coordinate = (0.5 * (low + high) * extent)[:, None]
    inside = (coordinate >= 0.0) & (coordinate <= extent[:, None])
    floor = ops.floor(coordinate)
    last = (size - 1)[:, None]
    lower = ops.minimum(ops.maximum(ops.cast(floor, "int32"), 0), last)
    upper = ops.minimum(ops.maximum(ops.cast(ops.ceil(coordinate), "int32"), 0), last)
    return inside, lower, upper, coordinate - floor


def greedy_non_max_suppression(boxes, scores, max_output_size: int, iou_threshold: float,
                               classes=None):
    """Greedy NMS per image: int32[B, max_output_size] indices into N, best first, -1 padded.

    boxes [B, N, 4]; scores [B, N], ``-inf`` for boxes that are no candidates. Each step keeps
    the best remaining box (the lowest index among equal scores) and drops the boxes whose IoU
    with it is above ``iou_threshold`` (TensorFlow's rule: boxes of zero area overlap nothing).
    classes: int [B, N]; when given, a box only suppresses boxes of its own class (per-class
    NMS, its results merged by score).
    """
    boxes = ops.cast(boxes, "float32")
    y1 = ops.minimum(boxes[..., 0], boxes[..., 2])
    x1 = ops.minimum(boxes[..., 1], boxes[..., 3])
    y2 = ops.maximum(boxes[..., 0], boxes[..., 2])
    x2 = ops.maximum(boxes[..., 1], boxes[..., 3])
    corners = ops.stack([y1, x1, y2, x2], axis=-1)
    areas = (y2 - y1) * (x2 - x1)
    count = ops.shape(scores)[1]
    positions = ops.arange(count, dtype="int32")[None, :]
    slots = ops.arange(max_output_size, dtype="int32")[None, :]
    empty = float("-inf")

    def step(i, remaining, selected):
        # The first of the best by an integer argmax: Keras's float argmax adds bitwise ops
        # on TensorFlow that LiteRT's builtin ops (and ONNX) do not have.
        top = ops.cast(remaining == ops.max(remaining, axis=1, keepdims=True), "int32")
        best = ops.cast(ops.argmax(top, axis=1), "int32")[:, None]
        found = ops.take_along_axis(remaining, best, axis=1) > empty
        box = ops.take_along_axis(corners, best[:, :, None], axis=1)
        area = ops.take_along_axis(areas, best, axis=1)
        height = ops.maximum(ops.minimum(box[..., 2], y2) - ops.maximum(box[..., 0], y1), 0.0)
        width = ops.maximum(ops.minimum(box[..., 3], x2) - ops.maximum(box[..., 1], x1), 0.0)
        intersection = height * width
        union = area + areas - intersection
        overlapping = (area > 0.0) & (areas > 0.0) & (intersection / union > iou_threshold)
        if classes is not None:
            overlapping = overlapping & (classes == ops.take_along_axis(classes, best, axis=1))
        remaining = ops.where(overlapping | (positions == best), empty, remaining)
        selected = ops.where(slots == i, ops.where(found, best, -1), selected)
        return i + 1, remaining, selected

    def more(i, remaining, selected):
        return (i < max_output_size) & ops.any(remaining > empty)

    selected = ops.full((ops.shape(scores)[0], max_output_size), -1, dtype="int32")
    _, _, selected = ops.while_loop(
        more, step, (ops.convert_to_tensor(0, "int32"), ops.cast(scores, "float32"), selected))
    return selected
