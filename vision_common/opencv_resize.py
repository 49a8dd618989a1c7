"""``cv2.resize`` (INTER_AREA, INTER_LINEAR) written in TensorFlow gather/cumsum ops.

Exported models resize inside the graph exactly as the packages' Python paths do with OpenCV,
and these ops run unchanged in TensorFlow, LiteRT (builtin ops only) and ONNX (tf2onnx).
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["resize_like_opencv"]


def _lerp(x: tf.Tensor, axis: int, low: tf.Tensor, fraction: tf.Tensor) -> tf.Tensor:
    """``x[low] * (1 - fraction) + x[low + 1] * fraction`` along ``axis`` (index clamped)."""
    size = tf.shape(x)[axis]
    high = tf.minimum(low + 1, size - 1)
    fraction = tf.reshape(fraction, [-1] + [1] * (x.shape.rank - 1 - axis))
    return tf.gather(x, low, axis=axis) * (1.0 - fraction) + tf.gather(x, high, axis=axis) * fraction


def _resample_axis(x: tf.Tensor, axis: int, out_size: tf.Tensor, integral_mode: tf.Tensor,
                   area: tf.Tensor) -> tf.Tensor:
    """One axis of ``cv2.resize``: ``area`` -> INTER_AREA, else INTER_LINEAR; float math.

    With INTER_AREA OpenCV averages exact pixel overlaps when no axis grows (``integral_mode``,
    computed from a cumulative sum), else it interpolates with its own INTER_AREA weights.
    """
    size = tf.shape(x)[axis]
    n = tf.cast(size, tf.float32)
    scale = n / tf.cast(out_size, tf.float32)
    index = tf.range(tf.cast(out_size, tf.float32))
    # INTER_LINEAR: half-pixel centres, clamped at both borders.
    linear = (index + 0.5) * scale - 0.5
    linear_low = tf.floor(linear)
    linear_fraction = tf.where((linear < 0) | (linear_low >= n - 1), 0.0, linear - linear_low)
    # INTER_AREA when the image grows along some axis (OpenCV's resize.cpp, "INTER_AREA" taps).
    area_low = tf.floor(index * scale)
    area_fraction = (index + 1) - (area_low + 1) / scale
    area_fraction = tf.where(area_fraction <= 0, 0.0, area_fraction - tf.floor(area_fraction))
    area_fraction = tf.where(area_low >= n - 1, 0.0, area_fraction)
    low = tf.where(area, area_low, linear_low)
    fraction = tf.where(area, area_fraction, linear_fraction)
    low = tf.cast(tf.clip_by_value(low, 0.0, n - 1), tf.int32)
    interpolated = _lerp(x, axis, low, fraction)
    # INTER_AREA when shrinking: mean over [i * scale, (i + 1) * scale) of the pixel step function.
    zeros = tf.zeros_like(tf.gather(x, [0], axis=axis))
    integral = tf.concat([zeros, tf.cumsum(x, axis=axis)], axis=axis)
    edges = tf.minimum(tf.range(tf.cast(out_size, tf.float32) + 1) * scale, n)
    edge_low = tf.minimum(tf.floor(edges), n - 1)
    sums = _lerp(integral, axis, tf.cast(edge_low, tf.int32), edges - edge_low)
    averaged = (tf.gather(sums, tf.range(1, out_size + 1), axis=axis)
                - tf.gather(sums, tf.range(out_size), axis=axis)) / scale
    return tf.where(integral_mode, averaged, interpolated)


def resize_like_opencv(image: tf.Tensor, height: int | tf.Tensor, width: int | tf.Tensor,
                       method: str = "auto", uint8: bool = False) -> tf.Tensor:
    """``cv2.resize`` of a float ``[H, W, C]`` tensor to ``[height, width, C]`` in TF ops.

    ``method``: "linear" (INTER_LINEAR), "area" (INTER_AREA) or "auto" (area when the pixel
    count drops, else linear: what ``unet.imaging.resize_image`` picks).
    ``uint8``: round and clip as OpenCV does for a uint8 image (still a float tensor).
    """
    if method not in ("auto", "area", "linear"):
        raise ValueError(f"method must be 'auto', 'area' or 'linear'; got {method!r}")
    in_h, in_w = tf.shape(image)[0], tf.shape(image)[1]
    height, width = tf.cast(height, tf.int32), tf.cast(width, tf.int32)
    if method == "auto":
        area = height * width < in_h * in_w
    else:
        area = tf.constant(method == "area")
    integral = area & (height <= in_h) & (width <= in_w)
    resized = _resample_axis(_resample_axis(image, 1, width, integral, area), 0, height,
                             integral, area)
    if not uint8:
        return resized
    # OpenCV's fixed-point paths (bilinear, and area shrinking by one integer factor on both
    # axes) round halves up; its fractional area mean rounds to nearest even.
    same_factor = ((in_h % height == 0) & (in_w % width == 0)
                   & (in_h // height == in_w // width))
    half_up = ~integral | same_factor
    resized = tf.where(half_up, tf.floor(resized + 0.5), tf.round(resized))
    return tf.clip_by_value(resized, 0.0, 255.0)
