"""Fixtures for the unet tests: tiny on-disk datasets in the formats users bring."""

import pytest
from PIL import Image

from unet.synthetic import make_synthetic_people


def write_folder_dataset(root, count=6, size=32, mask_scale=1, seed=0):
    """``root/images/*.png`` + ``root/masks/*.png`` ({0, 255}, optionally smaller by mask_scale)."""
    images, masks = make_synthetic_people(count, size, seed=seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for index, (image, mask) in enumerate(zip(images, masks, strict=True)):
        Image.fromarray(image).save(root / "images" / f"person_{index:02d}.png")
        small = Image.fromarray(mask * 255).resize(
            (size // mask_scale, size // mask_scale), Image.NEAREST)
        small.save(root / "masks" / f"person_{index:02d}.png")
    return images, masks


@pytest.fixture()
def folder_dataset(tmp_path):
    """(root, images, masks) with 6 synthetic 32 px people stored as PNG pairs."""
    images, masks = write_folder_dataset(tmp_path / "people")
    return tmp_path / "people", images, masks


@pytest.fixture()
def dataset_writer():
    """The function that writes folder datasets, for tests that need other sizes."""
    return write_folder_dataset
