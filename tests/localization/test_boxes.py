"""Box IoU / GIoU: golden values from the research notes and geometric properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localization.boxes import compute_giou, compute_iou, denormalize_boxes, normalize_boxes

coordinate = st.floats(0.0, 1.0, allow_nan=False, width=32)


@st.composite
def boxes(draw):
    x1, x2 = sorted((draw(coordinate), draw(coordinate)))
    y1, y2 = sorted((draw(coordinate), draw(coordinate)))
    return np.array([x1, y1, x2, y2], dtype=np.float32)


def test_iou_and_giou_match_the_golden_vector():
    """A user comparing with published IoU numbers would see a different value."""
    a, b = [0.1, 0.1, 0.5, 0.5], [0.3, 0.3, 0.7, 0.7]
    assert float(compute_iou(a, b)) == pytest.approx(0.142857, abs=1e-5)
    assert float(compute_giou(a, b)) == pytest.approx(-0.079365, abs=1e-5)


def test_disjoint_boxes_have_zero_iou_and_negative_giou():
    assert float(compute_iou([0, 0, 0.2, 0.2], [0.5, 0.5, 1, 1])) == 0.0
    assert float(compute_giou([0, 0, 0.2, 0.2], [0.5, 0.5, 1, 1])) < 0.0


@settings(max_examples=60, deadline=None)
@given(boxes(), boxes())
def test_iou_is_symmetric_bounded_and_above_giou(a, b):
    iou = float(compute_iou(a, b))
    assert 0.0 <= iou <= 1.0 + 1e-6
    assert iou == pytest.approx(float(compute_iou(b, a)), abs=1e-6)
    assert -1.0 - 1e-6 <= float(compute_giou(a, b)) <= iou + 1e-6


@settings(max_examples=40, deadline=None)
@given(boxes())
def test_a_box_with_area_overlaps_itself_fully(a):
    """IoU(a, a) = area / (area + 1e-7): within 1e-3 of 1 once the area exceeds 1e-4."""
    if (a[2] - a[0]) * (a[3] - a[1]) > 1e-4:
        assert float(compute_iou(a, a)) == pytest.approx(1.0, abs=1e-3)


@settings(max_examples=40, deadline=None)
@given(boxes(), st.integers(1, 4000), st.integers(1, 4000))
def test_pixel_round_trip_keeps_boxes(a, width, height):
    pixels = denormalize_boxes(a, width, height)
    assert pixels[2] <= width + 1e-3 and pixels[3] <= height + 1e-3
    np.testing.assert_allclose(normalize_boxes(pixels, width, height), a, atol=1e-6)


def test_pixel_and_normalized_frames_use_width_for_x_and_height_for_y():
    """If this fails, boxes on non-square images come out stretched (x scaled by the height)."""
    pixels = np.array([[8.0, 4.0, 40.0, 20.0], [0.0, 0.0, 80.0, 40.0]])
    expected = np.array([[0.1, 0.1, 0.5, 0.5], [0.0, 0.0, 1.0, 1.0]])
    np.testing.assert_allclose(normalize_boxes(pixels, width=80, height=40), expected)
    np.testing.assert_allclose(denormalize_boxes(expected, width=80, height=40), pixels)
