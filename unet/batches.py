"""The U-Net's batches as a ``keras.utils.PyDataset``: :func:`unet.pipeline.make_dataset`'s
input without TensorFlow, for training on JAX or PyTorch alone.

Each sample is read and prepared exactly as the ``tf.data`` pipeline prepares it
(:func:`unet.pipeline.load_pair`); unaugmented, a sample's arrays are the same on both. The
order differs (``tf.data``'s shuffle cannot be reproduced in NumPy, see
:class:`vision_common.sample_batches.SampleBatches`), and so does the handling of an
unreadable file: here it is replaced by the next sample that reads, so every batch keeps its
size (a JAX step compiled for one batch size is not compiled again).
"""

from __future__ import annotations

import albumentations as A
import numpy as np

from unet.data import SegmentationSample
from unet.pipeline import load_pair
from vision_common.sample_batches import SampleBatches


class SegmentationBatches(SampleBatches):
    """Batches ``(images float32 (B, H, W, C) 0..255, masks float32 (B, h, w, 1))`` of
    ``samples``; with ``heads > 1`` the masks once per output, as a tuple.

    Arguments as :func:`unet.pipeline.make_dataset`'s, with ``augmenter`` the albumentations
    pipeline itself (copied per worker thread and reseeded for every sample), and the
    ``workers`` and ``max_queue_size`` of :class:`~vision_common.sample_batches.SampleBatches`.
    """

    def __init__(self, samples: list[SegmentationSample], image_hw: tuple[int, int],
                 batch_size: int, *, channels: int = 3, augmenter: A.Compose | None = None,
                 shuffle: bool = False, repeat: bool = False,
                 target_hw: tuple[int, int] | None = None, heads: int = 1, seed: int = 0,
                 workers: int | None = None, max_queue_size: int = 4) -> None:
        super().__init__(len(samples), batch_size, shuffle=shuffle, repeat=repeat,
                         augmented=augmenter is not None, seed=seed,
                         workers=workers, max_queue_size=max_queue_size)
        self.samples = list(samples)
        self.image_hw, self.target_hw = tuple(image_hw), tuple(target_hw or image_hw)
        self.channels, self.heads = channels, heads
        self.augmenter = augmenter

    def build_batch(self, indices: np.ndarray, seeds: list[int]):
        pairs = [self._first_readable(int(index), seed) for index, seed in
                 zip(indices, seeds, strict=True)]
        images = np.stack([image for image, _ in pairs])
        masks = np.stack([mask for _, mask in pairs])
        return images, ((masks,) * self.heads if self.heads > 1 else masks)

    def _first_readable(self, index: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``index`` prepared, or the next one that reads (each failure logged)."""
        augmenter = None if self.augmenter is None else self.thread_copy(self.augmenter, seed)
        for offset in range(self.count):
            sample = self.samples[(index + offset) % self.count]
            pair = load_pair(sample, self.channels, self.image_hw, augmenter, self.target_hw)
            if pair is not None:
                return pair
        raise ValueError(f"none of the {self.count} samples could be read (first: "
                         f"{self.samples[0].image_path})")
