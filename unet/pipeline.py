"""Input pipeline with albumentations augmentation: ``tf.data`` where TensorFlow is installed,
else :class:`unet.batches.SegmentationBatches` (a ``keras.utils.PyDataset``, JAX or PyTorch).

Batches are ``(images float32 (B, H, W, C) raw 0..255, masks float32 (B, h, w, 1) in {0, 1})``;
``(h, w) = (H, W)`` except for the unpadded classic U-Net, whose targets are centre-cropped to
the model's output size. Geometric transforms move image and mask together; photometric ones
touch the image only. Files that fail to load are skipped (and logged), not fatal.
TensorFlow is imported only when a ``tf.data`` pipeline is built.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import albumentations as A
import cv2
import numpy as np

from unet.data import SegmentationSample
from unet.imaging import ImageReadError, resize_image
from unet.padding import center_crop
from vision_common.input_pipelines import resolve_pipeline

if TYPE_CHECKING:
    import tensorflow as tf

logger = logging.getLogger(__name__)


def build_augmenter(seed: int | None = None) -> A.Compose:
    """Flip, scale/shift, brightness/contrast and blur (moderate: a person stays a person)."""
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Affine(scale=(0.85, 1.15), translate_percent=(-0.08, 0.08), rotate=(-10, 10),
                     border_mode=cv2.BORDER_REFLECT_101, p=0.7),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
            A.GaussianBlur(blur_limit=(3, 5), p=0.2),
        ],
        seed=seed,
    )


def prepare_pair(
    image: np.ndarray,
    mask: np.ndarray,
    image_hw: tuple[int, int],
    augmenter: A.Compose | None = None,
    target_hw: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Resize to ``image_hw``, augment, crop the mask to ``target_hw``.

    Returns ``(image float32 (H, W, C) raw 0..255, mask float32 (h, w, 1) {0, 1})``.
    """
    height, width = image_hw
    image = resize_image(image, height, width)
    mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    if augmenter is not None:
        augmented = augmenter(image=image, mask=mask)
        image, mask = augmented["image"], augmented["mask"]
    if target_hw is not None and tuple(target_hw) != (height, width):
        mask = center_crop(mask, *target_hw)
    image = image.reshape(height, width, -1)
    return image.astype(np.float32), mask[..., None].astype(np.float32)


def load_pair(sample: SegmentationSample, channels: int, image_hw: tuple[int, int],
              augmenter: A.Compose | None, target_hw: tuple[int, int]
              ) -> tuple[np.ndarray, np.ndarray] | None:
    """``sample`` read and prepared (:func:`prepare_pair`), or None (logged) when its image or
    mask cannot be read."""
    try:
        image, mask = sample.load(channels)
        return prepare_pair(image, mask, image_hw, augmenter, target_hw)
    except (ImageReadError, OSError) as error:
        logger.warning("skipping %s: %s", sample.image_path, error)
        return None


def compute_pixel_stats(
    samples: list[SegmentationSample], channels: int = 3, limit: int = 64
) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (0..255 scale) over up to ``limit`` images, for normalization."""
    sums, squares, count = np.zeros(channels), np.zeros(channels), 0
    for sample in samples[:limit]:
        try:
            image = sample.load(channels)[0].reshape(-1, channels).astype(np.float64)
        except ImageReadError as error:
            logger.warning("%s", error)
            continue
        sums += image.sum(axis=0)
        squares += (image**2).sum(axis=0)
        count += len(image)
    if count == 0:
        raise ValueError("no readable image to compute normalization statistics from")
    mean = sums / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 1.0))
    return mean.tolist(), std.tolist()


def make_dataset(
    samples: list[SegmentationSample],
    image_hw: tuple[int, int],
    batch_size: int,
    *,
    channels: int = 3,
    augment: bool = False,
    shuffle: bool = False,
    repeat: bool = False,
    target_hw: tuple[int, int] | None = None,
    heads: int = 1,
    seed: int = 0,
    pipeline: str | None = None,
):
    """Batches of ``(images, masks)`` read from ``samples`` on the fly.

    ``heads > 1`` repeats the mask once per output (deep-supervision U-Net++). ``repeat``
    repeats whole passes (reshuffled, the last batch of each may be short): with
    ``steps_per_pass(len(samples), batch_size)`` steps an epoch is one pass. pipeline:
    "tf.data" (a ``tf.data.Dataset``; skipping unreadable files leaves its cardinality unknown,
    so Keras needs those steps from the caller) or "pydataset" (a
    :class:`unet.batches.SegmentationBatches`; an unreadable file is replaced by the next sample
    that reads; ``shuffle`` and ``augment`` need ``repeat`` there); None picks "tf.data" where
    TensorFlow is installed.
    """
    if not samples:
        raise ValueError("no samples to build a dataset from")
    target_hw = tuple(target_hw or image_hw)
    augmenter = build_augmenter(seed) if augment else None
    if resolve_pipeline(pipeline) == "pydataset":
        from unet.batches import SegmentationBatches

        return SegmentationBatches(samples, image_hw, batch_size, channels=channels,
                                   augmenter=augmenter, shuffle=shuffle, repeat=repeat,
                                   target_hw=target_hw, heads=heads, seed=seed)
    return _tf_dataset(samples, image_hw, batch_size, channels, augmenter, shuffle, repeat,
                       target_hw, heads, seed)


def _tf_dataset(samples: list[SegmentationSample], image_hw: tuple[int, int], batch_size: int,
                channels: int, augmenter: A.Compose | None, shuffle: bool, repeat: bool,
                target_hw: tuple[int, int], heads: int, seed: int) -> tf.data.Dataset:
    """:func:`make_dataset`'s ``tf.data`` pipeline."""
    import tensorflow as tf

    def load(index):
        pair = load_pair(samples[int(index)], channels, image_hw, augmenter, target_hw)
        if pair is None:
            return (np.zeros((*image_hw, channels), np.float32),
                    np.zeros((*target_hw, 1), np.float32), False)
        return (*pair, True)

    def load_tensor(index):
        image, mask, ok = tf.numpy_function(load, [index], [tf.float32, tf.float32, tf.bool])
        image.set_shape((*image_hw, channels))
        mask.set_shape((*target_hw, 1))
        return image, mask, ok

    dataset = tf.data.Dataset.range(len(samples))
    if shuffle:
        dataset = dataset.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(load_tensor, num_parallel_calls=2)
    dataset = dataset.filter(lambda image, mask, ok: ok)
    if heads > 1:
        dataset = dataset.map(lambda image, mask, ok: (image, (mask,) * heads))
    else:
        dataset = dataset.map(lambda image, mask, ok: (image, mask))
    dataset = dataset.batch(batch_size)
    return (dataset.repeat() if repeat else dataset).prefetch(2)


def steps_per_pass(count: int, batch_size: int) -> int:
    """Batches in one pass over ``count`` samples (the last one may be short)."""
    return math.ceil(count / batch_size)
