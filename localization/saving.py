"""Reload a saved localizer (``localizer.keras``) in any process.

A ``.keras`` file names its custom layers, losses, metrics and optimizer
(``"localization>BoxLoss"``); Keras finds them only once their modules ran
``register_keras_serializable``. Importing this module runs them all, and ``import localization``
imports it as soon as Keras has loaded, so both of these work::

    import localization
    model = localization.load_model("logs/face_mask/localizer.keras")   # typed error on a bad file
    model = keras.models.load_model("logs/face_mask/localizer.keras")   # after the import

:func:`localization.training.load_localizer` also reads the class names from the ``.json``
sidecar beside the model.
"""

from __future__ import annotations

import os

import keras

import localization.losses  # noqa: F401  (registers BoxLoss, WeightedClassCrossEntropy)
import localization.metrics  # noqa: F401  (registers MeanBoxIoU)
import localization.model  # noqa: F401  (registers SortBoxCorners)
import localization.optimizer  # noqa: F401  (registers HeadGroupAdamW)
from vision_common.keras_files import ModelFileError, load_keras_model

__all__ = ["ModelFileError", "load_model"]


def load_model(path: str | os.PathLike, compile: bool = True) -> keras.Model:
    """The localizer saved at ``path`` by ``model.save`` (``compile=False``: inference only, no
    loss, metrics or optimizer state); ModelFileError names a missing, truncated or foreign file."""
    return load_keras_model(path, compile=compile, kind="localizer")
