"""Training and validation batches as a ``keras.utils.PyDataset``, for the U-Net and the
localizer where TensorFlow is not installed (JAX or PyTorch alone, as on the GPU machine).

:class:`SampleBatches` decides which samples make each batch and with which random seed;
a subclass builds the batch. Each pass over the samples is its own seeded permutation
(``np.random.default_rng([seed, pass])``) and ends with a short batch when the count does not
divide, as the packages' ``tf.data`` pipelines do. Every sample's augmentation seed depends on
(seed, pass, sample) only, so a batch is the same whichever worker thread builds it and in
whatever order. Imports no TensorFlow.
"""

from __future__ import annotations

import copy
import math
import os
import threading
from typing import Any

import keras
import numpy as np


class SampleBatches(keras.utils.PyDataset):
    """Batches of ``count`` samples: batch ``index`` holds which samples, with which seeds.

    shuffle: each pass a seeded permutation, else the samples' order. repeat: an endless
    stream of passes (``fit`` then needs ``steps_per_epoch``; :attr:`batches_per_pass` makes an
    epoch one pass), else the first pass, every epoch the same (for evaluation). augmented:
    whether the subclass augments. Shuffling and augmentation need ``repeat``: Keras's worker
    threads carry batches built ahead from one epoch into the next, so a finite PyDataset
    cannot draw a new order or new augmentations per epoch (the stream's next pass can).
    seed: None draws one from NumPy's global generator (so ``keras.utils.set_random_seed``
    makes runs repeatable). workers: threads building batches (default: the machine's cores;
    1 builds them in the calling thread).
    """

    def __init__(self, count: int, batch_size: int, *, shuffle: bool = False,
                 repeat: bool = False, augmented: bool = False, seed: int | None = None,
                 workers: int | None = None, max_queue_size: int = 4) -> None:
        if count < 1:
            raise ValueError("no samples to build batches from")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if (shuffle or augmented) and not repeat:
            raise ValueError("shuffle and augmentation need repeat=True (fit with steps_per_"
                             "epoch=batches_per_pass): a finite PyDataset would repeat one "
                             "order and one augmentation every epoch")
        super().__init__(workers=(os.cpu_count() or 1) if workers is None else workers,
                         use_multiprocessing=False, max_queue_size=max_queue_size)
        self.count, self.batch_size = int(count), int(batch_size)
        self.shuffle, self.repeat = shuffle, repeat
        self.seed = int(np.random.randint(2**31)) if seed is None else int(seed)
        self._per_thread = threading.local()

    @property
    def batches_per_pass(self) -> int:
        """Batches in one pass over the samples (the last one may be short)."""
        return math.ceil(self.count / self.batch_size)

    @property
    def num_batches(self) -> int | None:
        """None when repeated (endless), else one pass's batches."""
        return None if self.repeat else self.batches_per_pass

    def __getitem__(self, index: int) -> Any:
        """Batch number ``index`` of the stream (repeated) or of the one pass."""
        if index < 0 or (not self.repeat and index >= self.batches_per_pass):
            raise IndexError(f"batch {index} of {self.num_batches or 'an endless stream'}")
        pass_number, step = divmod(index, self.batches_per_pass)
        order = self.pass_order(pass_number)
        indices = order[step * self.batch_size:(step + 1) * self.batch_size]
        return self.build_batch(indices, [self.sample_seed(pass_number, int(i)) for i in indices])

    def pass_order(self, pass_number: int) -> np.ndarray:
        """The sample indices of one pass, in the order they are batched."""
        if not self.shuffle:
            return np.arange(self.count)
        return np.random.default_rng([self.seed, pass_number]).permutation(self.count)

    def sample_seed(self, pass_number: int, index: int) -> int:
        """The seed of sample ``index``'s augmentation in pass ``pass_number``."""
        return int(np.random.default_rng([self.seed, pass_number, index]).integers(2**31))

    def thread_copy(self, augmenter: Any, seed: int) -> Any:
        """This thread's own copy of ``augmenter`` (they keep state between calls), reseeded
        with ``seed`` through its ``set_random_seed`` (albumentations)."""
        copies = self._per_thread.__dict__.setdefault("copies", {})
        if id(augmenter) not in copies:
            copies[id(augmenter)] = copy.deepcopy(augmenter)
        own = copies[id(augmenter)]
        own.set_random_seed(seed)
        return own

    def build_batch(self, indices: np.ndarray, seeds: list[int]) -> Any:
        """The batch of samples ``indices``, each augmented (if at all) with its seed."""
        raise NotImplementedError
