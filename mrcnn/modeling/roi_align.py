"""Multi-level ROI Align on the feature pyramid (Matterport's PyramidROIAlign)."""

from __future__ import annotations

import keras
import tensorflow as tf


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
        batch = tf.shape(boxes)[0]
        num_boxes = tf.shape(boxes)[1]
        pooled = self._pool(tf.reshape(boxes, [-1, 4]), tf.repeat(tf.range(batch), num_boxes),
                            image_shape, feature_maps)
        channels = feature_maps[0].shape[-1]
        return tf.reshape(pooled, [batch, num_boxes, *self.pool_shape, channels])

    def _pool(self, boxes, box_batch_index, image_shape, feature_maps):
        # A 224x224 ROI (in pixels of the image) maps to P4.
        y1, x1, y2, x2 = tf.unstack(boxes, axis=1)
        image_area = tf.cast(image_shape[0] * image_shape[1], boxes.dtype)
        roi_size = tf.sqrt(tf.maximum((y2 - y1) * (x2 - x1), 0.0))
        level = tf.math.log(roi_size / (224.0 / tf.sqrt(image_area))) / tf.math.log(2.0)
        level = tf.minimum(5, tf.maximum(2, 4 + tf.cast(tf.round(level), tf.int32)))

        pooled, order = [], []
        for i, feature_map in enumerate(feature_maps):
            index = tf.where(tf.equal(level, i + 2))[:, 0]
            level_boxes = tf.stop_gradient(tf.gather(boxes, index))
            level_batch = tf.stop_gradient(tf.gather(box_batch_index, index))
            pooled.append(
                tf.image.crop_and_resize(
                    feature_map, level_boxes, level_batch, self.pool_shape, method="bilinear"
                )
            )
            order.append(index)
        pooled = tf.concat(pooled, axis=0)
        order = tf.cast(tf.concat(order, axis=0), tf.int32)
        # Undo the grouping by level: scatter each pooled ROI back to its position.
        return tf.scatter_nd(tf.expand_dims(order, 1), pooled,
                             tf.concat([tf.shape(boxes)[:1], tf.shape(pooled)[1:]], 0))

    def get_config(self):
        return {**super().get_config(), "pool_shape": self.pool_shape}
