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
