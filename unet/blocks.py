"""Building blocks shared by the U-Net family: conv units, residual units, attention gates.

Every block is a function that wires standard ``keras.layers`` into a functional graph, so the
models made of them save and reload from ``.keras`` files without custom objects. The one custom
layer (:class:`SpatialSizeCheck`) is registered under the package ``unet``. Tensors are channels-last ``(batch, height, width, channels)``.
"""

from __future__ import annotations

import keras
from keras import layers

PACKAGE = "unet"


@keras.saving.register_keras_serializable(package=PACKAGE)
class SpatialSizeCheck(layers.Layer):
    """Identity layer that rejects images whose height or width is not a multiple of ``divisor``.

    Input and output: ``(batch, height, width, channels)``. The check runs whenever the spatial
    size is known when the layer is called (eager calls, and graphs traced with a fixed size).
    """

    def __init__(self, divisor: int, **kwargs):
        super().__init__(**kwargs)
        self.divisor = int(divisor)

    def call(self, inputs):
        height, width = inputs.shape[1], inputs.shape[2]
        for size in (height, width):
            if size is not None and size % self.divisor:
                raise ValueError(
                    f"U-Net input height and width must be multiples of {self.divisor}; got "
                    f"{height}x{width}. Pad the image with unet.pad_to_multiple(image, "
                    f"{self.divisor}) and crop the prediction back with unet.crop_to_shape."
                )
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "divisor": self.divisor}


def conv_unit(
    x,
    filters: int,
    name: str,
    *,
    padding: str = "same",
    batch_norm: bool = True,
    dropout: float = 0.0,
    activation: str = "relu",
):
    """Two 3x3 convolutions (each optionally followed by BatchNorm), then optional Dropout.

    ``(B, H, W, C) -> (B, H', W', filters)`` with ``H' = H`` for ``padding="same"`` and
    ``H' = H - 4`` for ``padding="valid"`` (the original paper).
    """
    for index in (1, 2):
        x = layers.Conv2D(
            filters,
            3,
            padding=padding,
            use_bias=not batch_norm,
            kernel_initializer="he_normal",
            name=f"{name}_conv{index}",
        )(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn{index}")(x)
        x = layers.Activation(activation, name=f"{name}_act{index}")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def residual_unit(x, filters: int, name: str, *, dropout: float = 0.0, activation: str = "relu"):
    """Pre-activation-free residual unit: two conv-BN, plus a 1x1 projection shortcut.

    ``(B, H, W, C) -> (B, H, W, filters)``; the shortcut is projected only when ``C != filters``.
    """
    shortcut = x
    if x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.Activation(activation, name=f"{name}_act1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    y = layers.Activation(activation, name=f"{name}_out")(y)
    if dropout > 0:
        y = layers.Dropout(dropout, name=f"{name}_dropout")(y)
    return y


def attention_gate(skip, gating, inter_channels: int, name: str):
    """Additive attention gate of Oktay et al. (arXiv 1804.03999), grid-attention variant.

    ``skip``: encoder features ``(B, H, W, C)``; ``gating``: coarser decoder features
    ``(B, H/2, W/2, G)``. As in the official code, ``theta`` brings ``skip`` to the gating grid
    with a 2x2 stride-2 conv (no bias), ``phi`` is a 1x1 conv on ``gating``, then
    ``alpha = sigmoid(psi(relu(theta + phi)))`` is upsampled bilinearly to ``(H, W)`` and
    multiplies ``skip``; a 1x1 conv + BatchNorm transforms the result. Returns ``(B, H, W, C)``.
    The attention map is the layer named ``{name}_alpha``.
    """
    theta = layers.Conv2D(inter_channels, 2, strides=2, use_bias=False, name=f"{name}_theta")(skip)
    phi = layers.Conv2D(inter_channels, 1, name=f"{name}_phi")(gating)
    joint = layers.Add(name=f"{name}_add")([theta, phi])
    joint = layers.Activation("relu", name=f"{name}_relu")(joint)
    psi = layers.Conv2D(1, 1, name=f"{name}_psi")(joint)
    alpha = layers.Activation("sigmoid", name=f"{name}_sigmoid")(psi)
    alpha = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_alpha")(alpha)
    gated = layers.Multiply(name=f"{name}_multiply")([skip, alpha])
    gated = layers.Conv2D(skip.shape[-1], 1, use_bias=False, name=f"{name}_out")(gated)
    return layers.BatchNormalization(name=f"{name}_out_bn")(gated)


def upsample(x, filters: int, name: str, *, mode: str = "transpose"):
    """Doubles the spatial size: 2x2 stride-2 transposed conv, or nearest upsampling + 1x1 conv.

    ``(B, H, W, C) -> (B, 2H, 2W, filters)``.
    """
    if mode == "transpose":
        return layers.Conv2DTranspose(filters, 2, strides=2, name=f"{name}_upconv")(x)
    if mode == "upsampling":
        x = layers.UpSampling2D(2, name=f"{name}_upsample")(x)
        return layers.Conv2D(filters, 1, name=f"{name}_upconv")(x)
    raise ValueError(f"upsampling mode must be 'transpose' or 'upsampling'; got {mode!r}")
