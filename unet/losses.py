"""Segmentation losses for binary masks, as serializable ``keras.losses.Loss`` subclasses.

Shapes: ``y_true`` and ``y_pred`` are ``(B, H, W, 1)``; ``y_true`` in {0, 1}; ``y_pred`` holds
probabilities, or logits with ``from_logits=True``. Every loss returns one value per image
``(B,)`` that Keras averages over the batch. Region terms (Dice, Tversky) are computed per image
by default (``per_image=True``); with ``per_image=False`` they are pooled over the whole batch
(the value is then the same for every image).

Tversky naming follows the paper (Abraham & Khan, arXiv 1810.07842): ``alpha`` weights FALSE
NEGATIVES and ``beta`` false positives. ``keras.losses.Tversky`` and smp use the opposite names.
"""

from __future__ import annotations

import keras
from keras import ops

from unet.blocks import PACKAGE

EPSILON = 1e-7


def _as_probabilities(y_true, y_pred, from_logits: bool):
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, "float32")
    if len(y_true.shape) == 3:
        y_true = ops.expand_dims(y_true, -1)
    pred_shape, true_shape = tuple(y_pred.shape[1:]), tuple(y_true.shape[1:])
    if None not in pred_shape and None not in true_shape and pred_shape != true_shape:
        raise ValueError(
            f"targets of shape {true_shape} do not match predictions of shape {pred_shape}; "
            "for the unpadded classic U-Net crop the targets with unet.center_crop"
        )
    y_pred = ops.cast(y_pred, "float32")
    probabilities = ops.sigmoid(y_pred) if from_logits else y_pred
    return y_true, y_pred, probabilities


def _image_sum(x, per_image: bool):
    """Sums over pixels: ``(B, H, W, 1) -> (B,)``, or the batch total repeated B times."""
    sums = ops.sum(x, axis=(1, 2, 3))
    if per_image:
        return sums
    return ops.ones_like(sums) * ops.sum(sums)


def binary_crossentropy_map(y_true, y_pred, from_logits: bool):
    """Per-pixel BCE ``(B, H, W)`` (probabilities clipped to [1e-7, 1 - 1e-7])."""
    return keras.losses.binary_crossentropy(y_true, y_pred, from_logits=from_logits)


def compute_soft_dice(y_true, probabilities, smooth: float, per_image: bool = True):
    """Soft Dice ``(2 sum(y p) + s) / (sum y + sum p + s)`` per image, shape ``(B,)``."""
    intersection = _image_sum(y_true * probabilities, per_image)
    total = _image_sum(y_true, per_image) + _image_sum(probabilities, per_image)
    return (2.0 * intersection + smooth) / (total + smooth + EPSILON)


