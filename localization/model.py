"""``build_localizer``: one box and one class per image, as a serializable Keras model.

Input: images ``[B, H, W, C]`` (C = ``input_shape[-1]``: 3 for RGB, or 1 grey, 4 RGB+NIR / RGB-D,
any count), float pixel values in ``[0, 255]`` already resized to ``input_shape``. The per-channel
mean/std of the training set live inside the model (a ``Normalization`` layer), so a saved
``.keras`` file needs no separate preprocessing state. Every backbone, pretrained or not, reads
these standardized channels (not its ``keras.applications`` ``preprocess_input``), and an extra
channel is standardized by its own statistics like the RGB ones: at its mean it reads 0.
Outputs (a dict):
    ``"box"``:   ``[B, 4]`` normalized ``(xmin, ymin, xmax, ymax)`` in ``[0, 1]`` with
                 ``xmin <= xmax`` and ``ymin <= ymax``.
    ``"class"``: ``[B, num_classes]`` logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from localization.backbones import (
    APPLICATION_STAGES,
    BACKBONES,
    build_application_features,
    build_fpn_pooled_features,
    build_small_cnn_features,
)

# Layers whose names start with these prefixes form the head groups (see optimizer.py).
CLASS_HEAD_PREFIX = "class_head"
BOX_HEAD_PREFIX = "box_head"

# Builds and trains a step in about a second on 2 CPU cores; tests and smoke runs use it.
TINY_PRESET = {
    "input_shape": (32, 32, 3),
    "small_cnn_filters": (8, 16),
    "class_head_units": (32, 16),
    "class_head_dropout": (0.0, 0.0),
    "box_head_units": (32, 16),
    "box_head_dropout": (0.0, 0.0),
    "feature_dropout": 0.0,
    "fpn_filters": 16,
}


@keras.saving.register_keras_serializable(package="localization")
class SortBoxCorners(keras.layers.Layer):
    """Orders each coordinate pair so ``[B, 4]`` boxes satisfy ``xmin <= xmax``, ``ymin <= ymax``.

    Sorting keeps gradients for both corners (unlike clipping), and GIoU needs valid boxes.
    """

    def call(self, boxes):
        x_low = ops.minimum(boxes[:, 0:1], boxes[:, 2:3])
        x_high = ops.maximum(boxes[:, 0:1], boxes[:, 2:3])
        y_low = ops.minimum(boxes[:, 1:2], boxes[:, 3:4])
        y_high = ops.maximum(boxes[:, 1:2], boxes[:, 3:4])
        return ops.concatenate([x_low, y_low, x_high, y_high], axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape


def _dense_head(features, prefix: str, units: Sequence[int], dropouts: Sequence[float],
                activation: str, batchnorm_layers: int):
    """Dense -> [BN] -> activation -> [Dropout] per width, in each dense head."""
    if len(units) != len(dropouts):
        raise ValueError(f"{prefix}: got {len(units)} widths but {len(dropouts)} dropout rates; "
                         "expected one dropout rate per width")
    x = features
    for index, (width, rate) in enumerate(zip(units, dropouts, strict=True), start=1):
        use_bn = index <= batchnorm_layers
        x = keras.layers.Dense(width, use_bias=not use_bn, kernel_initializer="he_normal",
                               name=f"{prefix}_dense{index}")(x)
        if use_bn:
            x = keras.layers.BatchNormalization(name=f"{prefix}_bn{index}")(x)
        x = keras.layers.Activation(activation, name=f"{prefix}_{activation}{index}")(x)
        if rate > 0:
            x = keras.layers.Dropout(rate, name=f"{prefix}_dropout{index}")(x)
    return x


def build_localizer(
    backbone: str = "small_cnn",
    num_classes: int = 2,
    input_shape: tuple[int, int, int] = (256, 256, 3),
    *,
    backbone_weights: str | None = None,
    use_fpn: bool = False,
    fpn_filters: int = 256,
    small_cnn_filters: Sequence[int] = (32, 64, 128, 256),
    feature_dropout: float = 0.5,
    class_head_units: Sequence[int] = (1024, 512, 256),
    class_head_dropout: Sequence[float] = (0.5, 0.3, 0.0),
    box_head_units: Sequence[int] = (1024, 512, 256, 128),
    box_head_dropout: Sequence[float] = (0.5, 0.0, 0.0, 0.0),
    head_batchnorm_layers: int = 2,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    name: str = "localizer",
) -> keras.Model:
    """Build the localizer (defaults: the small CNN and the dense heads below).

    Args:
        backbone: ``"small_cnn"`` (conv blocks trained from scratch), ``"resnet50"`` or
            ``"mobilenetv2"``.
        num_classes: number of classes (>= 2); the class head outputs logits.
        input_shape: ``(height, width, channels)``, channels >= 1 (3: RGB);
            ``keras.applications`` backbones need >= 32 px.
        backbone_weights: for application backbones, ``"imagenet"``, ``None`` or a weights path
            (of the RGB application: other channel counts get conv1 adapted, see
            :func:`localization.backbones.build_application_features`).
        use_fpn: pool an FPN neck over the last three feature maps instead of the last map only.
        mean, std: one statistic per channel of the training images (0-255 scale), stored in the
            model; default 127.5 for every channel.
        class_head_units / box_head_units and their ``*_dropout``: widths and dropout rates of the
            two dense heads; the first ``head_batchnorm_layers`` layers of each head use BatchNorm.
    Returns:
        A functional ``keras.Model`` with outputs ``{"box": [B, 4], "class": [B, num_classes]}``.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; expected one of {list(BACKBONES)}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if len(input_shape) != 3 or input_shape[2] is None or input_shape[2] < 1:
        raise ValueError(f"input_shape must be (height, width, channels) with channels >= 1, "
                         f"got {tuple(input_shape)}")
    if backbone in APPLICATION_STAGES and min(input_shape[:2]) < 32:
        raise ValueError(f"{backbone} needs inputs of at least 32x32 px, got {input_shape[:2]}")
    channels = int(input_shape[2])
    mean = (127.5,) * channels if mean is None else mean
    std = (127.5,) * channels if std is None else std
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise ValueError(f"mean and std need {channels} values (one per channel) with std > 0, "
                         f"got mean={mean}, std={std}")

    images = keras.Input(shape=tuple(input_shape), name="image")
    variance = [float(value) ** 2 for value in std]
    x = keras.layers.Normalization(mean=[float(v) for v in mean], variance=variance,
                                   name="input_standardization")(images)
    if backbone == "small_cnn":
        features = build_small_cnn_features(x, tuple(small_cnn_filters))
    else:
        features = build_application_features(x, backbone, backbone_weights)
    if use_fpn:
        pooled = build_fpn_pooled_features(features, fpn_filters)
    else:
        pooled = keras.layers.GlobalAveragePooling2D(name="backbone_pool")(features[-1])
    if feature_dropout > 0:
        pooled = keras.layers.Dropout(feature_dropout, name="backbone_dropout")(pooled)

    class_features = _dense_head(pooled, CLASS_HEAD_PREFIX, class_head_units, class_head_dropout,
                                 "silu", head_batchnorm_layers)
    logits = keras.layers.Dense(num_classes, name=f"{CLASS_HEAD_PREFIX}_logits")(class_features)
    box_features = _dense_head(pooled, BOX_HEAD_PREFIX, box_head_units, box_head_dropout,
                               "relu", head_batchnorm_layers)
    raw_boxes = keras.layers.Dense(4, activation="sigmoid", name=f"{BOX_HEAD_PREFIX}_sigmoid")(
        box_features
    )
    boxes = SortBoxCorners(name=f"{BOX_HEAD_PREFIX}_corners")(raw_boxes)
    return keras.Model(images, {"box": boxes, "class": logits}, name=name)


def get_input_size(model: keras.Model) -> tuple[int, int]:
    """``(height, width)`` the model expects."""
    height, width = model.inputs[0].shape[1:3]
    return int(height), int(width)


def get_input_channels(model: keras.Model) -> int:
    """The channel count the model expects (3: RGB)."""
    return int(model.inputs[0].shape[-1])
