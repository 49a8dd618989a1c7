"""IMAGE_CHANNEL_COUNT != 3 with 3-channel weights: conv1 is adapted, not refused."""

import keras
import numpy as np
import pytest

import mrcnn.model as modellib
from mrcnn.config import tiny_config

MEAN_RGB = [123.7, 116.8, 103.9]


@pytest.fixture(scope="module")
def rgb_file(tmp_path_factory):
    """A 3-channel tiny model's weights, from a fresh seeded build (the session's shared model
    may hold whatever weights another test loaded into it)."""
    keras.utils.set_random_seed(11)
    root = tmp_path_factory.mktemp("rgb")
    modellib.MaskRCNN("inference", tiny_config(IMAGES_PER_GPU=1), root).save_weights(
        root / "rgb.h5")
    return root / "rgb.h5"


def test_a_4_channel_model_from_a_3_channel_file_detects_as_the_rgb_model(rgb_file, tmp_path):
    """RGB + a constant 4th channel equal to its MEAN_PIXEL gives exactly the RGB model's
    detections, and the load report says conv1 was adapted (issue 14's test)."""
    path = rgb_file
    # Every detection scored: a random model's scores need not pass 0.7.
    rgb_model = modellib.MaskRCNN("inference", tiny_config(
        IMAGES_PER_GPU=1, DETECTION_MIN_CONFIDENCE=0.0, MEAN_PIXEL=MEAN_RGB), tmp_path)
    rgb_model.load_weights(path)
    config = tiny_config(IMAGES_PER_GPU=1, DETECTION_MIN_CONFIDENCE=0.0, IMAGE_CHANNEL_COUNT=4,
                         MEAN_PIXEL=[*MEAN_RGB, 100.0])
    model = modellib.MaskRCNN("inference", config, tmp_path)
    report = model.load_weights(path, by_name=True)
    assert "conv1 adapted from 3 to 4 channels" in str(report)
    assert not report.skipped and not report.missing
    rgb = np.random.default_rng(5).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    four = np.concatenate([rgb, np.full((64, 64, 1), 100, np.uint8)], axis=2)
    want = rgb_model.detect([rgb])[0]
    got = model.detect([four])[0]
    assert len(want["class_ids"]) > 0
    for key in ("rois", "class_ids", "scores", "masks"):
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_a_1_channel_model_sums_the_rgb_kernels(rgb_file, tmp_path):
    """A grey image (mean pixel equal on every channel) detects as its RGB copy does."""
    path = rgb_file
    grey_config = tiny_config(IMAGES_PER_GPU=1, DETECTION_MIN_CONFIDENCE=0.0,
                              IMAGE_CHANNEL_COUNT=1, MEAN_PIXEL=[110.0])
    rgb_config = tiny_config(IMAGES_PER_GPU=1, DETECTION_MIN_CONFIDENCE=0.0,
                             MEAN_PIXEL=[110.0] * 3)
    grey_model = modellib.MaskRCNN("inference", grey_config, tmp_path)
    rgb_model = modellib.MaskRCNN("inference", rgb_config, tmp_path)
    assert "conv1 adapted from 3 to 1 channels" in str(grey_model.load_weights(path))
    rgb_model.load_weights(path)
    grey = np.random.default_rng(6).integers(0, 256, (64, 64, 1), dtype=np.uint8)
    want = rgb_model.detect([np.repeat(grey, 3, axis=2)])[0]
    got = grey_model.detect([grey])[0]
    np.testing.assert_array_equal(got["class_ids"], want["class_ids"])
    np.testing.assert_allclose(got["rois"], want["rois"], atol=1)
    np.testing.assert_allclose(got["scores"], want["scores"], atol=1e-4)
