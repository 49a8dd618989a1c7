"""The U-Net family as Keras 3 functional models, built through :func:`build_unet`.

Every model takes raw pixels ``(B, H, W, C)`` in 0..255 (float), normalizes them with an
:class:`InputNormalization` layer whose statistics are saved with the model, and returns one
foreground map ``(B, H', W', 1)``: probabilities (sigmoid, float32) or logits (``logits=True``).
``H' = H`` except for the classic U-Net with ``padding="valid"`` (see :func:`classic_valid_output_size`).
U-Net++ with ``deep_supervision=True`` returns one such map per head (``ds_1`` .. ``ds_depth``);
:func:`build_inference_model` turns it into a single-output model ("accurate" or "fast").
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from unet.blocks import (
    PACKAGE,
    SpatialSizeCheck,
    attention_gate,
    conv_unit,
    residual_unit,
    upsample,
)
from unet.encoders import ENCODER_STRIDE, build_encoder, encoder_input_stats

ARCHITECTURES = ("classic", "improved", "residual", "attention", "unet++", "encoder")
ARCH_ALIASES = {"unetpp": "unet++", "nested": "unet++", "plain": "improved"}
INFERENCE_MODES = ("accurate", "fast")


@keras.saving.register_keras_serializable(package=PACKAGE)
class InputNormalization(layers.Layer):
    """``(x - mean) / std`` per channel, with ``mean``/``std`` stored as non-trainable weights.

    Input ``(B, H, W, C)`` raw pixels; output the same shape. Set the statistics after building
    with :func:`set_input_normalization` (they are saved in the ``.keras`` file).
    """

    def __init__(self, mean=None, std=None, **kwargs):
        super().__init__(**kwargs)
        self.initial_mean = None if mean is None else [float(v) for v in np.ravel(mean)]
        self.initial_std = None if std is None else [float(v) for v in np.ravel(std)]

    def build(self, input_shape):
        channels = input_shape[-1]
        mean = self.initial_mean or [0.0] * channels
        std = self.initial_std or [255.0] * channels
        if len(mean) != channels or len(std) != channels:
            raise ValueError(
                f"normalization needs {channels} means and stds; got {len(mean)} and {len(std)}"
            )
        self.mean = self.add_weight(
            shape=(channels,), initializer=keras.initializers.Constant(mean),
            trainable=False, name="mean",
        )
        self.std = self.add_weight(
            shape=(channels,), initializer=keras.initializers.Constant(std),
            trainable=False, name="std",
        )

    def call(self, inputs):
        inputs = keras.ops.cast(inputs, self.compute_dtype)
        return (inputs - self.mean) / self.std

    def get_config(self):
        return {**super().get_config(), "mean": self.initial_mean, "std": self.initial_std}


def set_input_normalization(model: keras.Model, mean, std) -> None:
    """Stores per-channel pixel ``mean`` and ``std`` (0..255 scale) in ``model``'s input layer."""
    layer = model.get_layer("input_normalization")
    channels = layer.mean.shape[0]
    mean = np.broadcast_to(np.asarray(mean, "float32"), (channels,))
    std = np.maximum(np.broadcast_to(np.asarray(std, "float32"), (channels,)), 1e-3)
    layer.mean.assign(mean)
    layer.std.assign(std)


def _classic_output_size_or_none(input_size: int, depth: int) -> int | None:
    size = input_size
    for _ in range(depth):
        size -= 4
        if size <= 0 or size % 2:
            return None
        size //= 2
    size -= 4
    for _ in range(depth):
        size = size * 2 - 4
    return size if size > 0 else None


def classic_valid_output_size(input_size: int, depth: int = 4) -> int:
    """Output side of the unpadded classic U-Net for an input side, or ValueError if invalid.

    Every 3x3 "valid" conv removes 2 px; each level needs an even size before pooling.
    The paper's 572 px input gives 388 px (depth 4).
    """
    size = _classic_output_size_or_none(input_size, depth)
    if size is None:
        raise ValueError(
            f"input size {input_size} is not valid for the unpadded U-Net of depth {depth}; "
            f"try {smallest_valid_input_size(input_size, depth)}"
        )
    return size


def smallest_valid_input_size(at_least: int, depth: int = 4) -> int:
    """Smallest input side >= ``at_least`` accepted by the unpadded classic U-Net."""
    size = max(at_least, 1)
    while _classic_output_size_or_none(size, depth) is None:
        size += 1
    return size


def _output_head(x, logits: bool, name: str, kernel_size: int = 1):
    """1-channel head in float32 (kept so under mixed precision): logits or sigmoid map."""
    x = layers.Conv2D(1, kernel_size, padding="same", dtype="float32", name=f"{name}_logits")(x)
    if logits:
        return x
    return layers.Activation("sigmoid", dtype="float32", name=name)(x)


