"""Anchors (mrcnn.geometry.anchors) against hand-computed values for tiny feature maps."""

import numpy as np
import pytest

from mrcnn.config import tiny_config
from mrcnn.geometry.anchors import (
    anchors_for_image_shape,
    compute_backbone_shapes,
    denorm_boxes,
    generate_anchors,
    generate_pyramid_anchors,
    norm_boxes,
)

R2 = np.sqrt(2)


def test_generate_anchors_of_a_2x2_map_by_hand():
    """Scale 8, ratios 0.5/1/2 (width/height), stride 4: cell-major, then ratio order."""
    anchors = generate_anchors(8, [0.5, 1, 2], [2, 2], feature_stride=4, anchor_stride=1)
    assert anchors.shape == (12, 4) and anchors.dtype == np.float32
    tall = [-4 * R2, -2 * R2, 4 * R2, 2 * R2]  # ratio 0.5: h = 8*sqrt(2), w = 8/sqrt(2)
    np.testing.assert_allclose(anchors[0], tall, rtol=1e-5)
    np.testing.assert_allclose(anchors[4], [-4, 0, 4, 8])  # cell (y=0, x=4), square
    np.testing.assert_allclose(anchors[11], [4 - 2 * R2, 4 - 4 * R2, 4 + 2 * R2, 4 + 4 * R2],
                               rtol=1e-5)  # cell (4, 4), wide
    np.testing.assert_allclose(anchors[7], [0, -4, 8, 4])  # cell (4, 0), square


def test_anchor_stride_skips_cells():
    anchors = generate_anchors(8, [1], [4, 4], feature_stride=4, anchor_stride=2)
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    np.testing.assert_allclose(centres, [[0, 0], [0, 8], [8, 0], [8, 8]])


def test_backbone_shapes_and_pyramid_count_for_tiny_preset():
    config = tiny_config()
    shapes = compute_backbone_shapes(config, config.IMAGE_SHAPE)
    np.testing.assert_array_equal(shapes, [[16, 16], [8, 8], [4, 4], [2, 2], [1, 1]])
    anchors = generate_pyramid_anchors(config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS, shapes,
                                       config.BACKBONE_STRIDES, config.RPN_ANCHOR_STRIDE)
    assert anchors.shape == ((256 + 64 + 16 + 4 + 1) * 3, 4)
    side = anchors[:, 2] - anchors[:, 0]
    np.testing.assert_allclose(side[256 * 3 + 1], 16)  # first P3 square anchor: scale 16


def test_norm_and_denorm_boxes_by_hand():
    """Pixel (y2, x2) are exclusive: [0, 0, 64, 64] of a 64x64 image is [0, 0, 1, 1]."""
    np.testing.assert_allclose(norm_boxes(np.array([[0, 0, 64, 64], [9, 0, 32, 16]]), (64, 64)),
                               [[0, 0, 1, 1], [9 / 63, 0, 31 / 63, 15 / 63]], rtol=1e-6)
    boxes = np.array([[3, 5, 40, 60]])
    np.testing.assert_array_equal(denorm_boxes(norm_boxes(boxes, (64, 80)), (64, 80)), boxes)


def test_anchors_for_image_shape_is_cached_and_read_only():
    config = tiny_config()
    first = anchors_for_image_shape(config, config.IMAGE_SHAPE, normalized=False)
    assert anchors_for_image_shape(config, config.IMAGE_SHAPE, normalized=False) is first
    with pytest.raises(ValueError):
        first[0, 0] = 1.0
    normalized = anchors_for_image_shape(config, config.IMAGE_SHAPE)
    np.testing.assert_allclose(normalized, norm_boxes(first, (64, 64)), rtol=1e-6)
