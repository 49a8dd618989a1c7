"""The five Mask R-CNN losses (Matterport's names and definitions), as pure tensor functions.

Written in ``keras.ops`` over fixed shapes: each loss is a masked mean over the entries it
counts (Matterport gathers them first, a data-dependent shape), so one implementation serves
every backend. Each returns a float32 scalar; a loss with nothing to average over (e.g. no
positive ROI) is 0, not NaN.
"""

from __future__ import annotations

from typing import Any

from keras import ops

from mrcnn.modeling.backend_ops import batched_gather

Tensor = Any


def smooth_l1(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """Elementwise smooth-L1 (Huber with delta 1)."""
    diff = ops.abs(ops.convert_to_tensor(y_true, "float32") - ops.cast(y_pred, "float32"))
    return ops.where(diff < 1.0, 0.5 * diff**2, diff - 0.5)


def masked_mean(values: Tensor, weights: Tensor) -> Tensor:
    """sum(values * weights) / sum(weights) (weights broadcast to values), 0 where they sum to 0."""
    weights = ops.broadcast_to(ops.cast(weights, "float32"), ops.shape(values))
    total = ops.sum(weights)
    return ops.where(total > 0, ops.sum(values * weights) / ops.maximum(total, 1e-12), 0.0)


def rpn_class_loss(rpn_match: Tensor, rpn_logits: Tensor) -> Tensor:
    """Anchor objectness cross-entropy. rpn_match [B, A(, 1)] in {1, -1, 0 (ignored)};
    logits [B, A, 2]."""
    rpn_match = ops.reshape(rpn_match, ops.shape(rpn_logits)[:2])
    labels = ops.cast(rpn_match == 1, "int32")
    loss = ops.sparse_categorical_crossentropy(labels, ops.cast(rpn_logits, "float32"),
                                               from_logits=True)
    return masked_mean(loss, rpn_match != 0)


def rpn_bbox_loss(target_deltas: Tensor, rpn_match: Tensor, rpn_deltas: Tensor) -> Tensor:
    """Smooth-L1 on positive anchors. target_deltas [B, T, 4] holds each image's positive anchors'
    deltas in anchor order, zero-padded; rpn_match [B, A(, 1)]; rpn_deltas [B, A, 4]."""
    positive = ops.reshape(rpn_match, ops.shape(rpn_deltas)[:2]) == 1
    # The k-th positive anchor of an image pairs with row k of that image's target_deltas.
    rank = ops.cumsum(ops.cast(positive, "int32"), axis=1) - 1
    rank = ops.clip(rank, 0, ops.shape(target_deltas)[1] - 1)
    targets = batched_gather(ops.convert_to_tensor(target_deltas, "float32"), rank, batch_dims=1)
    return masked_mean(smooth_l1(targets, rpn_deltas), positive[..., None])


def mrcnn_class_loss(target_class_ids: Tensor, logits: Tensor, active_class_ids: Tensor,
                     valid_rois: Tensor, class_weights: Tensor | None = None) -> Tensor:
    """Classifier cross-entropy over sampled ROIs.

    target_class_ids [B, R]; logits [B, R, C]; active_class_ids [B, C] (1 for classes of the
    image's source: predictions of other sources' classes are not penalized); valid_rois [B, R]
    bool (False for zero padding). class_weights [C]: each ROI's loss weighted by its target
    class's weight, and the mean taken over those weights (PyTorch's weighted cross-entropy).
    """
    logits = ops.cast(logits, "float32")
    target_class_ids = ops.cast(target_class_ids, "int32")
    predicted = ops.cast(ops.argmax(logits, axis=2), "int32")
    predicted_active = batched_gather(ops.cast(active_class_ids, "float32"), predicted,
                                      batch_dims=1)
    loss = ops.sparse_categorical_crossentropy(target_class_ids, logits, from_logits=True)
    weight = predicted_active * ops.cast(valid_rois, "float32")
    if class_weights is not None:
        weight = weight * ops.take(ops.cast(class_weights, "float32"), target_class_ids)
    return masked_mean(loss, weight)


def mrcnn_bbox_loss(target_deltas: Tensor, target_class_ids: Tensor,
                    pred_deltas: Tensor) -> Tensor:
    """Smooth-L1 of the class-specific deltas of positive ROIs. target_deltas [B, R, 4];
    target_class_ids [B, R] (> 0: positive); pred_deltas [B, R, C, 4]."""
    target_class_ids = ops.cast(target_class_ids, "int32")
    predicted = batched_gather(ops.cast(pred_deltas, "float32"), target_class_ids, batch_dims=2)
    return masked_mean(smooth_l1(target_deltas, predicted), (target_class_ids > 0)[..., None])


def mrcnn_mask_loss(target_masks: Tensor, target_class_ids: Tensor, pred_masks: Tensor,
                    valid: Tensor | None = None) -> Tensor:
    """Binary cross-entropy of the class-specific masks of the positive ROIs.

    target_masks [P, h, w]; target_class_ids [P]; pred_masks [P, h, w, C] probabilities;
    valid bool[P] (default: every row): the rows that are real positives (each with a class
    id > 0). The mean over every pixel of every valid row; 0 when there is none.
    """
    classes = ops.cast(target_class_ids, "int32")
    predicted = batched_gather(ops.transpose(ops.cast(pred_masks, "float32"), (0, 3, 1, 2)),
                               classes, batch_dims=1)
    predicted = ops.clip(predicted, 1e-7, 1.0 - 1e-7)
    targets = ops.cast(target_masks, "float32")
    bce = -(targets * ops.log(predicted) + (1.0 - targets) * ops.log(1.0 - predicted))
    weights = ops.ones_like(classes) if valid is None else valid
    return masked_mean(bce, ops.reshape(weights, (-1, 1, 1)))
