"""Whole-image inference: output at the original size for odd sizes, grey and fixed models."""

import numpy as np
import pytest

from unet import build_unet
from unet.inference import predict_probability


@pytest.fixture(scope="module")
def models():
    return {
        "free": build_unet("improved", (None, None, 3), depth=2, base_filters=4),
        "fixed": build_unet("improved", (32, 32, 3), depth=2, base_filters=4),
        "valid": build_unet("classic", (44, 44, 3), depth=2, base_filters=2, padding="valid"),
        "logits": build_unet("improved", (None, None, 1), depth=2, base_filters=4, logits=True),
    }


@pytest.mark.parametrize("name", ["free", "fixed", "valid"])
@pytest.mark.parametrize("shape", [(37, 53), (64, 20)])
def test_probability_map_has_the_original_size(models, name, shape):
    image = np.random.default_rng(0).integers(0, 255, (*shape, 3), dtype=np.uint8)
    probability = predict_probability(models[name], image)
    assert probability.shape == shape
    assert probability.dtype == np.float32
    assert 0 <= probability.min() and probability.max() <= 1


def test_logit_models_are_turned_into_probabilities(models):
    probability = predict_probability(models["logits"], np.zeros((10, 12), np.uint8))
    assert probability.shape == (10, 12) and 0 <= probability.min() <= probability.max() <= 1


def test_large_images_are_scaled_down_then_mapped_back(models):
    probability = predict_probability(models["free"], np.zeros((90, 30, 3), np.uint8), max_side=40)
    assert probability.shape == (90, 30)


def test_wrong_channel_count_is_explained(models):
    with pytest.raises(ValueError, match="3 channels"):
        predict_probability(models["free"], np.zeros((8, 8, 4), np.uint8))


def red_channel_model(input_shape, divisor=None, crop=0, logits=False):
    """A "segmenter" whose output is known: red / 255 (or ``8 * (red / 255 - 0.5)`` as logits).

    ``divisor`` adds the size check a U-Net has (so inference pads to it); ``crop`` removes that
    many pixels on every side, like the unpadded classic U-Net.
    """
    import keras

    from unet import SpatialSizeCheck

    inputs = keras.Input(input_shape)
    x = SpatialSizeCheck(divisor)(inputs) if divisor else inputs
    if crop:
        x = keras.layers.Cropping2D(crop)(x)
    head = keras.layers.Conv2D(1, 1, name="mask_logits" if logits else "mask")
    outputs = head(x)
    scale = 8.0 if logits else 1.0
    kernel = np.zeros((1, 1, input_shape[-1], 1), "float32")
    kernel[0, 0, 0, 0] = scale / 255.0
    head.set_weights([kernel, np.array([-scale / 2 if logits else 0.0], "float32")])
    return keras.Model(inputs, outputs)


def corner_object(height=45, width=70, size=15):
    """RGB image with a red square touching the bottom-right corner, and the square's mask."""
    image = np.zeros((height, width, 3), np.uint8)
    image[height - size :, width - size :, 0] = 255
    return image, (image[..., 0] > 0).astype(np.uint8)


def iou(prediction, target):
    return np.logical_and(prediction, target).sum() / np.logical_or(prediction, target).sum()


def test_padded_prediction_lines_up_with_the_object():
    """45x70 is padded to 64x96 for the network; the mask must come back where the object is."""
    image, mask = corner_object()
    probability = predict_probability(red_channel_model((None, None, 3), divisor=32), image)
    np.testing.assert_allclose(probability, image[..., 0] / 255.0, atol=1e-6)


def test_logits_become_sigmoid_probabilities():
    """A logit of 8 * (red / 255 - 0.5) comes back as its sigmoid, not clipped to 0 or 1."""
    image = np.tile(np.arange(0, 256, 16, dtype=np.uint8)[None, :, None], (12, 1, 3))
    probability = predict_probability(red_channel_model((None, None, 3), 4, logits=True), image)
    expected = 1.0 / (1.0 + np.exp(-8.0 * (image[..., 0] / 255.0 - 0.5)))
    np.testing.assert_allclose(probability, expected, atol=1e-5)


@pytest.mark.parametrize(
    "input_shape, crop",
    [((32, 32, 3), 0), ((40, 40, 3), 4)],
    ids=["fixed-size", "unpadded-with-margin"],
)
def test_resized_prediction_lines_up_with_the_object(input_shape, crop):
    """Fixed-size models see a resized image (plus a reflected margin when the output is
    smaller); the mask mapped back to 45x70 still covers the bottom-right object."""
    image, mask = corner_object()
    probability = predict_probability(red_channel_model(input_shape, crop=crop), image)
    assert probability.shape == mask.shape
    assert iou(probability > 0.5, mask) > 0.85


def test_scaled_down_prediction_lines_up_with_the_object():
    """Images beyond max_side are shrunk for the network, then the mask is enlarged back."""
    image, mask = corner_object(90, 140, 30)
    probability = predict_probability(red_channel_model((None, None, 3), divisor=32), image,
                                      max_side=64)
    assert probability.shape == mask.shape
    assert iou(probability > 0.5, mask) > 0.9
