"""Training input: one image's ground truth (numpy) and the batched ``tf.data`` pipeline.

:func:`build_dataset` yields dicts keyed by the training model's input names (see its
docstring). Images are loaded, resized, augmented and given RPN targets inside a parallel
``tf.data`` map (``tf.numpy_function``), then batched and prefetched.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from mrcnn.data.anchor_targets import build_rpn_targets
from mrcnn.data.augment import apply_augmentation, check_augmentation, reseed
from mrcnn.data.dataset import load_checked_image
from mrcnn.data.errors import DatasetError
from mrcnn.data.grouped_batches import (
    batch_signature,
    group_into_batches,
    groups_by_image_id,
    pad_ground_truth,
    padded_batch_shape,
    uses_variable_shapes,
)
from mrcnn.data.repeat_factors import endless_ids, epoch_ids, image_class_ids, repeat_factors
from mrcnn.data.skipped_samples import DRAIN, SKIPPABLE_ERRORS, SKIPPED_SAMPLES
from mrcnn.geometry.anchors import anchors_for_image_shape
from mrcnn.geometry.boxes import extract_bboxes
from mrcnn.geometry.imaging import (
    compose_image_meta,
    minimize_mask,
    mold_image,
    parse_image_meta,
    resize_image,
    resize_mask,
)

logger = logging.getLogger(__name__)

INPUT_NAMES = ("input_image", "input_image_meta", "input_rpn_match", "input_rpn_bbox",
               "input_gt_class_ids", "input_gt_boxes", "input_gt_masks")


def load_image_gt(
    dataset,
    config,
    image_id: int,
    augmentation: Any = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load, resize and (optionally) augment one image and its instances, as Matterport does.

    Returns image [H, W, C] in load_image's dtype (resized per IMAGE_RESIZE_MODE), image_meta
    float[META_SIZE], class_ids int32[N], bbox int32[N, (y1, x1, y2, x2)] in pixels of the
    resized image (recomputed from the masks after augmentation), and masks bool[h, w, N]: MINI_MASK_SHAPE
    crops when USE_MINI_MASK, else the resized image's size. Instances whose mask is empty after
    resizing/augmentation are dropped; an image with no instances gives N = 0.
    rng drives the random crop of IMAGE_RESIZE_MODE="crop".
    """
    image = _checked_image(dataset, config, image_id)
    masks, class_ids = _checked_masks(dataset, image_id, image.shape)
    original_shape = image.shape
    image, window, scale, padding, crop = resize_image(
        image, min_dim=config.IMAGE_MIN_DIM, max_dim=config.IMAGE_MAX_DIM,
        min_scale=config.IMAGE_MIN_SCALE, mode=config.IMAGE_RESIZE_MODE, rng=rng,
    )
    masks = resize_mask(masks, scale, padding, crop)
    if augmentation is not None:
        shape_before, dtype_before = image.shape, image.dtype
        image, masks, class_ids = apply_augmentation(augmentation, image, masks, class_ids)
        if image.shape != shape_before or image.dtype != dtype_before:
            raise DatasetError(
                f"image {image_id} ({_reference(dataset, image_id)}): the augmentation turned a "
                f"{dtype_before}{list(shape_before)} image into {image.dtype}"
                f"{list(image.shape)}; use transforms that keep the size and dtype (resizing is "
                "done by IMAGE_RESIZE_MODE)"
            )
    keep = masks.any(axis=(0, 1))
    masks, class_ids = masks[:, :, keep], class_ids[keep]
    bbox = extract_bboxes(masks)
    if config.USE_MINI_MASK:
        masks = minimize_mask(bbox, masks, config.MINI_MASK_SHAPE)
    image_meta = compose_image_meta(image_id, original_shape, image.shape, window, scale,
                                    dataset.active_class_ids(image_id))
    return image, image_meta, class_ids.astype(np.int32), bbox, masks


