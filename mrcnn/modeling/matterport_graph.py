"""Matterport's graph functions (``*_graph``, ResNet blocks, heads, losses) over our stages.

Code written against Matterport's ``mrcnn.model`` calls these with the same arguments and gets
the same tensors and frames back; each delegates to the module that owns the computation.
They run on TensorFlow tensors (eagerly or in ``tf.function``); the ones that build layers
(``resnet_graph``, the heads, ``rpn_graph``) also take Keras symbolic inputs.

Shape shorthand: B batch, N ROIs, C classes, A anchors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from mrcnn.config import BACKBONE_STAGE_BLOCKS
from mrcnn.modeling import box_ops, detection, losses, rpn
from mrcnn.modeling.backbone import bottleneck_block, resnet_stages
from mrcnn.modeling.detection_targets import trim_zero_rows
from mrcnn.modeling.heads import build_classifier_head, build_mask_head
from mrcnn.modeling.matterport_layers import DetectionTargetLayer, PyramidROIAlign

# ----------------------------------------------------------------------------------------------
# Backbone and RPN


def identity_block(input_tensor, kernel_size, filters, stage, block, use_bias=True,
                   train_bn=True):
    """ResNet block without a shortcut conv; layers named ``res{stage}{block}_branch2a`` ..."""
    return bottleneck_block(input_tensor, filters, stage, block, strides=1, projection=False,
                            frozen_bn=not train_bn, kernel_size=kernel_size, use_bias=use_bias)


def conv_block(input_tensor, kernel_size, filters, stage, block, strides=(2, 2), use_bias=True,
               train_bn=True):
    """ResNet block with a 1x1 shortcut conv (``res{stage}{block}_branch1``), strided."""
    return bottleneck_block(input_tensor, filters, stage, block, strides=strides,
                            projection=True, frozen_bn=not train_bn, kernel_size=kernel_size,
                            use_bias=use_bias)


def resnet_graph(input_image, architecture, stage5=False, train_bn=True) -> list:
    """[C1, C2, C3, C4, C5] of ResNet-50 or -101 on ``input_image`` (C5 None without stage5).

    train_bn=False freezes BatchNorm (moving statistics). True lets Keras' ``training`` flag
    decide, where Matterport forced training-mode statistics even at inference.
    """
    if architecture not in BACKBONE_STAGE_BLOCKS:
        raise ValueError(f"architecture={architecture!r}; expected one of "
                         f"{sorted(BACKBONE_STAGE_BLOCKS)}")
    return resnet_stages(input_image, BACKBONE_STAGE_BLOCKS[architecture], 64,
                         frozen_bn=not train_bn, stage5=stage5)


def build_rpn_model(anchor_stride, anchors_per_location, depth) -> keras.Model:
    """Matterport's argument order for :func:`mrcnn.modeling.rpn.build_rpn_model`."""
    return rpn.build_rpn_model(anchors_per_location, depth, anchor_stride=anchor_stride)


def rpn_graph(feature_map, anchors_per_location, anchor_stride) -> list:
    """[rpn_class_logits [B, A, 2], rpn_probs [B, A, 2], rpn_bbox [B, A, 4]] of one level."""
    model = build_rpn_model(anchor_stride, anchors_per_location, int(feature_map.shape[-1]))
    return list(model(feature_map))


# ----------------------------------------------------------------------------------------------
# Heads


def fpn_classifier_graph(rois, feature_maps, image_meta, pool_size, num_classes, train_bn=True,
                         fc_layers_size=1024) -> tuple:
    """ROIAlign + classifier head: (logits [B, N, C], probs [B, N, C], bbox [B, N, C, 4]).

    rois: [B, N, 4] normalized; feature_maps: [P2, P3, P4, P5]; image_meta: [B, META].
    """
    pooled = PyramidROIAlign([pool_size, pool_size], name="roi_align_classifier")(
        [rois, image_meta, *feature_maps])
    head = build_classifier_head(num_classes, pool_size, int(feature_maps[0].shape[-1]),
                                 fc_layers_size, frozen_bn=not train_bn)
    return tuple(_per_roi(output, pooled) for output in head(_flatten_rois(pooled)))


def build_fpn_mask_graph(rois, feature_maps, image_meta, pool_size, num_classes,
                         train_bn=True):
    """ROIAlign + mask head: masks [B, N, 2 * pool_size, 2 * pool_size, C] probabilities."""
    pooled = PyramidROIAlign([pool_size, pool_size], name="roi_align_mask")(
        [rois, image_meta, *feature_maps])
    head = build_mask_head(num_classes, pool_size, int(feature_maps[0].shape[-1]),
                           frozen_bn=not train_bn)
    return _per_roi(head(_flatten_rois(pooled)), pooled)


def _flatten_rois(pooled):
    return keras.ops.reshape(pooled, (-1, *pooled.shape[2:]))


def _per_roi(flat, pooled):
    """[B * N, ...] back to [B, N, ...] (Matterport's TimeDistributed frame)."""
    count = pooled.shape[1] if pooled.shape[1] is not None else tf.shape(pooled)[1]
    return keras.ops.reshape(flat, (-1, count, *flat.shape[1:]))


# ----------------------------------------------------------------------------------------------
# Box and meta tensors

apply_box_deltas_graph = box_ops.apply_box_deltas
clip_boxes_graph = box_ops.clip_boxes
overlaps_graph = box_ops.overlaps
norm_boxes_graph = box_ops.norm_boxes
denorm_boxes_graph = box_ops.denorm_boxes


def box_refinement_graph(box, gt_box):
    """Deltas [N, (dy, dx, log(dh), log(dw))] that turn ``box`` [N, 4] into ``gt_box``."""
    return box_ops.box_refinement(box, gt_box)


