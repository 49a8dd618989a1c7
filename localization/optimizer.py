"""AdamW with one learning rate for the backbone and one for each head.

Keras 3 has no per-parameter-group learning rates, so :class:`HeadGroupAdamW` scales the
learning rate in ``update_step`` by the variable's group. A variable belongs to a head when its
path starts with that head's layer-name prefix (``class_head``/``box_head``, see model.py);
every other variable (backbone, FPN neck) uses the base ``learning_rate``. Because the heads use
``head_learning_rates[g] / learning_rate`` times the current rate, schedules and
``ReduceLROnPlateau`` keep the ratios. Decoupled weight decay uses the base rate for all groups.
"""

from __future__ import annotations

import keras

from localization.model import BOX_HEAD_PREFIX, CLASS_HEAD_PREFIX


@keras.saving.register_keras_serializable(package="localization")
class HeadGroupAdamW(keras.optimizers.AdamW):
    """AdamW whose head variables train at their own learning rates.

    Args:
        learning_rate: backbone learning rate (float or schedule).
        head_learning_rates: ``{layer-name prefix: learning rate}``; rates are floats relative
            to the initial float ``learning_rate``.
        **kwargs: passed to ``keras.optimizers.AdamW`` (``weight_decay``, ``beta_1``, ...).
    """

    def __init__(self, learning_rate: float = 1e-4,
                 head_learning_rates: dict[str, float] | None = None, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.head_learning_rates = dict(head_learning_rates or {})
        base = float(learning_rate) if isinstance(learning_rate, int | float) else None
        if self.head_learning_rates and base is None:
            raise TypeError("head_learning_rates need a float base learning_rate, "
                            f"got {type(learning_rate).__name__}")
        self._multipliers = {prefix: rate / base for prefix, rate in
                             self.head_learning_rates.items()} if base else {}

    def learning_rate_multiplier(self, variable) -> float:
        """Factor applied to the current learning rate for a Keras ``variable``."""
        for prefix, multiplier in self._multipliers.items():
            if variable.path.startswith(prefix):
                return multiplier
        return 1.0

    def build(self, var_list):
        super().build(var_list)
        # update_step receives backend variables without a path, so resolve groups once here.
        self._variable_multipliers = [self.learning_rate_multiplier(v) for v in var_list]

    def update_step(self, gradient, variable, learning_rate):
        # _get_variable_index is the lookup Keras documents for custom optimizers.
        multiplier = self._variable_multipliers[self._get_variable_index(variable)]
        return super().update_step(gradient, variable, learning_rate * multiplier)

    def get_config(self):
        return {**super().get_config(), "head_learning_rates": self.head_learning_rates}


def build_optimizer(backbone_lr: float = 1e-4, class_head_lr: float = 1e-4,
                    box_head_lr: float = 1e-3, weight_decay: float = 1e-4) -> HeadGroupAdamW:
    """AdamW, one rate per group: backbone 1e-4, class head 1e-4, box head 1e-3; wd 1e-4."""
    for label, rate in (("backbone_lr", backbone_lr), ("class_head_lr", class_head_lr),
                        ("box_head_lr", box_head_lr)):
        if rate <= 0:
            raise ValueError(f"{label} must be > 0, got {rate}")
    return HeadGroupAdamW(
        learning_rate=backbone_lr,
        head_learning_rates={CLASS_HEAD_PREFIX: class_head_lr, BOX_HEAD_PREFIX: box_head_lr},
        weight_decay=weight_decay,
    )
