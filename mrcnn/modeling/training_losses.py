"""Mask R-CNN's training forward pass and its losses, on any Keras backend.

A training batch runs the trunk, the training proposals, the detection targets and both heads,
and gives the five unweighted losses under Matterport's names (``LOSS_NAMES``); their weighted
sum plus the L2 decay is ``loss``. TensorFlow's own step (:mod:`training_step`) and Keras's
trainers on JAX and PyTorch (through ``MaskRCNNNetwork.call`` / ``compute_loss``) both use it.
"""

from __future__ import annotations

from typing import Any

from keras import ops

from mrcnn.config import LOSS_NAMES
from mrcnn.modeling import backend_ops, box_ops, losses

# Offset into the image_meta vector (see mrcnn.geometry.imaging.compose_image_meta).
META_ACTIVE_CLASSES = slice(12, None)


def compute_losses(network, batch: dict[str, Any], training: bool) -> dict[str, Any]:
    """The five unweighted losses of ``network`` (a MaskRCNNNetwork) for one training batch
    (the dicts of :func:`mrcnn.data.pipeline.build_dataset`)."""
    images = batch["input_image"]
    image_shape = ops.stack([ops.cast(size, "int32") for size in ops.shape(images)[1:3]])
    # Not XLA-compiled on TensorFlow: on CPU its gradient ran slower (2.8 s vs 2.4 s per step).
    pyramid, (rpn_logits, rpn_probs, rpn_deltas) = network._trunk_outputs(images, training)
    # Variable-size batches (pad64 / none) bring their shape's anchors, one copy per image.
    anchors = (batch["input_anchors"][0] if "input_anchors" in batch
               else network.training_anchors)
    proposals = network.training_proposals(rpn_probs, rpn_deltas, anchors)
    gt_boxes = box_ops.norm_boxes(batch["input_gt_boxes"], image_shape)
    targets = network.detection_targets
    rois, target_class_ids, target_deltas, target_masks = targets(
        proposals, batch["input_gt_class_ids"], gt_boxes, batch["input_gt_masks"])
    _, (logits, _, deltas) = network._classify(rois, image_shape, pyramid[:4], training)
    # The mask head runs on the real positives only (as in torchvision) where the backend
    # allows a data-dependent count (TensorFlow); elsewhere on every slot reserved for them,
    # the padding weighted out of the loss.
    positive_ids = target_class_ids[:, :targets.max_positives]
    valid, batch_index, positive_rois, positive_ids, positive_masks = backend_ops.masked_rows(
        positive_ids > 0, rois[:, :targets.max_positives], positive_ids, target_masks)
    pooled = network.roi_align_mask(positive_rois, image_shape, pyramid[:4],
                                    box_batch_index=batch_index)
    masks = _mask_probabilities(network, pooled, training)
    valid_rois = ops.any(ops.not_equal(rois, 0.0), axis=-1)
    active = batch["input_image_meta"][:, META_ACTIVE_CLASSES]
    return {
        "rpn_class_loss": losses.rpn_class_loss(batch["input_rpn_match"], rpn_logits),
        "rpn_bbox_loss": losses.rpn_bbox_loss(batch["input_rpn_bbox"], batch["input_rpn_match"],
                                              rpn_deltas),
        "mrcnn_class_loss": losses.mrcnn_class_loss(target_class_ids, logits, active, valid_rois,
                                                    network.class_loss_weights),
        "mrcnn_bbox_loss": losses.mrcnn_bbox_loss(target_deltas, target_class_ids, deltas),
        "mrcnn_mask_loss": losses.mrcnn_mask_loss(positive_masks, positive_ids, masks, valid),
    }


def _mask_probabilities(network, pooled, training: bool):
    """The mask head on pooled ROIs [M, ...] as float32; with no ROI (a data-dependent M of 0)
    it is not run: BatchNorm has no batch statistics to take."""
    def run():
        return ops.cast(network.mask_head(pooled, training=training), "float32")

    rows = ops.shape(pooled)[0]
    if isinstance(rows, int):
        return run()
    config = network.config
    return ops.cond(rows > 0, run,
                    lambda: ops.zeros([0, *config.MASK_SHAPE, config.NUM_CLASSES]))


def decayed_variables(network) -> list:
    """The weights under Matterport's L2 decay: the trainable ones but BN gamma/beta; none
    with OPTIMIZER="adamw" (its decay is decoupled, in the optimizer) or WEIGHT_DECAY = 0."""
    config = network.config
    if config.OPTIMIZER == "adamw" or config.WEIGHT_DECAY == 0:
        return []
    return [v for v in network.trainable_variables if v.name not in ("gamma", "beta")]


def weight_decay_loss(network) -> Any:
    """Matterport's L2: WEIGHT_DECAY * mean(w**2) summed over :func:`decayed_variables`."""
    terms = [ops.mean(ops.square(ops.cast(v, "float32"))) for v in decayed_variables(network)]
    if not terms:
        return ops.convert_to_tensor(0.0)
    return network.config.WEIGHT_DECAY * ops.sum(ops.stack(terms))


def weighted_loss_sum(network, parts: dict[str, Any]) -> Any:
    """The five losses weighted by LOSS_WEIGHTS, without the decay."""
    return sum(network.loss_weights[name] * parts[name] for name in LOSS_NAMES)


def total_loss(network, parts: dict[str, Any]) -> tuple[Any, Any]:
    """(the weighted sum of the five losses plus the L2 decay, the decay)."""
    decay = network.weight_decay_loss()
    return weighted_loss_sum(network, parts) + decay, decay


def update_trackers(network, total, decay, parts: dict[str, Any]) -> dict[str, Any]:
    """Add one batch to the running means of ``loss``, the five losses and the decay."""
    network.trackers["loss"].update_state(total)
    network.trackers["weight_decay_loss"].update_state(decay)
    for name in LOSS_NAMES:
        network.trackers[name].update_state(parts[name])
    return {name: tracker.result() for name, tracker in network.trackers.items()}
