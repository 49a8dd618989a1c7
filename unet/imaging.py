"""Reading images and masks from disk, with errors that name the file.

Images come back as ``uint8 (H, W, C)`` RGB (or 1 / 4 channels on request) in their displayed
orientation (EXIF transpose applied). Masks come back as ``uint8 (H, W)`` with values {0, 1}.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
# Masks may be stored smaller than their image; the aspect ratios must agree within this.
ASPECT_TOLERANCE = 0.02


class ImageReadError(ValueError):
    """A file is not a usable image or mask; the message starts with the file's path."""


def is_image_file(path: str | os.PathLike) -> bool:
    """True for file names with a known image extension (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def open_oriented(path, source: str | None = None) -> Image.Image:
    """Opens an image (path or file object) and applies its EXIF orientation.

    Raises ImageReadError starting with ``source`` (default: ``path``) if unreadable.
    """
    try:
        with Image.open(path) as handle:
            handle.load()
            return ImageOps.exif_transpose(handle)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError,
            ValueError) as error:
        raise ImageReadError(f"{source or path}: not a readable image ({error})") from None


def to_channels(image: Image.Image, channels: int = 3) -> np.ndarray:
    """PIL image (grey, palette, RGB, RGBA, 16-bit...) -> ``uint8 (H, W, channels)``."""
    if channels not in PIL_MODES:
        raise ValueError(f"channels must be 1, 3 or 4; got {channels}")
    if image.mode in ("I", "I;16", "I;16B", "F"):
        array = np.asarray(image, dtype=np.float64)
        peak = array.max() if array.max() > 255 else 255.0
        image = Image.fromarray((array * (255.0 / peak)).astype(np.uint8))
    array = np.asarray(image.convert(PIL_MODES[channels]))
    return array[..., None] if channels == 1 else array


def read_image(path: str | os.PathLike, channels: int = 3) -> np.ndarray:
    """Reads an image file as ``uint8 (H, W, channels)`` in displayed orientation."""
    return to_channels(open_oriented(path), channels)


def binarize_mask(mask: np.ndarray, source: str = "mask") -> np.ndarray:
    """{0, 1} or {0, 255} (or any grey) mask ``(H, W[, C])`` -> ``uint8 (H, W)`` in {0, 1}."""
    mask = np.asarray(mask)
    if mask.ndim == 3:
        if mask.shape[-1] not in (1, 3, 4):
            raise ImageReadError(f"{source}: a mask needs 1, 3 or 4 channels; got {mask.shape}")
        mask = mask[..., :3].max(axis=-1)
    if mask.ndim != 2:
        raise ImageReadError(f"{source}: expected a 2-D mask; got shape {mask.shape}")
    threshold = 0 if mask.max() <= 1 else 127
    return (mask > threshold).astype(np.uint8)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Reads a mask image as ``uint8 (H, W)`` {0, 1} (EXIF orientation applied)."""
    return binarize_mask(np.asarray(open_oriented(path).convert("L")), str(path))


def fit_mask_to_image(mask: np.ndarray, image_hw: tuple[int, int], source: str) -> np.ndarray:
    """Resizes a ``(h, w)`` mask to ``image_hw`` (nearest) when the aspect ratios agree.

    Raises ImageReadError naming ``source`` when the aspect ratios differ by more than 2 %.
    """
    height, width = image_hw
    if mask.shape == (height, width):
        return mask
    mask_ratio, image_ratio = mask.shape[1] / mask.shape[0], width / height
    if abs(mask_ratio / image_ratio - 1) > ASPECT_TOLERANCE:
        raise ImageReadError(
            f"{source}: mask is {mask.shape[1]}x{mask.shape[0]} but its image is "
            f"{width}x{height} (different aspect ratio)"
        )
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resizes ``(H, W, C)`` with area averaging when shrinking, bilinear when enlarging."""
    shrinking = height * width < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(image, (width, height), interpolation=interpolation)
    return resized.reshape(height, width, image.shape[2]) if image.ndim == 3 else resized


def list_image_files(folder: str | os.PathLike) -> tuple[list[Path], list[tuple[str, str]]]:
    """Image files of ``folder`` (sorted) and ``(path, reason)`` for the other files skipped.

    Raises ValueError when the folder does not exist or holds no image file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder")
    images, skipped = [], []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        if is_image_file(path):
            images.append(path)
        else:
            skipped.append((str(path), "not an image file (unknown extension)"))
    for path, reason in skipped:
        logger.warning("skipping %s: %s", path, reason)
    if not images:
        raise ValueError(f"{folder}: no image files ({', '.join(IMAGE_EXTENSIONS)}) found")
    return images, skipped
