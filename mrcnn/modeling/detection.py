"""Detection layer: classifier outputs + ROIs -> final per-class-NMS detections."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from mrcnn.modeling import backend_ops, box_ops


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
        # The best class by top-k, not argmax: Keras's argmax adds bit operations on
        # TensorFlow that ONNX has no op for.
        scores, class_ids = backend_ops.top_k(probs, 1)
        scores, class_ids = scores[..., 0], ops.cast(class_ids[..., 0], "int32")
        class_deltas = backend_ops.batched_gather(deltas, class_ids, batch_dims=2)
        class_deltas = class_deltas * ops.convert_to_tensor(self.bbox_std_dev, deltas.dtype)
        windows = ops.cast(windows, rois.dtype)[:, None, :]
        boxes = box_ops.clip_boxes(box_ops.apply_box_deltas(rois, class_deltas), windows)

        candidates = class_ids > 0
        if self.min_confidence:
            candidates = candidates & (scores >= self.min_confidence)
        # Matterport's per-class NMS + top-k (see backend_ops.per_class_non_max_suppression).
        boxes, classes, scores, valid = backend_ops.per_class_non_max_suppression(
            boxes, scores, class_ids, candidates, probs.shape[-1], self.max_instances,
            self.nms_threshold)
        detections = ops.concatenate(
            [boxes, ops.cast(classes, "float32")[..., None], scores[..., None]], axis=-1)
        return ops.cast(ops.where(valid[..., None], detections, 0.0), rois.dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "max_instances": self.max_instances,
            "min_confidence": self.min_confidence,
            "nms_threshold": self.nms_threshold,
            "bbox_std_dev": self.bbox_std_dev,
        }
