"""Image and mask resizing, mini-masks, molding and image meta (numpy + OpenCV).

Matterport semantics: ``resize_image`` returns ``(image, window, scale, padding, crop)``,
where ``window`` is ``(y1, x1, y2, x2)`` in pixels of the resized image that holds the
original content (padding excluded). Masks are ``bool[H, W, N]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

RESIZE_MODES = ("none", "square", "pad64", "crop")
# cv2.resize handles at most this many channels in one call (CV_CN_MAX is 128 in OpenCV 5).
_CV2_MAX_CHANNELS = 128


def resize(image: np.ndarray, output_shape: Sequence[int], order: int = 1) -> np.ndarray:
    """Resize [H, W] or [H, W, C] to ``output_shape[:2]``, keeping the dtype.

    order: 0 nearest neighbour, 1 bilinear. bool arrays are resized as 0/1 and thresholded at
    0.5 (bilinear) so masks stay masks.
    """
    image = np.asarray(image)
    if order not in (0, 1):
        raise ValueError(f"order must be 0 (nearest) or 1 (bilinear), got {order!r}")
    height, width = int(output_shape[0]), int(output_shape[1])
    out_shape = (height, width) + image.shape[2:]
    if height <= 0 or width <= 0 or image.size == 0:
        return np.zeros(out_shape, dtype=image.dtype)
    if image.shape[:2] == (height, width):
        return image.copy()
    interpolation = cv2.INTER_NEAREST if order == 0 else cv2.INTER_LINEAR
    work = image
    if image.dtype == bool:
        work = image.astype(np.float32 if order == 1 else np.uint8)
    elif image.dtype not in (np.uint8, np.uint16, np.int16, np.float32, np.float64):
        work = image.astype(np.float32)
    if work.ndim == 2:
        resized = cv2.resize(work, (width, height), interpolation=interpolation)
    else:
        flat = work.reshape(work.shape[0], work.shape[1], -1)
        parts = [
            cv2.resize(flat[:, :, i : i + _CV2_MAX_CHANNELS], (width, height),
                       interpolation=interpolation).reshape(height, width, -1)
            for i in range(0, flat.shape[2], _CV2_MAX_CHANNELS)
        ]
        resized = np.concatenate(parts, axis=2).reshape(out_shape)
    if image.dtype == bool:
        return resized > 0.5
    if resized.dtype != image.dtype:
        if np.issubdtype(image.dtype, np.integer):
            info = np.iinfo(image.dtype)
            resized = np.clip(np.round(resized), info.min, info.max)
        resized = resized.astype(image.dtype)
    return resized


def resize_image(
    image: np.ndarray,
    min_dim: int | None = None,
    max_dim: int | None = None,
    min_scale: float | None = None,
    mode: str = "square",
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, tuple[int, int, int, int], float, list[tuple[int, int]], Any]:
    """Resize an image [H, W, C] keeping its aspect ratio, as Matterport does.

    mode:
      - "none": returned unchanged.
      - "square": scaled so the short side is >= min_dim (upscale only) and the long side
        <= max_dim, then zero-padded to [max_dim, max_dim].
      - "pad64": scaled as above without the max_dim limit, then padded so height and width are
        multiples of 64 (min_dim must be a multiple of 64).
      - "crop": scaled so the short side is >= min_dim, then a random [min_dim, min_dim] crop
        (``rng`` picks it).
    min_scale: the scale is at least this (e.g. 2 forces 2x upscaling).

    Returns (image, window (y1, x1, y2, x2) of the content in pixels, scale, padding
    [(top, bottom), (left, right), (0, 0)], crop (y, x, h, w) or None).
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    image = np.asarray(image)
    image_dtype = image.dtype
    h, w = image.shape[:2]
    window = (0, 0, h, w)
    scale = 1
    padding = [(0, 0), (0, 0), (0, 0)]
    crop = None
    if mode == "none":
        return image, window, scale, padding, crop

    if min_dim:
        scale = max(1, min_dim / min(h, w))
    if min_scale and scale < min_scale:
        scale = min_scale
    if max_dim and mode == "square":
        image_max = max(h, w)
        if round(image_max * scale) > max_dim:
            scale = max_dim / image_max
    if scale != 1:
        image = resize(image, (round(h * scale), round(w * scale)), order=1)

    h, w = image.shape[:2]
    if mode == "square":
        top, left = (max_dim - h) // 2, (max_dim - w) // 2
        padding = [(top, max_dim - h - top), (left, max_dim - w - left), (0, 0)]
        image = np.pad(image, padding[: image.ndim], mode="constant", constant_values=0)
        window = (top, left, h + top, w + left)
    elif mode == "pad64":
        if not min_dim or min_dim % 64 != 0:
            raise ValueError(f"pad64 mode needs min_dim to be a multiple of 64, got {min_dim!r}")
        top, bottom = _split_padding(h)
        left, right = _split_padding(w)
        padding = [(top, bottom), (left, right), (0, 0)]
        image = np.pad(image, padding[: image.ndim], mode="constant", constant_values=0)
        window = (top, left, h + top, w + left)
    elif mode == "crop":
        if not min_dim or h < min_dim or w < min_dim:
            raise ValueError(f"crop mode needs 0 < min_dim <= {min(h, w)} (the scaled image is "
                             f"{h}x{w}), got {min_dim!r}")
        rng = rng if rng is not None else np.random.default_rng()
        y = int(rng.integers(0, h - min_dim + 1))
        x = int(rng.integers(0, w - min_dim + 1))
        crop = (y, x, min_dim, min_dim)
        image = image[y : y + min_dim, x : x + min_dim]
        window = (0, 0, min_dim, min_dim)
    return image.astype(image_dtype), window, scale, padding, crop


