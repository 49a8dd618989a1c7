"""Preprocessing equals Matterport's bit for bit (issue 12, "Matterport parity").

The reference below restates Matterport's ``mrcnn/utils.py`` (``resize``, ``resize_image``,
``resize_mask``, ``minimize_mask``, ``expand_mask``, ``unmold_mask``) and ``mrcnn/model.py``
(``mold_image``, ``mold_inputs``) with the libraries Matterport called: scikit-image's resize
with anti-aliasing off and scipy's zoom. If these tests fail, a Matterport ``.h5`` sees other
pixels than under Matterport and gives other detections.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import skimage.data
import skimage.transform
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mrcnn.config import ConfigError, tiny_config
from mrcnn.geometry.boxes import extract_bboxes
from mrcnn.geometry.imaging import (
    compose_image_meta,
    expand_mask,
    minimize_mask,
    mold_image,
    paste_masks,
    resize,
    resize_image,
    resize_mask,
    unmold_mask,
)

# ---------------------------------------------------------------------------------------------
# Matterport's behaviour, restated


def mp_resize(image, output_shape, preserve_range=False):
    """Matterport's ``utils.resize`` as its callers use it (bilinear, zero fill, clip, no AA).
    bool goes in as 0.0/1.0: the scikit-image of Matterport's time converted it itself."""
    if image.dtype == bool:
        image = image.astype(np.float64)
    return skimage.transform.resize(image, output_shape, order=1, mode="constant", cval=0,
                                    clip=True, preserve_range=preserve_range,
                                    anti_aliasing=False)


def mp_resize_image(image, min_dim, max_dim, min_scale, mode, crop_yx=None):
    """``utils.resize_image``; ``crop_yx`` stands in for its ``random.randint`` offsets."""
    image_dtype = image.dtype
    h, w = image.shape[:2]
    window, scale, padding, crop = (0, 0, h, w), 1, [(0, 0), (0, 0), (0, 0)], None
    if mode == "none":
        return image, window, scale, padding, crop
    if min_dim:
        scale = max(1, min_dim / min(h, w))
    if min_scale and scale < min_scale:
        scale = min_scale
    if max_dim and mode == "square":
        image_max = max(h, w)
        if round(image_max * scale) > max_dim:
            scale = max_dim / image_max
    if scale != 1:
        image = mp_resize(image, (round(h * scale), round(w * scale)), preserve_range=True)
    h, w = image.shape[:2]
    if mode == "square":
        top, left = (max_dim - h) // 2, (max_dim - w) // 2
        padding = [(top, max_dim - h - top), (left, max_dim - w - left), (0, 0)]
        image = np.pad(image, padding, mode="constant", constant_values=0)
        window = (top, left, h + top, w + left)
    elif mode == "pad64":
        top = (64 - h % 64) % 64 // 2
        bottom = (64 - h % 64) % 64 - top
        left = (64 - w % 64) % 64 // 2
        right = (64 - w % 64) % 64 - left
        padding = [(top, bottom), (left, right), (0, 0)]
        image = np.pad(image, padding, mode="constant", constant_values=0)
        window = (top, left, h + top, w + left)
    elif mode == "crop":
        y, x = crop_yx
        assert 0 <= y <= h - min_dim and 0 <= x <= w - min_dim  # random.randint's range
        crop = (y, x, min_dim, min_dim)
        image = image[y:y + min_dim, x:x + min_dim]
        window = (0, 0, min_dim, min_dim)
    return image.astype(image_dtype), window, scale, padding, crop


def mp_resize_mask(mask, scale, padding, crop=None):
    mask = scipy.ndimage.zoom(mask, zoom=[scale, scale, 1], order=0)
    if crop is not None:
        y, x, h, w = crop
        return mask[y:y + h, x:x + w]
    return np.pad(mask, padding, mode="constant", constant_values=0)


def mp_minimize_mask(bbox, mask, mini_shape):
    mini_mask = np.zeros(mini_shape + (mask.shape[-1],), dtype=bool)
    for i in range(mask.shape[-1]):
        y1, x1, y2, x2 = bbox[i][:4]
        m = mask[:, :, i].astype(bool)[y1:y2, x1:x2]
        mini_mask[:, :, i] = np.around(mp_resize(m, mini_shape)).astype(bool)
    return mini_mask


def mp_expand_mask(bbox, mini_mask, image_shape):
    mask = np.zeros(image_shape[:2] + (mini_mask.shape[-1],), dtype=bool)
    for i in range(mask.shape[-1]):
        y1, x1, y2, x2 = bbox[i][:4]
        m = mp_resize(mini_mask[:, :, i], (y2 - y1, x2 - x1))
        mask[y1:y2, x1:x2, i] = np.around(m).astype(bool)
    return mask


