"""Detection layer: classifier outputs + ROIs -> final per-class-NMS detections."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from mrcnn.modeling import box_ops


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

        # Per-class NMS by TensorFlow's combined NMS: each class's NMS on the boxes themselves,
        # then the best max_instances over all classes by score (Matterport's per-class NMS +
        # top-k). Shifting each class to its own region of the plane for one plain NMS call
        # instead costs float32 precision: at class 80 the IoU moves by up to 4e-3 and pairs near
        # DETECTION_NMS_THRESHOLD flip. Each ROI scores in its own class's column only.
        num_classes = tf.shape(probs)[1]
        columns = tf.one_hot(class_ids - 1, num_classes - 1, on_value=True, off_value=False)
        below = tf.constant(-2.0, tf.float32)
        per_class = tf.where(columns, tf.cast(scores, tf.float32)[:, None], below)
        boxes, scores, classes, valid = tf.image.combined_non_max_suppression(
            tf.cast(boxes, tf.float32)[None, :, None, :], per_class[None],
            self.max_instances, self.max_instances, iou_threshold=self.nms_threshold,
            score_threshold=-1.0, pad_per_class=False, clip_boxes=False)
        detections = tf.concat([boxes[0], classes[0, :, None] + 1.0, scores[0, :, None]], axis=1)
        found = tf.range(self.max_instances) < valid[0]
        return tf.cast(tf.where(found[:, None], detections, 0.0), rois.dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "max_instances": self.max_instances,
            "min_confidence": self.min_confidence,
            "nms_threshold": self.nms_threshold,
            "bbox_std_dev": self.bbox_std_dev,
        }
