"""detect(): any number of images, of any sizes, results at each image's original size."""

import numpy as np
import pytest


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