def mp_unmold_mask(mask, bbox, image_shape):
    y1, x1, y2, x2 = bbox
    mask = np.where(mp_resize(mask, (y2 - y1, x2 - x1)) >= 0.5, 1, 0).astype(bool)
    full_mask = np.zeros(image_shape[:2], dtype=bool)
    full_mask[y1:y2, x1:x2] = mask
    return full_mask


def mp_mold_image(image, mean_pixel):
    """``model.mold_image`` (float64: float32 image minus a float64 array), then the float32
    cast Keras applies to the model input."""
    return (image.astype(np.float32) - mean_pixel).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Inputs: noise, flat colours (where truncating 254.99999999999997 costs a grey level),
# gradients, with and without black pixels (the clip to the input's range depends on it).

KINDS = ("noise", "flat", "gradient", "no_black")


def make_image(kind, h, w, channels, seed):
    rng = np.random.default_rng(seed)
    shape = (h, w, channels)
    if kind == "noise":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if kind == "flat":
        image = np.full(shape, rng.choice([1, 128, 200, 254, 255]), np.uint8)
        image[rng.integers(0, h):, rng.integers(0, w):] = rng.integers(0, 256)
        return image
    yy, xx = np.mgrid[:h, :w]
    ramp = (yy * rng.uniform(0.5, 3) + xx * rng.uniform(0.5, 3))[:, :, None] + rng.normal(0, 4, shape)
    low = 0 if kind == "gradient" else 20
    return np.clip(ramp % 256, low, 255).astype(np.uint8)


def photo(height, width):
    """A real photo (scikit-image's coffee cup, 400x600) brought to height x width."""
    coffee = skimage.data.coffee()
    rows = np.linspace(0, coffee.shape[0] - 1, height).round().astype(int)
    cols = np.linspace(0, coffee.shape[1] - 1, width).round().astype(int)
    return coffee[rows][:, cols]


images = st.builds(make_image, st.sampled_from(KINDS), st.integers(1, 90), st.integers(1, 90),
                   st.sampled_from([1, 3]), st.integers(0, 2**31))
parity = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------------
# resize / resize_image / mold_image


@parity
@given(image=images, out_h=st.integers(1, 130), out_w=st.integers(1, 130),
       preserve_range=st.booleans())
def test_resize_equals_scikit_image_as_matterport_calls_it(image, out_h, out_w, preserve_range):
    """Every resampling Matterport does goes through this call; up and down, any size."""
    ours = resize(image, (out_h, out_w), preserve_range=preserve_range)
    expected = mp_resize(image, (out_h, out_w), preserve_range=preserve_range)
    assert ours.dtype == expected.dtype
    np.testing.assert_array_equal(ours, expected)


@parity
@given(image=images, mode=st.sampled_from(["none", "square", "pad64", "crop"]),
       min_dim=st.sampled_from([32, 64, 100, 128]), max_dim=st.sampled_from([48, 64, 96, 160]),
       min_scale=st.sampled_from([0, None, 1, 1.5, 2]), seed=st.integers(0, 2**16))
def test_resize_image_equals_matterport_in_every_mode(image, mode, min_dim, max_dim, min_scale,
                                                      seed):
    """Scale, rounding of the new size, min_scale, padding split, crop range and every pixel
    (uint8 truncation included) are Matterport's, for up- and down-scaling."""
    if mode == "pad64":
        min_dim = 64 * max(1, min_dim // 64)
    if mode == "square":
        max_dim = max(max_dim, min_dim)
    out, window, scale, padding, crop = resize_image(image, min_dim, max_dim, min_scale, mode,
                                                     rng=np.random.default_rng(seed))
    expected = mp_resize_image(image, min_dim, max_dim, min_scale, mode,
                               crop_yx=crop[:2] if crop else None)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected[0])
    assert (window, scale, padding, crop) == tuple(expected[1:])


@parity
@given(image=images, dtype=st.sampled_from([np.uint16, np.int16, np.float32, np.float64]),
       max_dim=st.sampled_from([48, 128]))
def test_resize_image_follows_matterports_dtype_rules(image, dtype, max_dim):
    """Other dtypes (16-bit scans, float images, negative values) come back in their own dtype
    with Matterport's values: float32 stays float32, integers are truncated toward zero."""
    image = (image.astype(np.float64) * 3.7 - 300).astype(dtype)
    out = resize_image(image, 64, max_dim, 0, "square")[0]
    expected = mp_resize_image(image, 64, max_dim, 0, "square")[0]
    assert out.dtype == expected.dtype == dtype
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("kwargs", [dict(order=3), dict(mode="edge"), dict(anti_aliasing=True),
                                    dict(anti_aliasing=None), dict(cval=7)])
