"""Box geometry: IoU, NMS, deltas, boxes from masks (hand-computed values)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrcnn.geometry.boxes import (
    apply_box_deltas,
    box_refinement,
    compute_iou,
    compute_overlaps,
    compute_overlaps_masks,
    extract_bboxes,
    non_max_suppression,
)


def test_extract_bboxes_is_tight_with_exclusive_end_and_zero_box_for_empty_mask():
    """A wrong box here shifts every RPN/head target by a pixel or invents boxes."""
    mask = np.zeros((10, 12, 3), dtype=bool)
    mask[2:5, 3:7, 0] = True
    mask[9, 11, 2] = True
    boxes = extract_bboxes(mask)
    assert boxes.dtype == np.int32
    np.testing.assert_array_equal(boxes, [[2, 3, 5, 7], [0, 0, 0, 0], [9, 11, 10, 12]])


def test_extract_bboxes_rejects_2d_mask():
    with pytest.raises(ValueError, match=r"\[H, W, N\]"):
        extract_bboxes(np.zeros((4, 4), dtype=bool))


def test_compute_overlaps_matches_hand_computed_iou():
    """IoU of [0,0,10,10] with a half-shifted box: 25 / (100 + 100 - 25) = 1/7."""
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [20, 20, 30, 30], [0, 0, 0, 0]])
    np.testing.assert_allclose(compute_overlaps(a, b), [[1.0, 1 / 7, 0.0, 0.0]], rtol=1e-6)
    assert compute_overlaps(np.zeros((0, 4)), b).shape == (0, 4)


def test_compute_iou_agrees_with_compute_overlaps():
    rng = np.random.default_rng(0)
    yx = rng.uniform(0, 50, size=(20, 2))
    boxes = np.concatenate([yx, yx + rng.uniform(1, 30, size=(20, 2))], axis=1)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    row = compute_iou(boxes[3], boxes, areas[3], areas)
    np.testing.assert_allclose(row, compute_overlaps(boxes[3:4], boxes)[0], atol=1e-5)


def test_compute_overlaps_masks_hand_computed():
    m1 = np.zeros((4, 4, 1), dtype=bool)
    m1[:2, :, 0] = True  # 8 pixels
    m2 = np.zeros((4, 4, 2), dtype=bool)
    m2[:, :2, 0] = True  # 8 pixels, 4 shared with m1
    overlaps = compute_overlaps_masks(m1, m2)
    np.testing.assert_allclose(overlaps, [[4 / 12, 0.0]])
    assert compute_overlaps_masks(m1, np.zeros((4, 4, 0), bool)).shape == (1, 0)


def test_non_max_suppression_keeps_best_and_drops_overlapping():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [0, 0, 10, 9]])
    scores = np.array([0.8, 0.9, 0.7, 0.1])
    keep = non_max_suppression(boxes, scores, 0.3)
    assert keep.dtype == np.int32
    np.testing.assert_array_equal(keep, [1, 2])


def test_non_max_suppression_rejects_mismatched_scores():
    with pytest.raises(ValueError, match="2 boxes but 1 scores"):
        non_max_suppression(np.zeros((2, 4)), np.zeros(1), 0.5)


def test_box_refinement_hand_computed():
    """A box twice as tall, shifted down by half its height: dy=0.5, dh=log 2."""
    deltas = box_refinement(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 20, 10]]))
    np.testing.assert_allclose(deltas, [[0.5, 0.0, np.log(2), 0.0]], atol=1e-6)


coordinate = st.floats(0, 500, allow_nan=False)
side = st.floats(1, 300, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(coordinate, coordinate, side, side, coordinate, coordinate, side, side),
                min_size=1, max_size=8))
def test_box_refinement_then_apply_box_deltas_round_trips(rows):
    """Encoding a GT box against an anchor and decoding it must give the GT box back."""
    rows = np.array(rows, dtype=np.float64)
    boxes = np.stack([rows[:, 0], rows[:, 1], rows[:, 0] + rows[:, 2], rows[:, 1] + rows[:, 3]], 1)
    gt = np.stack([rows[:, 4], rows[:, 5], rows[:, 4] + rows[:, 6], rows[:, 5] + rows[:, 7]], 1)
    decoded = apply_box_deltas(boxes, box_refinement(boxes, gt))
    np.testing.assert_allclose(decoded, gt, rtol=1e-4, atol=1e-2)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(1, 10),
                          st.integers(1, 10)), min_size=0, max_size=5))
def test_extract_bboxes_recovers_drawn_rectangles(rects):
    mask = np.zeros((40, 40, len(rects)), dtype=bool)
    for i, (y, x, h, w) in enumerate(rects):
        mask[y : y + h, x : x + w, i] = True
    expected = np.array([[y, x, y + h, x + w] for y, x, h, w in rects]).reshape(-1, 4)
    np.testing.assert_array_equal(extract_bboxes(mask), expected)
