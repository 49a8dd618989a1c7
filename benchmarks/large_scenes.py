"""Generated large scenes of many small shapes, for the tiled-inference benchmark.

A scene is a noisy background with squares, circles and triangles of 10-60 px that never
overlap, at a fixed density per megapixel; :class:`SceneDataset` serves scenes of any size
through Matterport's Dataset API (small ones train the model: they stand for crops of the large
ones), and :func:`ground_truth_rles` gives one large scene's instances as COCO RLEs without
ever holding a full-size mask per instance.
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as coco_mask

from mrcnn.data.dataset import Dataset
from mrcnn.data.datasets.shapes import SHAPE_CLASSES, draw_shape

SHAPES_PER_MEGAPIXEL = 25
HALF_SIZES = (5, 30)  # objects are 10-60 px across
NOISE = 12  # +- grey levels of background noise


def random_scene(rng: np.random.Generator, height: int, width: int, count: int) -> dict:
    """A scene spec: background colour, noise seed and up to ``count`` non-overlapping shapes
    (shape, colour, (x, y, s)), each at least 80 grey levels off the background in one channel."""
    background = rng.integers(0, 256, size=3)
    taken = np.zeros((height // 8 + 1, width // 8 + 1), dtype=bool)  # occupancy on an 8 px grid
    shapes = []
    for _ in range(count * 20):
        if len(shapes) == count:
            break
        s = int(rng.integers(HALF_SIZES[0], HALF_SIZES[1] + 1))
        reach = int(np.ceil(s / np.sin(np.radians(60)))) + 2  # a triangle's half base, plus 2
        y = int(rng.integers(reach, height - reach))
        x = int(rng.integers(reach, width - reach))
        cells = taken[(y - reach) // 8:(y + reach) // 8 + 1, (x - reach) // 8:(x + reach) // 8 + 1]
        if cells.any():
            continue
        cells[:] = True
        color = rng.integers(0, 256, size=3)
        while np.abs(color - background).max() < 80:
            color = rng.integers(0, 256, size=3)
        shape = SHAPE_CLASSES[int(rng.integers(len(SHAPE_CLASSES)))]
        shapes.append((shape, tuple(int(c) for c in color), (x, y, s)))
    return {"height": height, "width": width, "bg_color": tuple(int(c) for c in background),
            "noise_seed": int(rng.integers(2**31)), "shapes": shapes}


def render(scene: dict) -> np.ndarray:
    """The scene as uint8[H, W, 3]."""
    rng = np.random.default_rng(scene["noise_seed"])
    noise = rng.integers(-NOISE, NOISE + 1, size=(scene["height"], scene["width"], 1))
    image = np.clip(np.asarray(scene["bg_color"]) + noise, 0, 255).astype(np.uint8)
    for shape, color, dims in scene["shapes"]:
        draw_shape(image, shape, dims, color)
    return image


def shape_crop(shape: str, dims: tuple[int, int, int]) -> tuple[tuple[int, int], np.ndarray]:
    """One shape's mask inside its box: ((y1, x1), bool crop)."""
    x, y, s = dims
    pad = 2 * s + 4
    canvas = np.zeros((2 * pad, 2 * pad), dtype=np.uint8)
    draw_shape(canvas, shape, (pad, pad, s), 1)
    rows, cols = np.flatnonzero(canvas.any(axis=1)), np.flatnonzero(canvas.any(axis=0))
    crop = canvas[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] > 0
    return (y - pad + int(rows[0]), x - pad + int(cols[0])), crop


def ground_truth_rles(scene: dict) -> list[tuple[int, dict]]:
    """(class id, COCO RLE) per shape, through one reused full-size canvas."""
    canvas = np.zeros((scene["height"], scene["width"]), dtype=np.uint8, order="F")
    out = []
    for shape, _, dims in scene["shapes"]:
        (y1, x1), crop = shape_crop(shape, dims)
        region = canvas[y1:y1 + crop.shape[0], x1:x1 + crop.shape[1]]
        region[:] = crop
        out.append((SHAPE_CLASSES.index(shape) + 1, coco_mask.encode(canvas)))
        region[:] = 0
    return out


class SceneDataset(Dataset):
    """Scenes through the Dataset API: ``load_scenes(count, size, seed)``, then ``prepare()``."""

    def load_scenes(self, count: int, height: int, width: int, seed: int) -> None:
        for class_id, name in enumerate(SHAPE_CLASSES, start=1):
            self.add_class("scenes", class_id, name)
        rng = np.random.default_rng(seed)
        per_scene = SHAPES_PER_MEGAPIXEL * height * width / 1e6
        for i in range(count):
            wanted = max(1, int(rng.poisson(per_scene)))
            self.add_image("scenes", image_id=i, path=None,
                           **random_scene(rng, height, width, wanted))

    def load_image(self, image_id: int) -> np.ndarray:
        return render(self.image_info[image_id])

    def load_mask(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        info = self.image_info[image_id]
        masks = np.zeros((info["height"], info["width"], len(info["shapes"])), dtype=bool)
        for i, (shape, _, dims) in enumerate(info["shapes"]):
            (y1, x1), crop = shape_crop(shape, dims)
            masks[y1:y1 + crop.shape[0], x1:x1 + crop.shape[1], i] = crop
        class_ids = np.array([SHAPE_CLASSES.index(s) + 1 for s, _, _ in info["shapes"]],
                             dtype=np.int32)
        return masks, class_ids
