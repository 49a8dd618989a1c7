"""Matterport's synthetic shapes: squares, circles and triangles on a plain background.

Nothing is stored on disk: ``load_shapes`` draws a random specification per image (background
colour, 1-4 shapes with colour, centre and size) and ``load_image``/``load_mask`` render it with
OpenCV. The same ``seed`` always gives the same images.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from mrcnn.data.dataset import Dataset
from mrcnn.geometry.boxes import non_max_suppression

SHAPE_CLASSES = ("square", "circle", "triangle")  # class ids 1, 2, 3
# Matterport keeps shapes 20 px from the border of 128 px images; scaled for other sizes.
BORDER_FRACTION = 20 / 128
# Shapes whose boxes overlap more than this are pruned (NMS), so few are hidden.
MAX_BOX_IOU = 0.3


class ShapesDataset(Dataset):
    """Generated images of up to 4 shapes; masks account for occlusion by later shapes."""

    def load_shapes(self, count: int, height: int, width: int, seed: int | None = None) -> None:
        """Register ``count`` random images of height x width pixels (then call ``prepare()``)."""
        if min(height, width) < 32:
            raise ValueError(f"shapes images must be at least 32x32 pixels, got {height}x{width}")
        for class_id, name in enumerate(SHAPE_CLASSES, start=1):
            self.add_class("shapes", class_id, name)
        rng = np.random.default_rng(seed)
        for i in range(count):
            bg_color, shapes = random_image(rng, height, width)
            self.add_image("shapes", image_id=i, path=None, width=width, height=height,
                           bg_color=bg_color, shapes=shapes)

    def load_image(self, image_id: int) -> np.ndarray:
        """Render the image: uint8[height, width, 3] RGB."""
        info = self.image_info[image_id]
        image = np.empty([info["height"], info["width"], 3], dtype=np.uint8)
        image[:] = info["bg_color"]
        for shape, color, dims in info["shapes"]:
            draw_shape(image, shape, dims, color)
        return image

    def load_mask(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """bool[height, width, N] visible part of each shape and int32[N] class ids.

        Shapes are drawn in order, so a shape hides the parts of earlier ones it covers; a shape
        hidden completely is left out.
        """
        info = self.image_info[image_id]
        shapes = info["shapes"]
        masks = np.zeros([info["height"], info["width"], len(shapes)], dtype=bool)
        for i, (shape, _, dims) in enumerate(shapes):
            canvas = np.zeros([info["height"], info["width"]], dtype=np.uint8)
            masks[:, :, i] = draw_shape(canvas, shape, dims, 1) > 0
        covered = np.zeros(masks.shape[:2], dtype=bool)
        for i in range(len(shapes) - 1, -1, -1):
            masks[:, :, i] &= ~covered
            covered |= masks[:, :, i]
        class_ids = np.array([SHAPE_CLASSES.index(s[0]) + 1 for s in shapes], dtype=np.int32)
        visible = masks.any(axis=(0, 1))
        return masks[:, :, visible], class_ids[visible]

    def image_reference(self, image_id: int) -> str:
        """A readable description: the image id and its shapes."""
        info = self.image_info[image_id]
        return f"shapes image {info['id']}: " + ", ".join(s[0] for s in info["shapes"])


def draw_shape(image: np.ndarray, shape: str, dims: tuple[int, int, int], color) -> np.ndarray:
    """Fill ``shape`` centred at (x, y) with half-size s (dims = (x, y, s)) into ``image``."""
    x, y, s = dims
    if shape == "square":
        cv2.rectangle(image, (x - s, y - s), (x + s, y + s), color, -1)
    elif shape == "circle":
        cv2.circle(image, (x, y), s, color, -1)
    elif shape == "triangle":
        half_base = s / math.sin(math.radians(60))
        points = np.array([[(x, y - s), (x - half_base, y + s), (x + half_base, y + s)]],
                          dtype=np.int32)
        cv2.fillPoly(image, points, color)
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPE_CLASSES}")
    return image


def random_shape(rng: np.random.Generator, height: int, width: int):
    """A random (shape name, RGB colour, (x, y, s)) that fits inside the image."""
    shape = SHAPE_CLASSES[int(rng.integers(len(SHAPE_CLASSES)))]
    color = tuple(int(c) for c in rng.integers(0, 256, size=3))
    border = round(BORDER_FRACTION * min(height, width))
    y = int(rng.integers(border, height - border))
    x = int(rng.integers(border, width - border))
    s = int(rng.integers(border, min(height, width) // 4 + 1))
    return shape, color, (x, y, s)


def random_image(rng: np.random.Generator, height: int, width: int):
    """A random background colour and 1-4 shapes whose boxes overlap little (NMS at 0.3)."""
    bg_color = tuple(int(c) for c in rng.integers(0, 256, size=3))
    shapes = [random_shape(rng, height, width) for _ in range(int(rng.integers(1, 5)))]
    boxes = np.array([[y - s, x - s, y + s, x + s] for _, _, (x, y, s) in shapes])
    keep = set(non_max_suppression(boxes, np.arange(len(shapes)), MAX_BOX_IOU).tolist())
    return bg_color, [shape for i, shape in enumerate(shapes) if i in keep]
