"""Reading image files as uint8 ``[H, W, channels]`` for a localizer of any channel count.

- 3 channels (RGB, the default): any PIL-readable file, converted as PIL converts it (grey and
  palette files are repeated to RGB, RGBA loses its alpha), as before channel counts existed.
- Any other count: the file's own bands, unconverted: 8-bit PIL files (``L`` 1, ``LA`` 2,
  ``RGBA``/``CMYK`` 4 bands; palette files expanded to RGB or RGBA) or a ``.npy`` uint8 stack
  ``[H, W]`` / ``[H, W, N]`` (channels last) for 2, 5 or more bands (RGB+NIR+..., RGB-D).

A file whose band count is not the model's raises :class:`ImageChannelError` naming both.
Only uint8 data is read: scale 16-bit or float bands to 0-255 before saving them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["ImageChannelError", "load_image_channels", "read_image_size", "to_display_rgb"]

ARRAY_SUFFIX = ".npy"


class ImageChannelError(ValueError):
    """An image's channel count or dtype is not what the model reads."""


def _read_array(path: Path) -> np.ndarray:
    array = np.load(path, allow_pickle=False)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or min(array.shape[:2]) < 1:
        raise ImageChannelError(f"{path}: expected an [H, W] or [H, W, N] array, got shape "
                                f"{array.shape}")
    return array


def _read_pil(path: Path, channels: int) -> np.ndarray:
    with Image.open(path) as image:
        if channels == 3:
            return np.asarray(image.convert("RGB"))
        if image.mode in ("P", "PA"):
            transparent = image.mode == "PA" or "transparency" in image.info
            image = image.convert("RGBA" if transparent else "RGB")
        elif image.mode == "1":
            image = image.convert("L")
        array = np.asarray(image)
    return array[..., None] if array.ndim == 2 else array


def load_image_channels(path: str | Path, channels: int = 3) -> np.ndarray:
    """``path`` as uint8 ``[H, W, channels]`` (rules in the module docstring).

    Raises:
        ImageChannelError: the file has another band count or is not 8-bit.
    """
    path = Path(path)
    array = _read_array(path) if path.suffix.lower() == ARRAY_SUFFIX else _read_pil(path, channels)
    if array.dtype != np.uint8:
        raise ImageChannelError(f"{path}: expected uint8 pixels (0-255), got {array.dtype}; "
                                "scale the bands to 0-255 first")
    if array.shape[-1] != channels:
        raise ImageChannelError(f"{path}: the image has {array.shape[-1]} channel(s) but the "
                                f"model expects {channels} (CHANNELS={channels})")
    return array


def read_image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image file or ``.npy`` stack without decoding its pixels."""
    path = Path(path)
    if path.suffix.lower() == ARRAY_SUFFIX:
        shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        if len(shape) not in (2, 3):
            raise ImageChannelError(f"{path}: expected an [H, W] or [H, W, N] array, got shape "
                                    f"{shape}")
        return int(shape[1]), int(shape[0])
    with Image.open(path) as image:
        return image.size


def to_display_rgb(image: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` to draw: the first three channels, or channel 0 repeated below three."""
    if image.shape[-1] >= 3:
        return np.ascontiguousarray(image[..., :3])
    return np.repeat(image[..., :1], 3, axis=-1)
