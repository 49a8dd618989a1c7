"""Pad any image to a valid U-Net size and crop the prediction back exactly."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unet import center_crop, crop_to_shape, pad_to_multiple


@settings(max_examples=50, deadline=None)
@given(height=st.integers(1, 70), width=st.integers(1, 70), multiple=st.sampled_from([1, 8, 32]),
       channels=st.sampled_from([None, 1, 3]))
def test_pad_then_crop_restores_the_image(height, width, multiple, channels):
    shape = (height, width) if channels is None else (height, width, channels)
    image = np.arange(np.prod(shape)).reshape(shape)
    padded, padding = pad_to_multiple(image, multiple)
    assert padded.shape[0] % multiple == 0 and padded.shape[1] % multiple == 0
    assert padded.shape[0] - height < multiple and padded.shape[1] - width < multiple
    np.testing.assert_array_equal(crop_to_shape(padded, padding), image)


def test_padding_is_centered():
    padded, padding = pad_to_multiple(np.ones((13, 16)), 16, mode="constant")
    assert tuple(padding) == (1, 2, 0, 0)
    assert padded[0].sum() == 0 and padded[1].sum() == 16


def test_center_crop_and_errors():
    array = np.arange(36).reshape(6, 6)
    np.testing.assert_array_equal(center_crop(array, 2, 2), [[14, 15], [20, 21]])
    with pytest.raises(ValueError, match="larger"):
        center_crop(array, 8, 8)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        pad_to_multiple(np.zeros((1, 2, 3, 4)), 8)