def build_training_sample(
    dataset,
    config,
    image_id: int,
    anchors: np.ndarray,
    augmentation: Any = None,
    rng: np.random.Generator | None = None,
) -> dict[str, np.ndarray]:
    """One unbatched training sample (the dict of :func:`build_dataset` without the batch axis).

    anchors: [A, (y1, x1, y2, x2)] in pixels of the molded image (config.IMAGE_SHAPE).
    """
    rng = rng if rng is not None else np.random.default_rng()
    ground_truth = load_image_gt(dataset, config, image_id, augmentation, rng)
    shape = ground_truth[0].shape
    expected = tuple(int(s) for s in config.IMAGE_SHAPE)
    if shape != expected:
        raise DatasetError(
            f"image {image_id} ({_reference(dataset, image_id)}) is {list(shape)} after "
            f"IMAGE_RESIZE_MODE={config.IMAGE_RESIZE_MODE!r}, but one fixed-size sample needs "
            f"IMAGE_SHAPE {list(expected)}; use 'square' or 'crop', or build_dataset, which "
            "batches 'pad64'/'none' images by aspect ratio"
        )
    return sample_from_ground_truth(ground_truth, anchors, config, rng)


def sample_from_ground_truth(
    ground_truth: tuple,
    anchors: np.ndarray,
    config,
    rng: np.random.Generator,
    window: Sequence[float] | None = None,
) -> dict[str, np.ndarray]:
    """The sample dict of :func:`load_image_gt`'s (image, image_meta, class_ids, boxes, masks).

    anchors: [A, 4] pixels of this image's (padded) shape. window: the real image's
    (y1, x1, y2, x2) when the RPN must not learn padding (see :func:`build_rpn_targets`).
    """
    image, image_meta, class_ids, boxes, masks = ground_truth
    rpn_match, rpn_bbox = build_rpn_targets(anchors, class_ids, boxes, config, rng, window)
    limit = int(config.MAX_GT_INSTANCES)
    if len(class_ids) > limit:
        chosen = np.sort(rng.choice(len(class_ids), limit, replace=False))
        class_ids, boxes, masks = class_ids[chosen], boxes[chosen], masks[:, :, chosen]
    count = len(class_ids)
    gt_class_ids = np.zeros([limit], dtype=np.int32)
    gt_boxes = np.zeros([limit, 4], dtype=np.int32)
    gt_masks = np.zeros(masks.shape[:2] + (limit,), dtype=bool)
    gt_class_ids[:count], gt_boxes[:count], gt_masks[:, :, :count] = class_ids, boxes, masks
    return {
        "input_image": mold_image(image, config),
        "input_image_meta": image_meta.astype(np.float32),
        "input_rpn_match": rpn_match[:, None].astype(np.int32),
        "input_rpn_bbox": rpn_bbox.astype(np.float32),
        "input_gt_class_ids": gt_class_ids,
        "input_gt_boxes": gt_boxes,
        "input_gt_masks": gt_masks,
    }


