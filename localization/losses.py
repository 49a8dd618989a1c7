"""Localization losses: ``alpha * box_loss + (1 - alpha) * class-weighted cross entropy``.

Keras ``fit(class_weight=...)`` does not work with multi-output models, so the class weights
live inside :class:`WeightedClassCrossEntropy`. The two terms are attached to the model's
``"box"`` and ``"class"`` outputs with ``loss_weights = {box: alpha, class: 1 - alpha}``, so Keras
logs them separately (``box_loss``, ``class_loss``) next to the weighted total ``loss``.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from localization.boxes import compute_giou

BOX_LOSSES = ("mse", "smooth_l1", "giou")


@keras.saving.register_keras_serializable(package="localization")
class BoxLoss(keras.losses.Loss):
    """Per-image box regression loss on normalized xyxy boxes ``[B, 4]``.

    Args:
        kind: ``"mse"`` (mean of the 4 squared errors, the default), ``"smooth_l1"``
            (Huber with transition ``beta``, mean over the 4 coordinates) or ``"giou"`` (1 - GIoU).
        beta: smooth-L1 transition point; normalized errors are small, so the default is 0.1
            rather than torchvision's 1.0 (with 1.0 smooth L1 would equal MSE / 2 everywhere).
    """

    def __init__(self, kind: str = "mse", beta: float = 0.1, name: str = "box_loss", **kwargs):
        if kind not in BOX_LOSSES:
            raise ValueError(f"unknown box loss {kind!r}; expected one of {list(BOX_LOSSES)}")
        if beta <= 0:
            raise ValueError(f"smooth-L1 beta must be > 0, got {beta}")
        super().__init__(name=name, **kwargs)
        self.kind = kind
        self.beta = float(beta)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        if self.kind == "giou":
            return 1.0 - compute_giou(y_true, y_pred)
        error = ops.abs(y_pred - y_true)
        if self.kind == "mse":
            return ops.mean(ops.square(error), axis=-1)
        quadratic = 0.5 * ops.square(error) / self.beta
        linear = error - 0.5 * self.beta
        return ops.mean(ops.where(error < self.beta, quadratic, linear), axis=-1)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "beta": self.beta}


@keras.saving.register_keras_serializable(package="localization")
class WeightedClassCrossEntropy(keras.losses.Loss):
    """Sparse softmax cross entropy on logits with per-class weights.

    Reduces like PyTorch's ``cross_entropy(weight=...)``: ``sum(w[y_i] * ce_i) / sum(w[y_i])``
    over the batch (each per-image value is divided by the batch mean weight, and Keras then
    averages). ``class_weights=None`` gives plain cross entropy.

    Args:
        class_weights: one non-negative weight per class, e.g. ``(0.35, 0.65)``.
    """

    def __init__(self, class_weights: Sequence[float] | None = None,
                 name: str = "class_loss", **kwargs):
        if class_weights is not None:
            class_weights = [float(weight) for weight in class_weights]
            if min(class_weights) < 0 or sum(class_weights) <= 0:
                raise ValueError(f"class weights must be >= 0 with a positive sum, "
                                 f"got {class_weights}")
        super().__init__(name=name, **kwargs)
        self.class_weights = class_weights

    def call(self, y_true, y_pred):
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        cross_entropy = keras.losses.sparse_categorical_crossentropy(
            labels, y_pred, from_logits=True
        )
        if self.class_weights is None:
            return cross_entropy
        if len(self.class_weights) != y_pred.shape[-1]:
            raise ValueError(f"got {len(self.class_weights)} class weights for a model with "
                             f"{y_pred.shape[-1]} classes")
        weights = ops.take(ops.convert_to_tensor(self.class_weights, y_pred.dtype), labels)
        return weights * cross_entropy / (ops.mean(weights) + 1e-7)

    def get_config(self):
        return {**super().get_config(), "class_weights": self.class_weights}


def build_localization_losses(
    alpha: float = 0.7,
    box_loss: str = "mse",
    class_weights: Sequence[float] | None = None,
    smooth_l1_beta: float = 0.1,
) -> tuple[dict, dict]:
    """Losses and loss weights for ``model.compile`` (keys match the model's output dict).

    Returns:
        ``({"box": BoxLoss, "class": WeightedClassCrossEntropy}, {"box": alpha, "class": 1 - alpha})``
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    losses = {
        "box": BoxLoss(box_loss, beta=smooth_l1_beta),
        "class": WeightedClassCrossEntropy(class_weights),
    }
    return losses, {"box": float(alpha), "class": 1.0 - float(alpha)}
