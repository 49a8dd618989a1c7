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
import zipfile
from pathlib import Path

import keras

import localization.losses  # noqa: F401  (registers BoxLoss, WeightedClassCrossEntropy)
import localization.metrics  # noqa: F401  (registers MeanBoxIoU)
import localization.model  # noqa: F401  (registers SortBoxCorners)
import localization.optimizer  # noqa: F401  (registers HeadGroupAdamW)

__all__ = ["ModelFileError", "load_model"]

# What keras.models.load_model raises for a file that is a zip but not a localizer archive: no
# config.json (KeyError), unknown or mismatched objects (TypeError, ValueError), bad weights.
_LOAD_ERRORS = (zipfile.BadZipFile, KeyError, TypeError, ValueError, OSError, EOFError)


class ModelFileError(ValueError):
    """A model file that is missing, truncated or not a ``.keras`` archive; names the file."""


def load_model(path: str | os.PathLike, compile: bool = True) -> keras.Model:
    """The localizer saved at ``path`` (a ``.keras`` file written by ``model.save``).

    Args:
        path: the ``.keras`` file.
        compile: restore the losses, metrics and optimizer state as well (False: inference only).

    Raises:
        ModelFileError: the file is missing, truncated, not a ``.keras`` zip archive, or holds
            objects this package does not define.
    """
    path = Path(path)
    _check_keras_file(path)
    try:
        return keras.models.load_model(path, compile=compile)
    except _LOAD_ERRORS as error:
        reason = " ".join(str(error).split())[:300]
        raise ModelFileError(f"{path}: not a loadable localizer model file "
                             f"({type(error).__name__}: {reason})") from error


def _check_keras_file(path: Path) -> None:
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    if path.suffix != ".keras":
        raise ModelFileError(f"{path}: expected a .keras file written by model.save() "
                             f"(got {path.suffix or 'no suffix'})")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a complete .keras archive (truncated, or not a "
                             "Keras model file)")
