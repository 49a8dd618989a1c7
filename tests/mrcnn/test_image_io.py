"""load_rgb_image on real files written in the formats users have on disk."""

import numpy as np
import pytest
from PIL import Image

from mrcnn.data.dataset import DatasetError
from mrcnn.data.image_io import load_rgb_image


def _check_rgb(array, shape):
    assert array.dtype == np.uint8 and array.shape == shape


def test_rgb_jpeg_and_png_load_as_uint8_rgb(tmp_path):
    pixels = np.zeros((6, 9, 3), np.uint8)
    pixels[..., 0] = 200
    Image.fromarray(pixels).save(tmp_path / "a.png")
    Image.fromarray(pixels).save(tmp_path / "a.jpg", quality=95)
    png = load_rgb_image(tmp_path / "a.png")
    _check_rgb(png, (6, 9, 3))
    np.testing.assert_array_equal(png, pixels)
    jpg = load_rgb_image(str(tmp_path / "a.jpg"))
    _check_rgb(jpg, (6, 9, 3))
    assert abs(int(jpg[3, 4, 0]) - 200) < 5


def test_grayscale_is_replicated_to_three_channels(tmp_path):
    Image.fromarray(np.full((5, 7), 77, np.uint8), mode="L").save(tmp_path / "g.jpg")
    image = load_rgb_image(tmp_path / "g.jpg")
    _check_rgb(image, (5, 7, 3))
    assert (np.abs(image.astype(int) - 77) <= 1).all()


def test_rgba_png_drops_alpha(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 1] = 150
    rgba[..., 3] = 0  # fully transparent: the colour must survive anyway (no compositing)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "t.png")
    image = load_rgb_image(tmp_path / "t.png")
    _check_rgb(image, (4, 4, 3))
    assert (image[..., 1] == 150).all()


def test_16bit_png_is_scaled_to_8bit(tmp_path):
    gray16 = np.full((3, 5), 65535, np.uint16)
    gray16[0, 0] = 257 * 100
    Image.fromarray(gray16).save(tmp_path / "d.png")
    image = load_rgb_image(tmp_path / "d.png")
    _check_rgb(image, (3, 5, 3))
    assert image[0, 0, 0] == 100 and image[1, 1, 2] == 255


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    Image.new("CMYK", (6, 4), (0, 255, 255, 0)).save(tmp_path / "c.jpg")  # pure red
    image = load_rgb_image(tmp_path / "c.jpg")
    _check_rgb(image, (4, 6, 3))
    assert image[..., 0].min() > 200 and image[..., 1].max() < 60


def test_palette_png_is_converted(tmp_path):
    Image.fromarray(np.full((4, 4, 3), 30, np.uint8)).convert("P").save(tmp_path / "p.png")
    _check_rgb(load_rgb_image(tmp_path / "p.png"), (4, 4, 3))


def test_exif_orientation_is_applied(tmp_path):
    """A phone photo stored sideways with Orientation=6 must come back upright (rotated)."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:10, :10] = (255, 0, 0)  # a red block in the stored image's top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(pixels).save(tmp_path / "r.jpg", exif=exif, quality=95)
    image = load_rgb_image(tmp_path / "r.jpg")
    _check_rgb(image, (40, 20, 3))
    # Turned clockwise, the stored top-left corner is shown at the top right (a plain
    # transpose, a mirror image, would leave it at the top left).
    assert image[2:8, 12:18, 0].min() > 200 and image[2:8, 2:8, 0].max() < 50


def test_missing_file_raises_file_not_found_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        load_rgb_image(tmp_path / "nope.jpg")


def test_text_file_raises_dataset_error_naming_it(tmp_path):
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(DatasetError, match="notes.jpg"):
        load_rgb_image(tmp_path / "notes.jpg")


def test_truncated_png_raises_dataset_error_naming_it(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="cut.png"):
        load_rgb_image(tmp_path / "cut.png")
