"""Detection targets: sample ROIs from the proposals and build the heads' training targets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import keras
from keras import ops

from mrcnn.modeling import backend_ops, box_ops

if TYPE_CHECKING:
    import tensorflow as tf


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

    Which candidates fill the slots when there are more than slots is random. TensorFlow
    (:func:`backend_ops.uses_tensorflow_kernels`): one image at a time, ``tf.random.shuffle``
    of the positives and of the negatives (TensorFlow's global seed). Elsewhere: the whole batch
    at once in ``keras.ops`` with fixed shapes (``jax.jit``-able), the best random keys of the
    layer's ``keras.random.SeedGenerator`` (``seed``); its state is a non-trainable variable, so
    a stateless (JAX) training step draws new keys each step. The generator is made with the
    layer where it samples in ``keras.ops``: on TensorFlow, make the layer inside
    ``backend_ops.portable_ops()`` to call it there.
    """

    def __init__(self, rois_per_image: int, positive_ratio: float, bbox_std_dev: Sequence[float],
                 mask_shape: Sequence[int], use_mini_mask: bool, seed: int | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.rois_per_image = int(rois_per_image)
        self.positive_ratio = float(positive_ratio)
        self.bbox_std_dev = [float(v) for v in bbox_std_dev]
        self.mask_shape = [int(v) for v in mask_shape]
        self.use_mini_mask = bool(use_mini_mask)
        self.seed = seed
        # A variable: made only where the layer samples in keras.ops, so that on TensorFlow a
        # model holds the variables it always did, and a layer made inside a tf.function (as
        # Matterport's detection_targets_graph is) can be traced again.
        self.seed_generator = (None if backend_ops.uses_tensorflow_kernels()
                               else keras.random.SeedGenerator(seed))
        self.built = True  # nothing depends on the input shapes (stateless_call needs it built)

    @property
    def max_positives(self) -> int:
        return int(self.rois_per_image * self.positive_ratio)

    def call(self, proposals, gt_class_ids, gt_boxes, gt_masks):
        if not backend_ops.uses_tensorflow_kernels():
            outputs = self._portable_targets(proposals, gt_class_ids, gt_boxes, gt_masks)
            return tuple(ops.stop_gradient(o) for o in outputs)
        import tensorflow as tf

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
        """TensorFlow: one image's targets (data-dependent shapes, padded at the end)."""
        import tensorflow as tf

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

        masks = self._mask_targets(positive_rois, roi_gt_boxes, tf.gather(gt_masks, assignment),
                                   tf.range(tf.shape(positive_rois)[0]))

        rois = tf.concat([positive_rois, negative_rois], axis=0)
        padding = self.rois_per_image - tf.shape(rois)[0]
        rois = tf.pad(rois, [(0, padding), (0, 0)])
        class_ids = tf.pad(roi_gt_class_ids, [(0, self.rois_per_image - positive_count)])
        deltas = tf.pad(deltas, [(0, self.rois_per_image - positive_count), (0, 0)])
        masks = tf.pad(masks, [(0, self.max_positives - positive_count), (0, 0), (0, 0)])
        return rois, class_ids, deltas, masks

    def _portable_targets(self, proposals, gt_class_ids, gt_boxes, gt_masks) -> tuple:
        """keras.ops, fixed shapes: the targets of the whole batch (the class docstring's);
        G and the mask size h, w must be static."""
        gt_class_ids = ops.cast(gt_class_ids, "int32")
        gt_boxes = ops.cast(gt_boxes, "float32")
        is_gt, is_crowd = gt_class_ids > 0, gt_class_ids < 0  # [B, G]; 0 = padding
        candidates, usable = _candidates(proposals, gt_boxes, is_gt, self.rois_per_image)
        overlaps = box_ops.overlaps(candidates, gt_boxes)  # [B, N, G]
        roi_iou_max = ops.max(ops.where(is_gt[:, None], overlaps, 0.0), axis=-1)
        crowd_iou_max = ops.max(ops.where(is_crowd[:, None], overlaps, 0.0), axis=-1)
        chosen, filled, positive_slots = self._sample(
            usable & (roi_iou_max >= 0.5),
            usable & (roi_iou_max < 0.5) & (crowd_iou_max < 0.001))
        rois = ops.where(filled[..., None], backend_ops.batched_gather(candidates, chosen, 1), 0.0)

        # Positives fill the first slots, so their targets need the first max_positives only.
        positives = self.max_positives
        positive_slots = positive_slots[:, :positives]
        chosen_overlaps = backend_ops.batched_gather(overlaps, chosen[:, :positives], 1)
        # The best GT box of each (the first of equals, as TensorFlow's argmax).
        assignment = ops.cast(
            ops.argmax(ops.where(is_gt[:, None], chosen_overlaps, -1.0), axis=-1), "int32")
        # Slots without a positive get the unit box for ROI and GT: finite deltas and crops.
        unit = ops.convert_to_tensor([0.0, 0.0, 1.0, 1.0])
        keep = positive_slots[..., None]
        positive_rois = ops.reshape(ops.where(keep, rois[:, :positives], unit), (-1, 4))
        roi_gt_boxes = ops.reshape(
            ops.where(keep, backend_ops.batched_gather(gt_boxes, assignment, 1), unit), (-1, 4))
        class_ids = ops.where(positive_slots,
                              backend_ops.batched_gather(gt_class_ids, assignment, 1), 0)
        deltas = box_ops.box_refinement(positive_rois, roi_gt_boxes) / ops.convert_to_tensor(
            self.bbox_std_dev)
        deltas = ops.where(keep, ops.reshape(deltas, (-1, positives, 4)), 0.0)

        # Each image's masks stand in one list [B * G, h, w]: mask g of image b is b * G + g.
        count = gt_masks.shape[-1]
        masks = ops.reshape(ops.transpose(ops.cast(gt_masks, "float32"), (0, 3, 1, 2)),
                            (-1, *gt_masks.shape[1:3]))
        image_starts = ops.arange(ops.shape(assignment)[0], dtype="int32")[:, None] * count
        masks = self._mask_targets(positive_rois, roi_gt_boxes, masks,
                                   ops.reshape(image_starts + assignment, (-1,)))
        masks = ops.where(positive_slots[..., None, None],
                          ops.reshape(masks, (-1, positives, *self.mask_shape)), 0.0)
        padding = [(0, 0), (0, self.rois_per_image - positives)]
        return rois, ops.pad(class_ids, padding), ops.pad(deltas, [*padding, (0, 0)]), masks

    def _sample(self, positive, negative) -> tuple:
        """Random slots for the candidates positive, negative bool[B, N]: (the candidate of each
        slot int32[B, R], whether it holds one bool[B, R], whether a positive bool[B, R]).

        Up to max_positives positives with the largest random keys, then the negatives with the
        largest keys in the slots left.
        """
        if self.seed_generator is None:
            raise ValueError(f"{self.name} was made for TensorFlow's kernels and has no seed "
                             "generator for keras.ops sampling; make it inside "
                             "backend_ops.portable_ops() to call it there")
        slot_count, positives = self.rois_per_image, self.max_positives
        keys = keras.random.uniform(ops.shape(positive), seed=self.seed_generator)
        _, positive_order = ops.top_k(ops.where(positive, keys, -1.0), positives)
        _, negative_order = ops.top_k(ops.where(negative, keys, -1.0), slot_count)
        positive_count = ops.minimum(
            ops.sum(ops.cast(positive, "int32"), axis=1, keepdims=True), positives)
        negative_count = ops.minimum(ops.sum(ops.cast(negative, "int32"), axis=1, keepdims=True),
                                     slot_count - positive_count)
        slots = ops.arange(slot_count, dtype="int32")[None]
        positive_slots = slots < positive_count
        order = ops.cast(ops.concatenate([positive_order, negative_order], axis=1), "int32")
        source = ops.where(positive_slots, slots, positives + slots - positive_count)
        return (backend_ops.batched_gather(order, source, 1),
                slots < positive_count + negative_count, positive_slots)

    def _mask_targets(self, rois, roi_gt_boxes, masks, mask_indices):
        """Crop GT mask ``mask_indices[i]`` of masks [K, h, w] to rois[i] (rois, roi_gt_boxes
        [N, 4]) and resize to mask_shape, binarized: [N, mask_h, mask_w]."""
        boxes = rois
        if self.use_mini_mask:
            # Mini masks cover the GT box only: express the ROI in the GT box's frame.
            height = roi_gt_boxes[:, 2] - roi_gt_boxes[:, 0]
            width = roi_gt_boxes[:, 3] - roi_gt_boxes[:, 1]
            boxes = ops.stack([(rois[:, 0] - roi_gt_boxes[:, 0]) / height,
                               (rois[:, 1] - roi_gt_boxes[:, 1]) / width,
                               (rois[:, 2] - roi_gt_boxes[:, 0]) / height,
                               (rois[:, 3] - roi_gt_boxes[:, 1]) / width], axis=1)
        crops = backend_ops.crop_and_resize(ops.expand_dims(masks, -1), boxes, mask_indices,
                                            tuple(self.mask_shape))
        return ops.round(ops.squeeze(crops, -1))

    def get_config(self):
        return {
            **super().get_config(),
            "rois_per_image": self.rois_per_image,
            "positive_ratio": self.positive_ratio,
            "bbox_std_dev": self.bbox_std_dev,
            "mask_shape": self.mask_shape,
            "use_mini_mask": self.use_mini_mask,
            "seed": self.seed,
        }


def trim_zero_rows(boxes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Drop all-zero padding rows of boxes [N, 4]; returns (boxes, bool[N] kept)."""
    import tensorflow as tf

    non_zeros = tf.cast(tf.reduce_sum(tf.abs(boxes), axis=1), tf.bool)
    return tf.boolean_mask(boxes, non_zeros), non_zeros


def _candidates(proposals, gt_boxes, is_gt, min_count: int) -> tuple:
    """The proposals [B, P, 4] and then the GT boxes [B, G, 4] (normalized) as one candidate
    list [B, N, 4], zero rows appended to make N >= min_count; and which are real candidates
    bool[B, N]: non-zero proposals and the GT boxes of instances (is_gt bool[B, G])."""
    proposals = ops.cast(proposals, "float32")
    known = proposals.shape[1] is not None and gt_boxes.shape[1] is not None
    missing = min_count - (proposals.shape[1] + gt_boxes.shape[1] if known else 0)
    if missing > 0:
        proposals = ops.pad(proposals, [(0, 0), (0, missing), (0, 0)])
    usable = ops.concatenate([ops.any(ops.not_equal(proposals, 0.0), axis=-1), is_gt], axis=1)
    return ops.concatenate([proposals, gt_boxes], axis=1), usable
