"""A generated, clearly separable localization dataset (images + CSV) for tests and demos.

Each image has a noisy gray background and one object: class ``square`` is a filled red
rectangle, class ``disk`` a filled blue ellipse, inside a random box. The CSV is written in the
face-mask layout ``filename,xmin,ymin,xmax,ymax,class`` with pixel coordinates. Other channel
counts than RGB: grey for 1 channel; beyond the colour (or grey) bands, extra bands where the
object's box reads bright on a dark background (like near infrared); saved as ``.npy`` unless
the image is grey or RGB (PNG).
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

SYNTHETIC_CLASSES = ("disk", "square")


def draw_synthetic_sample(rng: np.random.Generator, width: int, height: int,
                          min_fraction: float = 0.25, max_fraction: float = 0.7):
    """One RGB uint8 image ``[height, width, 3]``, its pixel xyxy box and its class name."""
    image = rng.normal(110, 20, size=(height, width, 3)).clip(0, 255).astype(np.uint8)
    box_w = int(rng.uniform(min_fraction, max_fraction) * width)
    box_h = int(rng.uniform(min_fraction, max_fraction) * height)
    xmin = int(rng.integers(0, width - box_w + 1))
    ymin = int(rng.integers(0, height - box_h + 1))
    xmax, ymax = xmin + box_w, ymin + box_h
    class_name = SYNTHETIC_CLASSES[int(rng.integers(0, len(SYNTHETIC_CLASSES)))]
    if class_name == "square":
        cv2.rectangle(image, (xmin, ymin), (xmax - 1, ymax - 1), (220, 40, 40), thickness=-1)
    else:
        center = ((xmin + xmax) // 2, (ymin + ymax) // 2)
        cv2.ellipse(image, center, (box_w // 2, box_h // 2), 0, 0, 360, (40, 40, 220),
                    thickness=-1)
    return image, (xmin, ymin, xmax, ymax), class_name


def to_band_count(rng: np.random.Generator, image: np.ndarray, box: tuple[int, int, int, int],
                  channels: int) -> np.ndarray:
    """A synthetic RGB ``image`` as ``[H, W, channels]`` uint8 (rules in the module docstring)."""
    if channels == 3:
        return image
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None]
    first = grey if channels < 3 else image
    extra = rng.normal(60, 10, size=(*image.shape[:2], channels - first.shape[-1]))
    xmin, ymin, xmax, ymax = box
    extra[ymin:ymax, xmin:xmax] += 140
    return np.concatenate([first, extra.clip(0, 255).astype(np.uint8)], axis=-1)


def write_synthetic_dataset(root: str | Path, count: int = 64, size: tuple[int, int] = (64, 64),
                            seed: int = 0, csv_name: str = "train.csv",
                            header: bool = True, channels: int = 3) -> Path:
    """Write ``count`` images under ``root/images`` and ``root/csv_name``; returns the CSV path.

    ``size`` is ``(width, height)`` of every image; ``channels`` their band count.
    """
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    csv_path = root / csv_name
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(["filename", "xmin", "ymin", "xmax", "ymax", "class"])
        for index in range(count):
            image, box, class_name = draw_synthetic_sample(rng, *size)
            image = to_band_count(rng, image, box, channels)
            if channels in (1, 3):
                filename = f"sample_{index:04d}.png"
                cv2.imwrite(str(root / "images" / filename), np.ascontiguousarray(image[..., ::-1]))
            else:
                filename = f"sample_{index:04d}.npy"
                np.save(root / "images" / filename, image)
            writer.writerow([filename, *box, class_name])
    return csv_path
