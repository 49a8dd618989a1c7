"""ResNet backbone (C2..C5) with Matterport's layer names, and the BatchNorm it uses.

Layer names (``conv1``, ``bn_conv1``, ``res2a_branch2a``, ``bn2a_branch2a``, ...) are the ``.h5``
weight contract with Matterport's files: do not rename them.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

PACKAGE = "mrcnn"


@keras.saving.register_keras_serializable(package=PACKAGE)
class BatchNorm(layers.BatchNormalization):
    """BatchNormalization that can be frozen: ``frozen=True`` always uses the moving statistics.

    Batches of 1-2 large images give poor batch statistics, so Mask R-CNN freezes BN by default
    (Config.TRAIN_BN = False). Gamma and beta stay trainable unless the layer itself is frozen.
    """

    def __init__(self, frozen: bool = False, **kwargs):
        kwargs.setdefault("epsilon", 1e-3)
        super().__init__(**kwargs)
        self.frozen = frozen

    def call(self, inputs, training=None, mask=None):
        if self.frozen:
            training = False
        return super().call(inputs, training=training, mask=mask)

    def get_config(self):
        return {**super().get_config(), "frozen": self.frozen}


def bottleneck_block(x, filters: Sequence[int], stage: int, block: str, strides: int,
                     projection: bool, frozen_bn: bool, kernel_size: int = 3,
                     use_bias: bool = True):
    """One bottleneck block; ``projection`` adds the 1x1 shortcut conv (Matterport conv_block).

    Without projection it is Matterport's identity_block (``strides`` must then be 1).
    """
    conv_base = f"res{stage}{block}_branch"
    bn_base = f"bn{stage}{block}_branch"
    f1, f2, f3 = filters
    shortcut = x
    x = layers.Conv2D(f1, 1, strides=strides, name=conv_base + "2a", use_bias=use_bias)(x)
    x = BatchNorm(frozen=frozen_bn, name=bn_base + "2a")(x)
    x = layers.Activation("relu")(x)
    x = layers.Conv2D(f2, kernel_size, padding="same", name=conv_base + "2b",
                      use_bias=use_bias)(x)
    x = BatchNorm(frozen=frozen_bn, name=bn_base + "2b")(x)
    x = layers.Activation("relu")(x)
    x = layers.Conv2D(f3, 1, name=conv_base + "2c", use_bias=use_bias)(x)
    x = BatchNorm(frozen=frozen_bn, name=bn_base + "2c")(x)
    if projection:
        shortcut = layers.Conv2D(f3, 1, strides=strides, name=conv_base + "1",
                                 use_bias=use_bias)(shortcut)
        shortcut = BatchNorm(frozen=frozen_bn, name=bn_base + "1")(shortcut)
    x = layers.Add()([x, shortcut])
    return layers.Activation("relu", name=f"res{stage}{block}_out")(x)


def build_resnet(
    stage_blocks: Sequence[int] = (3, 4, 23, 3),
    width: int = 64,
    channels: int = 3,
    frozen_bn: bool = True,
    name: str = "resnet",
) -> keras.Model:
    """ResNet feature extractor: image [B, H, W, channels] -> [C2, C3, C4, C5].

    C2..C5 have strides 4, 8, 16, 32 and ``4 * width * 2**i`` channels. Matterport's ResNet-50 is
    ``stage_blocks=(3, 4, 6, 3)``, ResNet-101 ``(3, 4, 23, 3)``, both with ``width=64``.
    """
    image = keras.Input(shape=(None, None, channels), name="input_image")
    return keras.Model(image, resnet_stages(image, stage_blocks, width, frozen_bn)[1:],
                       name=name)


def resnet_stages(image, stage_blocks: Sequence[int], width: int = 64, frozen_bn: bool = True,
                  stage5: bool = True) -> list:
    """Apply the ResNet layers to ``image``: [C1, C2, C3, C4, C5] (C5 None without stage5)."""
    x = layers.ZeroPadding2D(3)(image)
    x = layers.Conv2D(width, 7, strides=2, name="conv1")(x)
    x = BatchNorm(frozen=frozen_bn, name="bn_conv1")(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    outputs = [x]
    for stage_index, num_blocks in enumerate(stage_blocks if stage5 else stage_blocks[:3]):
        stage = stage_index + 2
        inner = width * 2**stage_index
        filters = (inner, inner, 4 * inner)
        for block_index in range(num_blocks):
            x = bottleneck_block(
                x,
                filters,
                stage,
                chr(ord("a") + block_index),
                strides=(1 if stage == 2 else 2) if block_index == 0 else 1,
                projection=block_index == 0,
                frozen_bn=frozen_bn,
            )
        outputs.append(x)
    return outputs if stage5 else [*outputs, None]