def _split_padding(size: int) -> tuple[int, int]:
    """Padding (before, after) that brings ``size`` to the next multiple of 64, split evenly."""
    total = (64 - size % 64) % 64
    return total // 2, total - total // 2


def resize_mask(
    mask: np.ndarray, scale: float, padding: Sequence[Sequence[int]], crop: Any = None
) -> np.ndarray:
    """Apply the scale and padding (or crop) of :func:`resize_image` to masks bool[H, W, N]."""
    mask = np.asarray(mask)
    h, w = mask.shape[:2]
    if scale != 1:
        mask = resize(mask, (round(h * scale), round(w * scale)), order=0)
    if crop is not None:
        y, x, ch, cw = crop
        return mask[y : y + ch, x : x + cw]
    return np.pad(mask, [tuple(p) for p in padding][: mask.ndim], mode="constant",
                  constant_values=0)


def minimize_mask(bbox: np.ndarray, mask: np.ndarray, mini_shape: Sequence[int]) -> np.ndarray:
    """Crop each mask [H, W, N] to its box [N, (y1, x1, y2, x2)] and resize to ``mini_shape``.

    Returns bool[mini_h, mini_w, N]. Raises ValueError for a box of zero area.
    """
    mini_shape = tuple(int(s) for s in mini_shape[:2])
    mini_mask = np.zeros(mini_shape + (mask.shape[-1],), dtype=bool)
    for i in range(mask.shape[-1]):
        y1, x1, y2, x2 = (int(v) for v in bbox[i][:4])
        cropped = np.asarray(mask[y1:y2, x1:x2, i]).astype(bool)
        if cropped.size == 0:
            raise ValueError(f"instance {i} has a box of zero area {tuple(bbox[i][:4])}")
        mini_mask[:, :, i] = resize(cropped, mini_shape, order=1)
    return mini_mask


