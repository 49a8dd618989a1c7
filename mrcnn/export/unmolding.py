""":func:`mrcnn.modeling.postprocess.unmold_detections` for one image, as TensorFlow ops.

Shape shorthand: D detection slots (DETECTION_MAX_INSTANCES), N real detections, m the mask
side (MASK_SHAPE), K classes, H, W the original image, Hm, Wm the molded image.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["paste_masks", "unmold_detections"]


def unmold_detections(detections: tf.Tensor, masks: tf.Tensor, original_hw: tf.Tensor,
                      molded_hw: tf.Tensor, window: tf.Tensor,
                      dtype: tf.DType = tf.float64) -> dict[str, tf.Tensor]:
    """One image's network outputs -> ``detect()``'s results at the original size.

    detections: [D, (y1, x1, y2, x2, class_id, score)] normalized to the molded image, zero
    rows as padding; masks: [D, m, m, K] probabilities; original_hw, molded_hw: int32[2];
    window: int32[4] pixels of the image inside the molded one.
    Returns rois int32[N, 4] (pixels, y2/x2 exclusive), class_ids int32[N], scores float32[N],
    masks uint8[H, W, N] (0/1). dtype: :func:`paste_masks`'s.
    """
    class_ids = tf.cast(detections[:, 4], tf.int32)
    padding = tf.equal(detections[:, 4], 0.0)
    count = tf.where(tf.reduce_any(padding), tf.argmax(tf.cast(padding, tf.int32),
                                                       output_type=tf.int32),
                     tf.shape(detections)[0])
    boxes, class_ids, scores = detections[:count, :4], class_ids[:count], detections[:count, 5]
    # Each detection's mask of its own class: [N, m, m].
    masks = tf.gather(tf.transpose(masks[:count], [0, 3, 1, 2]), class_ids, batch_dims=1)

    # Normalized to the molded image -> normalized to the window -> pixels of the original.
    molded = tf.cast(molded_hw, tf.float32)
    window_norm = (tf.cast(window, tf.float32) - [0.0, 0.0, 1.0, 1.0]) / tf.stack(
        [molded[0] - 1, molded[1] - 1, molded[0] - 1, molded[1] - 1])
    wy1, wx1, wy2, wx2 = tf.unstack(window_norm)
    boxes = (boxes - tf.stack([wy1, wx1, wy1, wx1])) / tf.stack(
        [wy2 - wy1, wx2 - wx1, wy2 - wy1, wx2 - wx1])
    original = tf.cast(original_hw, tf.float32)
    boxes = boxes * tf.stack([original[0] - 1, original[1] - 1, original[0] - 1,
                              original[1] - 1]) + [0.0, 0.0, 1.0, 1.0]
    boxes = tf.cast(tf.round(boxes), tf.int32)

    keep = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) > 0
    boxes, class_ids, scores, masks = (tf.boolean_mask(t, keep)
                                       for t in (boxes, class_ids, scores, masks))
    return {"rois": boxes, "class_ids": class_ids, "scores": scores,
            "masks": paste_masks(masks, boxes, original_hw, dtype)}


def paste_masks(masks: tf.Tensor, boxes: tf.Tensor, image_hw: tf.Tensor,
                dtype: tf.DType = tf.float64) -> tf.Tensor:
    """Resize each mask [N, m, m] to its box [N, 4] (pixels) on an [H, W] canvas: uint8[H, W, N].

    As :func:`mrcnn.geometry.imaging.paste_masks`: scikit-image's bilinear resize of the mask to
    the box (taps outside the mask read 0), clipped to the mask's value range, >= 0.5; the part
    of a box outside the image is dropped. The resize is separable, so each mask is
    ``rows @ mask @ cols^T`` with [N, H, m] and [N, W, m] interpolation matrices: every
    detection's full-size mask in two batched matmuls. dtype: the sampling positions'
    arithmetic (float32 for LiteRT, whose builtin kernels have no float64).
    """
    boxes = tf.cast(boxes, tf.int32)
    rows, row_inside = _interpolation_matrix(boxes[:, 0], boxes[:, 2], tf.shape(masks)[1],
                                             image_hw[0], dtype)
    cols, col_inside = _interpolation_matrix(boxes[:, 1], boxes[:, 3], tf.shape(masks)[2],
                                             image_hw[1], dtype)
    values = tf.matmul(tf.matmul(rows, tf.cast(masks, tf.float32)), cols, transpose_b=True)
    # Clipping to the mask's minimum only matters for the threshold when that minimum is >= 0.5
    # (the blend with the zero fill at the box border is raised back to it).
    low = tf.reduce_min(masks, axis=[1, 2])[:, None, None]
    on = (values >= 0.5) | (tf.cast(low, tf.float32) >= 0.5)
    on &= row_inside[:, :, None] & col_inside[:, None, :]
    return tf.transpose(tf.cast(on, tf.uint8), [1, 2, 0])


def _interpolation_matrix(start: tf.Tensor, end: tf.Tensor, size: tf.Tensor, out_size: tf.Tensor,
                          dtype: tf.DType = tf.float64):
    """Bilinear weights float32[N, out_size, size] from a mask axis of ``size`` to the canvas
    positions ``start`` .. ``end`` (exclusive) of each box, and bool[N, out_size] inside it."""
    length = end - start
    ratio = tf.cast(size, dtype) / tf.cast(tf.maximum(length, 1), dtype)
    position = tf.cast(tf.range(out_size)[None, :] - start[:, None], dtype)
    coords = (position + 0.5) * ratio[:, None] - 0.5
    first = tf.floor(coords)
    w1 = coords - first
    i0 = tf.cast(first, tf.int32)
    # One-hot rows by comparison (taps outside the mask give zero rows: the zero fill); not
    # tf.one_hot, whose rank-2 indices tf2onnx cannot convert.
    taps = tf.range(size)[None, None, :]
    weights = (tf.cast(tf.equal(taps, i0[..., None]), dtype) * (1.0 - w1)[..., None]
               + tf.cast(tf.equal(taps, i0[..., None] + 1), dtype) * w1[..., None])
    inside = (position >= 0) & (position < tf.cast(length, dtype)[:, None])
    return tf.cast(weights, tf.float32), inside