def log2_graph(x):
    """log2(x) elementwise."""
    return tf.math.log(x) / tf.math.log(2.0)


def trim_zeros_graph(boxes, name="trim_zeros"):
    """(boxes [M, 4] without the all-zero rows, non_zeros bool[N]); ``name`` is unused."""
    return trim_zero_rows(boxes)


def batch_pack_graph(x, counts, num_rows):
    """The first ``counts[i]`` entries of each row ``x[i]``, i < num_rows, concatenated."""
    return tf.concat([x[i, :counts[i]] for i in range(num_rows)], axis=0)


def parse_image_meta_graph(meta) -> dict[str, tf.Tensor]:
    """The parts of image_meta tensors [B, META] (see compose_image_meta), as float tensors."""
    return {"image_id": meta[:, 0], "original_image_shape": meta[:, 1:4],
            "image_shape": meta[:, 4:7], "window": meta[:, 7:11], "scale": meta[:, 11],
            "active_class_ids": meta[:, 12:]}


def batch_slice(inputs, graph_fn: Callable, batch_size: int, names: Sequence[str] | None = None):
    """Run ``graph_fn`` on each of the first ``batch_size`` slices of ``inputs`` and stack.

    inputs: a tensor or list of tensors sharing their first axis. Returns one tensor, or a list
    when ``graph_fn`` returns several; ``names`` are accepted for compatibility (unused).
    """
    inputs = inputs if isinstance(inputs, list) else [inputs]
    slices = []
    for i in range(batch_size):
        output = graph_fn(*[x[i] for x in inputs])
        slices.append(output if isinstance(output, (tuple, list)) else [output])
    result = [tf.stack(outputs, axis=0) for outputs in zip(*slices, strict=True)]
    return result[0] if len(result) == 1 else result


# ----------------------------------------------------------------------------------------------
# Per-image targets and detections


def detection_targets_graph(proposals, gt_class_ids, gt_boxes, gt_masks, config) -> tuple:
    """Targets of one image: rois [R, 4], class_ids [R], deltas [R, 4], masks [R, h, w].

    R = TRAIN_ROIS_PER_IMAGE; gt_masks [h, w, G] (mini masks when USE_MINI_MASK).
    """
    outputs = DetectionTargetLayer(config).call(
        [proposals[None], tf.cast(gt_class_ids, tf.int32)[None], gt_boxes[None],
         tf.cast(gt_masks, tf.float32)[None]])
    return tuple(output[0] for output in outputs)


def refine_detections_graph(rois, probs, deltas, window, config):
    """Detections of one image: [DETECTION_MAX_INSTANCES, (y1, x1, y2, x2, class_id, score)]."""
    layer = detection.DetectionLayer(
        config.DETECTION_MAX_INSTANCES, config.DETECTION_MIN_CONFIDENCE,
        config.DETECTION_NMS_THRESHOLD, np.ravel(config.BBOX_STD_DEV).tolist())
    return layer.call(rois[None], probs[None], deltas[None], tf.convert_to_tensor(window)[None])[0]


# ----------------------------------------------------------------------------------------------
# Losses (Matterport's argument lists)

smooth_l1_loss = losses.smooth_l1


def rpn_class_loss_graph(rpn_match, rpn_class_logits):
    """Anchor objectness cross-entropy; rpn_match [B, A, 1] in {1, -1, 0 (ignored)}."""
    return losses.rpn_class_loss(rpn_match, rpn_class_logits)


def mrcnn_bbox_loss_graph(target_bbox, target_class_ids, pred_bbox):
    """Smooth-L1 of the class-specific deltas [B, N, C, 4] of the positive ROIs."""
    return losses.mrcnn_bbox_loss(target_bbox, target_class_ids, pred_bbox)


def rpn_bbox_loss_graph(config, target_bbox, rpn_match, rpn_bbox):
    """Smooth-L1 on the positive anchors (``config`` is not needed)."""
    return losses.rpn_bbox_loss(target_bbox, rpn_match, rpn_bbox)


def mrcnn_class_loss_graph(target_class_ids, pred_class_logits, active_class_ids):
    """Classifier cross-entropy over every ROI slot, as Matterport (padding counts as background)."""
    valid = tf.ones(tf.shape(target_class_ids)[:2], dtype=tf.bool)
    return losses.mrcnn_class_loss(target_class_ids, pred_class_logits, active_class_ids, valid)


def mrcnn_mask_loss_graph(target_masks, target_class_ids, pred_masks):
    """Mask BCE of the positive ROIs: targets [B, N, h, w], ids [B, N], preds [B, N, h, w, C]."""
    positive = tf.where(tf.cast(target_class_ids, tf.int32) > 0)
    return losses.mrcnn_mask_loss(tf.gather_nd(target_masks, positive),
                                  tf.gather_nd(target_class_ids, positive),
                                  tf.gather_nd(pred_masks, positive))


__all__ = [
    "apply_box_deltas_graph", "batch_pack_graph", "batch_slice", "box_refinement_graph",
    "build_fpn_mask_graph", "build_rpn_model", "clip_boxes_graph", "conv_block",
    "denorm_boxes_graph", "detection_targets_graph",
    "fpn_classifier_graph", "identity_block", "log2_graph", "mrcnn_bbox_loss_graph",
    "mrcnn_class_loss_graph", "mrcnn_mask_loss_graph", "norm_boxes_graph", "overlaps_graph",
    "parse_image_meta_graph", "refine_detections_graph", "resnet_graph", "rpn_bbox_loss_graph",
    "rpn_class_loss_graph", "rpn_graph", "smooth_l1_loss", "trim_zeros_graph",
]
