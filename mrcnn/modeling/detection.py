"""Detection layer: classifier outputs + ROIs -> final per-class-NMS detections."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from mrcnn.modeling import box_ops


def nms_iou(boxes: tf.Tensor) -> tf.Tensor:
    """IoU matrix [N, N] of boxes [N, (y1, x1, y2, x2)] computed as TensorFlow's NMS kernel does.

    The same float32 operations in the same order (corners sorted, 0 for an empty box), so
    ``non_max_suppression_overlaps`` on it suppresses exactly what ``non_max_suppression`` would.
    """
    y_min = tf.minimum(boxes[:, 0], boxes[:, 2])
    x_min = tf.minimum(boxes[:, 1], boxes[:, 3])
    y_max = tf.maximum(boxes[:, 0], boxes[:, 2])
    x_max = tf.maximum(boxes[:, 1], boxes[:, 3])
    area = (y_max - y_min) * (x_max - x_min)
    height = tf.maximum(tf.minimum(y_max[:, None], y_max[None, :])
                        - tf.maximum(y_min[:, None], y_min[None, :]), 0.0)
    width = tf.maximum(tf.minimum(x_max[:, None], x_max[None, :])
                       - tf.maximum(x_min[:, None], x_min[None, :]), 0.0)
    intersection = height * width
    iou = intersection / (area[:, None] + area[None, :] - intersection)
    empty = (area[:, None] <= 0.0) | (area[None, :] <= 0.0)
    return tf.where(empty, tf.zeros_like(iou), iou)


@keras.saving.register_keras_serializable(package="mrcnn")
class DetectionLayer(keras.layers.Layer):
    """Refine ROIs with their class-specific deltas, drop background and low scores, apply
    per-class NMS and keep the ``max_instances`` best.

    Inputs: rois [B, N, 4] normalized; probs [B, N, C]; deltas [B, N, C, 4] (standardized);
    windows [B, 4] normalized (the image area inside the padding).
    Output: detections [B, max_instances, (y1, x1, y2, x2, class_id, score)], boxes normalized,
    sorted by score, zero-padded.
    """

    def __init__(self, max_instances: int, min_confidence: float, nms_threshold: float,
                 bbox_std_dev: Sequence[float], **kwargs):
        super().__init__(**kwargs)
        self.max_instances = int(max_instances)
        self.min_confidence = float(min_confidence)
        self.nms_threshold = float(nms_threshold)
        self.bbox_std_dev = [float(v) for v in bbox_std_dev]

    def call(self, rois, probs, deltas, windows):
        detections = tf.map_fn(
            lambda args: self._refine(*args),
            (rois, probs, deltas, tf.cast(windows, rois.dtype)),
            fn_output_signature=tf.TensorSpec([self.max_instances, 6], rois.dtype),
        )
        return detections

    def _refine(self, rois, probs, deltas, window):
        class_ids = tf.argmax(probs, axis=1, output_type=tf.int32)
        index = tf.stack([tf.range(tf.shape(probs)[0]), class_ids], axis=1)
        scores = tf.gather_nd(probs, index)
        class_deltas = tf.gather_nd(deltas, index) * tf.constant(self.bbox_std_dev, deltas.dtype)
        boxes = box_ops.clip_boxes(box_ops.apply_box_deltas(rois, class_deltas), window)

        keep = class_ids > 0
        if self.min_confidence:
            keep &= scores >= self.min_confidence
        keep = tf.where(keep)[:, 0]
        boxes, scores, class_ids = (tf.gather(t, keep) for t in (boxes, scores, class_ids))

        # Per-class NMS in one call: the IoU of boxes of different classes is set to 0. The
        # IoU is TensorFlow's NMS formula on the boxes themselves (shifting each class to its own
        # region of the plane instead costs float32 precision: at class 80 the IoU moves by up to
        # 4e-3 and pairs near DETECTION_NMS_THRESHOLD flip). The first max_instances the greedy
        # pass keeps are Matterport's best max_instances of its per-class NMS results; they are
        # put in Matterport's order: by score, ties by ROI index.
        same_class = tf.equal(class_ids[:, None], class_ids[None, :])
        overlaps = tf.where(same_class, nms_iou(tf.cast(boxes, tf.float32)), 0.0)
        selected = tf.sort(tf.image.non_max_suppression_overlaps(
            overlaps, tf.cast(scores, tf.float32), self.max_instances, self.nms_threshold))
        order = tf.argsort(tf.gather(scores, selected), direction="DESCENDING", stable=True)
        selected = tf.gather(selected, order)
        boxes, scores, class_ids = (tf.gather(t, selected) for t in (boxes, scores, class_ids))
        detections = tf.concat(
            [boxes, tf.cast(class_ids, boxes.dtype)[:, None], scores[:, None]], axis=1
        )
        padding = self.max_instances - tf.shape(detections)[0]
        return tf.pad(detections, [(0, padding), (0, 0)])

    def get_config(self):
        return {
            **super().get_config(),
            "max_instances": self.max_instances,
            "min_confidence": self.min_confidence,
            "nms_threshold": self.nms_threshold,
            "bbox_std_dev": self.bbox_std_dev,
        }
