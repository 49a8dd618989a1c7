"""Images and targets for training: loading, resizing, channel statistics, split, batches
(``tf.data`` where TensorFlow is installed, else a ``keras.utils.PyDataset``).

Images are uint8 ``[H, W, C]`` (C: the model's channels, 3 = RGB; read by
:mod:`localization.images`) resized (cv2 INTER_AREA) to the model input; boxes stay normalized
xyxy, so resizing does not change them. Statistics are per channel on the 0-255 scale.
TensorFlow is imported only when a ``tf.data`` pipeline is built.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from localization.annotations import LocalizationSample
from localization.images import load_image_channels
from vision_common.input_pipelines import resolve_pipeline

if TYPE_CHECKING:
    import tensorflow as tf

logger = logging.getLogger(__name__)


def load_image_rgb(path: str | Path) -> np.ndarray:
    """Read any PIL-readable file (grayscale, RGBA, palette) as RGB uint8 ``[H, W, 3]``."""
    return load_image_channels(path, 3)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``[H, W, C]`` to ``size = (height, width)`` (C kept, 1 included)."""
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return resized.reshape(height, width, image.shape[-1])


def load_resized_images(paths: Sequence[str | Path], size: tuple[int, int],
                        channels: int = 3) -> np.ndarray:
    """Load and resize images; returns uint8 ``[N, height, width, channels]`` (repeated paths read
    once). Raises ImageChannelError for a file with another channel count."""
    cache: dict[Path, np.ndarray] = {}
    images = np.empty((len(paths), size[0], size[1], channels), dtype=np.uint8)
    for index, path in enumerate(paths):
        path = Path(path)
        if path not in cache:
            cache[path] = resize_image(load_image_channels(path, channels), size)
        images[index] = cache[path]
    return images


def samples_to_arrays(samples: Sequence[LocalizationSample], size: tuple[int, int],
                      channels: int = 3):
    """``(images uint8 [N, h, w, channels], boxes float32 [N, 4] normalized, classes int32 [N])``."""
    images = load_resized_images([sample.path for sample in samples], size, channels)
    boxes = np.array([sample.box for sample in samples], dtype=np.float32).reshape(-1, 4)
    classes = np.array([sample.class_index for sample in samples], dtype=np.int32)
    return images, boxes, classes


def compute_channel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std over all pixels of ``[N, H, W, C]`` images (0-255 scale).

    Pixel-weighted over the whole set (the mean of per-image stds would underestimate it).
    """
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"expected a non-empty [N, H, W, C] array, got shape {images.shape}")
    channels = images.shape[-1]
    total = np.zeros(channels)
    total_sq = np.zeros(channels)
    for image in images:
        pixels = image.reshape(-1, channels).astype(np.float64)
        total += pixels.sum(axis=0)
        total_sq += np.square(pixels).sum(axis=0)
    count = images.shape[0] * images.shape[1] * images.shape[2]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
    std = np.maximum(std, 1.0)  # a constant channel must not divide by zero
    return mean.tolist(), std.tolist()


def stratified_split(
    samples: Sequence[LocalizationSample], val_fraction: float = 0.25, seed: int = 42
) -> tuple[list[LocalizationSample], list[LocalizationSample]]:
    """Split by image file, stratified by class, reproducibly for a given ``seed``.

    All samples of one file land on the same side (no leakage with the ``per_row`` policy);
    a file's stratum is the class of its first sample. Each class with >= 2 files puts
    ``round(n * val_fraction)`` of them (at least 1, at most n - 1) in validation.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    files_by_class: dict[int, list[str]] = defaultdict(list)
    first_class: dict[str, int] = {}
    for sample in samples:
        if sample.filename not in first_class:
            first_class[sample.filename] = sample.class_index
            files_by_class[sample.class_index].append(sample.filename)
    rng = np.random.default_rng(seed)
    val_files = set()
    for class_index in sorted(files_by_class):
        files = files_by_class[class_index]
        if len(files) < 2:
            continue
        count = min(max(round(len(files) * val_fraction), 1), len(files) - 1)
        chosen = rng.permutation(len(files))[:count]
        val_files.update(files[index] for index in chosen)
    train = [sample for sample in samples if sample.filename not in val_files]
    val = [sample for sample in samples if sample.filename in val_files]
    logger.info("split: %d train / %d validation samples", len(train), len(val))
    return train, val


def build_dataset(
    images: np.ndarray,
    boxes: np.ndarray,
    classes: np.ndarray,
    batch_size: int,
    *,
    augment: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
    shuffle: bool = False,
    repeat: bool = False,
    seed: int | None = None,
    pipeline: str | None = None,
):
    """Batches of ``(image float32 [B, h, w, C] 0-255, {"box": [B, 4], "class": [B]})``.

    Args:
        images, boxes, classes: arrays from :func:`samples_to_arrays`.
        augment: optional ``(image, box) -> (image, box)`` NumPy callable (e.g. BoxAugmenter).
        shuffle, repeat, seed: reshuffled every epoch when ``shuffle``; endless when ``repeat``.
        pipeline: "tf.data" (a ``tf.data.Dataset``) or "pydataset"
            (:class:`localization.batches.LocalizationBatches`, no TensorFlow; ``shuffle``
            and ``augment`` need ``repeat`` there, and ``augment`` a ``set_random_seed``, as
            BoxAugmenter has); None picks "tf.data" where TensorFlow is installed.
    """
    if not len(images) == len(boxes) == len(classes):
        raise ValueError(f"got {len(images)} images, {len(boxes)} boxes, {len(classes)} classes; "
                         "expected one box and one class per image")
    if resolve_pipeline(pipeline) == "pydataset":
        from localization.batches import LocalizationBatches

        return LocalizationBatches(images, boxes, classes, batch_size, augment=augment,
                                   shuffle=shuffle, repeat=repeat, seed=seed)
    return _tf_dataset(images, boxes, classes, batch_size, augment, shuffle, repeat, seed)


def augment_pair(augment: Callable, image: np.ndarray,
                 box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``augment(image, box)`` as ``(uint8 image, float32 box)``, on both pipelines."""
    new_image, new_box = augment(image, box)
    return new_image.astype(np.uint8), np.asarray(new_box, dtype=np.float32)


def _tf_dataset(images: np.ndarray, boxes: np.ndarray, classes: np.ndarray, batch_size: int,
                augment: Callable | None, shuffle: bool, repeat: bool,
                seed: int | None) -> tf.data.Dataset:
    """:func:`build_dataset`'s ``tf.data`` pipeline."""
    import tensorflow as tf

    height, width, channels = images.shape[1:4]
    dataset = tf.data.Dataset.from_tensor_slices((images, boxes.astype(np.float32),
                                                  classes.astype(np.int32)))
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    if augment is not None:
        def apply(image, box, label):
            image, box = tf.numpy_function(lambda *pair: augment_pair(augment, *pair),
                                           [image, box], (tf.uint8, tf.float32))
            image.set_shape((height, width, channels))
            box.set_shape((4,))
            return image, box, label

        dataset = dataset.map(apply, num_parallel_calls=1)

    def to_model_inputs(image, box, label):
        return tf.cast(image, tf.float32), {"box": box, "class": label}

    return dataset.map(to_model_inputs).batch(batch_size).prefetch(tf.data.AUTOTUNE)
