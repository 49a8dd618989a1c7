"""Box-aware training augmentation (albumentations) that always keeps a valid box.

Boxes are normalized xyxy (albumentations' own ``"albumentations"`` format). Photometric ops
touch the image only; flip and the small affine move the box too, which is then clipped to the
image. If a transform would push the box out entirely, the untouched sample is returned, so a
training target never disappears.
"""

from __future__ import annotations

import logging

import albumentations as A
import numpy as np

logger = logging.getLogger(__name__)


class BoxAugmenter:
    """Random flip, brightness/contrast, motion blur, HSV shift (RGB only) and small affine.

    Call with ``(image uint8 [H, W, channels], box float [4] normalized xyxy)``; returns the same
    types. Hue and saturation mean nothing for other channel counts, so only RGB gets the HSV
    shift; every other op treats all channels alike.
    """

    def __init__(self, seed: int | None = None, flip: float = 0.5, affine: float = 0.2,
                 channels: int = 3):
        colour = [A.HueSaturationValue(hue_shift_limit=10, sat_shift_limit=15,
                                       val_shift_limit=10, p=0.3)] if channels == 3 else []
        self.transform = A.Compose(
            [
                A.HorizontalFlip(p=flip),
                A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.3),
                A.MotionBlur(blur_limit=3, p=0.4),
                *colour,
                A.Affine(scale=(0.95, 1.05), translate_percent=(-0.05, 0.05), p=affine),
            ],
            bbox_params=A.BboxParams(format="albumentations", label_fields=["labels"],
                                     clip=True),
            seed=seed,
        )

    def set_random_seed(self, seed: int) -> None:
        """Reseed the transforms (a seeded input pipeline reseeds it for every sample)."""
        self.transform.set_random_seed(seed)

    def __call__(self, image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        box = np.clip(np.asarray(box, dtype=np.float64), 0.0, 1.0)
        result = self.transform(image=image, bboxes=box[None, :], labels=[0])
        boxes = np.asarray(result["bboxes"], dtype=np.float32).reshape(-1, 4)
        if len(boxes) != 1 or np.any(boxes[0, 2:] <= boxes[0, :2]):
            logger.debug("augmentation dropped the box; keeping the original sample")
            return image, box.astype(np.float32)
        return result["image"], np.clip(boxes[0], 0.0, 1.0)
