"""Detection targets: sample ROIs from the proposals and build the heads' training targets."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from mrcnn.modeling import box_ops


@keras.saving.register_keras_serializable(package="mrcnn")
class DetectionTargetLayer(keras.layers.Layer):
    """Subsample proposals into positives and negatives and compute their targets.

    The GT boxes are added to the proposals. Positives (IoU >= 0.5 with a GT box) come first, at most ``rois_per_image *
    positive_ratio`` of them; negatives (IoU < 0.5, not inside a crowd box) fill the rest of the
    ``rois_per_image`` slots, so an image without instances still trains the classifier on
    background. Because positives come first, the mask head only needs the first
    ``max_positives`` slots.

    Inputs: proposals [B, P, 4] normalized (zero-padded); gt_class_ids [B, G] (negative = crowd,
    0 = padding); gt_boxes [B, G, 4] normalized; gt_masks [B, h, w, G] (mini masks if
    ``use_mini_mask``).
    Outputs: rois [B, R, 4], target_class_ids [B, R] int32, target_deltas [B, R, 4]
    (standardized by bbox_std_dev), target_masks [B, max_positives, mask_h, mask_w] in {0, 1},
    with R = rois_per_image; unused slots are zero.
    """

    def __init__(self, rois_per_image: int, positive_ratio: float, bbox_std_dev: Sequence[float],
                 mask_shape: Sequence[int], use_mini_mask: bool, **kwargs):
        super().__init__(**kwargs)
        self.rois_per_image = int(rois_per_image)
        self.positive_ratio = float(positive_ratio)
        self.bbox_std_dev = [float(v) for v in bbox_std_dev]
        self.mask_shape = [int(v) for v in mask_shape]
        self.use_mini_mask = bool(use_mini_mask)

    @property
    def max_positives(self) -> int:
        return int(self.rois_per_image * self.positive_ratio)

    def call(self, proposals, gt_class_ids, gt_boxes, gt_masks):
        outputs = tf.map_fn(
            lambda args: self._targets_for_image(*args),
            (proposals, tf.cast(gt_class_ids, tf.int32), tf.cast(gt_boxes, tf.float32),
             tf.cast(gt_masks, tf.float32)),
            fn_output_signature=(
                tf.TensorSpec([self.rois_per_image, 4], tf.float32),
                tf.TensorSpec([self.rois_per_image], tf.int32),
                tf.TensorSpec([self.rois_per_image, 4], tf.float32),
                tf.TensorSpec([self.max_positives, *self.mask_shape], tf.float32),
            ),
            # One image at a time: the ROI sampling's random shuffles would otherwise draw in
            # thread order, and a seeded run could not be repeated.
            parallel_iterations=1,
        )
        return tuple(tf.stop_gradient(o) for o in outputs)

    def _targets_for_image(self, proposals, gt_class_ids, gt_boxes, gt_masks):
        proposals, _ = trim_zero_rows(proposals)
        # Padding rows have class id 0. (Their boxes are not zero once normalized, so trimming
        # zero boxes, as Matterport does, would keep them as degenerate "GT" boxes.)
        instances = tf.not_equal(gt_class_ids, 0)
        gt_boxes = tf.boolean_mask(gt_boxes, instances)
        gt_class_ids = tf.boolean_mask(gt_class_ids, instances)
        gt_masks = tf.boolean_mask(tf.transpose(gt_masks, [2, 0, 1]), instances)  # [G, h, w]

        # Crowd boxes: proposals that overlap them are neither positives nor negatives.
        is_crowd = gt_class_ids < 0
        crowd_boxes = tf.boolean_mask(gt_boxes, is_crowd)
        gt_boxes = tf.boolean_mask(gt_boxes, ~is_crowd)
        gt_masks = tf.boolean_mask(gt_masks, ~is_crowd)
        gt_class_ids = tf.boolean_mask(gt_class_ids, ~is_crowd)

        # The GT boxes join the proposals (as in torchvision and detectron2): the heads get
        # well-placed positives from the first step, even while the RPN is still untrained.
        proposals = tf.concat([proposals, gt_boxes], axis=0)
        overlaps = box_ops.overlaps(proposals, gt_boxes)
        roi_iou_max = tf.reduce_max(tf.concat([overlaps, tf.zeros_like(overlaps[:, :1])], 1), axis=1)
        crowd_overlaps = box_ops.overlaps(proposals, crowd_boxes)
        crowd_iou_max = tf.reduce_max(
            tf.concat([crowd_overlaps, tf.zeros_like(crowd_overlaps[:, :1])], 1), axis=1
        )

        positive_indices = tf.where(roi_iou_max >= 0.5)[:, 0]
        negative_indices = tf.where((roi_iou_max < 0.5) & (crowd_iou_max < 0.001))[:, 0]
        positive_indices = tf.random.shuffle(positive_indices)[: self.max_positives]
        positive_count = tf.shape(positive_indices)[0]
        negative_indices = tf.random.shuffle(negative_indices)[: self.rois_per_image - positive_count]

        positive_rois = tf.gather(proposals, positive_indices)
        negative_rois = tf.gather(proposals, negative_indices)
        positive_overlaps = tf.gather(overlaps, positive_indices)
        # A sentinel column keeps argmax defined when the image has no GT box (no positives).
        sentinel = -tf.ones([tf.shape(positive_overlaps)[0], 1])
        assignment = tf.argmax(tf.concat([positive_overlaps, sentinel], axis=1), axis=1)
        roi_gt_boxes = tf.gather(gt_boxes, assignment)
        roi_gt_class_ids = tf.gather(gt_class_ids, assignment)
        deltas = box_ops.box_refinement(positive_rois, roi_gt_boxes) / tf.constant(self.bbox_std_dev)

        masks = self._mask_targets(positive_rois, roi_gt_boxes, tf.gather(gt_masks, assignment))

        rois = tf.concat([positive_rois, negative_rois], axis=0)
        padding = self.rois_per_image - tf.shape(rois)[0]
        rois = tf.pad(rois, [(0, padding), (0, 0)])
        class_ids = tf.pad(roi_gt_class_ids, [(0, self.rois_per_image - positive_count)])
        deltas = tf.pad(deltas, [(0, self.rois_per_image - positive_count), (0, 0)])
        masks = tf.pad(masks, [(0, self.max_positives - positive_count), (0, 0), (0, 0)])
        return rois, class_ids, deltas, masks

    def _mask_targets(self, rois, roi_gt_boxes, roi_masks):
        """Crop each positive's GT mask to its ROI and resize to mask_shape, binarized."""
        boxes = rois
        if self.use_mini_mask:
            # Mini masks cover the GT box only: express the ROI in the GT box's frame.
            y1, x1, y2, x2 = tf.unstack(rois, axis=1)
            gy1, gx1, gy2, gx2 = tf.unstack(roi_gt_boxes, axis=1)
            gh, gw = gy2 - gy1, gx2 - gx1
            boxes = tf.stack([(y1 - gy1) / gh, (x1 - gx1) / gw, (y2 - gy1) / gh, (x2 - gx1) / gw], 1)
        box_ids = tf.range(tf.shape(rois)[0])
        masks = tf.image.crop_and_resize(tf.expand_dims(roi_masks, -1), boxes, box_ids, self.mask_shape)
        return tf.round(tf.squeeze(masks, -1))

    def get_config(self):
        return {
            **super().get_config(),
            "rois_per_image": self.rois_per_image,
            "positive_ratio": self.positive_ratio,
            "bbox_std_dev": self.bbox_std_dev,
            "mask_shape": self.mask_shape,
            "use_mini_mask": self.use_mini_mask,
        }


def trim_zero_rows(boxes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Drop all-zero padding rows of boxes [N, 4]; returns (boxes, bool[N] kept)."""
    non_zeros = tf.cast(tf.reduce_sum(tf.abs(boxes), axis=1), tf.bool)
    return tf.boolean_mask(boxes, non_zeros), non_zeros