def build_padded_batch(loaded: Sequence[tuple[tuple, np.random.Generator]],
                       config) -> dict[str, np.ndarray]:
    """A batch of variable-size images (:mod:`mrcnn.data.grouped_batches`): each (ground truth
    of :func:`load_image_gt`, its rng) padded to the batch's shape, with RPN targets on that
    shape's anchors (padding-only anchors neutral) and ``input_anchors`` [B, A, 4] normalized."""
    height, width = padded_batch_shape([ground_truth[0].shape for ground_truth, _ in loaded])
    anchors = anchors_for_image_shape(config, (height, width), normalized=False)
    samples = [
        sample_from_ground_truth(
            pad_ground_truth(ground_truth, height, width, not config.USE_MINI_MASK), anchors,
            config, rng, window=parse_image_meta(ground_truth[1])["window"])
        for ground_truth, rng in loaded
    ]
    batch = {name: np.stack([sample[name] for sample in samples]) for name in samples[0]}
    normalized = anchors_for_image_shape(config, (height, width))
    batch["input_anchors"] = np.ascontiguousarray(
        np.broadcast_to(normalized, (len(samples), *normalized.shape)))
    return batch


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
    check_augmentation(augmentation)
    _check_compatible(dataset, config, repeat)
    anchors = anchors_for_image_shape(config, config.IMAGE_SHAPE, normalized=False)
    skip_sources = frozenset(no_augmentation_sources or ())
    if seed is None:
        seed = int(np.random.randint(2**31))
    variable = uses_variable_shapes(config)
    signature = sample_signature(config)
    if variable:
        signature = batch_signature(signature, config.BATCH_SIZE, not config.USE_MINI_MASK)
    names = list(signature)
    per_thread = threading.local()

    def load(counter: np.ndarray, image_id: np.ndarray) -> list[np.ndarray]:
        if not DRAIN.enter():
            return placeholder
        try:
            return build_batch(counter, image_id) if variable else \
                first_loadable(int(counter), int(image_id), build_sample)
        finally:
            DRAIN.leave()

    image_ids = [int(i) for i in dataset.image_ids]
    position = {image_id: index for index, image_id in enumerate(image_ids)}

    def first_loadable(counter: int, image_id: int, build):
        """build(counter, image_id), or for the next image that loads (each failure recorded)."""
        start = position[image_id]
        first_error = None
        for offset in range(len(image_ids)):
            candidate = image_ids[(start + offset) % len(image_ids)]
            try:
                return build(counter, candidate)
            except SKIPPABLE_ERRORS as error:
                SKIPPED_SAMPLES.record(_reference(dataset, candidate), error)
                first_error = first_error or error
        raise DatasetError(f"none of the {len(image_ids)} images of {type(dataset).__name__} "
                           f"could be loaded; the first failure: {first_error}") from first_error

    def draws(counter: int, image_id: int) -> tuple[Any, np.random.Generator]:
        """The sample's augmenter (None: not augmented) and random generator."""
        rng = np.random.default_rng([seed, counter])
        augment = None
        if augmentation is not None and dataset.image_info[image_id]["source"] not in skip_sources:
            # Each worker thread gets its own copy: augmenters keep state between calls.
            if not hasattr(per_thread, "augmentation"):
                per_thread.augmentation = copy.deepcopy(augmentation)
            augment = per_thread.augmentation
            if seed is not None:
                reseed(augment, int(rng.integers(2**31)))
        return augment, rng

    def build_sample(counter: int, image_id: int) -> list[np.ndarray]:
        augment, rng = draws(counter, image_id)
        sample = build_training_sample(dataset, config, image_id, anchors, augment, rng)
        return [sample[name] for name in names]

    def load_ground_truth(counter: int, image_id: int) -> tuple[tuple, np.random.Generator]:
        augment, rng = draws(counter, image_id)
        return load_image_gt(dataset, config, image_id, augment, rng), rng

    def build_batch(counters: np.ndarray, batch_ids: np.ndarray) -> list[np.ndarray]:
        loaded = [first_loadable(int(c), int(i), load_ground_truth)
                  for c, i in zip(counters, batch_ids, strict=True)]
        batch = build_padded_batch(loaded, config)
        return [batch[name] for name in names]

    first = (build_batch(np.zeros(config.BATCH_SIZE), np.full(config.BATCH_SIZE, image_ids[0]))
             if variable else first_loadable(0, image_ids[0], build_sample))
    placeholder = [np.zeros_like(array) for array in first]  # fails fast

    def load_tensors(counter: tf.Tensor, image_id: tf.Tensor) -> dict[str, tf.Tensor]:
        tensors = tf.numpy_function(load, [counter, image_id],
                                    [signature[name].dtype for name in names], stateful=True)
        out = {}
        for name, tensor in zip(names, tensors, strict=True):
            tensor.set_shape(signature[name].shape)
            out[name] = tensor
        return out

    if repeat_factor_threshold > 0:
        factors = repeat_factors([image_class_ids(dataset, i) for i in image_ids],
                                 repeat_factor_threshold)
        logger.info("repeat factors (threshold %g): %d images, %.1f samples per epoch, "
                    "up to %.2f x", repeat_factor_threshold, len(image_ids), factors.sum(),
                    factors.max())
        if repeat:
            ids = tf.data.Dataset.from_generator(
                lambda: endless_ids(image_ids, factors, seed),
                output_signature=tf.TensorSpec([], tf.int64))
        else:
            ids = tf.data.Dataset.from_tensor_slices(
                epoch_ids(image_ids, factors, np.random.default_rng([seed, 0])))
    else:
        ids = tf.data.Dataset.from_tensor_slices(np.asarray(dataset.image_ids, dtype=np.int64))
        if shuffle:
            ids = ids.shuffle(len(dataset.image_ids), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ids = ids.repeat()
    if variable:
        batches = group_into_batches(ids.enumerate(), groups_by_image_id(dataset),
                                     config.BATCH_SIZE)
        batches = batches.map(load_tensors, num_parallel_calls=tf.data.AUTOTUNE,
                              deterministic=True)
    else:
        samples = ids.enumerate().map(load_tensors, num_parallel_calls=tf.data.AUTOTUNE,
                                      deterministic=True)
        batches = samples.batch(config.BATCH_SIZE, drop_remainder=True)
    return batches.prefetch(tf.data.AUTOTUNE)


def _check_compatible(dataset, config, repeat: bool) -> None:
    """Raise ValueError when the dataset cannot feed a model built from this config."""
    if not hasattr(dataset, "image_ids") or not hasattr(dataset, "load_mask"):
        raise TypeError(f"expected a prepared mrcnn Dataset, got {type(dataset).__name__}")
    count = len(dataset.image_ids)
    if count == 0:
        raise ValueError(f"{type(dataset).__name__} has no images (did you call prepare()?)")
    if getattr(dataset, "num_classes", None) != config.NUM_CLASSES:
        raise ValueError(
            f"{type(dataset).__name__} has {getattr(dataset, 'num_classes', '?')} classes "
            f"(background included) but config.NUM_CLASSES = {config.NUM_CLASSES}"
        )
    if not repeat and count < config.BATCH_SIZE:
        raise ValueError(f"{count} images cannot fill one batch of BATCH_SIZE="
                         f"{config.BATCH_SIZE} without repeat=True")


def _reference(dataset, image_id: int) -> str:
    try:
        return str(dataset.image_reference(image_id))
    except Exception:  # a broken image_reference must not hide the real error
        return f"image_id {image_id}"


def _checked_image(dataset, config, image_id: int) -> np.ndarray:
    """The dataset's image, checked to be [H, W, IMAGE_CHANNEL_COUNT] of an int/float dtype."""
    return load_checked_image(dataset, image_id, int(config.IMAGE_CHANNEL_COUNT))


def _checked_masks(dataset, image_id: int, image_shape: tuple[int, ...]):
    """The dataset's (bool[H, W, N], int32[N]), checked against the image and the classes."""
    masks, class_ids = dataset.load_mask(image_id)
    where = f"image {image_id} ({_reference(dataset, image_id)}): load_mask returned"
    masks = np.asarray(masks)
    class_ids = np.asarray(class_ids)
    if masks.ndim == 3 and masks.shape[-1] == 0 and class_ids.size == 0:
        return np.zeros(image_shape[:2] + (0,), dtype=bool), np.zeros([0], dtype=np.int32)
    if masks.ndim != 3 or masks.shape[:2] != tuple(image_shape[:2]):
        raise DatasetError(f"{where} masks of shape {list(masks.shape)}, expected "
                           f"[{image_shape[0]}, {image_shape[1]}, N] (the image's height, width)")
    if masks.dtype != bool and not np.issubdtype(masks.dtype, np.integer):
        raise DatasetError(f"{where} masks of dtype {masks.dtype}, expected bool")
    if class_ids.ndim != 1 or not np.issubdtype(class_ids.dtype, np.integer):
        raise DatasetError(f"{where} class ids {class_ids.dtype}{list(class_ids.shape)}, "
                           "expected a 1-D integer array")
    if len(class_ids) != masks.shape[-1]:
        raise DatasetError(f"{where} {masks.shape[-1]} masks but {len(class_ids)} class ids")
    num_classes = dataset.num_classes
    bad = class_ids[(class_ids == 0) | (np.abs(class_ids) >= num_classes)]
    if bad.size:
        raise DatasetError(f"{where} class ids {sorted(set(bad.tolist()))}; expected 1.."
                           f"{num_classes - 1} (negative for crowd), 0 is the background")
    return masks.astype(bool, copy=False), class_ids.astype(np.int32)
