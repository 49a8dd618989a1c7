"""The five Mask R-CNN losses (Matterport's names and definitions), as pure tensor functions.

Each returns a scalar; a loss with nothing to average over (e.g. no positive ROI) is 0, not NaN.
"""

from __future__ import annotations

import tensorflow as tf


def smooth_l1(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Elementwise smooth-L1 (Huber with delta 1)."""
    diff = tf.abs(y_true - y_pred)
    return tf.where(diff < 1.0, 0.5 * diff**2, diff - 0.5)


def _safe_mean(values: tf.Tensor) -> tf.Tensor:
    return tf.math.divide_no_nan(tf.reduce_sum(values), tf.cast(tf.size(values), values.dtype))


def rpn_class_loss(rpn_match: tf.Tensor, rpn_logits: tf.Tensor) -> tf.Tensor:
    """Anchor objectness cross-entropy. rpn_match [B, A] in {1, -1, 0 (ignored)}; logits [B, A, 2]."""
    rpn_match = tf.reshape(rpn_match, tf.shape(rpn_logits)[:2])
    used = tf.where(rpn_match != 0)
    labels = tf.cast(tf.gather_nd(rpn_match, used) == 1, tf.int32)
    logits = tf.cast(tf.gather_nd(rpn_logits, used), tf.float32)
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return _safe_mean(loss)


def rpn_bbox_loss(target_deltas: tf.Tensor, rpn_match: tf.Tensor, rpn_deltas: tf.Tensor) -> tf.Tensor:
    """Smooth-L1 on positive anchors. target_deltas [B, T, 4] holds each image's positive anchors'
    deltas in anchor order, zero-padded; rpn_match [B, A]; rpn_deltas [B, A, 4]."""
    rpn_match = tf.reshape(rpn_match, tf.shape(rpn_deltas)[:2])
    positive = tf.where(rpn_match == 1)
    predicted = tf.cast(tf.gather_nd(rpn_deltas, positive), tf.float32)
    # The k-th positive anchor of an image pairs with row k of that image's target_deltas.
    counts = tf.reduce_sum(tf.cast(rpn_match == 1, tf.int32), axis=1)
    rank = tf.ragged.range(counts).flat_values
    rank = tf.minimum(rank, tf.shape(target_deltas)[1] - 1)
    targets = tf.gather_nd(target_deltas, tf.stack([tf.cast(positive[:, 0], tf.int32), rank], 1))
    return _safe_mean(smooth_l1(tf.cast(targets, tf.float32), predicted))


def mrcnn_class_loss(target_class_ids: tf.Tensor, logits: tf.Tensor, active_class_ids: tf.Tensor,
                     valid_rois: tf.Tensor, class_weights: tf.Tensor | None = None) -> tf.Tensor:
    """Classifier cross-entropy over sampled ROIs.

    target_class_ids [B, R]; logits [B, R, C]; active_class_ids [B, C] (1 for classes of the
    image's source: predictions of other sources' classes are not penalized); valid_rois [B, R]
    bool (False for zero padding). class_weights [C]: each ROI's loss weighted by its target
    class's weight, and the mean taken over those weights (PyTorch's weighted cross-entropy).
    """
    logits = tf.cast(logits, tf.float32)
    predicted = tf.argmax(logits, axis=2, output_type=tf.int32)
    predicted_active = tf.gather(tf.cast(active_class_ids, tf.float32), predicted, batch_dims=1)
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(target_class_ids, tf.int32), logits=logits
    )
    weight = predicted_active * tf.cast(valid_rois, tf.float32)
    if class_weights is not None:
        weight *= tf.gather(tf.cast(class_weights, tf.float32), target_class_ids)
    return tf.math.divide_no_nan(tf.reduce_sum(loss * weight), tf.reduce_sum(weight))


def mrcnn_bbox_loss(target_deltas: tf.Tensor, target_class_ids: tf.Tensor,
                    pred_deltas: tf.Tensor) -> tf.Tensor:
    """Smooth-L1 of the class-specific deltas of positive ROIs. pred_deltas [B, R, C, 4]."""
    target_class_ids = tf.cast(target_class_ids, tf.int32)
    positive = tf.where(target_class_ids > 0)
    classes = tf.gather_nd(target_class_ids, positive)
    index = tf.concat([tf.cast(positive, tf.int32), classes[:, None]], axis=1)
    predicted = tf.cast(tf.gather_nd(pred_deltas, index), tf.float32)
    targets = tf.cast(tf.gather_nd(target_deltas, positive), tf.float32)
    return _safe_mean(smooth_l1(targets, predicted))


def mrcnn_mask_loss(target_masks: tf.Tensor, target_class_ids: tf.Tensor,
                    pred_masks: tf.Tensor) -> tf.Tensor:
    """Binary cross-entropy of the class-specific masks of the positive ROIs.

    target_masks [P, h, w]; target_class_ids [P] (each > 0); pred_masks [P, h, w, C]
    probabilities. The mean over every pixel of every ROI; 0 when P is 0.
    """
    classes = tf.cast(target_class_ids, tf.int32)
    predicted = tf.gather(tf.transpose(pred_masks, [0, 3, 1, 2]), classes, batch_dims=1)
    predicted = tf.clip_by_value(tf.cast(predicted, tf.float32), 1e-7, 1.0 - 1e-7)
    targets = tf.cast(target_masks, tf.float32)
    bce = -(targets * tf.math.log(predicted) + (1.0 - targets) * tf.math.log(1.0 - predicted))
    return _safe_mean(bce)
