"""Checks and rasterization shared by the dataset loaders: polygons, COCO RLE, image sizes.

All coordinates are pixels in the original image: polygons are flat ``[x0, y0, x1, y1, ...]``
lists (COCO order), boxes are COCO ``[x, y, w, h]`` unless stated otherwise. Every ``check_*``
function returns ``None`` for a usable value or a short text saying what is wrong, so that a
loader can skip the record with a warning that names its file and record.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

from mrcnn.data.image_io import read_image_size  # noqa: F401  (the loaders import it from here)

logger = logging.getLogger(__name__)

# Polygon vertices may lie outside the image (the mask is clipped), but not absurdly far:
# pycocotools walks every edge pixel by pixel, so a vertex at 1e12 would exhaust memory.
MAX_OUTSIDE_FACTOR = 4


class LoadIssues:
    """Counts and logs the records a loader skipped, each message naming the file and record.

    Only the first ``max_logged`` messages are logged one by one; ``summarize()`` logs the count.
    The messages stay available in ``messages`` (e.g. for a CLI report or a test).
    """

    def __init__(self, what: str, max_logged: int = 20) -> None:
        self.what = what
        self.max_logged = max_logged
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)
        if len(self.messages) <= self.max_logged:
            logger.warning("%s", message)
        elif len(self.messages) == self.max_logged + 1:
            logger.warning("%s: more problems follow; only their count is logged", self.what)

    def summarize(self) -> None:
        if self.messages:
            logger.warning("%s: skipped %d record(s) with problems", self.what, len(self.messages))

    def __len__(self) -> int:
        return len(self.messages)


def is_number(value: Any) -> bool:
    """True for a finite int/float (bools excluded)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def check_image_size(height: Any, width: Any) -> str | None:
    if not (isinstance(height, int) and isinstance(width, int)) or isinstance(height, bool) \
            or isinstance(width, bool) or height < 1 or width < 1:
        return f"image size must be two integers >= 1, got height={height!r} width={width!r}"
    return None


def check_polygon(coords: Any, height: int, width: int) -> str | None:
    """Problem with one flat ``[x0, y0, x1, y1, ...]`` polygon, or None if it can be drawn."""
    problem = "polygon must be a flat list of finite numbers [x0, y0, x1, y1, ...]"
    if not isinstance(coords, (list, tuple)):
        return problem
    try:
        values = np.asarray(coords, dtype=np.float64)
    except (TypeError, ValueError):
        return problem
    if values.ndim != 1 or not np.isfinite(values).all():
        return problem
    if len(values) % 2:
        return f"polygon has an odd number of coordinates ({len(values)})"
    if len(values) < 6:
        return f"polygon has {len(values) // 2} point(s); at least 3 are needed"
    limit = MAX_OUTSIDE_FACTOR * max(height, width)
    if np.abs(values).max() > limit:
        return f"polygon has coordinates more than {limit} px away from the image"
    return None


def check_box_overlaps_image(x1: float, y1: float, x2: float, y2: float,
                             height: int, width: int) -> str | None:
    """Problem with a corner box ``(x1, y1, x2, y2)`` in pixels: degenerate or outside the image."""
    if not all(is_number(v) for v in (x1, y1, x2, y2)):
        return f"box must hold 4 finite numbers, got {[x1, y1, x2, y2]!r}"
    if x2 <= x1 or y2 <= y1:
        return f"box {[x1, y1, x2, y2]} has no area"
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        return f"box {[x1, y1, x2, y2]} lies outside the {width}x{height} image"
    return None


def decode_rle_string(counts: str) -> list[int]:
    """Run lengths of a COCO compressed RLE string (LEB128-like, 6 bits per char, delta coded).

    Raises ValueError on a character outside the alphabet or a truncated number.
    """
    runs: list[int] = []
    pos = 0
    while pos < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(counts):
                raise ValueError("truncated RLE string")
            chunk = ord(counts[pos]) - 48
            if not 0 <= chunk < 64:
                raise ValueError(f"character {counts[pos]!r} is not part of the RLE alphabet")
            value |= (chunk & 0x1F) << shift
            more = bool(chunk & 0x20)
            pos += 1
            shift += 5
            if not more and chunk & 0x10:
                value |= -1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def check_rle(segmentation: dict, height: int, width: int) -> str | None:
    """Problem with a COCO RLE dict (``counts`` a list = uncompressed, a string = compressed)."""
    size = segmentation.get("size")
    counts = segmentation.get("counts")
    if not (isinstance(size, (list, tuple)) and len(size) == 2
            and all(isinstance(s, int) and not isinstance(s, bool) for s in size)):
        return f"RLE 'size' must be [height, width], got {size!r}"
    if list(size) != [height, width]:
        return f"RLE size {list(size)} differs from the image size {[height, width]}"
    if isinstance(counts, str):
        try:
            runs = decode_rle_string(counts)
        except ValueError as error:
            return f"RLE 'counts' string is malformed: {error}"
    elif isinstance(counts, list):
        if not all(isinstance(c, int) and not isinstance(c, bool) for c in counts):
            return "uncompressed RLE 'counts' must be a list of integers"
        runs = counts
    else:
        return f"RLE 'counts' must be a list or a string, got {type(counts).__name__}"
    if any(r < 0 for r in runs):
        return "RLE has negative run lengths"
    if sum(runs) != height * width:
        return f"RLE runs cover {sum(runs)} pixels, the image has {height * width}"
    return None


def check_coco_segmentation(segmentation: Any, height: int, width: int) -> str | None:
    """Problem with a COCO ``segmentation`` (list of polygons, or an RLE dict), or None."""
    if isinstance(segmentation, dict):
        return check_rle(segmentation, height, width)
    if not isinstance(segmentation, list) or not segmentation:
        return "segmentation must be a non-empty list of polygons or an RLE dict"
    for polygon in segmentation:
        problem = check_polygon(polygon, height, width)
        if problem:
            return problem
    return None


def polygons_to_mask(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """bool[height, width]: the union of flat ``[x0, y0, x1, y1, ...]`` polygons (pixels)."""
    if not polygons:
        return np.zeros((height, width), dtype=bool)
    rles = coco_mask.frPyObjects([list(map(float, p)) for p in polygons], height, width)
    return coco_mask.decode([coco_mask.merge(rles)])[:, :, 0].astype(bool)


def coco_segmentation_to_mask(segmentation: list | dict, height: int, width: int) -> np.ndarray:
    """bool[height, width] from a COCO segmentation already accepted by check_coco_segmentation."""
    if isinstance(segmentation, list):
        return polygons_to_mask(segmentation, height, width)
    if isinstance(segmentation["counts"], list):  # uncompressed (crowd) RLE
        rle = coco_mask.frPyObjects(segmentation, height, width)
    else:
        rle = {"size": [height, width], "counts": segmentation["counts"].encode("ascii")}
    return coco_mask.decode([rle])[:, :, 0].astype(bool)
