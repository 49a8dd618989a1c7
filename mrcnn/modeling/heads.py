"""Box/class head and mask head, applied to pooled ROIs; Matterport layer names.

Both heads take ROIs flattened over the batch, [B * N, pool, pool, depth]; the caller reshapes
back to [B, N, ...]. (Matterport wrapped each layer in TimeDistributed; the weights are the same.)
"""

from __future__ import annotations

import keras
from keras import layers, ops

from mrcnn.modeling.backbone import BatchNorm


@keras.saving.register_keras_serializable(package="mrcnn")
class WholeInputConv2D(layers.Conv2D):
    """A "valid" Conv2D whose kernel spans its whole input, computed as one matrix product.

    Same weights, names and output [N, 1, 1, filters] as Conv2D (Matterport's mrcnn_class_conv1),
    but TensorFlow's CPU gradient of a 7x7 convolution over 7x7 inputs is ~70x slower than the
    equivalent matmul's, and it dominated the training step.
    """

    def call(self, inputs):
        flat = ops.reshape(inputs, (-1, int(self.kernel.shape[0] * self.kernel.shape[1]
                                            * self.kernel.shape[2])))
        outputs = ops.matmul(flat, ops.reshape(self.kernel, (-1, self.filters)))
        if self.use_bias:
            outputs = outputs + self.bias
        return ops.reshape(outputs, (-1, 1, 1, self.filters))


def build_classifier_head(num_classes: int, pool_size: int, depth: int, fc_size: int = 1024,
                          frozen_bn: bool = True) -> keras.Model:
    """Pooled [R, pool, pool, depth] -> (logits [R, C], probs [R, C], deltas [R, C, 4])."""
    pooled = keras.Input(shape=(pool_size, pool_size, depth), name="input_pooled_rois")
    x = WholeInputConv2D(fc_size, pool_size, padding="valid", name="mrcnn_class_conv1")(pooled)
    x = BatchNorm(frozen=frozen_bn, name="mrcnn_class_bn1")(x)
    x = layers.Activation("relu")(x)
    x = WholeInputConv2D(fc_size, 1, name="mrcnn_class_conv2")(x)
    x = BatchNorm(frozen=frozen_bn, name="mrcnn_class_bn2")(x)
    x = layers.Activation("relu")(x)
    shared = layers.Reshape((fc_size,), name="pool_squeeze")(x)
    # Outputs in float32 under mixed precision (16-bit scores would tie when ranked).
    logits = layers.Dense(num_classes, name="mrcnn_class_logits", dtype="float32")(shared)
    probs = layers.Activation("softmax", name="mrcnn_class", dtype="float32")(logits)
    x = layers.Dense(num_classes * 4, name="mrcnn_bbox_fc", dtype="float32")(shared)
    deltas = layers.Reshape((num_classes, 4), name="mrcnn_bbox", dtype="float32")(x)
    return keras.Model(pooled, [logits, probs, deltas], name="mrcnn_classifier_head")


def build_mask_head(num_classes: int, pool_size: int, depth: int, conv_size: int = 256,
                    frozen_bn: bool = True, class_agnostic: bool = False) -> keras.Model:
    """Pooled [R, pool, pool, depth] -> per-class mask probabilities [R, 2*pool, 2*pool, C].

    class_agnostic: ``mrcnn_mask`` predicts one mask for every class, repeated over the C
    channels (every consumer still reads its class's channel).
    """
    pooled = keras.Input(shape=(pool_size, pool_size, depth), name="input_pooled_mask_rois")
    x = pooled
    for i in range(1, 5):
        x = layers.Conv2D(conv_size, 3, padding="same", name=f"mrcnn_mask_conv{i}")(x)
        x = BatchNorm(frozen=frozen_bn, name=f"mrcnn_mask_bn{i}")(x)
        x = layers.Activation("relu")(x)
    x = layers.Conv2DTranspose(conv_size, 2, strides=2, activation="relu", name="mrcnn_mask_deconv")(x)
    masks = layers.Conv2D(1 if class_agnostic else num_classes, 1, activation="sigmoid",
                          name="mrcnn_mask", dtype="float32")(x)
    if class_agnostic:
        masks = layers.Concatenate(axis=-1, name="mrcnn_mask_classes", dtype="float32")(
            [masks] * num_classes)
    return keras.Model(pooled, masks, name="mrcnn_mask_head")
