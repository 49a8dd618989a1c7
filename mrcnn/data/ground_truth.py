"""One image's training ground truth and its sample dict, in numpy (no TensorFlow).

:func:`load_image_gt` loads, checks, resizes and augments an image and its instances;
:func:`sample_from_ground_truth` adds RPN targets and pads the instances to MAX_GT_INSTANCES;
:func:`build_training_sample` does both for one fixed-size image and :func:`build_padded_batch`
for a batch of variable-size ("pad64" / "none") images. Both training inputs build their
samples with these: the ``tf.data`` pipeline (:mod:`mrcnn.data.pipeline`) and the
backend-neutral ``PyDataset`` (:mod:`mrcnn.data.py_loader`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mrcnn.data.anchor_targets import build_rpn_targets
from mrcnn.data.augment import apply_augmentation
from mrcnn.data.dataset import load_checked_image
from mrcnn.data.errors import DatasetError
from mrcnn.data.grouped_batches import pad_ground_truth, padded_batch_shape
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
    resized image (recomputed from the masks after augmentation), and masks bool[h, w, N]:
    MINI_MASK_SHAPE crops when USE_MINI_MASK, else the resized image's size. Instances whose
    mask is empty after resizing/augmentation are dropped; an image with no instances gives
    N = 0.
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
                f"image {image_id} ({describe_image(dataset, image_id)}): the augmentation "
                f"turned a {dtype_before}{list(shape_before)} image into {image.dtype}"
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
    """One unbatched training sample (a training batch's dict without the batch axis).

    anchors: [A, (y1, x1, y2, x2)] in pixels of the molded image (config.IMAGE_SHAPE).
    """
    rng = rng if rng is not None else np.random.default_rng()
    ground_truth = load_image_gt(dataset, config, image_id, augmentation, rng)
    shape = ground_truth[0].shape
    expected = tuple(int(s) for s in config.IMAGE_SHAPE)
    if shape != expected:
        raise DatasetError(
            f"image {image_id} ({describe_image(dataset, image_id)}) is {list(shape)} after "
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


def describe_image(dataset, image_id: int) -> str:
    """``dataset.image_reference(image_id)`` for messages, or the id where that fails."""
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
    where = f"image {image_id} ({describe_image(dataset, image_id)}): load_mask returned"
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
