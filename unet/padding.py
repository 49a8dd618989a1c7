"""Pad any image to a size the U-Net accepts, and crop predictions back.

Arrays are channels-last ``(H, W)`` or ``(H, W, C)`` (a leading batch axis is not supported here:
pad each image). Padding is split evenly between the two sides, the odd pixel going after.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Padding(NamedTuple):
    """Pixels added on each side, in the padded image's frame."""

    top: int
    bottom: int
    left: int
    right: int


def pad_to_multiple(
    image: np.ndarray, multiple: int, mode: str = "reflect"
) -> tuple[np.ndarray, Padding]:
    """Pads ``image`` so that its height and width are multiples of ``multiple``.

    Args:
        image: ``(H, W)`` or ``(H, W, C)``.
        multiple: e.g. ``2**depth`` (16 for a depth-4 U-Net) or 32 for encoder U-Nets.
        mode: ``numpy.pad`` mode ("reflect", "edge", "constant" = zeros).
    Returns:
        ``(padded, padding)``; ``crop_to_shape(prediction, padding)`` undoes it.
    """
    if image.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) image; got shape {image.shape}")
    if multiple < 1:
        raise ValueError(f"multiple must be a positive integer; got {multiple}")
    height, width = image.shape[:2]
    extra_h, extra_w = -height % multiple, -width % multiple
    padding = Padding(extra_h // 2, extra_h - extra_h // 2, extra_w // 2, extra_w - extra_w // 2)
    widths = [(padding.top, padding.bottom), (padding.left, padding.right)]
    widths += [(0, 0)] * (image.ndim - 2)
    if mode == "reflect" and min(height, width) < 2:
        mode = "edge"  # reflect needs at least two pixels along each axis
    return np.pad(image, widths, mode=mode), padding


def crop_to_shape(prediction: np.ndarray, padding: Padding) -> np.ndarray:
    """Removes ``padding`` from an ``(H', W')`` or ``(H', W', C)`` prediction."""
    height, width = prediction.shape[:2]
    return prediction[padding.top : height - padding.bottom, padding.left : width - padding.right]


def center_crop(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Central ``height x width`` window of ``(H, W, ...)``: the target of an unpadded U-Net."""
    top = (array.shape[0] - height) // 2
    left = (array.shape[1] - width) // 2
    if top < 0 or left < 0:
        raise ValueError(f"cannot crop {array.shape[:2]} to a larger {height}x{width}")
    return array[top : top + height, left : left + width]
