"""Photos load the way a photo viewer shows them: every EXIF orientation, JPEG and PNG alike."""

import io

import numpy as np
import pytest
from PIL import Image

from unet.background import decode_upload
from unet.data import header_size, load_folder_pairs
from unet.imaging import read_image, read_mask

ORIENTATION_TAG = 0x0112
HEIGHT, WIDTH = 32, 48  # stored size; multiples of 16 keep JPEG blocks inside one colour


def stored_pixels() -> np.ndarray:
    """Four differently coloured quadrants: any flip or rotation changes the picture."""
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    half_h, half_w = HEIGHT // 2, WIDTH // 2
    image[:half_h, :half_w] = (250, 10, 10)
    image[:half_h, half_w:] = (10, 250, 10)
    image[half_h:, :half_w] = (10, 10, 250)
    image[half_h:, half_w:] = (250, 250, 250)
    return image


def displayed(stored: np.ndarray, orientation: int) -> np.ndarray:
    """What a viewer shows, from the EXIF 2.3 definition of the tag (stored row 0 / column 0):

    1 top / left, 2 top / right, 3 bottom / right, 4 bottom / left, 5 left / top,
    6 right / top (turn 90 degrees clockwise), 7 right / bottom, 8 left / bottom.
    """
    transposed = stored.swapaxes(0, 1)
    return {
        1: stored,
        2: stored[:, ::-1],
        3: stored[::-1, ::-1],
        4: stored[::-1],
        5: transposed,
        6: transposed[:, ::-1],
        7: transposed[::-1, ::-1],
        8: transposed[::-1],
    }[orientation]


def encode(pixels: np.ndarray, orientation: int, fmt: str) -> bytes:
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[ORIENTATION_TAG] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, exif=exif, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def assert_looks_like(actual: np.ndarray, expected: np.ndarray, fmt: str) -> None:
    assert actual.shape == expected.shape
    if fmt == "PNG":
        np.testing.assert_array_equal(actual, expected)
    else:  # JPEG: compression noise only, far below the 240-level quadrant differences
        assert np.abs(actual.astype(int) - expected).mean() < 8


ORIENTATIONS = range(1, 9)
FORMATS = ["JPEG", "PNG"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_image_file_is_read_as_displayed(tmp_path, orientation, fmt):
    """Training, evaluation and the CLI see the photo upright, not mirrored or sideways."""
    path = tmp_path / f"photo.{fmt.lower()}"
    path.write_bytes(encode(stored_pixels(), orientation, fmt))
    expected = displayed(stored_pixels(), orientation)
    assert_looks_like(read_image(path), expected, fmt)
    assert header_size(path) == expected.shape[:2]  # the cheap check agrees with the loader


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_upload_is_decoded_as_displayed(orientation, fmt):
    """The web app's cut-out is computed on, and returned as, the upright photo."""
    image = np.asarray(decode_upload(encode(stored_pixels(), orientation, fmt)).convert("RGB"))
    assert_looks_like(image, displayed(stored_pixels(), orientation), fmt)


@pytest.mark.parametrize("orientation", [2, 6, 7])
def test_rotated_photo_and_rotated_mask_stay_aligned(tmp_path, orientation):
    """A phone photo and a mask saved with the same EXIF tag load upright and on top of each
    other, so the network learns the person where the person is."""
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    pixels = stored_pixels()
    mask = (pixels[..., 1] > 128).astype(np.uint8) * 255  # the green and white quadrants
    (tmp_path / "images" / "a.png").write_bytes(encode(pixels, orientation, "PNG"))
    mask_bytes = io.BytesIO()
    mask_image = Image.fromarray(mask)
    exif = mask_image.getexif()
    exif[ORIENTATION_TAG] = orientation
    mask_image.save(mask_bytes, format="PNG", exif=exif)
    (tmp_path / "masks" / "a.png").write_bytes(mask_bytes.getvalue())
    samples, _ = load_folder_pairs(tmp_path)
    image, loaded_mask = samples[0].load()
    np.testing.assert_array_equal(image, displayed(pixels, orientation))
    np.testing.assert_array_equal(loaded_mask, displayed(mask, orientation) // 255)
    np.testing.assert_array_equal(read_mask(tmp_path / "masks" / "a.png"), loaded_mask)
