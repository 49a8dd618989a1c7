"""Region proposal network head, shared by all pyramid levels (Matterport's ``rpn_model``)."""

from __future__ import annotations

import keras
from keras import layers, ops


def build_rpn_model(anchors_per_location: int, depth: int, conv_size: int = 512,
                    anchor_stride: int = 1) -> keras.Model:
    """Feature map [B, H, W, depth] -> (logits [B, A, 2], probs [B, A, 2], deltas [B, A, 4]).

    A = H * W * anchors_per_location / anchor_stride**2, ordered cell by cell then anchor by
    anchor, matching :func:`mrcnn.geometry.anchors.generate_anchors`. Deltas are standardized
    ``(dy, dx, log(dh), log(dw))`` (divide by nothing; multiply by RPN_BBOX_STD_DEV to use).
    """
    feature_map = keras.Input(shape=(None, None, depth), name="input_rpn_feature_map")
    shared = layers.Conv2D(conv_size, 3, padding="same", activation="relu", strides=anchor_stride,
                           name="rpn_conv_shared")(feature_map)
    # Outputs in float32 under mixed precision: 16-bit scores would tie in the top-k ranking.
    x = layers.Conv2D(2 * anchors_per_location, 1, name="rpn_class_raw", dtype="float32")(shared)
    logits = layers.Reshape((-1, 2), dtype="float32")(x)
    probs = layers.Activation("softmax", name="rpn_class_xxx", dtype="float32")(logits)
    x = layers.Conv2D(4 * anchors_per_location, 1, name="rpn_bbox_pred", dtype="float32")(shared)
    deltas = layers.Reshape((-1, 4), dtype="float32")(x)
    return keras.Model(feature_map, [logits, probs, deltas], name="rpn_model")


def run_rpn(rpn_model: keras.Model, feature_maps: list) -> tuple:
    """Apply the shared RPN to every level and concatenate: (logits, probs, deltas) over all anchors."""
    outputs = [rpn_model(p) for p in feature_maps]
    return tuple(ops.concatenate([o[i] for o in outputs], axis=1) for i in range(3))
