"""The localizer's batches as a ``keras.utils.PyDataset``: :func:`localization.data.
build_dataset`'s input without TensorFlow, for training on JAX or PyTorch alone.

The same arrays in, the same ``(images, {"box", "class"})`` batches out; unaugmented, a sample
is the same on both pipelines. The order differs (``tf.data``'s shuffle cannot be reproduced in
NumPy, see :class:`vision_common.sample_batches.SampleBatches`), and each pass ends with a
short batch where ``tf.data``'s repeated stream runs on into the next pass.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from localization.data import augment_pair
from vision_common.sample_batches import SampleBatches


class LocalizationBatches(SampleBatches):
    """Batches ``(images float32 [B, h, w, C] 0-255, {"box": float32 [B, 4], "class": int32
    [B]})`` of in-memory arrays (:func:`localization.data.samples_to_arrays`).

    augment: an ``(image, box) -> (image, box)`` callable with ``set_random_seed`` (e.g.
    :class:`localization.augment.BoxAugmenter`), copied per worker thread and reseeded for
    every sample. The other arguments are :class:`~vision_common.sample_batches.SampleBatches`'s.
    """

    def __init__(self, images: np.ndarray, boxes: np.ndarray, classes: np.ndarray,
                 batch_size: int, *, augment: Callable | None = None, shuffle: bool = False,
                 repeat: bool = False, seed: int | None = None, workers: int | None = None,
                 max_queue_size: int = 4) -> None:
        if augment is not None and not hasattr(augment, "set_random_seed"):
            raise TypeError(f"augment ({type(augment).__name__}) needs a set_random_seed(seed) "
                            "method to be reseeded for every sample, as BoxAugmenter has")
        super().__init__(len(images), batch_size, shuffle=shuffle, repeat=repeat,
                         augmented=augment is not None, seed=seed,
                         workers=workers, max_queue_size=max_queue_size)
        self.images = images
        self.boxes = np.asarray(boxes, np.float32)
        self.classes = np.asarray(classes, np.int32)
        self.augment = augment

    def build_batch(self, indices: np.ndarray, seeds: list[int]):
        images, boxes = self.images[indices], self.boxes[indices]
        if self.augment is not None:
            pairs = [augment_pair(self.thread_copy(self.augment, seed), image, box)
                     for image, box, seed in zip(images, boxes, seeds, strict=True)]
            images = np.stack([image for image, _ in pairs])
            boxes = np.stack([box for _, box in pairs])
        return images.astype(np.float32), {"box": boxes, "class": self.classes[indices]}
