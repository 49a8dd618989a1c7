"""Repeat-factor sampling for long-tailed data (LVIS; detectron2's RepeatFactorTrainingSampler).

For a threshold ``t``, class ``c`` seen in a fraction ``f(c)`` of the training images gets
``r(c) = max(1, sqrt(t / f(c)))``; an image is repeated ``r(i) = max(r(c))`` over its classes
(1 without any) times per epoch, the fractional part by a coin flip drawn anew each epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import numpy as np

logger = logging.getLogger(__name__)


def image_class_ids(dataset, image_id: int) -> set[int]:
    """The (positive) class ids present in an image: ``dataset.image_class_ids`` when the
    dataset defines it (from annotations, without decoding masks), else from ``load_mask``."""
    if hasattr(dataset, "image_class_ids"):
        ids = dataset.image_class_ids(image_id)
    else:
        ids = dataset.load_mask(image_id)[1]
    return {int(c) for c in ids if int(c) > 0}  # crowd regions (negative ids) do not count


def repeat_factors(classes_per_image: Sequence[set[int]], threshold: float) -> np.ndarray:
    """float64[N]: each image's repeat factor ``r(i)`` for ``threshold`` t > 0."""
    if not threshold > 0:
        raise ValueError(f"repeat-factor threshold must be > 0, got {threshold!r}")
    count = len(classes_per_image)
    images_with: dict[int, int] = {}
    for classes in classes_per_image:
        for class_id in classes:
            images_with[class_id] = images_with.get(class_id, 0) + 1
    class_factor = {c: max(1.0, float(np.sqrt(threshold / (n / count))))
                    for c, n in images_with.items()}
    return np.array([max((class_factor[c] for c in classes), default=1.0)
                     for classes in classes_per_image])


def dataset_repeat_factors(dataset, threshold: float) -> np.ndarray:
    """float64[N]: the repeat factor of each image of ``dataset.image_ids`` (logged once)."""
    image_ids = [int(i) for i in dataset.image_ids]
    factors = repeat_factors([image_class_ids(dataset, i) for i in image_ids], threshold)
    logger.info("repeat factors (threshold %g): %d images, %.1f samples per epoch, up to %.2f x",
                threshold, len(image_ids), factors.sum(), factors.max())
    return factors


def epoch_ids(image_ids: Sequence[int], factors: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
    """One epoch's shuffled image ids: each ``floor(r)`` times, once more with chance ``r - floor(r)``."""
    factors = np.asarray(factors, dtype=np.float64)
    whole = np.floor(factors)
    repeats = (whole + (rng.random(len(factors)) < factors - whole)).astype(np.int64)
    ids = np.repeat(np.asarray(image_ids, dtype=np.int64), repeats)
    rng.shuffle(ids)
    return ids


def endless_ids(image_ids: Sequence[int], factors: np.ndarray, seed: int) -> Iterator[int]:
    """Epoch after epoch of :func:`epoch_ids`, each epoch drawn from ``(seed, epoch)``."""
    epoch = 0
    while True:
        yield from epoch_ids(image_ids, factors, np.random.default_rng([seed, epoch])).tolist()
        epoch += 1