def test_resize_hands_other_arguments_to_scikit_image(kwargs):
    """utils.resize is Matterport's scikit-image wrapper for every argument, not only the
    bilinear zero-fill call the library makes; NaN images go there too."""
    image = make_image("noise", 30, 40, 3, 0).astype(np.float64)
    wrapper_defaults = {"mode": "constant", "anti_aliasing": False}  # Matterport's, not skimage's
    expected = skimage.transform.resize(image, (17, 55), **{**wrapper_defaults, **kwargs})
    np.testing.assert_array_equal(resize(image, (17, 55), **kwargs), expected)
    image[3, 4, 1] = np.nan
    np.testing.assert_array_equal(resize(image, (17, 55)), mp_resize(image, (17, 55)))


@pytest.mark.parametrize("height, width", [(480, 640), (1024, 1365), (400, 600)])
def test_molded_photo_equals_matterport_at_1024(height, width):
    """The case issue 12 measured: a photo scaled (x1.6 up, x0.75 down, x1.7 up) and padded to
    1024 differed by up to 51 grey levels on its border and 1 inside; now 0 everywhere."""
    config = tiny_config(IMAGE_MIN_DIM=800, IMAGE_MAX_DIM=1024)
    image = photo(height, width)
    resized, window, scale, _, _ = resize_image(image, 800, 1024, 0, "square")
    expected = mp_resize_image(image, 800, 1024, 0, "square")
    np.testing.assert_array_equal(resized, expected[0])
    assert window == expected[1] and scale == expected[2]
    np.testing.assert_array_equal(mold_image(resized, config),
                                  mp_mold_image(expected[0], config.MEAN_PIXEL))


@parity
@given(image=images)
def test_mold_image_equals_matterports_float64_mean_subtraction(image):
    """The network input in float32, as Keras made it from Matterport's float64 array."""
    config = tiny_config(MEAN_PIXEL=np.array([123.7, 116.8, 103.9][: image.shape[2]]),
                         IMAGE_CHANNEL_COUNT=image.shape[2])
    np.testing.assert_array_equal(mold_image(image, config),
                                  mp_mold_image(image, config.MEAN_PIXEL))


# ---------------------------------------------------------------------------------------------
# Masks


def blob_masks(h, w, count, seed, solid):
    """bool[h, w, count]: rectangles (solid) or ragged blobs, none empty."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((h, w, count), bool)
    for i in range(count):
        y1, x1 = rng.integers(0, h), rng.integers(0, w)
        y2, x2 = rng.integers(y1 + 1, h + 1), rng.integers(x1 + 1, w + 1)
        masks[y1:y2, x1:x2, i] = True if solid else rng.random((y2 - y1, x2 - x1)) > 0.4
        masks[y1, x1, i] = True
    return masks


masks_strategy = st.builds(blob_masks, st.integers(1, 80), st.integers(1, 80), st.integers(0, 4),
                           st.integers(0, 2**31), st.booleans())


@parity
@given(masks=masks_strategy, mode=st.sampled_from(["none", "square", "pad64", "crop"]),
       min_dim=st.sampled_from([32, 64, 128]), max_dim=st.sampled_from([40, 64, 96, 200]),
       min_scale=st.sampled_from([0, 1.5, 2]), seed=st.integers(0, 2**16))
def test_resize_mask_equals_matterport(masks, mode, min_dim, max_dim, min_scale, seed):
    """Masks follow the image through scipy's nearest zoom (which empties the last row or
    column at some sizes: the training targets keep that quirk) and the same pad or crop."""
    if mode == "pad64":
        min_dim = 64 * max(1, min_dim // 64)
    max_dim = max(max_dim, min_dim)
    image = np.zeros(masks.shape[:2] + (3,), np.uint8)
    _, _, scale, padding, crop = resize_image(image, min_dim, max_dim, min_scale, mode,
                                              rng=np.random.default_rng(seed))
    ours = resize_mask(masks, scale, padding, crop)
    assert ours.dtype == bool
    np.testing.assert_array_equal(ours, mp_resize_mask(masks, scale, padding, crop))


def test_resize_mask_keeps_scipys_empty_last_row():
    """A 480x640 mask scaled x1.6 (a COCO photo at 1024): scipy reads past the edge for the
    last row, so Matterport's (and our) ground truth has it empty."""
    resized = resize_mask(np.ones((480, 640, 1), bool), 1.6, [(0, 0), (0, 0), (0, 0)])
    assert resized.shape == (768, 1024, 1)
    assert not resized[-1].any() and resized[:-1].all()


