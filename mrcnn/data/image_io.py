"""Reading image files into the uint8 RGB arrays every model here expects (Pillow)."""

from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mrcnn.data.errors import DatasetError

# Pillow modes holding more than 8 bits per pixel in one channel.
_WIDE_GRAY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def load_rgb_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as uint8[H, W, 3] RGB, upright.

    Grayscale is replicated to 3 channels, an alpha channel is dropped (not composited),
    palette and CMYK images are converted, 16-bit images are scaled to 8 bits, and the EXIF
    orientation tag is applied. Raises FileNotFoundError for a missing file and
    :class:`mrcnn.data.dataset.DatasetError` naming the file for anything that is not a readable image,
    including one larger than Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``).
    """
    if path is None:
        raise DatasetError("load_rgb_image() got path=None: the image was added without a path")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "image file not found", str(path))
    try:
        with warnings.catch_warnings():
            # Above the limit Pillow only warns; decoding it could exhaust memory.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image = ImageOps.exif_transpose(image)
                array = _to_rgb_array(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DatasetError(f"{path} is too large to decode safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise DatasetError(f"{path} is not an image file Pillow can read") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise DatasetError(f"{path} is a corrupt or truncated image: {exc}") from exc
    return array


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    """A decoded Pillow image of any mode -> uint8[H, W, 3]."""
    if image.mode in _WIDE_GRAY_MODES:
        gray = np.asarray(image).astype(np.float64)
        gray = np.clip(np.round(gray / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode == "F":
        gray = np.asarray(image, dtype=np.float64)
        if gray.size and np.nanmax(gray) <= 1.0:
            gray = gray * 255.0
        gray = np.clip(np.nan_to_num(np.round(gray)), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode != "RGB":
        # "RGBA"/"LA"/"PA" lose alpha; "L"/"1"/"P"/"CMYK"/"YCbCr"/... are converted.
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
