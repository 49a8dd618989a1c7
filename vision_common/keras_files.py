"""Loading a ``.keras`` file with a typed error naming a missing, truncated or foreign file."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import keras

__all__ = ["ModelFileError", "load_keras_model"]

# What keras.models.load_model raises for a file that is a zip but not the expected archive: no
# config.json (KeyError), unknown or mismatched objects (TypeError, ValueError), bad weights.
_LOAD_ERRORS = (zipfile.BadZipFile, KeyError, TypeError, ValueError, OSError, EOFError)


class ModelFileError(ValueError):
    """A model file that is missing, truncated or not a ``.keras`` archive; names the file."""


def load_keras_model(path: str | os.PathLike, compile: bool, kind: str) -> keras.Model:
    """The model saved at ``path`` by ``model.save``; its custom objects must be registered.

    Args:
        path: the ``.keras`` file.
        compile: restore the loss, metrics and optimizer state as well (False: inference only).
        kind: what the file should hold, for the error message ("U-Net", "localizer").

    Raises:
        ModelFileError: the file is missing, truncated, not a ``.keras`` zip archive, or holds
            objects no imported package registered.
    """
    path = Path(path)
    _check_keras_file(path)
    try:
        return keras.models.load_model(path, compile=compile)
    except _LOAD_ERRORS as error:
        reason = " ".join(str(error).split())[:300]
        raise ModelFileError(f"{path}: not a loadable {kind} model file "
                             f"({type(error).__name__}: {reason})") from error


def _check_keras_file(path: Path) -> None:
    """Raise :class:`ModelFileError` unless ``path`` is an existing, complete ``.keras`` zip."""
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    if path.suffix != ".keras":
        raise ModelFileError(f"{path}: expected a .keras file written by model.save() "
                             f"(got {path.suffix or 'no suffix'})")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a complete .keras archive (truncated, or not a "
                             "Keras model file)")
