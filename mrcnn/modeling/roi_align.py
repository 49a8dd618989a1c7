"""Multi-level ROI Align on the feature pyramid (Matterport's PyramidROIAlign)."""

from __future__ import annotations

import keras
from keras import ops

from mrcnn.modeling import backend_ops


@keras.saving.register_keras_serializable(package="mrcnn")
class PyramidROIAlign(keras.layers.Layer):
    """Pool each ROI from the pyramid level that suits its size (FPN paper, eq. 1).

    Inputs: boxes [B, N, (y1, x1, y2, x2)] normalized; image_shape [2] (height, width) of the
    molded image in pixels; feature_maps [P2, P3, P4, P5], each [B, h, w, C].
    Output: [B, N, pool_height, pool_width, C], in the order of ``boxes``.
    With ``box_batch_index`` int32[N] (the image of each box), boxes are flat [N, 4] and the
    output is [N, pool_height, pool_width, C].
    """

    def __init__(self, pool_shape: tuple[int, int], **kwargs):
        super().__init__(**kwargs)
        self.pool_shape = tuple(int(v) for v in pool_shape)

    def call(self, boxes, image_shape, feature_maps, box_batch_index=None):
        if box_batch_index is not None:  # flat boxes of any images
            return self._pool(boxes, box_batch_index, image_shape, feature_maps)
        batch, num_boxes = ops.shape(boxes)[0], ops.shape(boxes)[1]
        pooled = self._pool(ops.reshape(boxes, (-1, 4)),
                            ops.repeat(ops.arange(batch, dtype="int32"), num_boxes),
                            image_shape, feature_maps)
        channels = feature_maps[0].shape[-1]
        return ops.reshape(pooled, (-1, num_boxes, *self.pool_shape, channels))

    def _pool(self, boxes, box_batch_index, image_shape, feature_maps):
        # A 224x224 ROI (in pixels of the image) maps to P4.
        y1, x1, y2, x2 = (boxes[:, i] for i in range(4))
        image_area = ops.cast(image_shape[0] * image_shape[1], boxes.dtype)
        roi_size = ops.sqrt(ops.maximum((y2 - y1) * (x2 - x1), 0.0))
        level = ops.log(roi_size / (224.0 / ops.sqrt(image_area))) / ops.log(2.0)
        level = ops.minimum(5, ops.maximum(2, 4 + ops.cast(ops.round(level), "int32")))
        return backend_ops.pyramid_crop_and_resize(
            feature_maps, ops.stop_gradient(boxes), ops.stop_gradient(box_batch_index),
            level - 2, self.pool_shape)

    def get_config(self):
        return {**super().get_config(), "pool_shape": self.pool_shape}
