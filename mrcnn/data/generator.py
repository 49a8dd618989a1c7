"""Matterport's Python-generator input API (``load_image_gt``, ``build_rpn_targets``,
``data_generator``) on our numpy sample functions (:mod:`mrcnn.data.ground_truth`).

Training uses :func:`mrcnn.data.pipeline.build_dataset` (``tf.data``) or
:class:`mrcnn.data.py_loader.TrainingBatches`; these exist so code and
notebooks written for Matterport's ``mrcnn.model`` run unchanged, with its signatures and its
outputs. The generator yields Matterport's ``(inputs, outputs)`` lists.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from mrcnn.data import anchor_targets, ground_truth
from mrcnn.data.augment import is_albumentations
from mrcnn.data.head_targets import build_detection_targets, generate_random_rois
from mrcnn.data.skipped_samples import SKIPPABLE_ERRORS
from mrcnn.geometry.anchors import anchors_for_image_shape

logger = logging.getLogger(__name__)

# Matterport's data_generator gave up after this many images failed to load.
MAX_LOAD_ERRORS = 5


def load_image_gt(dataset, config, image_id: int, augment: bool = False, augmentation: Any = None,
                  use_mini_mask: bool = False) -> tuple:
    """Matterport's signature: (image, image_meta, class_ids, bbox, mask) of one image.

    image uint8[H, W, C] resized per IMAGE_RESIZE_MODE; bbox int32[N, (y1, x1, y2, x2)] pixels;
    mask bool[H, W, N], or bool[MINI_MASK_SHAPE + (N,)] with ``use_mini_mask`` (not
    config.USE_MINI_MASK, as in Matterport). augment: deprecated, a 50% horizontal flip.
    augmentation: albumentations or imgaug.
    """
    return ground_truth.load_image_gt(dataset, _with_mini_mask(config, use_mini_mask), image_id,
                                      _augmentation(augment, augmentation))


def build_rpn_targets(image_shape: Sequence[int], anchors: np.ndarray, gt_class_ids: np.ndarray,
                      gt_boxes: np.ndarray, config) -> tuple[np.ndarray, np.ndarray]:
    """Matterport's signature for :func:`mrcnn.data.anchor_targets.build_rpn_targets`.

    Returns rpn_match int32[A] (1, -1, 0) and rpn_bbox [RPN_TRAIN_ANCHORS_PER_IMAGE, 4];
    ``image_shape`` is unused, as in Matterport.
    """
    return anchor_targets.build_rpn_targets(anchors, gt_class_ids, gt_boxes, config)


def data_generator(dataset, config, shuffle: bool = True, augment: bool = False,
                   augmentation: Any = None, random_rois: int = 0, batch_size: int = 1,
                   detection_targets: bool = False,
                   no_augmentation_sources: Sequence[str] | None = None) -> Iterator[tuple]:
    """Endless generator of Matterport's ``(inputs, outputs)`` batches.

    inputs: [images float32[B, H, W, C] (molded), image_meta [B, META], rpn_match int32[B, A, 1],
    rpn_bbox [B, RPN_TRAIN_ANCHORS_PER_IMAGE, 4], gt_class_ids int32[B, MAX_GT_INSTANCES],
    gt_boxes int32[B, MAX_GT_INSTANCES, 4], gt_masks bool[B, h, w, MAX_GT_INSTANCES]], then
    rpn_rois int32[B, random_rois, 4] when ``random_rois``, then rois [B, R, 4] when also
    ``detection_targets``. outputs: [] or, with detection_targets, [class_ids int32[B, R, 1],
    bbox [B, R, NUM_CLASSES, 4], mask [B, R, h, w, NUM_CLASSES]]. As in Matterport, images
    without instances are skipped, the order is reshuffled each epoch (NumPy's global
    generator), and an image that fails to load is logged and skipped (the sixth failure
    raises).
    """
    augmentation = _augmentation(augment, augmentation)
    skip_sources = frozenset(no_augmentation_sources or ())
    anchors = anchors_for_image_shape(config, config.IMAGE_SHAPE, normalized=False)
    image_ids = np.copy(dataset.image_ids)
    errors = 0
    batch: list[tuple] = []
    index = -1
    while True:
        index = (index + 1) % len(image_ids)
        if shuffle and index == 0:
            np.random.shuffle(image_ids)
        image_id = int(image_ids[index])
        augment_this = None if dataset.image_info[image_id]["source"] in skip_sources \
            else augmentation
        try:
            sample = ground_truth.build_training_sample(dataset, config, image_id, anchors,
                                                        augment_this)
        except SKIPPABLE_ERRORS as error:
            errors += 1
            logger.warning("error processing image %s: %s", dataset.image_info[image_id], error)
            if errors > MAX_LOAD_ERRORS:
                raise
            continue
        if not np.any(sample["input_gt_class_ids"] > 0):
            continue
        batch.append(_sample_lists(sample, config, random_rois, detection_targets))
        if len(batch) == batch_size:
            columns = [np.stack(column) for column in zip(*batch, strict=True)]
            inputs, outputs = columns[:len(columns) - 3 * detection_targets], []
            if detection_targets:
                class_ids, bbox, mask = columns[-3:]
                outputs = [class_ids[..., None], bbox, mask]
            yield inputs, outputs
            batch = []


def _sample_lists(sample: dict, config, random_rois: int, detection_targets: bool) -> list:
    """One sample's arrays in Matterport's input order (plus its targets when asked)."""
    arrays = [sample[name] for name in ground_truth.INPUT_NAMES]
    if not random_rois:
        return arrays
    count = int(np.sum(sample["input_gt_class_ids"] != 0))
    class_ids = sample["input_gt_class_ids"][:count]
    boxes = sample["input_gt_boxes"][:count]
    rpn_rois = generate_random_rois(config.IMAGE_SHAPE, random_rois, class_ids, boxes)
    arrays.append(rpn_rois)
    if detection_targets:
        rois, target_ids, bbox, mask = build_detection_targets(
            rpn_rois, class_ids, boxes, sample["input_gt_masks"][:, :, :count], config)
        arrays += [rois, target_ids, bbox, mask]
    return arrays


def _with_mini_mask(config, use_mini_mask: bool):
    if bool(config.USE_MINI_MASK) == bool(use_mini_mask):
        return config
    return copy.copy(config).override(USE_MINI_MASK=bool(use_mini_mask))


def _augmentation(augment: bool, augmentation: Any) -> Any:
    """``augmentation``, or for Matterport's deprecated ``augment=True`` a 50% horizontal flip."""
    if not augment:
        return augmentation
    import albumentations as A

    logger.warning("'augment' is deprecated. Use 'augmentation' instead.")
    flip = A.HorizontalFlip(p=0.5)
    if augmentation is None:
        return flip
    if not is_albumentations(augmentation):
        raise TypeError("augment=True combines with albumentations only; add the flip to your "
                        f"{type(augmentation).__name__} augmentation instead")
    return A.Compose([flip, augmentation])
