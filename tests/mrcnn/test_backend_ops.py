"""The portable (``keras.ops``) graph ops agree with the TensorFlow kernels they stand in for.

JAX and PyTorch run :mod:`mrcnn.modeling.portable_ops`; TensorFlow runs its own kernels unless
``backend_ops.portable_ops()`` is on. Here, on TensorFlow, both run on the same inputs.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from mrcnn.modeling import backend_ops


def random_boxes(rng: np.random.Generator, count: int, low: float = 0.0,
                 high: float = 1.0) -> np.ndarray:
    """[count, (y1, x1, y2, x2)] float32 with corners drawn in [low, high]."""
    corners = rng.uniform(low, high, size=(count, 2, 2)).astype(np.float32)
    return np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)


def both(function, *args):
    """(TensorFlow kernel's result, portable result) of a backend_ops function, as numpy."""
    assert backend_ops.uses_tensorflow_kernels()
    kernel = function(*args)
    with backend_ops.portable_ops():
        assert not backend_ops.uses_tensorflow_kernels()
        portable = function(*args)
    return tf.nest.map_structure(np.asarray, (kernel, portable))


@pytest.mark.parametrize("crop_size", [(7, 7), (14, 14), (3, 5), (1, 1)])
def test_crop_and_resize_matches_tensorflow_inside_and_outside_the_image(crop_size):
    """Portable crops would sample other pixels than tf.image.crop_and_resize (align-corners
    spacing), or not be 0 where a box leaves the image, or not follow flipped boxes."""
    rng = np.random.default_rng(0)
    images = rng.normal(size=(2, 9, 13, 3)).astype(np.float32)
    boxes = np.concatenate([random_boxes(rng, 40), random_boxes(rng, 40, -0.6, 1.6),
                            random_boxes(rng, 8)[:, [2, 3, 0, 1]]])  # inside, across, flipped
    box_indices = rng.integers(0, 2, size=len(boxes)).astype(np.int32)
    kernel, portable = both(backend_ops.crop_and_resize, images, boxes, box_indices, crop_size)
    assert portable.shape == kernel.shape == (len(boxes), *crop_size, 3)
    np.testing.assert_allclose(portable, kernel, atol=2e-5)
    assert (kernel == 0).any()  # some samples did fall outside


def test_pyramid_crops_take_each_box_from_its_level_in_order():
    """Portable pyramid crops would mix up levels or images (one pixel table for all levels)."""
    rng = np.random.default_rng(1)
    maps = [rng.normal(size=(2, 16 // 2**i, 24 // 2**i, 4)).astype(np.float32)
            for i in range(4)]
    boxes = random_boxes(rng, 60, -0.2, 1.2)
    box_indices = rng.integers(0, 2, size=60).astype(np.int32)
    levels = rng.integers(0, 4, size=60).astype(np.int32)
    kernel, portable = both(backend_ops.pyramid_crop_and_resize, maps, boxes, box_indices,
                            levels, (7, 7))
    np.testing.assert_allclose(portable, kernel, atol=2e-5)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("iou_threshold", [0.3, 0.7])
def test_nms_keeps_what_tensorflow_keeps(seed, iou_threshold):
    """Portable NMS would keep other boxes, in another order, or pad differently than
    tf.image.non_max_suppression (suppressed when IoU > threshold; zero-area boxes kept)."""
    rng = np.random.default_rng(seed)
    boxes = np.stack([_clusters(rng, 200) for _ in range(2)])
    scores = rng.random(size=(2, 200)).astype(np.float32)
    kernel, portable = both(backend_ops.non_max_suppression_padded, boxes, scores, 60,
                            iou_threshold)
    assert kernel.shape == portable.shape == (2, 60)
    np.testing.assert_array_equal(portable, kernel)


def _clusters(rng: np.random.Generator, count: int) -> np.ndarray:
    """Jittered copies of a few boxes (what NMS sees); every 20th box has zero height."""
    centres = random_boxes(rng, count // 8, 0.1, 0.9)
    boxes = centres[rng.integers(0, len(centres), size=count)]
    boxes = (boxes + rng.normal(scale=0.03, size=boxes.shape)).astype(np.float32)
    boxes[::20, 2] = boxes[::20, 0]
    return boxes


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(1, 4),
                          st.integers(1, 4), st.integers(0, 3)), min_size=1, max_size=12),
       st.sampled_from([0.0, 0.3, 0.5]))
def test_nms_on_grid_boxes_with_tied_scores(cells, iou_threshold):
    """Equal scores: both keep the lowest index first; IoU exactly at the threshold (grid
    boxes make 0.5 and 0.0 common) does not suppress."""
    boxes = np.float32([[y, x, y + h, x + w] for y, x, h, w, _ in cells])[None] / 10.0
    scores = np.float32([s for *_, s in cells])[None] / 4.0
    kernel, portable = both(backend_ops.non_max_suppression_padded, boxes, scores, 8,
                            iou_threshold)
    np.testing.assert_array_equal(portable, kernel)


@pytest.mark.parametrize("seed", range(3))
def test_per_class_nms_matches_combined_non_max_suppression(seed):
    """Portable per-class NMS would suppress across classes, keep non-candidates, or rank
    the merged classes otherwise than tf.image.combined_non_max_suppression."""
    rng = np.random.default_rng(seed)
    boxes = np.stack([_clusters(rng, 120) for _ in range(2)])
    scores = rng.random(size=(2, 120)).astype(np.float32)
    class_ids = rng.integers(0, 5, size=(2, 120)).astype(np.int32)
    candidates = (class_ids > 0) & (scores > 0.2)
    kernel, portable = both(backend_ops.per_class_non_max_suppression, boxes, scores,
                            class_ids, candidates, 5, 20, 0.3)
    for name, k, p in zip(("boxes", "class_ids", "scores", "valid"), kernel, portable,
                          strict=True):
        np.testing.assert_array_equal(p, k, err_msg=name)
    assert kernel[3].sum(axis=1).min() > 5  # several detections per image


@pytest.fixture(scope="module")
def spread_model(tmp_path_factory):
    """A tiny inference model whose class scores spread out: random heads saturate at 1.0,
    and ties of equal scores are broken in an unspecified order by combined NMS."""
    from mrcnn import model as modellib
    from mrcnn.config import tiny_config

    keras.utils.set_random_seed(0)
    model = modellib.MaskRCNN("inference", tiny_config(DETECTION_MIN_CONFIDENCE=0.3),
                              tmp_path_factory.mktemp("logs"))
    for name, factor in (("mrcnn_class_logits", 0.1), ("rpn_class_raw", 0.05)):
        layer = model.keras_model.get_layer(name)
        layer.set_weights([w * factor for w in layer.get_weights()])
    return model


def test_portable_inference_graph_detects_what_tensorflow_detects(spread_model):
    """The whole inference graph run with portable ops (as a builtin-ops-only converter
    would trace it) would detect other boxes, classes, scores or masks."""
    rng = np.random.default_rng(0)
    molded, metas, _ = spread_model.mold_inputs([rng.integers(0, 255, (64, 64, 3), np.uint8),
                                                 rng.integers(0, 255, (40, 64, 3), np.uint8)])
    inputs = {"input_image": tf.constant(np.stack(molded)),
              "input_image_meta": tf.constant(np.stack(metas).astype(np.float32)),
              "input_anchors": tf.constant(spread_model.get_anchors(molded[0].shape))}
    kernel = spread_model.keras_model(inputs)
    with backend_ops.portable_ops():
        portable = spread_model.keras_model(inputs)
    assert (kernel["detections"][..., 4] > 0).numpy().sum(axis=1).min() > 3
    np.testing.assert_allclose(portable["detections"], kernel["detections"], atol=1e-5)
    np.testing.assert_allclose(portable["masks"], kernel["masks"], atol=1e-5)
