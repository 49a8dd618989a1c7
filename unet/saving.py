"""Reload a saved U-Net (``model.save("u.keras")``) in any process.

A ``.keras`` file names its custom layers, losses and metrics (``"unet>DiceScore"``); Keras finds
them only once their modules ran ``register_keras_serializable``. Importing this module runs them
all, and ``import unet`` imports it as soon as Keras has loaded, so both of these work::

    import unet
    model = unet.load_model("u.keras")           # typed error naming a bad file
    model = keras.models.load_model("u.keras")   # after ``import unet``
"""

from __future__ import annotations

import os

import keras

import unet.losses  # noqa: F401  (registers the losses a compiled U-Net names)
import unet.metrics  # noqa: F401  (registers DiceScore, IoUScore)
import unet.models  # noqa: F401  (registers the layers, unet.blocks' included)
from vision_common.keras_files import ModelFileError, load_keras_model

__all__ = ["ModelFileError", "load_model"]


def load_model(path: str | os.PathLike, compile: bool = True) -> keras.Model:
    """The U-Net saved at ``path`` by ``model.save`` (``compile=False``: inference only, no
    loss, metrics or optimizer state); ModelFileError names a missing, truncated or foreign file."""
    return load_keras_model(path, compile=compile, kind="U-Net")