def _plain_encoder(x, levels, unit):
    skips = []
    for level, filters in enumerate(levels[:-1]):
        x = unit(x, filters, f"enc{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    return unit(x, levels[-1], "bottleneck"), skips


def _unet_body(x, arch, levels, dropout, padding, upsampling):
    """Encoder-decoder of the classic, improved, residual and attention variants."""
    batch_norm = arch != "classic"

    def unit(tensor, filters, name):
        if arch == "residual":
            return residual_unit(tensor, filters, name, dropout=dropout)
        return conv_unit(
            tensor, filters, name, padding=padding, batch_norm=batch_norm, dropout=dropout
        )

    x, skips = _plain_encoder(x, levels, unit)
    for level in reversed(range(len(skips))):
        skip, filters = skips[level], levels[level]
        if arch == "attention":
            skip = attention_gate(skip, x, max(filters // 2, 1), f"att{level}")
        x = upsample(x, filters, f"dec{level}", mode=upsampling)
        if skip.shape[1] != x.shape[1]:  # unpadded convs: crop the skip to the decoder size
            crop_h, crop_w = skip.shape[1] - x.shape[1], skip.shape[2] - x.shape[2]
            skip = layers.Cropping2D(
                ((crop_h // 2, crop_h - crop_h // 2), (crop_w // 2, crop_w - crop_w // 2)),
                name=f"dec{level}_crop",
            )(skip)
        x = layers.Concatenate(name=f"dec{level}_concat")([skip, x])
        x = unit(x, filters, f"dec{level}")
    return x


def _unetpp_heads(x, levels, dropout, upsampling, logits, deep_supervision):
    """U-Net++ nodes X[i][j] (arXiv 1807.10165) and its top-row heads."""
    depth = len(levels) - 1
    nodes = [[None] * (depth + 1) for _ in range(depth + 1)]
    for i in range(depth + 1):
        source = x if i == 0 else layers.MaxPooling2D(2, name=f"pool{i - 1}")(nodes[i - 1][0])
        nodes[i][0] = conv_unit(source, levels[i], f"x{i}_0", dropout=dropout)
    for j in range(1, depth + 1):
        for i in range(depth + 1 - j):
            up = upsample(nodes[i + 1][j - 1], levels[i], f"x{i}_{j}", mode=upsampling)
            merged = layers.Concatenate(name=f"x{i}_{j}_concat")([*nodes[i][:j], up])
            nodes[i][j] = conv_unit(merged, levels[i], f"x{i}_{j}", dropout=dropout)
    if not deep_supervision:
        return _output_head(nodes[0][depth], logits, "mask")
    return [_output_head(nodes[0][j], logits, f"ds_{j}") for j in range(1, depth + 1)]


def _encoder_unet(x, encoder, input_shape, encoder_weights, base_filters, dropout, logits):
    encoder_model = build_encoder(encoder, input_shape, encoder_weights)
    *skips, x = encoder_model(x)
    decoder_filters = [base_filters * 2**k for k in range(len(skips), -1, -1)]
    for level, filters in enumerate(decoder_filters):
        x = layers.UpSampling2D(2, name=f"dec{level}_upsample")(x)
        if level < len(skips):
            x = layers.Concatenate(name=f"dec{level}_concat")([x, skips[-1 - level]])
        x = conv_unit(x, filters, f"dec{level}", dropout=dropout if level == 0 else 0.0)
    return _output_head(x, logits, "mask", kernel_size=3)


def _check_arguments(arch, input_shape, depth, padding, divisor):
    if len(input_shape) != 3 or input_shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"input_shape must be (height, width, channels) with 1, 3 or 4 channels; "
            f"got {input_shape}"
        )
    if not 1 <= depth <= 6:
        raise ValueError(f"depth must be between 1 and 6; got {depth}")
    if padding not in ("same", "valid"):
        raise ValueError(f"padding must be 'same' or 'valid'; got {padding!r}")
    if padding == "valid":
        if arch != "classic":
            raise ValueError(f"padding='valid' exists only for arch='classic'; got arch={arch!r}")
        if None in input_shape[:2]:
            raise ValueError("padding='valid' needs a fixed input size, e.g. (572, 572, 1)")
        for side in input_shape[:2]:
            classic_valid_output_size(side, depth)
        return
    for side in input_shape[:2]:
        if side is not None and side % divisor:
            raise ValueError(
                f"arch={arch!r} needs height and width divisible by {divisor}; got "
                f"{input_shape[:2]}. Use unet.pad_to_multiple or pick e.g. "
                f"{-(-side // divisor) * divisor}"
            )


def build_unet(
    arch: str = "improved",
    input_shape: tuple = (256, 256, 3),
    *,
    depth: int = 4,
    base_filters: int = 32,
    dropout: float | None = None,
    logits: bool = False,
    padding: str = "same",
    upsampling: str = "transpose",
    deep_supervision: bool = False,
    encoder: str = "resnet50",
    encoder_weights: str | None = None,
    name: str | None = None,
) -> keras.Model:
    """Builds a U-Net for binary segmentation.

    Args:
        arch: "classic" (Ronneberger 2015: no BatchNorm), "improved" (BatchNorm + Dropout),
            "residual", "attention" (Oktay gates on the skips), "unet++" or "encoder"
            (``keras.applications`` ``encoder`` with a U-Net decoder).
        input_shape: ``(height, width, channels)``; sides may be ``None``; channels 1, 3 or 4.
            Sides must be multiples of ``2**depth`` (32 for "encoder").
        depth: number of poolings (ignored by "encoder", which always has 5 strides).
        base_filters: filters of the first level, doubled per level ("encoder": of the last
            decoder block, doubled towards the bottleneck).
        dropout: Dropout after each conv unit; default 0.0 for "classic", 0.1 otherwise.
        logits: return logits instead of sigmoid probabilities.
        padding: "same", or "valid" for the unpadded classic U-Net (output smaller than input).
        upsampling: "transpose" (2x2 stride-2 conv, the paper's) or "upsampling" (nearest + 1x1).
        deep_supervision: U-Net++ only: one output per top-row node, named ``ds_1..ds_depth``.
        encoder: "resnet50", "mobilenetv2" or "efficientnetb0" (arch="encoder").
        encoder_weights: None or "imagenet" (downloaded by Keras; needs internet once).
    Returns:
        A ``keras.Model`` mapping raw 0..255 pixels ``(B, H, W, C)`` to ``(B, H', W', 1)``.
    """
    arch = ARCH_ALIASES.get(arch.lower(), arch.lower())
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown arch {arch!r}; expected one of {list(ARCHITECTURES)}")
    if deep_supervision and arch != "unet++":
        raise ValueError(f"deep_supervision exists only for arch='unet++'; got arch={arch!r}")
    input_shape = tuple(input_shape)
    divisor = ENCODER_STRIDE if arch == "encoder" else 2**depth
    _check_arguments(arch, input_shape, depth, padding, divisor)
    dropout = (0.0 if arch == "classic" else 0.1) if dropout is None else float(dropout)

    inputs = keras.Input(input_shape, name="image")
    x = inputs if padding == "valid" else SpatialSizeCheck(divisor, name="size_check")(inputs)
    if arch == "encoder":
        mean, std = encoder_input_stats(encoder, input_shape[-1])
        x = InputNormalization(mean, std, name="input_normalization")(x)
        outputs = _encoder_unet(
            x, encoder, input_shape, encoder_weights, base_filters, dropout, logits
        )
    else:
        x = InputNormalization(name="input_normalization")(x)
        levels = [base_filters * 2**level for level in range(depth + 1)]
        if arch == "unet++":
            outputs = _unetpp_heads(x, levels, dropout, upsampling, logits, deep_supervision)
        else:
            x = _unet_body(x, arch, levels, dropout, padding, upsampling)
            outputs = _output_head(x, logits, "mask")
    return keras.Model(inputs, outputs, name=name or f"unet_{arch.replace('++', 'pp')}")


def build_inference_model(
    model: keras.Model, mode: str = "accurate", head: int | None = None
) -> keras.Model:
    """Single-output view of a deep-supervision U-Net++ (shares its weights).

    ``mode="accurate"``: the average of all heads. ``mode="fast"``: head ``head`` (1-based,
    default the last) only; Keras keeps just the layers that head depends on, i.e. the network
    pruned to depth ``head`` (UNet++ L1..L4). A single-output model is returned unchanged.
    """
    if mode not in INFERENCE_MODES:
        raise ValueError(f"mode must be one of {INFERENCE_MODES}; got {mode!r}")
    outputs = model.outputs
    if len(outputs) == 1:
        return model
    if mode == "accurate":
        logits = model.get_layer(index=-1).name.endswith("_logits")
        average = layers.Average(name="mask_logits" if logits else "mask")(outputs)
        return keras.Model(model.input, average, name=f"{model.name}_accurate")
    head = len(outputs) if head is None else head
    if not 1 <= head <= len(outputs):
        raise ValueError(f"head must be between 1 and {len(outputs)}; got {head}")
    return keras.Model(model.input, outputs[head - 1], name=f"{model.name}_fast_l{head}")


def size_divisor(model: keras.Model) -> int:
    """The multiple that ``model``'s input height and width must be (1 when unconstrained)."""
    for layer in model.layers:
        if isinstance(layer, SpatialSizeCheck):
            return layer.divisor
    return 1
