"""Mask clean-up and cut-outs: component size rule, holes, alpha values, compositing."""

import numpy as np
import pytest

from unet.postprocess import (
    clean_mask,
    compose_cutout,
    compute_alpha,
    fill_holes,
    parse_color,
    remove_small_components,
)


def test_49_pixel_blob_removed_50_pixel_blob_kept():
    mask = np.zeros((40, 40), np.uint8)
    mask[2:9, 2:9] = 1  # 49 px
    mask[20:30, 20:25] = 1  # 50 px
    cleaned = remove_small_components(mask, 50)
    assert cleaned[2:9, 2:9].sum() == 0 and cleaned[20:30, 20:25].sum() == 50


def test_components_are_8_connected():
    """Two diagonal touching squares of 25 px count as one 50 px component."""
    mask = np.zeros((20, 20), np.uint8)
    mask[0:5, 0:5] = 1
    mask[5:10, 5:10] = 1
    assert remove_small_components(mask, 50).sum() == 50


def test_holes_are_filled_but_open_bays_are_not():
    ring = np.zeros((10, 10), np.uint8)
    ring[2:8, 2:8] = 1
    ring[4:6, 4:6] = 0
    assert fill_holes(ring)[4:6, 4:6].all()
    bay = ring.copy()
    bay[4:6, 6:8] = 0  # opens the hole to the outside
    assert not fill_holes(bay)[4, 5]
    assert clean_mask(ring, min_size=0, holes=False)[4, 4] == 0


def test_hard_alpha_is_binary_and_feathered_alpha_is_soft():
    probability = np.zeros((32, 32), np.float32)
    probability[8:24, 8:24] = 0.9
    hard = compute_alpha(probability, min_size=10)
    assert set(np.unique(hard)) == {0, 255}
    soft = compute_alpha(probability, min_size=10, feather=2.0)
    assert 0 < soft[8, 16] < 255 and soft[16, 16] == 255 and soft[0, 0] == 0


def test_cutout_rgba_and_opaque_background():
    image = np.full((4, 4, 3), 200, np.uint8)
    alpha = np.zeros((4, 4), np.uint8)
    alpha[:2] = 255
    alpha[2] = 128
    rgba = compose_cutout(image, alpha)
    assert rgba.shape == (4, 4, 4) and (rgba[..., 3] == alpha).all()
    on_black = compose_cutout(image, alpha, (0, 0, 0))
    assert (on_black[..., 3] == 255).all()
    assert on_black[0, 0, 0] == 200 and on_black[3, 0, 0] == 0
    assert on_black[2, 0, 0] == round(200 * 128 / 255)
    with pytest.raises(ValueError, match="differ in size"):
        compose_cutout(image, alpha[:2])


@pytest.mark.parametrize("text, rgb", [("white", (255, 255, 255)), ("#00ff00", (0, 255, 0)),
                                       ("1,2,3", (1, 2, 3))])
def test_parse_color(text, rgb):
    assert parse_color(text) == rgb


@pytest.mark.parametrize("text", ["1,2", "300,0,0", "nocolour"])
def test_bad_colour_is_rejected(text):
    with pytest.raises(ValueError, match="colour"):
        parse_color(text)
