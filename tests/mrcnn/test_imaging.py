"""Resizing modes, mask resizing, mini-masks, molding and image meta."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrcnn.config import tiny_config
from mrcnn.geometry.imaging import (
    compose_image_meta,
    expand_mask,
    minimize_mask,
    mold_image,
    parse_image_meta,
    paste_masks,
    resize,
    resize_image,
    resize_mask,
    unmold_image,
    unmold_mask,
)


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 256, size=(30, 50, 3), dtype=np.uint8)


def test_resize_image_square_scales_up_to_min_dim_and_centers(image):
    """30x50 with min 64 / max 128: scale 64/30, content 64x107, centered in 128x128."""
    out, window, scale, padding, crop = resize_image(image, 64, 128, 0, "square")
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    assert scale == pytest.approx(64 / 30)
    assert window == (32, 10, 96, 117)
    assert padding == [(32, 32), (10, 11), (0, 0)]
    assert crop is None
    assert not out[:32].any() and not out[96:].any() and not out[:, :10].any()


def test_resize_image_square_limits_long_side_to_max_dim(image):
    """min_dim 64 would make the long side 107 > 96, so scale = 96/50 instead."""
    out, window, scale, _, _ = resize_image(image, 64, 96, 0, "square")
    assert scale == pytest.approx(96 / 50)
    assert out.shape == (96, 96, 3)
    assert window == (19, 0, 77, 96)  # round(30 * 1.92) = 58 rows, (96 - 58) // 2 = 19


def test_resize_image_none_returns_input_untouched(image):
    out, window, scale, padding, crop = resize_image(image, 64, 128, 0, "none")
    assert out is image and window == (0, 0, 30, 50) and scale == 1 and crop is None


def test_resize_image_pad64_pads_to_multiples_of_64(image):
    out, window, scale, padding, _ = resize_image(image, 64, 1024, 0, "pad64")
    assert out.shape == (64, 128, 3)
    assert window == (0, 10, 64, 117)
    assert padding == [(0, 0), (10, 11), (0, 0)]


def test_resize_image_pad64_requires_min_dim_multiple_of_64(image):
    with pytest.raises(ValueError, match="multiple of 64"):
        resize_image(image, 60, 1024, 0, "pad64")


def test_resize_image_crop_returns_a_crop_of_the_scaled_image(image):
    rng = np.random.default_rng(3)
    out, window, scale, padding, crop = resize_image(image, 32, 128, 0, "crop", rng=rng)
    assert out.shape == (32, 32, 3) and window == (0, 0, 32, 32)
    y, x, h, w = crop
    scaled = resize(image, (32, 53), preserve_range=True).astype(np.uint8)  # Matterport's cast
    np.testing.assert_array_equal(out, scaled[y : y + h, x : x + w])


def test_resize_image_min_scale_forces_upscaling(image):
    _, _, scale, _, _ = resize_image(image, 16, 256, 3, "square")
    assert scale == 3


def test_resize_image_rejects_unknown_mode(image):
    with pytest.raises(ValueError, match="'zoom'"):
        resize_image(image, 64, 128, 0, "zoom")


def test_resize_mask_follows_resize_image_geometry(image):
    """A mask resized with the image's scale/padding must cover the same pixels."""
    mask = np.zeros((30, 50, 1), dtype=bool)
    mask[10:20, 20:40, 0] = True
    _, window, scale, padding, crop = resize_image(image, 64, 128, 0, "square")
    resized = resize_mask(mask, scale, padding, crop)
    assert resized.shape == (128, 128, 1) and resized.dtype == bool
    ys, xs = np.nonzero(resized[:, :, 0])
    assert abs(ys.min() - (window[0] + 10 * scale)) <= 1
    assert abs(xs.max() + 1 - (window[1] + 40 * scale)) <= 1


def test_resize_mask_with_no_instances_keeps_zero_channels():
    resized = resize_mask(np.zeros((30, 50, 0), bool), 2.0, [(1, 1), (2, 2), (0, 0)])
    assert resized.shape == (62, 104, 0)


