"""Anchor generation (numpy). Anchors are ``(y1, x1, y2, x2)`` in pixels unless normalized."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np


def compute_backbone_shapes(config, image_shape: Sequence[int]) -> np.ndarray:
    """[N, (height, width)] of the feature map of each pyramid level for ``image_shape``."""
    if callable(config.BACKBONE):
        return np.array(config.COMPUTE_BACKBONE_SHAPE(image_shape))
    return np.array(
        [
            [int(np.ceil(image_shape[0] / stride)), int(np.ceil(image_shape[1] / stride))]
            for stride in config.BACKBONE_STRIDES
        ]
    )


def generate_anchors(
    scales: float | Sequence[float],
    ratios: Sequence[float],
    shape: Sequence[int],
    feature_stride: int,
    anchor_stride: int,
) -> np.ndarray:
    """Anchors of one pyramid level, float32[N, (y1, x1, y2, x2)] in pixels.

    scales: side lengths in pixels; ratios: width/height; shape: [height, width] of the feature
    map; feature_stride: pixels per feature-map cell; anchor_stride: anchor every N cells.
    Ordered cell by cell (row-major), then by (scale, ratio) within a cell, as in Matterport.
    """
    scales, ratios = np.meshgrid(np.array(scales, dtype=np.float64), np.array(ratios, dtype=np.float64))
    scales, ratios = scales.flatten(), ratios.flatten()
    heights = scales / np.sqrt(ratios)
    widths = scales * np.sqrt(ratios)

    shifts_y = np.arange(0, shape[0], anchor_stride) * feature_stride
    shifts_x = np.arange(0, shape[1], anchor_stride) * feature_stride
    shifts_x, shifts_y = np.meshgrid(shifts_x, shifts_y)

    box_widths, box_centers_x = np.meshgrid(widths, shifts_x)
    box_heights, box_centers_y = np.meshgrid(heights, shifts_y)
    centers = np.stack([box_centers_y, box_centers_x], axis=2).reshape([-1, 2])
    sizes = np.stack([box_heights, box_widths], axis=2).reshape([-1, 2])
    return np.concatenate([centers - 0.5 * sizes, centers + 0.5 * sizes], axis=1).astype(np.float32)


def generate_pyramid_anchors(
    scales: Sequence[float],
    ratios: Sequence[float],
    feature_shapes: Sequence[Sequence[int]],
    feature_strides: Sequence[int],
    anchor_stride: int,
) -> np.ndarray:
    """Anchors of all pyramid levels concatenated, level P2 first: float32[N, 4] in pixels."""
    return np.concatenate(
        [
            generate_anchors(scale, ratios, shape, stride, anchor_stride)
            for scale, shape, stride in zip(scales, feature_shapes, feature_strides, strict=True)
        ],
        axis=0,
    )


def norm_boxes(boxes: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Pixel boxes -> normalized. (y2, x2) are exclusive in pixels, inclusive when normalized."""
    h, w = shape[:2]
    scale = np.array([h - 1, w - 1, h - 1, w - 1], dtype=np.float32)
    shift = np.array([0, 0, 1, 1], dtype=np.float32)
    return ((np.asarray(boxes, np.float32) - shift) / scale).astype(np.float32)


def denorm_boxes(boxes: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Normalized boxes -> int32 pixel boxes (inverse of :func:`norm_boxes`)."""
    h, w = shape[:2]
    scale = np.array([h - 1, w - 1, h - 1, w - 1], dtype=np.float32)
    shift = np.array([0, 0, 1, 1], dtype=np.float32)
    return np.around(np.asarray(boxes, np.float32) * scale + shift).astype(np.int32)


def anchors_for_image_shape(config, image_shape: Sequence[int], normalized: bool = True) -> np.ndarray:
    """The anchors the model uses for a molded image of ``image_shape`` (cached per shape)."""
    return _cached_anchors(
        tuple(config.RPN_ANCHOR_SCALES),
        tuple(config.RPN_ANCHOR_RATIOS),
        tuple(config.BACKBONE_STRIDES),
        int(config.RPN_ANCHOR_STRIDE),
        tuple(map(tuple, compute_backbone_shapes(config, image_shape).tolist())),
        (int(image_shape[0]), int(image_shape[1])),
        normalized,
    )


@functools.lru_cache(maxsize=32)
def _cached_anchors(scales, ratios, strides, anchor_stride, feature_shapes, hw, normalized):
    anchors = generate_pyramid_anchors(scales, ratios, feature_shapes, strides, anchor_stride)
    if normalized:
        anchors = norm_boxes(anchors, hw)
    anchors.setflags(write=False)
    return anchors
