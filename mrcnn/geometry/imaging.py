"""Image and mask resizing, mini-masks, molding and image meta (numpy + SciPy).

Matterport semantics: ``resize_image`` returns ``(image, window, scale, padding, crop)``,
where ``window`` is ``(y1, x1, y2, x2)`` in pixels of the resized image that holds the
original content (padding excluded). Masks are ``bool[H, W, N]``.
Every pixel equals Matterport's (scikit-image's bilinear resize with zero fill and clip, uint8
truncation, scipy's nearest zoom for masks, a float64 mean), so a Matterport ``.h5`` sees
the input it was trained on; tests/mrcnn/test_matterport_preprocessing.py checks it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

RESIZE_MODES = ("none", "square", "pad64", "crop")
# Output elements per block of the bilinear loop: its temporaries stay in the CPU cache.
_BLOCK_ELEMENTS = 1 << 16


def resize(
    image: np.ndarray,
    output_shape: Sequence[int],
    order: int = 1,
    mode: str = "constant",
    cval: float = 0,
    clip: bool = True,
    preserve_range: bool = False,
    anti_aliasing: bool | None = False,
    anti_aliasing_sigma: Any = None,
) -> np.ndarray:
    """Matterport's ``utils.resize``: ``skimage.transform.resize`` with anti-aliasing off.

    Returns float64 (float32 for float16/32 input; the input dtype when order is 0), scaled to
    [0, 1] like ``img_as_float`` unless ``preserve_range``. bool images are interpolated as
    0.0/1.0, as the scikit-image of Matterport's time did (today's refuses them with order > 0).
    Matterport's own call (bilinear, zeros outside the image, no anti-aliasing) runs
    :func:`_zoom_bilinear`, scikit-image's arithmetic in numpy: the same bits, 2-5x faster;
    other arguments go to scikit-image itself.
    """
    image = np.asarray(image)
    if image.dtype == bool and order > 0:
        image = image.astype(np.float64)
    shape = tuple(int(s) for s in output_shape)
    matterports_call = ((order, mode, cval, anti_aliasing) == (1, "constant", 0, False)
                        and image.dtype.kind in "fiu" and image.ndim in (2, 3)
                        and shape[2:] in ((), image.shape[2:]))
    if matterports_call:
        if image.dtype == np.float16:
            image = image.astype(np.float32)
        elif image.dtype.kind != "f" and not preserve_range:
            from skimage.util import img_as_float

            image = img_as_float(image)
        out_dtype = np.float32 if image.dtype == np.float32 else np.float64
        out_shape = shape[:2] + image.shape[2:]
        if image.size == 0 or min(out_shape) == 0:
            return np.zeros(out_shape, dtype=out_dtype)
        low, high = image.min(), image.max()
        if np.isfinite(low) and np.isfinite(high):  # else scikit-image's NaN handling below
            resized = _zoom_bilinear(image, *shape[:2]).astype(out_dtype, copy=False)
            if clip:
                # skimage's _clip_warp_output: clip to the input's range, widened to the fill
                # value 0 only if the output reaches it. A photo without black pixels thus
                # loses the dark blend of its border with the zero fill.
                if not low <= 0 <= high and resized.min() <= 0 <= resized.max():
                    low, high = min(low, 0), max(high, 0)
                np.clip(resized, low, high, out=resized)
            return resized
    from skimage.transform import resize as skimage_resize

    return skimage_resize(image, output_shape, order=order, mode=mode, cval=cval, clip=clip,
                          preserve_range=preserve_range, anti_aliasing=anti_aliasing,
                          anti_aliasing_sigma=anti_aliasing_sigma)


def _zoom_bilinear(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """``scipy.ndimage.zoom(values, order=1, mode="grid-constant", grid_mode=True)`` over the
    first two axes (what skimage's resize runs), with scipy's floating-point operations in
    scipy's order: float64 [height, width, ...].

    Each output value is ((v00 * wy0) * wx0 + (v01 * wy0) * wx1) + (v10 * wy1) * wx0
    + (v11 * wy1) * wx1; a tap outside the image reads 0, here as a zero weight on the edge
    pixel (the same +0.0 term). A different grouping changes the last bit, which the later
    cast to uint8 (truncation) turns into a whole grey level.
    """
    in_h, in_w = values.shape[:2]
    # One channel at a time: gathers of single elements are what np.take does fastest.
    planes = np.moveaxis(values.reshape(in_h, in_w, -1), 2, 0)
    rows, cols = _bilinear_taps(in_h, height), _bilinear_taps(in_w, width)
    out = np.zeros((planes.shape[0], height, width))
    step = max(1, _BLOCK_ELEMENTS // width)
    term = np.empty((step, width))
    for plane, plane_out in zip(planes, out, strict=True):
        plane = np.ascontiguousarray(plane)
        for top in range(0, height, step):
            block = slice(top, top + step)
            part = plane_out[block]
            buffer = term[: part.shape[0]]
            for row_index, row_weight in rows:
                picked = plane[row_index[block]]
                for col_index, col_weight in cols:
                    np.multiply(np.take(picked, col_index, axis=1), row_weight[block, None],
                                out=buffer)
                    buffer *= col_weight
                    part += buffer
    return np.ascontiguousarray(np.moveaxis(out, 0, -1)).reshape((height, width)
                                                                  + values.shape[2:])


def _bilinear_taps(size: int, out_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two (source index, weight) taps per output position along one axis, as scipy's
    grid-mode zoom computes them: x = (k + 0.5) * size / out_size - 0.5, taps floor(x) and
    floor(x) + 1 with weights 1 - t and t, t = x - floor(x)."""
    coords = (np.arange(out_size, dtype=np.float64) + 0.5) * (size / out_size) - 0.5
    first = np.floor(coords)
    w1 = coords - first
    w0 = 1.0 - w1
    i0 = first.astype(np.intp)
    i1 = i0 + 1
    w0[(i0 < 0) | (i0 >= size)] = 0.0
    w1[(i1 < 0) | (i1 >= size)] = 0.0
    return [(np.clip(i0, 0, size - 1), w0), (np.clip(i1, 0, size - 1), w1)]


def _zoom_nearest(mask: np.ndarray, scale: float) -> np.ndarray:
    """``scipy.ndimage.zoom(mask, [scale, scale, 1], order=0)`` (Matterport's resize_mask) for
    [H, W, ...] of any dtype, as one gather.

    scipy picks the source of each output row by its index alone, so zooming the ramp
    0..H-1 gives those sources, -1 where scipy reads the fill value 0 instead (it does past
    the edge: the last row of a 480x640 mask scaled x1.6 comes out empty).
    """
    rows, cols = (
        ndimage.zoom(np.arange(size, dtype=np.float64), [scale], order=0, mode="constant",
                     cval=-1.0).astype(np.intp)
        for size in mask.shape[:2]
    )
    resized = np.take(np.take(mask, np.maximum(rows, 0), axis=0), np.maximum(cols, 0), axis=1)
    resized[rows < 0] = 0
    resized[:, cols < 0] = 0
    return resized


def resize_image(
    image: np.ndarray,
    min_dim: int | None = None,
    max_dim: int | None = None,
    min_scale: float | None = None,
    mode: str = "square",
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, tuple[int, int, int, int], float, list[tuple[int, int]], Any]:
    """Resize an image [H, W, C] keeping its aspect ratio, bit for bit as Matterport does.

    mode:
      - "none": returned unchanged.
      - "square": scaled so the short side is >= min_dim (upscale only) and the long side
        <= max_dim, then zero-padded to [max_dim, max_dim].
      - "pad64": scaled as above without the max_dim limit, then padded so height and width are
        multiples of 64 (min_dim must be a multiple of 64).
      - "crop": scaled so the short side is >= min_dim, then a random [min_dim, min_dim] crop
        (``rng`` picks it).
    min_scale: the scale is at least this (e.g. 2 forces 2x upscaling).
    The new size is (round(h * scale), round(w * scale)); the resampling is :func:`resize`
    (bilinear, the border blended with zeros) cast back to the input dtype by truncation.

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
        image = resize(image, (round(h * scale), round(w * scale)), preserve_range=True)
        # Matterport casts (truncates) after padding; before is the same and pads 1 byte/pixel.
        image = image.astype(image_dtype)

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
    """Apply the scale and padding (or crop) of :func:`resize_image` to masks bool[H, W, N].

    Nearest neighbour exactly as Matterport's ``scipy.ndimage.zoom(mask, [scale, scale, 1],
    order=0)`` (see :func:`_zoom_nearest`); keeps the dtype.
    """
    mask = np.asarray(mask)
    if scale != 1:
        mask = _zoom_nearest(mask, scale)
    if crop is not None:
        y, x, ch, cw = crop
        return mask[y : y + ch, x : x + cw]
    return np.pad(mask, [tuple(p) for p in padding][: mask.ndim], mode="constant",
                  constant_values=0)


def minimize_mask(bbox: np.ndarray, mask: np.ndarray, mini_shape: Sequence[int]) -> np.ndarray:
    """Crop each mask [H, W, N] to its box [N, (y1, x1, y2, x2)] and resize to ``mini_shape``.

    Returns bool[mini_h, mini_w, N]. Raises ValueError for a box of zero area.
    As Matterport: :func:`resize` of the 0/1 crop, rounded (0.5 rounds to 0).
    """
    mini_shape = tuple(int(s) for s in mini_shape[:2])
    mini_mask = np.zeros(mini_shape + (mask.shape[-1],), dtype=bool)
    for i in range(mask.shape[-1]):
        y1, x1, y2, x2 = (int(v) for v in bbox[i][:4])
        cropped = np.asarray(mask[y1:y2, x1:x2, i]).astype(bool)
        if cropped.size == 0:
            raise ValueError(f"instance {i} has a box of zero area {tuple(bbox[i][:4])}")
        mini_mask[:, :, i] = resize(cropped, mini_shape) > 0.5
    return mini_mask


def expand_mask(bbox: np.ndarray, mini_mask: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`minimize_mask`: paste mini-masks back into bool[H, W, N] at their boxes.

    As Matterport: :func:`resize` of each 0/1 mini-mask to its box, rounded (0.5 rounds to 0).
    """
    mask = np.zeros(tuple(int(s) for s in image_shape[:2]) + (mini_mask.shape[-1],), dtype=bool)
    for i in range(mask.shape[-1]):
        y1, x1, y2, x2 = (int(v) for v in bbox[i][:4])
        mask[y1:y2, x1:x2, i] = resize(mini_mask[:, :, i].astype(bool), (y2 - y1, x2 - x1)) > 0.5
    return mask


