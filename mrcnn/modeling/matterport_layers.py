"""Matterport's graph layers: their constructors (from a Config) and list-input call convention.

Each subclasses our layer and only translates: ``ProposalLayer(proposal_count, nms_threshold,
config=config)([rpn_probs, rpn_bbox, anchors])`` works as in Matterport's ``model.py``, with
the same outputs and frames. Our network builds the parent layers from explicit arguments.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from mrcnn.modeling import box_ops, detection, detection_targets, proposal, roi_align

PACKAGE = "mrcnn.matterport"
META_IMAGE_SHAPE = slice(4, 6)
META_WINDOW = slice(7, 11)


def _image_shape(image_meta) -> tf.Tensor:
    """(height, width) of the molded images, from the first image meta (Matterport's choice)."""
    return tf.cast(image_meta[0, META_IMAGE_SHAPE], tf.int32)


def _first_anchors(anchors) -> tf.Tensor:
    """Matterport feeds anchors broadcast over the batch, [B, A, 4]; ours are [A, 4]."""
    return anchors[0] if len(anchors.shape) == 3 else anchors


@keras.saving.register_keras_serializable(package=PACKAGE)
class ProposalLayer(proposal.ProposalLayer):
    """Matterport's ProposalLayer: call([rpn_probs, rpn_bbox, anchors]) -> proposals [B, N, 4]."""

    def __init__(self, proposal_count, nms_threshold, config=None, **kwargs):
        if config is not None:
            kwargs.setdefault("pre_nms_limit", config.PRE_NMS_LIMIT)
            kwargs.setdefault("rpn_bbox_std_dev", np.ravel(config.RPN_BBOX_STD_DEV).tolist())
        super().__init__(proposal_count, nms_threshold, **kwargs)

    def call(self, inputs):
        rpn_probs, rpn_bbox, anchors = inputs
        return super().call(rpn_probs, rpn_bbox, _first_anchors(anchors))


@keras.saving.register_keras_serializable(package=PACKAGE)
class PyramidROIAlign(roi_align.PyramidROIAlign):
    """Matterport's PyramidROIAlign: call([boxes, image_meta, P2, P3, P4, P5])."""

    def call(self, inputs):
        boxes, image_meta, *feature_maps = inputs
        return super().call(boxes, _image_shape(image_meta), list(feature_maps))


@keras.saving.register_keras_serializable(package=PACKAGE)
class DetectionTargetLayer(detection_targets.DetectionTargetLayer):
    """Matterport's DetectionTargetLayer(config): call([proposals, gt_class_ids, gt_boxes,
    gt_masks]) -> rois, target_class_ids, target_bbox, target_mask [B, TRAIN_ROIS, h, w].

    Our parent adds the GT boxes to the proposals and fills every free slot with negatives;
    the mask targets are zero-padded from its positives to TRAIN_ROIS_PER_IMAGE, as Matterport's.
    """

    def __init__(self, config=None, **kwargs):
        if config is not None:
            kwargs.setdefault("rois_per_image", config.TRAIN_ROIS_PER_IMAGE)
            kwargs.setdefault("positive_ratio", config.ROI_POSITIVE_RATIO)
            kwargs.setdefault("bbox_std_dev", np.ravel(config.BBOX_STD_DEV).tolist())
            kwargs.setdefault("mask_shape", list(config.MASK_SHAPE))
            kwargs.setdefault("use_mini_mask", config.USE_MINI_MASK)
        super().__init__(**kwargs)

    def call(self, inputs):
        rois, class_ids, deltas, masks = super().call(*inputs)
        padding = self.rois_per_image - self.max_positives
        return rois, class_ids, deltas, tf.pad(masks, [(0, 0), (0, padding), (0, 0), (0, 0)])


@keras.saving.register_keras_serializable(package=PACKAGE)
class DetectionLayer(detection.DetectionLayer):
    """Matterport's DetectionLayer(config): call([rois, mrcnn_class, mrcnn_bbox, image_meta])
    -> [B, DETECTION_MAX_INSTANCES, (y1, x1, y2, x2, class_id, score)] normalized."""

    def __init__(self, config=None, **kwargs):
        if config is not None:
            kwargs.setdefault("max_instances", config.DETECTION_MAX_INSTANCES)
            kwargs.setdefault("min_confidence", config.DETECTION_MIN_CONFIDENCE)
            kwargs.setdefault("nms_threshold", config.DETECTION_NMS_THRESHOLD)
            kwargs.setdefault("bbox_std_dev", np.ravel(config.BBOX_STD_DEV).tolist())
        super().__init__(**kwargs)

    def call(self, inputs):
        rois, probs, deltas, image_meta = inputs
        windows = box_ops.norm_boxes(tf.cast(image_meta[:, META_WINDOW], tf.float32),
                                     _image_shape(image_meta))
        return super().call(rois, probs, deltas, windows)
