"""detect(): any number of images, of any sizes, results at each image's original size."""

import keras
import numpy as np
import pytest

from mrcnn.geometry.anchors import norm_boxes
from mrcnn.geometry.imaging import resize_image
from mrcnn.modeling.postprocess import unmold_detections


def test_detect_images_of_different_sizes(tiny_inference_model):
    """Users pass a list of photos of mixed sizes; each result must match its own image."""
    rng = np.random.default_rng(0)
    shapes = [(50, 70, 3), (64, 64, 3), (120, 33, 3)]
    images = [rng.integers(0, 255, size=s, dtype=np.uint8) for s in shapes]
    results = tiny_inference_model.detect(images)
    assert len(results) == 3  # not limited to BATCH_SIZE (2)
    for shape, result in zip(shapes, results, strict=True):
        n = len(result["class_ids"])
        assert result["masks"].shape == (shape[0], shape[1], n)
        assert result["masks"].dtype == bool
        assert result["rois"].shape == (n, 4) and result["scores"].shape == (n,)
        if n:
            assert result["rois"][:, [0, 2]].max() <= shape[0]
            assert result["rois"][:, [1, 3]].max() <= shape[1]


def test_detect_accepts_grayscale_and_rgba(tiny_inference_model):
    gray = np.zeros((64, 64), np.uint8)
    rgba = np.zeros((64, 64, 4), np.uint8)
    results = tiny_inference_model.detect([gray, rgba])
    assert [r["masks"].shape[:2] for r in results] == [(64, 64), (64, 64)]


@pytest.mark.parametrize("bad, message", [
    ("not an image", "numpy array"),
    (np.zeros((64,), np.uint8), "shape"),
    (np.zeros((64, 64, 2), np.uint8), "channels"),
])
def test_detect_rejects_bad_input_clearly(tiny_inference_model, bad, message):
    with pytest.raises((TypeError, ValueError), match=message):
        tiny_inference_model.detect([bad])


def test_unmold_detections_maps_boxes_back_onto_the_original_image():
    """A detection found in the resized, padded model input must land on the same object in
    the user's original photo (a wide image, so resizing both scales and pads)."""
    original = np.zeros((50, 100, 3), np.uint8)
    molded, window, scale, _, _ = resize_image(original, min_dim=64, max_dim=64, mode="square")
    assert window[0] > 0 and scale < 1  # padded above and below, shrunk
    box = np.array([10, 20, 30, 60], np.float32)  # (y1, x1, y2, x2) in the original
    in_molded = box * scale + np.array([window[0], window[1], window[0], window[1]])
    normalized = norm_boxes(in_molded[None], molded.shape[:2])[0]
    detections = np.zeros((4, 6), np.float32)
    detections[0] = [*normalized, 2, 0.9]
    masks = np.ones((4, 7, 7, 3), np.float32)
    rois, class_ids, scores, full = unmold_detections(detections, masks, original.shape,
                                                      molded.shape, np.array(window))
    np.testing.assert_allclose(rois[0], box, atol=1)
    assert class_ids.tolist() == [2] and scores.tolist() == pytest.approx([0.9])
    assert full.shape == (50, 100, 1) and full[15, 40, 0] and not full[40, 10, 0]


@pytest.fixture(scope="module")
def eager_detector(tmp_path_factory):
    """A random-init inference model that reports everything (no confidence floor)."""
    from mrcnn import model as modellib
    from mrcnn.config import tiny_config

    keras.utils.set_random_seed(7)
    config = tiny_config(DETECTION_MIN_CONFIDENCE=0.0, IMAGES_PER_GPU=2)
    return modellib.MaskRCNN("inference", config, tmp_path_factory.mktemp("logs"))


def test_each_image_of_a_batch_gets_its_own_detections(eager_detector):
    """detect([a, b]) must give b the result detect([b]) gives: no image may receive another
    image's detections or be mapped through another image's window."""
    rng = np.random.default_rng(1)
    a = rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)
    b = rng.integers(0, 255, (120, 33, 3), dtype=np.uint8)
    together = eager_detector.detect([a, b])
    alone = eager_detector.detect([b])[0]
    assert len(alone["class_ids"]) > 0
    np.testing.assert_array_equal(together[1]["rois"], alone["rois"])
    np.testing.assert_array_equal(together[1]["class_ids"], alone["class_ids"])
    np.testing.assert_allclose(together[1]["scores"], alone["scores"], rtol=1e-5)
