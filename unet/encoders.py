"""``keras.applications`` encoders for the U-Net: skip taps, input statistics, channel adaptation.

An encoder is exposed as one nested ``keras.Model`` (layer name ``"encoder"``) whose outputs are
the skip features at strides 2, 4, 8, 16 and the bottleneck at stride 32, so it can be frozen
with ``model.get_layer("encoder").trainable = False``. ImageNet weights are supported for 3-channel
inputs directly and for 1 or 4 channels by adapting the first convolution's kernel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import keras
import numpy as np

from vision_common.first_conv import adapt_first_kernel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncoderSpec:
    """How to build one ``keras.applications`` encoder and where to tap its features."""

    constructor: str  # attribute of keras.applications
    skip_layers: tuple[str, ...]  # outputs at strides 2, 4, 8, 16
    bottleneck_layer: str  # output at stride 32
    first_conv: str  # the conv that sees the (normalized) input channels
    # Per-channel statistics on raw 0..255 RGB pixels that the ImageNet weights expect.
    pixel_mean: tuple[float, float, float]
    pixel_std: tuple[float, float, float]
    # Caffe-style weights were trained on BGR input; their first kernel is flipped to read RGB.
    bgr_weights: bool = False


ENCODERS: dict[str, EncoderSpec] = {
    "resnet50": EncoderSpec(
        "ResNet50",
        ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out"),
        "conv5_block3_out",
        "conv1_conv",
        (123.68, 116.779, 103.939),
        (1.0, 1.0, 1.0),
        bgr_weights=True,
    ),
    "mobilenetv2": EncoderSpec(
        "MobileNetV2",
        ("block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu",
         "block_13_expand_relu"),
        "out_relu",
        "Conv1",
        (127.5, 127.5, 127.5),
        (127.5, 127.5, 127.5),
    ),
    # EfficientNet carries its own Rescaling + Normalization layers, so it takes raw pixels.
    "efficientnetb0": EncoderSpec(
        "EfficientNetB0",
        ("block2a_expand_activation", "block3a_expand_activation", "block4a_expand_activation",
         "block6a_expand_activation"),
        "top_activation",
        "stem_conv",
        (0.0, 0.0, 0.0),
        (1.0, 1.0, 1.0),
    ),
}

ENCODER_STRIDE = 32


def get_encoder_spec(name: str) -> EncoderSpec:
    """Returns the spec of encoder ``name`` (case-insensitive) or raises ValueError."""
    key = name.lower()
    if key not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; expected one of {sorted(ENCODERS)}")
    return ENCODERS[key]


def encoder_input_stats(name: str, channels: int) -> tuple[list[float], list[float]]:
    """Per-channel ``(mean, std)`` on raw 0..255 pixels for ``channels`` input channels.

    3 channels: the encoder's RGB statistics; 1 or 4: the RGB average for every channel.
    """
    spec = get_encoder_spec(name)
    if channels == 3:
        return list(spec.pixel_mean), list(spec.pixel_std)
    return [float(np.mean(spec.pixel_mean))] * channels, [float(np.mean(spec.pixel_std))] * channels


def transfer_encoder_weights(source: keras.Model, target: keras.Model, spec: EncoderSpec) -> None:
    """Copies ``source`` (3-channel) weights into ``target`` (any channel count), layer by layer.

    The first conv kernel goes through :func:`adapt_first_kernel`; per-channel vectors of length
    3 (EfficientNet's internal Normalization) become their mean repeated for every channel.
    """
    channels = target.input_shape[-1]
    # Match weighted layers by position: auto-generated names differ between two builds.
    source_layers = [layer for layer in source.layers if layer.weights]
    target_layers = [layer for layer in target.layers if layer.weights]
    assert len(source_layers) == len(target_layers), "encoders differ in structure"
    for source_layer, layer in zip(source_layers, target_layers, strict=True):
        values = []
        for source_value, weight in zip(source_layer.get_weights(), layer.weights, strict=True):
            if layer.name == spec.first_conv and source_value.ndim == 4:
                source_value = adapt_first_kernel(
                    source_value, channels, reverse_rgb=spec.bgr_weights
                )
            elif source_value.shape != tuple(weight.shape):
                source_value = np.full(weight.shape, source_value.mean(), source_value.dtype)
            values.append(source_value)
        layer.set_weights(values)


def build_encoder(
    name: str, input_shape: tuple, weights: str | None = None
) -> keras.Model:
    """Builds the multi-output encoder ``(B, H, W, C) -> [s2, s4, s8, s16, bottleneck_s32]``.

    ``weights``: ``None`` (random init) or ``"imagenet"`` (downloads through Keras when online).
    Input: pixels normalized with :func:`encoder_input_stats`.
    """
    if weights not in (None, "imagenet"):
        raise ValueError(f"encoder_weights must be None or 'imagenet'; got {weights!r}")
    spec = get_encoder_spec(name)
    constructor = getattr(keras.applications, spec.constructor)
    channels = input_shape[-1]
    if weights is None or channels == 3:
        backbone = constructor(include_top=False, weights=weights, input_shape=input_shape)
        if weights is not None and spec.bgr_weights:
            layer = backbone.get_layer(spec.first_conv)
            kernel, *rest = layer.get_weights()
            layer.set_weights([adapt_first_kernel(kernel, 3, reverse_rgb=True), *rest])
    else:
        logger.info("adapting %s ImageNet weights to %d input channels", name, channels)
        source = constructor(
            include_top=False, weights=weights, input_shape=(*input_shape[:2], 3)
        )
        backbone = constructor(include_top=False, weights=None, input_shape=input_shape)
        transfer_encoder_weights(source, backbone, spec)
    taps = [backbone.get_layer(layer).output for layer in (*spec.skip_layers, spec.bottleneck_layer)]
    return keras.Model(backbone.input, taps, name="encoder")