class _SegmentationLoss(keras.losses.Loss):
    """Holds the options every loss here shares; subclasses implement ``compute``."""

    def __init__(self, from_logits=False, smooth=1.0, per_image=True, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.from_logits = bool(from_logits)
        self.smooth = float(smooth)
        self.per_image = bool(per_image)

    def call(self, y_true, y_pred):
        y_true, y_pred, probabilities = _as_probabilities(y_true, y_pred, self.from_logits)
        return self.compute(y_true, y_pred, probabilities)

    def get_config(self):
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "smooth": self.smooth,
            "per_image": self.per_image,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class BinaryCrossentropyLoss(_SegmentationLoss):
    """Mean per-pixel binary cross-entropy of each image."""

    def __init__(self, from_logits=False, name="bce", **kwargs):
        super().__init__(from_logits=from_logits, name=name, **kwargs)

    def compute(self, y_true, y_pred, probabilities):
        return ops.mean(binary_crossentropy_map(y_true, y_pred, self.from_logits), axis=(1, 2))


@keras.saving.register_keras_serializable(package=PACKAGE)
class DiceLoss(_SegmentationLoss):
    """``1 - soft Dice``. With ``smooth=0`` it equals ``keras.losses.dice(axis=(1, 2, 3))``."""

    def __init__(self, from_logits=False, smooth=1.0, per_image=True, name="dice_loss", **kwargs):
        super().__init__(from_logits, smooth, per_image, name=name, **kwargs)

    def compute(self, y_true, y_pred, probabilities):
        return 1.0 - compute_soft_dice(y_true, probabilities, self.smooth, self.per_image)


@keras.saving.register_keras_serializable(package=PACKAGE)
class CombinedLoss(_SegmentationLoss):
    """``bce_weight * BCE + dice_weight * (1 - Dice)``; weights 1 and 1 give "BCE + Dice"."""

    def __init__(self, bce_weight=1.0, dice_weight=1.0, from_logits=False, smooth=1.0,
                 per_image=True, name="combined_loss", **kwargs):
        super().__init__(from_logits, smooth, per_image, name=name, **kwargs)
        self.bce_weight = float(bce_weight)
        self.dice_weight = float(dice_weight)

    def pixel_weights(self, y_true):
        """Per-pixel BCE weights ``(B, H, W)``; uniform here."""
        return ops.ones_like(y_true[..., 0])

    def compute(self, y_true, y_pred, probabilities):
        weights = self.pixel_weights(y_true)
        bce = binary_crossentropy_map(y_true, y_pred, self.from_logits)
        bce = ops.sum(bce * weights, axis=(1, 2)) / ops.sum(weights, axis=(1, 2))
        dice = compute_soft_dice(y_true, probabilities, self.smooth, self.per_image)
        return self.bce_weight * bce + self.dice_weight * (1.0 - dice)

    def get_config(self):
        return {**super().get_config(), "bce_weight": self.bce_weight,
                "dice_weight": self.dice_weight}


@keras.saving.register_keras_serializable(package=PACKAGE)
class EdgeWeightedCombinedLoss(CombinedLoss):
    """:class:`CombinedLoss` whose BCE weighs pixels near the mask boundary up.

    The boundary band is the morphological gradient of the target (dilation minus erosion with
    a ``edge_width`` x ``edge_width`` square), computed in the graph; band pixels get weight
    ``1 + edge_weight``, the others 1.
    """

    def __init__(self, edge_weight=4.0, edge_width=3, bce_weight=1.0, dice_weight=1.0,
                 from_logits=False, smooth=1.0, per_image=True, name="edge_combined_loss",
                 **kwargs):
        super().__init__(bce_weight, dice_weight, from_logits, smooth, per_image, name=name,
                         **kwargs)
        self.edge_weight = float(edge_weight)
        self.edge_width = int(edge_width)

    def pixel_weights(self, y_true):
        dilated = ops.max_pool(y_true, self.edge_width, strides=1, padding="same")
        eroded = -ops.max_pool(-y_true, self.edge_width, strides=1, padding="same")
        return 1.0 + self.edge_weight * (dilated - eroded)[..., 0]

    def get_config(self):
        return {**super().get_config(), "edge_weight": self.edge_weight,
                "edge_width": self.edge_width}


@keras.saving.register_keras_serializable(package=PACKAGE)
class FocalTverskyLoss(_SegmentationLoss):
    """Focal Tversky loss, paper Eq. 4: ``(1 - TI) ** (1 / gamma)``.

    ``TI = (TP + s) / (TP + alpha * FN + beta * FP + s)`` with soft counts; ``alpha`` weighs
    false negatives (paper: 0.7), ``beta`` false positives (0.3), ``gamma`` = 4/3 (exponent
    0.75). ``1 - TI`` is clipped at 1e-7 so the gradient stays finite when TI reaches 1.
    """

    def __init__(self, alpha=0.7, beta=0.3, gamma=4.0 / 3.0, from_logits=False, smooth=1.0,
                 per_image=True, name="focal_tversky_loss", **kwargs):
        super().__init__(from_logits, smooth, per_image, name=name, **kwargs)
        self.alpha, self.beta, self.gamma = float(alpha), float(beta), float(gamma)

    def compute(self, y_true, y_pred, probabilities):
        true_pos = _image_sum(y_true * probabilities, self.per_image)
        false_neg = _image_sum(y_true * (1.0 - probabilities), self.per_image)
        false_pos = _image_sum((1.0 - y_true) * probabilities, self.per_image)
        tversky = (true_pos + self.smooth) / (
            true_pos + self.alpha * false_neg + self.beta * false_pos + self.smooth + EPSILON
        )
        return ops.power(ops.maximum(1.0 - tversky, EPSILON), 1.0 / self.gamma)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta,
                "gamma": self.gamma}


LOSS_NAMES = ("bce", "dice", "bce_dice", "weighted", "edge", "focal_tversky")


def get_loss(name: str, from_logits: bool = False) -> keras.losses.Loss:
    """Loss by short name: one of :data:`LOSS_NAMES` ("weighted" = 0.5 BCE + 0.5 Dice loss)."""
    factories = {
        "bce": lambda: BinaryCrossentropyLoss(from_logits=from_logits),
        "dice": lambda: DiceLoss(from_logits=from_logits),
        "bce_dice": lambda: CombinedLoss(1.0, 1.0, from_logits=from_logits, name="bce_dice"),
        "weighted": lambda: CombinedLoss(0.5, 0.5, from_logits=from_logits),
        "edge": lambda: EdgeWeightedCombinedLoss(from_logits=from_logits),
        "focal_tversky": lambda: FocalTverskyLoss(from_logits=from_logits),
    }
    if name not in factories:
        raise ValueError(f"unknown loss {name!r}; expected one of {list(LOSS_NAMES)}")
    return factories[name]()
