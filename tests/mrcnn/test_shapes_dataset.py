"""The synthetic shapes dataset: deterministic, masks match the drawn pixels, occlusion."""

import numpy as np
import pytest

from mrcnn.data.datasets.shapes import ShapesDataset, draw_shape


def _dataset(count=12, size=64, seed=0):
    dataset = ShapesDataset()
    dataset.load_shapes(count, size, size, seed=seed)
    dataset.prepare()
    return dataset


def test_same_seed_same_images_and_other_seed_differs():
    a, b, c = _dataset(seed=5), _dataset(seed=5), _dataset(seed=6)
    np.testing.assert_array_equal(a.load_image(3), b.load_image(3))
    assert not all(np.array_equal(a.load_image(i), c.load_image(i)) for i in range(4))


def test_classes_images_and_masks_are_well_formed():
    dataset = _dataset()
    assert dataset.class_names == ["BG", "square", "circle", "triangle"]
    for image_id in dataset.image_ids:
        image = dataset.load_image(image_id)
        masks, class_ids = dataset.load_mask(image_id)
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        assert masks.dtype == bool and masks.shape[:2] == (64, 64)
        assert 1 <= masks.shape[-1] <= 4 and masks.shape[-1] == len(class_ids)
        assert masks.any(axis=(0, 1)).all()
        assert set(class_ids.tolist()) <= {1, 2, 3}
        assert (masks.sum(axis=-1) <= 1).all(), "visible masks must not overlap"


def test_mask_pixels_have_the_shape_colour():
    """Each visible mask covers pixels of exactly one colour, the colour of one of the shapes."""
    dataset = _dataset(count=6, size=128, seed=2)
    for image_id in dataset.image_ids:
        image = dataset.load_image(image_id)
        masks, _ = dataset.load_mask(image_id)
        colours = {color for _, color, _ in dataset.image_info[image_id]["shapes"]}
        for i in range(masks.shape[-1]):
            pixels = np.unique(image[masks[..., i]], axis=0)
            assert len(pixels) == 1 and tuple(pixels[0].tolist()) in colours


def test_later_shape_occludes_earlier_one():
    dataset = ShapesDataset()
    dataset.add_class("shapes", 1, "square")
    dataset.add_image("shapes", image_id=0, path=None, width=40, height=40, bg_color=(0, 0, 0),
                      shapes=[("square", (255, 0, 0), (15, 15, 8)),
                              ("square", (0, 255, 0), (22, 22, 8))])
    dataset.prepare()
    masks, _ = dataset.load_mask(0)
    assert not masks[20, 20, 0] and masks[20, 20, 1]
    assert masks[10, 10, 0]


def test_unknown_shape_and_tiny_images_rejected():
    with pytest.raises(ValueError, match="'star'"):
        draw_shape(np.zeros((8, 8), np.uint8), "star", (4, 4, 2), 1)
    with pytest.raises(ValueError, match="16x16"):
        ShapesDataset().load_shapes(1, 16, 16)


def test_image_reference_names_the_shapes():
    dataset = _dataset(count=1)
    assert dataset.image_reference(0).startswith("shapes image 0: ")