def unmold_mask(mask: np.ndarray, bbox: Sequence[int], image_shape: Sequence[int]) -> np.ndarray:
    """Paste a predicted mask float[mh, mw] (probabilities) into bool[H, W] at ``bbox``.

    bbox is (y1, x1, y2, x2) in pixels of the target image; the mask is resized to the box
    with :func:`resize` in its own float dtype and thresholded at >= 0.5, as Matterport does;
    the part of the box outside the image is dropped.
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
    cropped = crop_mask(mask, bbox, target.shape)
    if cropped is not None:
        (top, left, bottom, right), pasted = cropped
        target[top:bottom, left:right] = pasted


def crop_mask(mask: np.ndarray, bbox: Sequence[int], image_shape: Sequence[int]
              ) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """:func:`unmold_mask` without the full-size array: ((y1, x1, y2, x2), bool crop).

    The box is ``bbox`` clipped to the image and the crop is the pasted mask inside it, so
    ``full[y1:y2, x1:x2] = crop`` gives exactly ``unmold_mask``. None for a box outside the image.
    """
    y1, x1, y2, x2 = (int(v) for v in bbox[:4])
    height, width = (int(s) for s in image_shape[:2])
    top, left = max(y1, 0), max(x1, 0)
    bottom, right = min(y2, height), min(x2, width)
    if y2 <= y1 or x2 <= x1 or bottom <= top or right <= left:
        return None
    pasted = resize(np.asarray(mask), (y2 - y1, x2 - x1)) >= 0.5
    return (top, left, bottom, right), pasted[top - y1 : bottom - y1, left - x1 : right - x1]


def mold_image(images: np.ndarray, config) -> np.ndarray:
    """Image(s) [..., C] of any int/float dtype -> float32 model input: (image - MEAN_PIXEL),
    divided by PIXEL_STD when the config sets it. The values are taken as stored (16-bit data
    keeps 0..65535), so MEAN_PIXEL and PIXEL_STD are in the data's own range.

    PIXEL_STD None is Matterport: float32 image minus the float64 mean, then the float32 cast
    Keras applied to that float64 result (a float32 subtraction differs in the last bit for
    ~40% of pixels). With PIXEL_STD the division is in float64 too, before the cast.
    """
    difference = np.asarray(images).astype(np.float32) - np.asarray(config.MEAN_PIXEL,
                                                                      dtype=np.float64)
    std = getattr(config, "PIXEL_STD", None)
    if std is not None:
        difference = difference / np.asarray(std, dtype=np.float64)
    return difference.astype(np.float32)


def unmold_image(normalized_images: np.ndarray, config) -> np.ndarray:
    """Inverse of :func:`mold_image` for display: PIXEL_STD (if set) and MEAN_PIXEL applied
    back, returned as uint8 clipped to 0..255."""
    images = np.asarray(normalized_images, dtype=np.float32)
    std = getattr(config, "PIXEL_STD", None)
    if std is not None:
        images = images * np.asarray(std)
    images = images + np.asarray(config.MEAN_PIXEL)
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
