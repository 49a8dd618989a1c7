"""Feature extractors for the localizer: a small CNN and ``keras.applications`` nets.

Each ``build_*`` function takes a standardized image tensor ``[B, H, W, C]`` (any channel count
C) and returns a list of feature maps ``[B, h_i, w_i, C_i]``, ordered from the finest to the
coarsest stride. Pretrained RGB weights reach a C-channel application backbone through
:func:`vision_common.first_conv.adapt_first_kernel` (the one helper the U-Net uses too).
"""

from __future__ import annotations

import logging

import keras

from vision_common.first_conv import copy_weights_adapting_first_conv

logger = logging.getLogger(__name__)

BACKBONES = ("small_cnn", "resnet50", "mobilenetv2")

# Stage outputs (strides 8, 16, 32) of the keras.applications models.
APPLICATION_STAGES = {
    "resnet50": ("conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
    "mobilenetv2": ("block_6_expand_relu", "block_13_expand_relu", "out_relu"),
}
APPLICATION_CONSTRUCTORS = {
    "resnet50": keras.applications.ResNet50,
    "mobilenetv2": keras.applications.MobileNetV2,
}
# The convolution that sees the input channels.
APPLICATION_FIRST_CONV = {"resnet50": "conv1_conv", "mobilenetv2": "Conv1"}


def build_small_cnn_features(images, filters: tuple[int, ...] = (32, 64, 128, 256)) -> list:
    """A small CNN: per block Conv3x3-BN-ReLU, Conv3x3/2-BN-ReLU, MaxPool 2 (He-normal init).

    Each block divides the resolution by 4 (pooling uses ``same`` padding so 1x1 maps survive).
    Returns one feature map per block.
    """
    features = []
    x = images
    for index, width in enumerate(filters, start=1):
        prefix = f"backbone_block{index}"
        for conv_index, stride in ((1, 1), (2, 2)):
            x = keras.layers.Conv2D(
                width, 3, strides=stride, padding="same", use_bias=False,
                kernel_initializer="he_normal", name=f"{prefix}_conv{conv_index}",
            )(x)
            x = keras.layers.BatchNormalization(name=f"{prefix}_bn{conv_index}")(x)
            x = keras.layers.ReLU(name=f"{prefix}_relu{conv_index}")(x)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"{prefix}_pool")(x)
        features.append(x)
    return features


def build_application_features(images, name: str, weights: str | None) -> list:
    """Stride 8/16/32 feature maps of a ``keras.applications`` model (``resnet50``, ``mobilenetv2``).

    Args:
        images: standardized ``[B, H, W, C]`` tensor with static H, W (>= 32), any C.
        weights: ``"imagenet"`` (downloads once into ``~/.keras``), ``None`` or a weights file
            of the 3-channel application. For C != 3 they load into an RGB build whose weights
            are then copied, the first conv adapted: C=1 sums the RGB kernels, C=2 gives that sum
            to channel 0 and zeros to channel 1, C>3 keeps RGB and starts the extra channels at
            zero (the backbone answers as the RGB one whatever they hold).
    """
    if name not in APPLICATION_STAGES:
        raise ValueError(f"unknown application backbone {name!r}; expected one of "
                         f"{sorted(APPLICATION_STAGES)}")
    input_shape = tuple(images.shape[1:])
    constructor = APPLICATION_CONSTRUCTORS[name]
    channels = input_shape[-1]
    if weights is None or channels == 3:
        application = constructor(include_top=False, weights=weights, input_shape=input_shape)
    else:
        rgb = constructor(include_top=False, weights=weights, input_shape=(*input_shape[:2], 3))
        application = constructor(include_top=False, weights=None, input_shape=input_shape)
        copy_weights_adapting_first_conv(rgb, application, APPLICATION_FIRST_CONV[name])
        logger.info("%s: conv1 adapted from 3 to %d channels", name, channels)
    outputs = [application.get_layer(stage).output for stage in APPLICATION_STAGES[name]]
    extractor = keras.Model(application.inputs, outputs, name=f"backbone_{name}")
    return list(extractor(images))


def build_fpn_pooled_features(features: list, filters: int = 256):
    """FPN neck over the last three maps (P3-P5 style), each pooled, then concatenated.

    Lateral 1x1 convs to ``filters`` channels, top-down nearest upsampling and addition, a 3x3
    smoothing conv per level, global average pooling per level. Returns ``[B, levels * filters]``.
    """
    levels = features[-3:]
    laterals = [
        keras.layers.Conv2D(filters, 1, name=f"fpn_lateral{index}")(feature)
        for index, feature in enumerate(levels)
    ]
    merged = [laterals[-1]]
    for index in range(len(laterals) - 2, -1, -1):
        target = laterals[index]
        upsampled = keras.layers.Resizing(
            target.shape[1], target.shape[2], interpolation="nearest",
            name=f"fpn_upsample{index}",
        )(merged[0])
        merged.insert(0, keras.layers.Add(name=f"fpn_merge{index}")([target, upsampled]))
    pooled = []
    for index, level in enumerate(merged):
        smoothed = keras.layers.Conv2D(
            filters, 3, padding="same", activation="relu", name=f"fpn_smooth{index}"
        )(level)
        pooled.append(keras.layers.GlobalAveragePooling2D(name=f"fpn_pool{index}")(smoothed))
    if len(pooled) == 1:
        return pooled[0]
    return keras.layers.Concatenate(name="fpn_concat")(pooled)
