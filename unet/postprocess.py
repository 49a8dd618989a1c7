"""Mask clean-up and background removal: small components, holes, soft edges, compositing.

Masks are ``(H, W)`` arrays in the ORIGINAL image's pixel frame; sizes such as ``min_size`` are
counted at that resolution. Alpha maps are ``uint8 (H, W)`` in 0..255.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import ImageColor
from scipy import ndimage


def remove_small_components(mask: np.ndarray, min_size: int) -> np.ndarray:
    """Drops 8-connected foreground components with fewer than ``min_size`` pixels."""
    mask = np.asarray(mask).astype(np.uint8)
    if min_size <= 1 or not mask.any():
        return mask
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_size
    keep[0] = False  # label 0 is the background
    return keep[labels].astype(np.uint8)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fills background regions fully enclosed by foreground (4-connected background)."""
    return ndimage.binary_fill_holes(np.asarray(mask).astype(bool)).astype(np.uint8)


def clean_mask(mask: np.ndarray, min_size: int = 50, holes: bool = True) -> np.ndarray:
    """Binary ``(H, W)`` {0, 1}: small components removed, then holes filled (optional)."""
    mask = remove_small_components(mask, min_size)
    return fill_holes(mask) if holes else mask


def compute_alpha(
    probability: np.ndarray,
    threshold: float = 0.5,
    min_size: int = 50,
    holes: bool = True,
    feather: float = 0.0,
) -> np.ndarray:
    """Alpha ``uint8 (H, W)`` from a probability map ``(H, W)`` in [0, 1].

    Thresholds, cleans (:func:`clean_mask`), then optionally feathers the edge with a Gaussian
    of sigma ``feather`` pixels (soft edges). With ``feather=0`` alpha is exactly 0 or 255.
    """
    mask = clean_mask(np.asarray(probability) > threshold, min_size, holes)
    if feather <= 0:
        return mask * np.uint8(255)
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigmaX=feather)
    return np.clip(np.round(soft * 255), 0, 255).astype(np.uint8)


def parse_color(text: str) -> tuple[int, int, int]:
    """"white", "#00ff00" or "0,255,0" -> ``(r, g, b)``; ValueError otherwise."""
    text = text.strip()
    if "," in text:
        parts = text.split(",")
        if len(parts) == 3 and all(p.strip().isdigit() and int(p) <= 255 for p in parts):
            return tuple(int(p) for p in parts)
        raise ValueError(f"colour {text!r}: expected three numbers 0..255 like 0,255,0")
    try:
        return ImageColor.getrgb(text)[:3]
    except ValueError:
        raise ValueError(f"colour {text!r}: expected a name, #rrggbb or r,g,b") from None


def compose_cutout(
    image: np.ndarray, alpha: np.ndarray, background: tuple[int, int, int] | None = None
) -> np.ndarray:
    """Cut-out of an RGB ``(H, W, 3)`` image.

    Without ``background``: RGBA ``(H, W, 4)`` with ``alpha`` as the 4th channel. With it: an
    opaque RGBA image ``alpha * image + (1 - alpha) * background`` (no translucent border).
    """
    image = np.asarray(image)[..., :3]
    if image.shape[:2] != alpha.shape:
        raise ValueError(f"image {image.shape[:2]} and alpha {alpha.shape} differ in size")
    if background is None:
        return np.dstack([image, alpha]).astype(np.uint8)
    weight = alpha[..., None].astype(np.float32) / 255.0
    composite = weight * image + (1.0 - weight) * np.asarray(background, np.float32)
    opaque = np.full(alpha.shape, 255, np.uint8)
    return np.dstack([np.round(composite).astype(np.uint8), opaque])