def test_mini_mask_round_trip_restores_a_rectangle():
    """minimize_mask then expand_mask must give back a box-shaped mask exactly."""
    mask = np.zeros((64, 64, 2), dtype=bool)
    mask[5:25, 10:50, 0] = True
    mask[30:60, 30:34, 1] = True
    bbox = np.array([[5, 10, 25, 50], [30, 30, 60, 34]])
    mini = minimize_mask(bbox, mask, (28, 28))
    assert mini.shape == (28, 28, 2) and mini.all()
    np.testing.assert_array_equal(expand_mask(bbox, mini, (64, 64, 3)), mask)


def test_mini_mask_round_trip_of_a_disk_is_close():
    yy, xx = np.mgrid[:64, :64]
    mask = (((yy - 30) ** 2 + (xx - 25) ** 2) < 15**2)[:, :, None]
    bbox = np.array([[15, 10, 45, 40]])
    restored = expand_mask(bbox, minimize_mask(bbox, mask, (28, 28)), (64, 64))
    assert (restored != mask).sum() / mask.sum() < 0.05


def test_minimize_mask_rejects_zero_area_box():
    with pytest.raises(ValueError, match="zero area"):
        minimize_mask(np.array([[3, 3, 3, 8]]), np.ones((10, 10, 1), bool), (8, 8))


def test_unmold_mask_pastes_at_box_and_clips_to_image():
    full = unmold_mask(np.full((28, 28), 0.9, np.float32), (50, 40, 70, 80), (64, 64, 3))
    assert full.shape == (64, 64) and full.dtype == bool
    assert full.sum() == 14 * 24 and full[50:64, 40:64].all()
    assert not unmold_mask(np.ones((28, 28)), (5, 5, 5, 9), (16, 16)).any()


_boxes = st.lists(st.tuples(*[st.integers(-20, 60)] * 4), min_size=0, max_size=6)


@settings(max_examples=60, deadline=None)
@given(boxes=_boxes, seed=st.integers(0, 2**16))
def test_paste_masks_equals_unmold_mask_per_detection(boxes, seed):
    """detect() pastes all masks at once; each must be what Matterport's unmold_mask gives,
    boxes partly or wholly outside the image and empty boxes included."""
    masks = np.random.default_rng(seed).random((len(boxes), 14, 14), dtype=np.float32)
    boxes = np.array(boxes, dtype=np.int32).reshape(-1, 4)
    pasted = paste_masks(masks, boxes, (40, 50, 3))
    assert pasted.shape == (40, 50, len(boxes)) and pasted.dtype == bool
    for i in range(len(boxes)):
        np.testing.assert_array_equal(pasted[:, :, i], unmold_mask(masks[i], boxes[i], (40, 50)))


def test_mold_unmold_image_round_trip():
    config = tiny_config()
    image = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    molded = mold_image(image, config)
    assert molded.dtype == np.float32
    np.testing.assert_allclose(molded[0, 0], image[0, 0] - config.MEAN_PIXEL, rtol=1e-6)
    np.testing.assert_array_equal(unmold_image(molded, config), image)


def test_image_meta_round_trip_single_and_batched():
    meta = compose_image_meta(7, (30, 50, 3), (64, 64, 3), (17, 0, 47, 64), 1.28, [1, 1, 0, 1])
    assert meta.shape == (12 + 4,) == (tiny_config().IMAGE_META_SIZE,)
    parsed = parse_image_meta(meta)
    assert parsed["image_id"] == 7
    np.testing.assert_array_equal(parsed["window"], [17, 0, 47, 64])
    assert parsed["scale"] == pytest.approx(1.28)
    np.testing.assert_array_equal(parsed["active_class_ids"], [1, 1, 0, 1])
    batched = parse_image_meta(np.stack([meta, meta]))
    assert batched["original_image_shape"].shape == (2, 3)


def test_resize_handles_many_channels_and_bool():
    """A stack of 600 instance masks resizes in one call; bool comes back as Matterport's
    resize gives it: 0..1 floats (bilinear) or bool (nearest)."""
    masks = np.zeros((10, 10, 600), dtype=bool)
    masks[2:8, 2:8, 599] = True
    out = resize(masks, (20, 20))
    assert out.shape == (20, 20, 600) and out.dtype == np.float64
    assert (out[5:15, 5:15, 599] == 1).all() and not out[:, :, :599].any()
    nearest = resize(masks, (20, 20), order=0)
    assert nearest.dtype == bool and nearest[4:16, 4:16, 599].all()
