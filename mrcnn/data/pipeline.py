"""Training input as ``tf.data``: :func:`build_dataset`, batched and prefetched.

:func:`build_dataset` yields dicts keyed by the training model's input names (see its
docstring). Samples are built by :class:`mrcnn.data.sample_builder.SampleBuilder` (numpy, in
:mod:`mrcnn.data.ground_truth`) inside a parallel ``tf.data`` map (``tf.numpy_function``), then
batched and prefetched. Without TensorFlow, :mod:`mrcnn.data.py_loader` builds the same samples
as a ``keras.utils.PyDataset``. The numpy sample functions are re-exported here, where they
lived before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from mrcnn.data.ground_truth import (
    INPUT_NAMES,
    build_padded_batch,
    build_training_sample,
    load_image_gt,
    sample_from_ground_truth,
)
from mrcnn.data.grouped_batches import groups_by_image_id
from mrcnn.data.repeat_factors import dataset_repeat_factors, endless_ids, epoch_ids
from mrcnn.data.sample_builder import SampleBuilder
from mrcnn.data.skipped_samples import DRAIN, SKIPPABLE_ERRORS, SKIPPED_SAMPLES
from mrcnn.geometry.anchors import anchors_for_image_shape

__all__ = [
    "INPUT_NAMES", "SKIPPABLE_ERRORS", "SKIPPED_SAMPLES", "batch_signature", "build_dataset",
    "build_padded_batch", "build_training_sample", "group_into_batches", "load_image_gt",
    "sample_from_ground_truth", "sample_signature",
]


def sample_signature(config) -> dict[str, tf.TensorSpec]:
    """Static shapes and dtypes of one unbatched sample, keyed by input name."""
    height, width, channels = (int(s) for s in config.IMAGE_SHAPE)
    mask_hw = tuple(config.MINI_MASK_SHAPE) if config.USE_MINI_MASK else (height, width)
    num_anchors = len(anchors_for_image_shape(config, config.IMAGE_SHAPE, normalized=False))
    limit = int(config.MAX_GT_INSTANCES)
    return {
        "input_image": tf.TensorSpec([height, width, channels], tf.float32),
        "input_image_meta": tf.TensorSpec([config.IMAGE_META_SIZE], tf.float32),
        "input_rpn_match": tf.TensorSpec([num_anchors, 1], tf.int32),
        "input_rpn_bbox": tf.TensorSpec([config.RPN_TRAIN_ANCHORS_PER_IMAGE, 4], tf.float32),
        "input_gt_class_ids": tf.TensorSpec([limit], tf.int32),
        "input_gt_boxes": tf.TensorSpec([limit, 4], tf.int32),
        "input_gt_masks": tf.TensorSpec([int(mask_hw[0]), int(mask_hw[1]), limit], tf.bool),
    }


def group_into_batches(samples: tf.data.Dataset, groups: np.ndarray,
                       batch_size: int) -> tf.data.Dataset:
    """(counter, image_id) elements -> batches (counters int64[B], image_ids int64[B]) whose
    images share an aspect group (``group_by_window``; the PyDataset loader's numpy grouping is
    :func:`mrcnn.data.grouped_batches.group_stream`).

    groups: int[max_image_id + 1], the group of each image id. As torchvision's
    GroupedBatchSampler: elements wait in their group's buffer and a batch is emitted when a
    group has ``batch_size``; a finite stream drops each group's incomplete rest.
    """
    table = tf.constant(np.asarray(groups, dtype=np.int64))
    return samples.group_by_window(
        key_func=lambda counter, image_id: tf.gather(table, image_id),
        reduce_func=lambda _, window: window.batch(batch_size, drop_remainder=True),
        window_size=batch_size,
    )


def batch_signature(sample_specs: dict[str, tf.TensorSpec], batch_size: int,
                    full_masks: bool) -> dict[str, tf.TensorSpec]:
    """Shapes of a padded batch: the per-sample ``sample_specs`` with a batch axis, image height
    and width (and anchor count, and full masks' size) left free, plus ``input_anchors``
    float32[B, A, 4], the batch shape's anchors, normalized."""
    free = {"input_image": (0, 1), "input_rpn_match": (0,),
            "input_gt_masks": (0, 1) if full_masks else ()}
    specs = {}
    for name, spec in sample_specs.items():
        shape = list(spec.shape)
        for axis in free.get(name, ()):
            shape[axis] = None
        specs[name] = tf.TensorSpec([batch_size, *shape], spec.dtype)
    specs["input_anchors"] = tf.TensorSpec([batch_size, None, 4], tf.float32)
    return specs


def build_dataset(
    dataset,
    config,
    shuffle: bool = True,
    augmentation: Any = None,
    repeat: bool = True,
    seed: int | None = None,
    no_augmentation_sources: Sequence[str] | None = None,
    repeat_factor_threshold: float = 0.0,
) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of training batches for a prepared mrcnn Dataset.

    Each element is a dict (B = config.BATCH_SIZE, A = anchors of IMAGE_SHAPE, G =
    MAX_GT_INSTANCES; boxes are (y1, x1, y2, x2) pixels of the molded image):
      input_image float32[B, H, W, C] (MEAN_PIXEL subtracted), input_image_meta
      float32[B, IMAGE_META_SIZE], input_rpn_match int32[B, A, 1], input_rpn_bbox
      float32[B, RPN_TRAIN_ANCHORS_PER_IMAGE, 4], input_gt_class_ids int32[B, G] (0-padded;
      negative = crowd), input_gt_boxes int32[B, G, 4], input_gt_masks bool[B, mh, mw, G].
    IMAGE_RESIZE_MODE "pad64" / "none": each batch holds images of one aspect-ratio group,
    padded to its own H x W (multiples of 64; :mod:`mrcnn.data.grouped_batches`), A is that
    shape's anchor count, and ``input_anchors`` float32[B, A, 4] (normalized) is added.
    Images without instances are kept. The last incomplete batch is dropped. With ``seed``
    the order, crops, subsampling and albumentations draws are reproducible; ``seed=None`` draws
    one from NumPy's global generator, so ``keras.utils.set_random_seed`` makes runs repeatable.
    no_augmentation_sources: dataset sources whose images are never augmented.
    repeat_factor_threshold: > 0 samples each epoch by repeat factors
    (:mod:`mrcnn.data.repeat_factors`): images of rare classes come more often.
    An image whose file or masks fail to load (DatasetError, OSError) is replaced by the next
    image of the dataset that loads, with a warning naming it, and counted in
    :data:`SKIPPED_SAMPLES`; training goes on. The first sample is built eagerly, so a dataset
    where no image loads fails here, not mid-training.
    """
    builder = SampleBuilder(dataset, config, augmentation, seed, no_augmentation_sources)
    if not repeat and len(builder.image_ids) < config.BATCH_SIZE:
        raise ValueError(f"{len(builder.image_ids)} images cannot fill one batch of BATCH_SIZE="
                         f"{config.BATCH_SIZE} without repeat=True")
    seed = builder.seed
    signature = sample_signature(config)
    if builder.variable:
        signature = batch_signature(signature, config.BATCH_SIZE, not config.USE_MINI_MASK)
    names = list(signature)
    first = builder.first_element()
    placeholder = [np.zeros_like(first[name]) for name in names]  # fails fast

    def load(counter: np.ndarray, image_id: np.ndarray) -> list[np.ndarray]:
        if not DRAIN.enter():
            return placeholder
        try:
            element = (builder.batch(counter, image_id) if builder.variable
                       else builder.sample(int(counter), int(image_id)))
            return [element[name] for name in names]
        finally:
            DRAIN.leave()

    def load_tensors(counter: tf.Tensor, image_id: tf.Tensor) -> dict[str, tf.Tensor]:
        tensors = tf.numpy_function(load, [counter, image_id],
                                    [signature[name].dtype for name in names], stateful=True)
        out = {}
        for name, tensor in zip(names, tensors, strict=True):
            tensor.set_shape(signature[name].shape)
            out[name] = tensor
        return out

    image_ids = builder.image_ids
    if repeat_factor_threshold > 0:
        factors = dataset_repeat_factors(dataset, repeat_factor_threshold)
        if repeat:
            ids = tf.data.Dataset.from_generator(
                lambda: endless_ids(image_ids, factors, seed),
                output_signature=tf.TensorSpec([], tf.int64))
        else:
            ids = tf.data.Dataset.from_tensor_slices(
                epoch_ids(image_ids, factors, np.random.default_rng([seed, 0])))
    else:
        ids = tf.data.Dataset.from_tensor_slices(np.asarray(image_ids, dtype=np.int64))
        if shuffle:
            ids = ids.shuffle(len(image_ids), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ids = ids.repeat()
    if builder.variable:
        batches = group_into_batches(ids.enumerate(), groups_by_image_id(dataset),
                                     config.BATCH_SIZE)
        batches = batches.map(load_tensors, num_parallel_calls=tf.data.AUTOTUNE,
                              deterministic=True)
    else:
        samples = ids.enumerate().map(load_tensors, num_parallel_calls=tf.data.AUTOTUNE,
                                      deterministic=True)
        batches = samples.batch(config.BATCH_SIZE, drop_remainder=True)
    return batches.prefetch(tf.data.AUTOTUNE)
