"""``MaskRCNN.mold_inputs`` and ``get_anchors`` for one image, as TensorFlow ops.

The same numbers as the numpy path (:func:`mrcnn.geometry.imaging.resize_image`,
:func:`~mrcnn.geometry.imaging.mold_image`, :mod:`mrcnn.geometry.anchors`): the resize runs
scikit-image's bilinear zoom in float64 (taps outside the image read 0, output clipped to the
input's range, truncated to uint8), so the exported graph sees the pixels ``detect()`` sees.

Shape shorthand: H, W the original image; Hm, Wm the molded image; C channels; A anchors.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mrcnn.config import Config
from mrcnn.geometry.anchors import anchors_for_image_shape

__all__ = ["SUPPORTED_RESIZE_MODES", "compute_anchors", "mold_one_image"]

# "crop" takes a random crop and is for training only (detect() refuses it too).
SUPPORTED_RESIZE_MODES = ("square", "pad64", "none")


def mold_one_image(image: tf.Tensor, config: Config) -> dict[str, tf.Tensor]:
    """Resize, pad and normalize one image uint8[H, W, C] as ``detect()`` does (MEAN_PIXEL,
    then PIXEL_STD when set).

    Returns ``molded`` float32[1, Hm, Wm, C], ``image_meta`` float32[1, IMAGE_META_SIZE] and
    ``window`` int32[4] (y1, x1, y2, x2), pixels of the content inside the molded image.
    """
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    scale = _resize_scale(height, width, config)
    new_h = tf.cast(tf.round(tf.cast(height, tf.float64) * scale), tf.int32)
    new_w = tf.cast(tf.round(tf.cast(width, tf.float64) * scale), tf.int32)
    resized = tf.cond(tf.equal(scale, 1.0), lambda: image,
                      lambda: _resize_bilinear(image, new_h, new_w))
    if config.IMAGE_RESIZE_MODE == "square":
        side = int(config.IMAGE_MAX_DIM)
        top, left = (side - new_h) // 2, (side - new_w) // 2
        padding = [[top, side - new_h - top], [left, side - new_w - left], [0, 0]]
    elif config.IMAGE_RESIZE_MODE == "pad64":
        pad_h, pad_w = (64 - new_h % 64) % 64, (64 - new_w % 64) % 64
        top, left = pad_h // 2, pad_w // 2
        padding = [[top, pad_h - top], [left, pad_w - left], [0, 0]]
    else:
        top = left = tf.constant(0)
        padding = [[0, 0], [0, 0], [0, 0]]
    padded = tf.pad(resized, padding)
    # Matterport: float32 image minus the float64 mean, then cast to float32; PIXEL_STD, when
    # set, divides in float64 before the cast, as mold_image does.
    mean = tf.constant(np.asarray(config.MEAN_PIXEL, dtype=np.float64))
    centered = tf.cast(padded, tf.float64) - mean
    if config.PIXEL_STD is not None:
        centered = centered / tf.constant(np.asarray(config.PIXEL_STD, dtype=np.float64))
    molded = tf.cast(centered, tf.float32)
    window = tf.stack([top, left, top + new_h, left + new_w])
    molded_shape = tf.shape(padded)
    meta = tf.concat([
        tf.zeros([1], tf.float32),
        tf.cast(tf.shape(image), tf.float32),
        tf.cast(molded_shape, tf.float32),
        tf.cast(window, tf.float32),
        tf.cast(scale, tf.float32)[None],
        tf.zeros([config.NUM_CLASSES], tf.float32),
    ], axis=0)
    return {"molded": molded[None], "image_meta": meta[None], "window": window}


def _resize_scale(height: tf.Tensor, width: tf.Tensor, config: Config) -> tf.Tensor:
    """resize_image's scale (float64 scalar): upscale to IMAGE_MIN_DIM, at least IMAGE_MIN_SCALE,
    in square mode down to IMAGE_MAX_DIM; 1 in mode none."""
    if config.IMAGE_RESIZE_MODE == "none":
        return tf.constant(1.0, tf.float64)
    h, w = tf.cast(height, tf.float64), tf.cast(width, tf.float64)
    scale = tf.constant(1.0, tf.float64)
    if config.IMAGE_MIN_DIM:
        scale = tf.maximum(scale, float(config.IMAGE_MIN_DIM) / tf.minimum(h, w))
    if config.IMAGE_MIN_SCALE:
        scale = tf.maximum(scale, float(config.IMAGE_MIN_SCALE))
    if config.IMAGE_MAX_DIM and config.IMAGE_RESIZE_MODE == "square":
        longest = tf.maximum(h, w)
        scale = tf.where(tf.round(longest * scale) > config.IMAGE_MAX_DIM,
                         float(config.IMAGE_MAX_DIM) / longest, scale)
    return scale


def _bilinear_taps(size: tf.Tensor, out_size: tf.Tensor):
    """scipy's grid-mode zoom taps along one axis: indices (i0, i1) and weights (w0, w1), each
    [out_size]; a tap outside the input gets weight 0 (it reads the fill value 0)."""
    ratio = tf.cast(size, tf.float64) / tf.cast(out_size, tf.float64)
    coords = (tf.range(out_size, dtype=tf.float64) + 0.5) * ratio - 0.5
    first = tf.floor(coords)
    w1 = coords - first
    w0 = 1.0 - w1
    i0 = tf.cast(first, tf.int32)
    i1 = i0 + 1
    w0 = tf.where((i0 < 0) | (i0 >= size), tf.zeros_like(w0), w0)
    w1 = tf.where((i1 < 0) | (i1 >= size), tf.zeros_like(w1), w1)
    return (tf.clip_by_value(i0, 0, size - 1), tf.clip_by_value(i1, 0, size - 1)), (w0, w1)


def _resize_bilinear(image: tf.Tensor, out_h: tf.Tensor, out_w: tf.Tensor,
                     dtype: tf.DType = tf.float64) -> tf.Tensor:
    """:func:`mrcnn.geometry.imaging.resize` of uint8[H, W, C] with Matterport's arguments, cast
    back to uint8 (truncation): the terms summed in scipy's order, in float64.

    dtype: the arithmetic's; float32 for LiteRT, whose builtin kernels have no float64 (the
    taps stay float64: for a fixed size they are constants the converter folds).
    """
    values = tf.cast(image, dtype)
    (r0, r1), (wy0, wy1) = _bilinear_taps(tf.shape(image)[0], out_h)
    (c0, c1), (wx0, wx1) = _bilinear_taps(tf.shape(image)[1], out_w)
    wy0, wy1, wx0, wx1 = (tf.cast(w, dtype) for w in (wy0, wy1, wx0, wx1))
    wy0, wy1 = wy0[:, None, None], wy1[:, None, None]
    wx0, wx1 = wx0[None, :, None], wx1[None, :, None]
    rows0, rows1 = tf.gather(values, r0), tf.gather(values, r1)
    total = tf.gather(rows0, c0, axis=1) * wy0 * wx0
    total = total + tf.gather(rows0, c1, axis=1) * wy0 * wx1
    total = total + tf.gather(rows1, c0, axis=1) * wy1 * wx0
    total = total + tf.gather(rows1, c1, axis=1) * wy1 * wx1
    # scikit-image clips to the input's range, widened to the fill value 0 only when the output
    # reaches it.
    low, high = tf.reduce_min(values), tf.reduce_max(values)
    widen = ~((low <= 0) & (high >= 0)) & (tf.reduce_min(total) <= 0) & (tf.reduce_max(total) >= 0)
    low = tf.where(widen, tf.minimum(low, 0.0), low)
    high = tf.where(widen, tf.maximum(high, 0.0), high)
    return tf.cast(tf.clip_by_value(total, low, high), tf.uint8)


def compute_anchors(config: Config, molded_hw: tf.Tensor) -> tf.Tensor:
    """Normalized anchors float32[A, 4] for a molded image of ``molded_hw`` (Hm, Wm).

    In square mode every image molds to IMAGE_SHAPE, so the anchors are one constant; else
    they are generated in the graph, as :func:`mrcnn.geometry.anchors.generate_anchors` does.
    """
    if config.IMAGE_RESIZE_MODE == "square":
        return tf.constant(anchors_for_image_shape(config, config.IMAGE_SHAPE))
    ratios = tf.constant(config.RPN_ANCHOR_RATIOS, tf.float64)
    levels = []
    for scale, stride in zip(config.RPN_ANCHOR_SCALES, config.BACKBONE_STRIDES, strict=True):
        heights = float(scale) / tf.sqrt(ratios)
        widths = float(scale) * tf.sqrt(ratios)
        cells = (molded_hw + stride - 1) // stride  # the backbone's ceil(size / stride)
        shifts_y = tf.cast(tf.range(0, cells[0], config.RPN_ANCHOR_STRIDE) * stride, tf.float64)
        shifts_x = tf.cast(tf.range(0, cells[1], config.RPN_ANCHOR_STRIDE) * stride, tf.float64)
        center_y, center_x = tf.meshgrid(shifts_y, shifts_x, indexing="ij")
        center_y = tf.reshape(center_y, [-1, 1])  # cell by cell, then ratio by ratio
        center_x = tf.reshape(center_x, [-1, 1])
        boxes = tf.stack([center_y - 0.5 * heights, center_x - 0.5 * widths,
                          center_y + 0.5 * heights, center_x + 0.5 * widths], axis=-1)
        levels.append(tf.reshape(boxes, [-1, 4]))
    anchors = tf.cast(tf.concat(levels, axis=0), tf.float32)
    size = tf.cast(molded_hw, tf.float32)
    scale = tf.stack([size[0] - 1, size[1] - 1, size[0] - 1, size[1] - 1])
    return (anchors - tf.constant([0.0, 0.0, 1.0, 1.0])) / scale
