"""Proposal layer: RPN scores and deltas + anchors -> non-max-suppressed ROIs."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from mrcnn.modeling import backend_ops, box_ops


@keras.saving.register_keras_serializable(package="mrcnn")
class ProposalLayer(keras.layers.Layer):
    """Select the top ``pre_nms_limit`` anchors by foreground score, refine them, clip them to
    the image, and keep ``proposal_count`` after NMS.

    Inputs: rpn_probs [B, A, 2], rpn_deltas [B, A, 4] (standardized), anchors [A, 4] (normalized).
    Output: proposals [B, proposal_count, (y1, x1, y2, x2)] normalized, zero-padded.
    """

    def __init__(self, proposal_count: int, nms_threshold: float, pre_nms_limit: int,
                 rpn_bbox_std_dev: Sequence[float], **kwargs):
        super().__init__(**kwargs)
        self.proposal_count = int(proposal_count)
        self.nms_threshold = float(nms_threshold)
        self.pre_nms_limit = int(pre_nms_limit)
        self.rpn_bbox_std_dev = [float(v) for v in rpn_bbox_std_dev]

    def call(self, rpn_probs, rpn_deltas, anchors):
        return self.stages(rpn_probs, rpn_deltas, anchors)["proposals"]

    def stages(self, rpn_probs, rpn_deltas, anchors) -> dict:
        """Every intermediate of ``call`` under Matterport's tensor names (for ``run_graph``).

        K = min(pre_nms_limit, A): ``pre_nms_anchors`` [B, K, 4] (the top-K anchors by score),
        ``refined_anchors`` [B, K, 4] (deltas applied), ``refined_anchors_clipped`` [B, K, 4],
        ``rpn_non_max_suppression`` int32[B, proposal_count] (rows of the clipped anchors that
        NMS kept, -1 padded) and ``proposals`` [B, proposal_count, 4]; all normalized.
        """
        scores = rpn_probs[:, :, 1]
        deltas = rpn_deltas * ops.convert_to_tensor(self.rpn_bbox_std_dev, rpn_deltas.dtype)
        count = ops.shape(anchors)[0]  # a tensor only in a TensorFlow graph of unknown shape
        k = (min(self.pre_nms_limit, count) if isinstance(count, int)
             else ops.minimum(self.pre_nms_limit, count))
        scores, top = backend_ops.top_k(scores, k)
        deltas = backend_ops.batched_gather(deltas, top, batch_dims=1)
        pre_nms_anchors = ops.take(ops.cast(anchors, deltas.dtype), top, axis=0)
        refined = box_ops.apply_box_deltas(pre_nms_anchors, deltas)
        boxes = box_ops.clip_boxes(refined,
                                   ops.convert_to_tensor([0.0, 0.0, 1.0, 1.0], refined.dtype))
        kept = backend_ops.non_max_suppression_padded(boxes, scores, self.proposal_count,
                                                      self.nms_threshold)
        proposals = backend_ops.batched_gather(boxes, ops.maximum(kept, 0), batch_dims=1)
        proposals = ops.where((kept >= 0)[..., None], proposals, 0.0)
        return {"pre_nms_anchors": pre_nms_anchors, "refined_anchors": refined,
                "refined_anchors_clipped": boxes, "rpn_non_max_suppression": kept,
                "proposals": proposals}

    def get_config(self):
        return {
            **super().get_config(),
            "proposal_count": self.proposal_count,
            "nms_threshold": self.nms_threshold,
            "pre_nms_limit": self.pre_nms_limit,
            "rpn_bbox_std_dev": self.rpn_bbox_std_dev,
        }