def expand_mask(bbox: np.ndarray, mini_mask: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`minimize_mask`: paste mini-masks back into bool[H, W, N] at their boxes."""
    mask = np.zeros(tuple(int(s) for s in image_shape[:2]) + (mini_mask.shape[-1],), dtype=bool)
    for i in range(mask.shape[-1]):
        y1, x1, y2, x2 = (int(v) for v in bbox[i][:4])
        mask[y1:y2, x1:x2, i] = resize(mini_mask[:, :, i].astype(bool), (y2 - y1, x2 - x1), order=1)
    return mask


def unmold_mask(mask: np.ndarray, bbox: Sequence[int], image_shape: Sequence[int]) -> np.ndarray:
    """Paste a predicted mask float[mh, mw] (probabilities) into bool[H, W] at ``bbox``.

    bbox is (y1, x1, y2, x2) in pixels of the target image; the mask is resized to the box,
    thresholded at 0.5, and the part of the box outside the image is dropped.
    """
    full_mask = np.zeros(tuple(int(s) for s in image_shape[:2]), dtype=bool)
    _paste_mask(full_mask, mask, bbox)
    return full_mask


def paste_masks(masks: np.ndarray, boxes: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    """:func:`unmold_mask` for N masks [N, mh, mw] and boxes [N, 4] at once: bool[H, W, N].

    Writes each mask straight into its box of one preallocated array (no full-size
    intermediate per mask), which is what makes detect() cheap with 100 detections.
    """
    height, width = (int(s) for s in image_shape[:2])
    full_masks = np.zeros((height, width, len(boxes)), dtype=bool)
    for index, (mask, bbox) in enumerate(zip(masks, boxes, strict=True)):
        _paste_mask(full_masks[:, :, index], mask, bbox)
    return full_masks


def _paste_mask(target: np.ndarray, mask: np.ndarray, bbox: Sequence[int]) -> None:
    """Resize ``mask`` to ``bbox``, threshold at 0.5 and write it into bool ``target[H, W]``."""
    y1, x1, y2, x2 = (int(v) for v in bbox[:4])
    height, width = target.shape
    top, left = max(y1, 0), max(x1, 0)
    bottom, right = min(y2, height), min(x2, width)
    if y2 <= y1 or x2 <= x1 or bottom <= top or right <= left:
        return
    pasted = resize(np.asarray(mask, dtype=np.float32), (y2 - y1, x2 - x1), order=1) >= 0.5
    target[top:bottom, left:right] = pasted[top - y1 : bottom - y1, left - x1 : right - x1]


def mold_image(images: np.ndarray, config) -> np.ndarray:
    """RGB image(s) -> float32 model input: the config's MEAN_PIXEL subtracted (no scaling)."""
    return np.asarray(images).astype(np.float32) - np.asarray(config.MEAN_PIXEL, dtype=np.float32)


def unmold_image(normalized_images: np.ndarray, config) -> np.ndarray:
    """Inverse of :func:`mold_image`: add MEAN_PIXEL back and return uint8 (clipped to 0..255)."""
    images = np.asarray(normalized_images, dtype=np.float32) + np.asarray(config.MEAN_PIXEL)
    return np.clip(np.round(images), 0, 255).astype(np.uint8)


def compose_image_meta(
    image_id: int,
    original_image_shape: Sequence[int],
    image_shape: Sequence[int],
    window: Sequence[int],
    scale: float,
    active_class_ids: Sequence[int],
) -> np.ndarray:
    """Pack image attributes into one float array [1 + 3 + 3 + 4 + 1 + NUM_CLASSES].

    original_image_shape: [H, W, C] before resizing; image_shape: after resizing and padding;
    window: (y1, x1, y2, x2) of the real image in the resized image, pixels; scale: the resize
    factor; active_class_ids: 1 for classes of the image's source (multi-source datasets).
    """
    return np.array(
        [image_id]
        + list(original_image_shape)
        + list(image_shape)
        + list(window)
        + [scale]
        + list(active_class_ids),
        dtype=np.float64,
    )


def parse_image_meta(meta: np.ndarray) -> dict[str, np.ndarray]:
    """Unpack :func:`compose_image_meta` arrays: meta [IMAGE_META_SIZE] or [B, IMAGE_META_SIZE].

    Returns a dict with image_id, original_image_shape, image_shape, window, scale and
    active_class_ids (batched like the input).
    """
    meta = np.asarray(meta)
    batched = meta.ndim == 2
    meta = np.atleast_2d(meta)
    parsed = {
        "image_id": meta[:, 0].astype(np.int32),
        "original_image_shape": meta[:, 1:4].astype(np.int32),
        "image_shape": meta[:, 4:7].astype(np.int32),
        "window": meta[:, 7:11].astype(np.int32),
        "scale": meta[:, 11].astype(np.float32),
        "active_class_ids": meta[:, 12:].astype(np.int32),
    }
    return parsed if batched else {key: value[0] for key, value in parsed.items()}