@parity
@given(masks=masks_strategy, mini=st.sampled_from([(28, 28), (56, 56), (7, 13)]))
def test_minimize_and_expand_mask_equal_matterport(masks, mini):
    """Mini-masks (training targets) and their expansion back, up- and down-scaled boxes,
    solid boxes included (scikit-image's clip keeps their border, which a 0/1 blend loses)."""
    bbox = extract_bboxes(masks)
    mini_masks = minimize_mask(bbox, masks, mini)
    np.testing.assert_array_equal(mini_masks, mp_minimize_mask(bbox, masks, mini))
    np.testing.assert_array_equal(expand_mask(bbox, mini_masks, masks.shape),
                                  mp_expand_mask(bbox, mini_masks, masks.shape))


boxes_inside = st.tuples(st.integers(0, 39), st.integers(0, 49)).flatmap(
    lambda corner: st.tuples(st.just(corner[0]), st.just(corner[1]),
                             st.integers(corner[0] + 1, 40), st.integers(corner[1] + 1, 50)))


@parity
@given(box=boxes_inside, seed=st.integers(0, 2**16),
       kind=st.sampled_from(["random", "constant", "sharp"]), size=st.sampled_from([14, 28]))
def test_unmold_mask_equals_matterport(box, seed, kind, size):
    """The masks detect() returns: the float32 network mask resized to its box (float32, as
    scikit-image keeps it), thresholded at 0.5; constant masks hit the clip to their range."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        mask = rng.random((size, size), dtype=np.float32)
    elif kind == "constant":
        mask = np.full((size, size), rng.choice([0.25, 0.5, 0.7, 1.0]), np.float32)
    else:
        mask = (rng.random((size, size)) > 0.5).astype(np.float32)
    expected = mp_unmold_mask(mask, box, (40, 50, 3))
    np.testing.assert_array_equal(unmold_mask(mask, box, (40, 50, 3)), expected)
    np.testing.assert_array_equal(paste_masks(mask[None], np.array([box]), (40, 50))[:, :, 0],
                                  expected)


# ---------------------------------------------------------------------------------------------
# MaskRCNN.mold_inputs and detect()'s inputs


def test_mold_inputs_equals_matterport(tiny_inference_model):
    """What detect() feeds the network, images scaled up and down, with their metas."""
    model = tiny_inference_model
    config = model.config
    images = [photo(40, 70), photo(150, 90), make_image("flat", 64, 64, 3, 1)]
    molded, metas, windows = model.mold_inputs(images)
    for image, ours, meta, window in zip(images, molded, metas, windows, strict=True):
        resized, mp_window, scale, _, _ = mp_resize_image(
            image, config.IMAGE_MIN_DIM, config.IMAGE_MAX_DIM, config.IMAGE_MIN_SCALE,
            config.IMAGE_RESIZE_MODE)
        np.testing.assert_array_equal(ours, mp_mold_image(resized, config.MEAN_PIXEL))
        assert window == mp_window
        np.testing.assert_array_equal(meta, compose_image_meta(
            0, image.shape, resized.shape, mp_window, scale, np.zeros([config.NUM_CLASSES])))


def test_detect_refuses_random_crops(tiny_inference_model, monkeypatch):
    """A training config with IMAGE_RESIZE_MODE="crop" (Matterport: training only) must not
    make detect() look at a random part of each image: it says what to set instead."""
    monkeypatch.setattr(tiny_inference_model, "config", tiny_config(IMAGE_RESIZE_MODE="crop"))
    with pytest.raises(ConfigError, match="pad64"):
        tiny_inference_model.detect([photo(64, 64)])


def test_detect_takes_2d_grayscale_with_one_channel(tmp_path):
    """A 1-channel model (IMAGE_CHANNEL_COUNT=1) detects on [H, W] images; before, the 2-D image
    was made RGB and refused as "3 channels". (Builds and traces its own model: ~15 s.)"""
    from mrcnn import model as modellib

    config = tiny_config(IMAGE_CHANNEL_COUNT=1, MEAN_PIXEL=np.array([120.0]), IMAGES_PER_GPU=1,
                         JIT_COMPILE=False)
    model = modellib.MaskRCNN("inference", config, tmp_path)
    gray = photo(50, 70)[:, :, 0]
    molded, _, _ = model.mold_inputs([gray[:, :, None]])
    assert molded[0].shape == (64, 64, 1)
    result = model.detect([gray])[0]
    assert result["masks"].shape[:2] == (50, 70)
    with pytest.raises(ValueError, match="IMAGE_CHANNEL_COUNT=1"):
        model.detect([photo(50, 70)])
