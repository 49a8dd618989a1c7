"""Shared by the reliability tests: writers of real image files, good and bad (PIL, on disk)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _picture(height: int, width: int) -> np.ndarray:
    """uint8[H, W, 3]: a gray background with a bright rectangle in the middle."""
    image = np.full((height, width, 3), 60, np.uint8)
    image[height // 4: 3 * height // 4, width // 4: 3 * width // 4] = (220, 180, 40)
    return image


def write_rgb_png(path: Path, height: int = 48, width: int = 64) -> Path:
    Image.fromarray(_picture(height, width)).save(path)
    return path


def write_grayscale_jpeg(path: Path) -> Path:
    Image.fromarray(_picture(48, 64)[:, :, 0]).save(path, format="JPEG")
    return path


def write_rgba_png(path: Path) -> Path:
    rgba = np.dstack([_picture(48, 64), np.full((48, 64), 128, np.uint8)])
    Image.fromarray(rgba).save(path)
    return path


def write_16bit_png(path: Path) -> Path:
    gray = (_picture(48, 64)[:, :, 0].astype(np.uint16) * 257)
    Image.fromarray(gray).save(path)
    return path


def write_cmyk_jpeg(path: Path) -> Path:
    Image.fromarray(_picture(48, 64)).convert("CMYK").save(path, format="JPEG")
    return path


def write_huge_png(path: Path, height: int = 3000, width: int = 4000) -> Path:
    """A 12-megapixel photo-sized image (compresses to a few kB: mostly flat)."""
    write_rgb_png(path, height, width)
    return path


def write_zero_byte(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def write_text(path: Path) -> Path:
    path.write_text("this is a caption file, not a picture\n")
    return path


def write_truncated_jpeg(path: Path) -> Path:
    full = path.with_name(path.name + ".full.jpg")
    Image.fromarray(_picture(48, 64)).save(full, format="JPEG")
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[: len(data) // 2])
    return path


def write_corrupt_png(path: Path) -> Path:
    """A PNG header followed by garbage: identifies as PNG, fails to decode."""
    write_rgb_png(path)
    data = bytearray(path.read_bytes())
    data[40:] = bytes(len(data) - 40)
    path.write_bytes(bytes(data))
    return path


# kind -> writer; CONVERTIBLE load as uint8[H, W, 3], BROKEN must be skipped with a warning.
CONVERTIBLE = {
    "rgb.png": write_rgb_png,
    "gray.jpg": write_grayscale_jpeg,
    "rgba.png": write_rgba_png,
    "16bit.png": write_16bit_png,
    "cmyk.jpg": write_cmyk_jpeg,
    "huge.png": write_huge_png,
}
BROKEN = {
    "zero.jpg": write_zero_byte,
    "caption.png": write_text,
    "truncated.jpg": write_truncated_jpeg,
    "corrupt.png": write_corrupt_png,
}


@pytest.fixture
def image_kinds():
    """(CONVERTIBLE, BROKEN): file name -> writer(path) -> path."""
    return CONVERTIBLE, BROKEN
