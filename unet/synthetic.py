"""Generated "person" images: a head (disc) on a body (rounded rectangle) over a textured background.

Used by the tests, the benchmark and the sample's ``make-synthetic`` command so every model can
train in seconds on 2 CPU cores without downloading data.
"""

from __future__ import annotations

import cv2
import numpy as np


def draw_synthetic_person(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One ``(size, size, 3)`` uint8 RGB image and its ``(size, size)`` uint8 {0, 1} mask."""
    background = rng.integers(0, 256, size=3)
    image = np.clip(
        background + rng.normal(0, 25, size=(size, size, 3)), 0, 255
    ).astype(np.uint8)
    for _ in range(rng.integers(1, 4)):  # distractor stripes that are not "persons"
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        start = tuple(int(v) for v in rng.integers(0, size, size=2))
        end = tuple(int(v) for v in rng.integers(0, size, size=2))
        cv2.line(image, start, end, colour, thickness=max(1, size // 32))
    mask = np.zeros((size, size), dtype=np.uint8)
    body_w = int(rng.uniform(0.2, 0.4) * size)
    body_h = int(rng.uniform(0.3, 0.5) * size)
    center_x = int(rng.uniform(0.3, 0.7) * size)
    top = int(rng.uniform(0.3, 0.45) * size)
    cv2.rectangle(mask, (center_x - body_w // 2, top), (center_x + body_w // 2, top + body_h), 1, -1)
    radius = max(2, body_w // 3)
    cv2.circle(mask, (center_x, top - radius + 1), radius, 1, -1)
    person_colour = (background + 128 + rng.integers(-40, 40, size=3)) % 256
    texture = rng.normal(0, 15, size=(size, size, 3))
    person = np.clip(person_colour + texture, 0, 255).astype(np.uint8)
    image[mask == 1] = person[mask == 1]
    return image, mask


def make_synthetic_people(
    count: int, size: int = 64, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` images ``(N, size, size, 3)`` uint8 and masks ``(N, size, size)`` uint8 {0, 1}."""
    rng = np.random.default_rng(seed)
    pairs = [draw_synthetic_person(size, rng) for _ in range(count)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
