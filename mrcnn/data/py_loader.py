"""Training input as a ``keras.utils.PyDataset``: the batches of ``build_dataset`` without
TensorFlow, for training on JAX or PyTorch where TensorFlow is not installed.

:class:`TrainingBatches` walks an endless stream of image ids, as the ``tf.data`` pipeline does,
and builds the element at each stream position with the same
:class:`mrcnn.data.sample_builder.SampleBuilder`: for one seed, the sample of (counter,
image_id) is byte for byte the one ``build_dataset`` makes. Only the order differs, since
``tf.data``'s shuffle cannot be reproduced in numpy: each epoch of the stream here is its own
seeded permutation (``np.random.default_rng([seed, epoch])``). Batches are built by ``workers``
threads (Keras's enqueuer; no multiprocessing). Imports no TensorFlow.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import keras
import numpy as np

from mrcnn.data.grouped_batches import group_stream, groups_by_image_id
from mrcnn.data.repeat_factors import dataset_repeat_factors, endless_ids
from mrcnn.data.sample_builder import SampleBuilder


class TrainingBatches(keras.utils.PyDataset):
    """Endless training batches of a prepared mrcnn Dataset: batch ``index`` of the stream.

    Each batch is a dict of numpy arrays with ``build_dataset``'s keys, dtypes and shapes (see
    :func:`mrcnn.data.pipeline.build_dataset`; "pad64" / "none" batches hold one aspect-ratio
    group padded to their own size, plus ``input_anchors``). Arguments as ``build_dataset``'s,
    and: shuffle: each stream epoch a seeded permutation of the images, else the dataset's
    order. repeat_factor_threshold > 0: each stream epoch drawn by repeat factors, exactly as
    ``build_dataset`` draws it. workers: threads building batches (default: the machine's
    cores; 0 or 1: built in the calling thread); max_queue_size: batches they may build ahead.
    The first element is built at once, so a dataset where no image loads fails here.

    Endless (``num_batches`` is None), as ``build_dataset``'s repeated stream: ``fit`` takes
    ``steps_per_epoch`` batches a Keras epoch and the next epoch goes on where it stopped.
    A fixed length would make each Keras epoch restart at batch 0, while Keras's enqueuer
    carries the batches it built ahead into the next epoch: the order would depend on timing.
    """

    def __init__(
        self,
        dataset,
        config,
        shuffle: bool = True,
        augmentation: Any = None,
        seed: int | None = None,
        no_augmentation_sources: Sequence[str] | None = None,
        repeat_factor_threshold: float = 0.0,
        workers: int | None = None,
        max_queue_size: int = 10,
    ) -> None:
        super().__init__(workers=(os.cpu_count() or 1) if workers is None else workers,
                         use_multiprocessing=False, max_queue_size=max_queue_size)
        self._builder = SampleBuilder(dataset, config, augmentation, seed,
                                      no_augmentation_sources)
        self._builder.first_element()
        image_ids = _endless_image_ids(dataset, self._builder.image_ids, self._builder.seed,
                                       shuffle, repeat_factor_threshold)
        groups = groups_by_image_id(dataset) if self._builder.variable else None
        self._plan = _BatchPlan(image_ids, int(config.BATCH_SIZE), groups)

    @property
    def seed(self) -> int:
        """The stream's seed (drawn from NumPy's global generator when none was given)."""
        return self._builder.seed

    @property
    def num_batches(self) -> None:
        """None: the stream is endless (Keras then needs ``steps_per_epoch``)."""
        return None

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        """Batch number ``index`` (0, 1, ...) of the stream."""
        if index < 0:
            raise IndexError(f"batch {index}: the stream is endless, count from 0")
        counters, image_ids = self._plan[index]
        return self.build_batch(counters, image_ids)

    def build_batch(self, counters: Sequence[int],
                    image_ids: Sequence[int]) -> dict[str, np.ndarray]:
        """The batch of these stream positions showing these images: what ``build_dataset``
        with the same seed makes of the same (counter, image_id) pairs."""
        return self._builder.batch(counters, image_ids)


class _BatchPlan:
    """The (counters int64[B], image_ids int64[B]) of every batch of the stream, by number.

    Drawn in order and remembered (a few integers a batch), so worker threads asking for batch
    k in any order get the same positions and images.
    """

    def __init__(self, image_ids: Iterator[int], batch_size: int,
                 groups: np.ndarray | None) -> None:
        stream = enumerate(image_ids)
        self._batches = (group_stream(stream, groups, batch_size) if groups is not None
                         else _consecutive(stream, batch_size))
        self._known: list[tuple[np.ndarray, np.ndarray]] = []
        self._lock = threading.Lock()

    def __getitem__(self, number: int) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            while len(self._known) <= number:
                self._known.append(next(self._batches))
            return self._known[number]


def _consecutive(stream: Iterator[tuple[int, int]],
                 batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of ``batch_size`` consecutive (counter, image_id) elements of an endless stream."""
    while True:
        counters, image_ids = np.asarray(list(itertools.islice(stream, batch_size)),
                                         dtype=np.int64).T
        yield counters, image_ids


def _endless_image_ids(dataset, image_ids: list[int], seed: int, shuffle: bool,
                       repeat_factor_threshold: float) -> Iterator[int]:
    """Epoch after epoch of image ids: by repeat factors, shuffled, or in the dataset's order."""
    if repeat_factor_threshold > 0:
        return endless_ids(image_ids, dataset_repeat_factors(dataset, repeat_factor_threshold),
                           seed)
    if shuffle:  # factors of 1: every image once per epoch, in a seeded order
        return endless_ids(image_ids, np.ones(len(image_ids)), seed)
    return itertools.cycle(image_ids)
