"""Mask R-CNN's training and test steps on TensorFlow: the five losses, the L2 decay, gradients.

:class:`mrcnn.modeling.network.MaskRCNNNetwork` delegates ``compute_losses``,
``weight_decay_loss``, ``train_step`` and ``test_step`` here, importing this module only when
it trains, so that inference on another backend never imports TensorFlow. Losses are reported
under Matterport's names (``LOSS_NAMES``), their weighted sum plus the decay as ``loss``.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from mrcnn.config import LOSS_NAMES
from mrcnn.modeling import box_ops, losses

# Offset into the image_meta vector (see mrcnn.geometry.imaging.compose_image_meta).
META_ACTIVE_CLASSES = slice(12, None)


def compute_losses(network, batch, training: bool) -> dict[str, tf.Tensor]:
    """The five unweighted losses of ``network`` (a MaskRCNNNetwork) for one training batch."""
    images = batch["input_image"]
    image_shape = tf.shape(images)[1:3]
    # Not XLA-compiled: on CPU its gradient ran slower (2.8 s vs 2.4 s per 512 px step).
    pyramid, (rpn_logits, rpn_probs, rpn_deltas) = network._trunk_outputs(images, training)
    # Variable-size batches (pad64 / none) bring their shape's anchors, one copy per image.
    anchors = (batch["input_anchors"][0] if "input_anchors" in batch
               else network.training_anchors)
    proposals = network.training_proposals(rpn_probs, rpn_deltas, anchors)
    gt_boxes = box_ops.norm_boxes(batch["input_gt_boxes"], image_shape)
    rois, target_class_ids, target_deltas, target_masks = network.detection_targets(
        proposals, batch["input_gt_class_ids"], gt_boxes, batch["input_gt_masks"]
    )
    _, (logits, _, deltas) = network._classify(rois, image_shape, pyramid[:4], training)
    # The mask head runs on the real positives only (as in torchvision), not on every slot
    # reserved for them: it is the costliest head, and most slots are padding.
    positives = tf.where(target_class_ids[:, :network.detection_targets.max_positives] > 0)
    pooled = network.roi_align_mask(tf.gather_nd(rois, positives), image_shape, pyramid[:4],
                                    box_batch_index=tf.cast(positives[:, 0], tf.int32))
    config = network.config
    masks = tf.cond(  # no positives: no batch for the mask head's BatchNorm statistics
        tf.shape(pooled)[0] > 0,
        lambda: tf.cast(network.mask_head(pooled, training=training), tf.float32),
        lambda: tf.zeros([0, *config.MASK_SHAPE, config.NUM_CLASSES]),
    )
    valid_rois = tf.reduce_any(tf.not_equal(rois, 0.0), axis=-1)
    active = batch["input_image_meta"][:, META_ACTIVE_CLASSES]
    return {
        "rpn_class_loss": losses.rpn_class_loss(batch["input_rpn_match"], rpn_logits),
        "rpn_bbox_loss": losses.rpn_bbox_loss(batch["input_rpn_bbox"], batch["input_rpn_match"],
                                              rpn_deltas),
        "mrcnn_class_loss": losses.mrcnn_class_loss(target_class_ids, logits, active, valid_rois,
                                                    network.class_loss_weights),
        "mrcnn_bbox_loss": losses.mrcnn_bbox_loss(target_deltas, target_class_ids, deltas),
        "mrcnn_mask_loss": losses.mrcnn_mask_loss(tf.gather_nd(target_masks, positives),
                                                  tf.gather_nd(target_class_ids, positives),
                                                  masks),
    }


def weight_decay_loss(network) -> tf.Tensor:
    """Matterport's L2: WEIGHT_DECAY * mean(w**2) summed over weights, BN gamma/beta excluded.

    0 with OPTIMIZER="adamw": its weight decay is decoupled, in the optimizer.
    """
    terms = [
        tf.reduce_mean(tf.square(tf.cast(v, tf.float32)))
        for v in network.trainable_variables
        if v.name not in ("gamma", "beta")
    ]
    if not terms or network.config.OPTIMIZER == "adamw":
        return tf.constant(0.0)
    return network.config.WEIGHT_DECAY * tf.add_n(terms)


def train_step(network, data) -> dict[str, tf.Tensor]:
    """One optimizer step of ``network`` on one batch; the running means of the losses."""
    with tf.GradientTape() as tape:
        parts = network.compute_losses(data, training=True)
        total, decay = _total(network, parts)
        # Under tf.distribute the replicas' gradients are summed: scale to their mean.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        scaled = network.optimizer.scale_loss(total / tf.cast(replicas, total.dtype))
    variables = network.trainable_variables
    gradients = tape.gradient(scaled, variables)
    pairs = [(g, v) for g, v in zip(gradients, variables, strict=True) if g is not None]
    if replicas > 1:
        pairs = _clip_across_replicas(network, pairs, replicas)
    network.optimizer.apply_gradients(pairs)
    results = _update_trackers(network, total, decay, parts)
    results["learning_rate"] = tf.cast(network.optimizer.learning_rate, tf.float32)
    return results


def test_step(network, data) -> dict[str, tf.Tensor]:
    """The losses of one validation batch (inference-mode BatchNorm), as running means."""
    parts = network.compute_losses(data, training=False)
    total, decay = _total(network, parts)
    return _update_trackers(network, total, decay, parts)


def _total(network, parts: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
    decay = network.weight_decay_loss()
    total = tf.add_n([network.loss_weights[n] * parts[n] for n in LOSS_NAMES]) + decay
    return total, decay


def _update_trackers(network, total, decay, parts) -> dict[str, tf.Tensor]:
    network.trackers["loss"].update_state(total)
    network.trackers["weight_decay_loss"].update_state(decay)
    for name in LOSS_NAMES:
        network.trackers[name].update_state(parts[name])
    return {name: tracker.result() for name, tracker in network.trackers.items()}


def _clip_across_replicas(network, pairs, replicas: int) -> list:
    """Clip the replicas' summed gradient by its global norm, as one device would.

    Keras clips each replica's part before summing them, which multiplies the effective
    clip norm by the replica count. Each replica returns 1/replicas of the clipped sum, so
    the optimizer's own cross-replica sum applies it once.
    """
    summed = tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.SUM, [g for g, _ in pairs])
    clip_norm = network.config.GRADIENT_CLIP_NORM
    if isinstance(network.optimizer, keras.optimizers.LossScaleOptimizer):
        clip_norm = clip_norm * network.optimizer.dynamic_scale  # gradients are still scaled
    clipped, _ = tf.clip_by_global_norm(summed, clip_norm)
    return [(g / replicas, v) for g, (_, v) in zip(clipped, pairs, strict=True)]
