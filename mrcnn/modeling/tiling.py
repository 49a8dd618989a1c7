"""Tiled inference for images larger than the network's input: tiles, instances, merging.

An image is cut into overlapping full-resolution tiles (:func:`tile_grid`); each tile's
detections become :class:`Instance` records holding their mask as a crop of the box only; the
instances of all tiles (and of an optional whole-image pass) are merged by mask overlap
(:func:`merge_instances`), so an object cut by a tile border comes back as one instance with one
mask; :class:`InstanceMasks` hands the merged masks out as the bool[H, W, N] array ``detect()``
returns, building a full-size mask only for the instance asked for.

Memory: the tiles are views of the image; what is held is one batch of molded tiles, the
network's outputs for it, and the crops, i.e. sum over instances of box height x box width
bytes (an 8000x6000 image with 500 instances of 100x100 px holds 5 MB of masks, where a dense
bool[H, W, N] would take 24 GB).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Offsets of tiles of ``tile`` px along an axis of ``length`` px: the first at 0, the last
    flush with the end, neighbours overlapping by at least ``overlap`` x ``tile`` px."""
    if length <= tile:
        return [0]
    stride = max(1, int(tile * (1.0 - overlap)))
    count = -(-(length - tile) // stride) + 1  # ceil: the last tile ends at ``length``
    # Spread the tiles evenly between 0 and length - tile, so no overlap is below the stride's.
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def check_tiling(tile_size: int, overlap: float) -> None:
    """Raise ValueError for a tile_size < 1 or an overlap outside [0, 1)."""
    if tile_size < 1:
        raise ValueError(f"tile_size must be a positive number of pixels, got {tile_size}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"tile_overlap must be in [0, 1), got {overlap}")


def tile_grid(height: int, width: int, tile_size: int, overlap: float
              ) -> list[tuple[int, int, int, int]]:
    """Tiles (y1, x1, y2, x2) covering an image, each ``tile_size`` square or the image's side
    where that is shorter. Raises ValueError as :func:`check_tiling` does."""
    check_tiling(tile_size, overlap)
    tile_h, tile_w = min(tile_size, height), min(tile_size, width)
    return [(y, x, y + tile_h, x + tile_w)
            for y in tile_starts(height, tile_size, overlap)
            for x in tile_starts(width, tile_size, overlap)]


@dataclass
class Instance:
    """One detection in image pixels: its box (y1, x1, y2, x2; y2/x2 exclusive, clipped to the
    image), the bool mask inside that box, class and score; ``source`` names the tile (or
    pass) it came from."""

    box: tuple[int, int, int, int]
    mask: np.ndarray
    class_id: int
    score: float
    source: int

    @cached_property
    def area(self) -> int:
        return int(np.count_nonzero(self.mask))


def mask_intersection(a: Instance, b: Instance) -> int:
    """Pixels the two instances' masks share (zero when their boxes do not overlap)."""
    y1, x1 = max(a.box[0], b.box[0]), max(a.box[1], b.box[1])
    y2, x2 = min(a.box[2], b.box[2]), min(a.box[3], b.box[3])
    if y2 <= y1 or x2 <= x1:
        return 0
    part_a = a.mask[y1 - a.box[0]:y2 - a.box[0], x1 - a.box[1]:x2 - a.box[1]]
    part_b = b.mask[y1 - b.box[0]:y2 - b.box[0], x1 - b.box[1]:x2 - b.box[1]]
    return int(np.count_nonzero(part_a & part_b))


def union(a: Instance, b: Instance) -> Instance:
    """One instance covering both masks, with the higher score (and its class and source)."""
    box = (min(a.box[0], b.box[0]), min(a.box[1], b.box[1]),
           max(a.box[2], b.box[2]), max(a.box[3], b.box[3]))
    mask = np.zeros((box[2] - box[0], box[3] - box[1]), dtype=bool)
    for part in (a, b):
        mask[part.box[0] - box[0]:part.box[2] - box[0],
             part.box[1] - box[1]:part.box[3] - box[1]] |= part.mask
    best = a if a.score >= b.score else b
    return Instance(box, mask, best.class_id, best.score, best.source)


def merge_instances(instances: Sequence[Instance], threshold: float = 0.5) -> list[Instance]:
    """Merge the detections of one object seen by several tiles into one instance.

    Greedy, by score (sahi's greedy NMM, on masks): the best remaining instance absorbs every
    instance of the same class from another source whose mask overlaps the grown mask with
    intersection over the smaller mask >= ``threshold``, until none is left to absorb. A piece
    of an object cut by a tile border lies inside the whole object seen by the next tile (IoS
    near 1); two objects that only touch share no mask pixel and stay apart. Instances of one
    source are never merged with each other: the network's own NMS has separated them.
    Returns the merged instances, highest score first; a merged box is the union of its parts'.
    """
    ordered = sorted(instances, key=lambda i: -i.score)
    boxes = np.array([i.box for i in ordered], dtype=np.int64).reshape(-1, 4)
    class_ids = np.array([i.class_id for i in ordered], dtype=np.int64)
    sources = np.array([i.source for i in ordered], dtype=np.int64)
    alive = np.ones(len(ordered), dtype=bool)
    merged = []
    for first in range(len(ordered)):
        if not alive[first]:
            continue
        alive[first] = False
        group, group_sources = ordered[first], {ordered[first].source}
        grew = True
        while grew:
            grew = False
            y1, x1, y2, x2 = group.box
            near = np.flatnonzero(
                alive & (class_ids == group.class_id) & ~np.isin(sources, list(group_sources))
                & (boxes[:, 0] < y2) & (boxes[:, 2] > y1) & (boxes[:, 1] < x2) & (boxes[:, 3] > x1))
            for index in near:
                candidate = ordered[index]
                if candidate.source in group_sources:
                    continue
                shared = mask_intersection(group, candidate)
                if shared and shared >= threshold * min(group.area, candidate.area):
                    group = union(group, candidate)
                    group_sources.add(candidate.source)
                    alive[index] = False
                    grew = True
        merged.append(group)
    return merged


class InstanceMasks:
    """bool[H, W, N] instance masks stored as crops: what ``detect()`` returns for tiled images.

    ``masks[:, :, i]`` (or ``masks[..., i]``) builds instance i's full-size mask, and
    ``masks.crop(i)`` gives its box and crop without one; ``np.asarray(masks)`` builds the dense
    array (H x W x N bytes: only for images where that fits in memory).
    """

    def __init__(self, height: int, width: int, boxes: Sequence[Sequence[int]],
                 crops: Sequence[np.ndarray]):
        self._boxes = [tuple(int(v) for v in box) for box in boxes]
        self._crops = list(crops)
        self.shape = (int(height), int(width), len(self._crops))
        self.dtype = np.dtype(bool)
        self.ndim = 3

    def crop(self, index: int) -> tuple[tuple[int, int, int, int], np.ndarray]:
        """Instance ``index``: its box (y1, x1, y2, x2) and bool mask inside that box."""
        return self._boxes[index], self._crops[index]

    def full(self, index: int) -> np.ndarray:
        """Instance ``index``'s mask as bool[H, W]."""
        (y1, x1, y2, x2), crop = self.crop(index)
        mask = np.zeros(self.shape[:2], dtype=bool)
        mask[y1:y2, x1:x2] = crop
        return mask

    def __len__(self) -> int:
        return self.shape[0]

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(np.asarray(self))

    def __getitem__(self, key):
        if isinstance(key, tuple) and len(key) in (2, 3) and _is_instance_index(key):
            index = key[-1]
            if isinstance(index, (int, np.integer)):
                return self.full(int(index))
            indices = np.arange(self.shape[2])[index]
            return np.stack([self.full(int(i)) for i in indices], axis=-1).reshape(
                self.shape[:2] + (len(indices),))
        return np.asarray(self)[key]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        dense = np.zeros(self.shape, dtype=bool)
        for index, ((y1, x1, y2, x2), crop) in enumerate(zip(self._boxes, self._crops, strict=True)):
            dense[y1:y2, x1:x2, index] = crop
        return dense if dtype is None else dense.astype(dtype)


def _is_instance_index(key: tuple) -> bool:
    """True for ``[:, :, i]``/``[..., i]`` style keys: every axis but the last taken whole."""
    if len(key) == 2:
        return key[0] is Ellipsis
    return all(k is Ellipsis or k == slice(None) for k in key[:-1])
