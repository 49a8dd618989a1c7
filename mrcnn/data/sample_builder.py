"""The training sample at one position of the input stream, the same in both training inputs.

Both inputs (the ``tf.data`` pipeline, :mod:`mrcnn.data.pipeline`, and the backend-neutral
``PyDataset``, :mod:`mrcnn.data.py_loader`) walk an endless stream of image ids. The element at
position ``counter`` showing ``image_id`` draws everything random (crop, RPN anchor and instance
subsampling, the augmentation's seed) from ``np.random.default_rng([seed, counter])``, so its
content depends on (seed, counter, image_id) only: not on the worker thread that builds it,
nor on which input asked. Numpy only; no TensorFlow.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from mrcnn.data.augment import check_augmentation, reseed
from mrcnn.data.errors import DatasetError
from mrcnn.data.ground_truth import (
    build_padded_batch,
    build_training_sample,
    describe_image,
    load_image_gt,
)
from mrcnn.data.grouped_batches import uses_variable_shapes
from mrcnn.data.skipped_samples import SKIPPABLE_ERRORS, SKIPPED_SAMPLES
from mrcnn.geometry.anchors import anchors_for_image_shape

Built = TypeVar("Built")


def check_compatible(dataset, config) -> None:
    """Raise TypeError / ValueError when ``dataset`` cannot feed a model built from ``config``."""
    if not hasattr(dataset, "image_ids") or not hasattr(dataset, "load_mask"):
        raise TypeError(f"expected a prepared mrcnn Dataset, got {type(dataset).__name__}")
    if len(dataset.image_ids) == 0:
        raise ValueError(f"{type(dataset).__name__} has no images (did you call prepare()?)")
    if getattr(dataset, "num_classes", None) != config.NUM_CLASSES:
        raise ValueError(
            f"{type(dataset).__name__} has {getattr(dataset, 'num_classes', '?')} classes "
            f"(background included) but config.NUM_CLASSES = {config.NUM_CLASSES}"
        )


class SampleBuilder:
    """Builds the samples and batches of a training input's stream positions.

    dataset: a prepared mrcnn Dataset; config: the model's Config. augmentation: albumentations
    or imgaug, copied once per worker thread (augmenters keep state between calls) and reseeded
    for every sample. seed: the stream's seed; None draws one from NumPy's global generator (so
    ``keras.utils.set_random_seed`` makes runs repeatable). no_augmentation_sources: dataset
    sources whose images are never augmented. An image whose file or masks fail to load
    (DatasetError, OSError) is replaced by the next image of the dataset that loads, recorded in
    :data:`SKIPPED_SAMPLES` with a warning naming it.
    """

    def __init__(self, dataset, config, augmentation: Any = None, seed: int | None = None,
                 no_augmentation_sources: Sequence[str] | None = None) -> None:
        check_augmentation(augmentation)
        check_compatible(dataset, config)
        self.dataset = dataset
        self.config = config
        self.seed = int(np.random.randint(2**31)) if seed is None else int(seed)
        self.variable = uses_variable_shapes(config)
        self.image_ids = [int(i) for i in dataset.image_ids]
        self._augmentation = augmentation
        self._skip_sources = frozenset(no_augmentation_sources or ())
        self._anchors = anchors_for_image_shape(config, config.IMAGE_SHAPE, normalized=False)
        self._position = {image_id: index for index, image_id in enumerate(self.image_ids)}
        self._per_thread = threading.local()

    def sample(self, counter: int, image_id: int) -> dict[str, np.ndarray]:
        """The unbatched sample (fixed-size modes "square" / "crop") of stream position
        ``counter``: ``image_id``'s, or the next loadable image's."""
        return self._first_loadable(int(counter), int(image_id), self._build_sample)

    def batch(self, counters: Sequence[int], image_ids: Sequence[int]) -> dict[str, np.ndarray]:
        """The batch of these stream positions: their samples stacked, or for "pad64" / "none"
        padded to the batch's shape with its ``input_anchors`` (:func:`build_padded_batch`)."""
        pairs = list(zip(counters, image_ids, strict=True))
        if not self.variable:
            samples = [self.sample(counter, image_id) for counter, image_id in pairs]
            return {name: np.stack([sample[name] for sample in samples]) for name in samples[0]}
        loaded = [self._first_loadable(int(counter), int(image_id), self._load_ground_truth)
                  for counter, image_id in pairs]
        return build_padded_batch(loaded, self.config)

    def first_element(self) -> dict[str, np.ndarray]:
        """Position 0 as the dataset's first image: its sample, or for variable-size modes a
        batch of it. Built eagerly by the inputs so that a dataset where no image loads fails
        when the input is made, not mid-training."""
        if self.variable:
            size = int(self.config.BATCH_SIZE)
            return self.batch([0] * size, [self.image_ids[0]] * size)
        return self.sample(0, self.image_ids[0])

    def _first_loadable(self, counter: int, image_id: int,
                        build: Callable[[int, int], Built]) -> Built:
        """build(counter, image_id), or for the next image that loads (each failure recorded)."""
        start = self._position[image_id]
        first_error = None
        for offset in range(len(self.image_ids)):
            candidate = self.image_ids[(start + offset) % len(self.image_ids)]
            try:
                return build(counter, candidate)
            except SKIPPABLE_ERRORS as error:
                SKIPPED_SAMPLES.record(describe_image(self.dataset, candidate), error)
                first_error = first_error or error
        raise DatasetError(f"none of the {len(self.image_ids)} images of "
                           f"{type(self.dataset).__name__} could be loaded; the first failure: "
                           f"{first_error}") from first_error

    def _draws(self, counter: int, image_id: int) -> tuple[Any, np.random.Generator]:
        """The sample's augmenter (None: not augmented) and random generator."""
        rng = np.random.default_rng([self.seed, counter])
        source = self.dataset.image_info[image_id]["source"]
        if self._augmentation is None or source in self._skip_sources:
            return None, rng
        if not hasattr(self._per_thread, "augmentation"):
            self._per_thread.augmentation = copy.deepcopy(self._augmentation)
        augment = self._per_thread.augmentation
        reseed(augment, int(rng.integers(2**31)))
        return augment, rng

    def _build_sample(self, counter: int, image_id: int) -> dict[str, np.ndarray]:
        augment, rng = self._draws(counter, image_id)
        return build_training_sample(self.dataset, self.config, image_id, self._anchors, augment,
                                     rng)

    def _load_ground_truth(self, counter: int, image_id: int) -> tuple[tuple, np.random.Generator]:
        augment, rng = self._draws(counter, image_id)
        return load_image_gt(self.dataset, self.config, image_id, augment, rng), rng
