"""Registering a package's Keras objects as soon as Keras has loaded, without importing Keras.

``keras.models.load_model`` finds a package's layers, losses and metrics only once their modules
have run ``register_keras_serializable``, and those modules need Keras, which takes seconds to
load (``--help`` must not pay for it). So a package's ``__init__`` calls
:func:`import_once_keras_has_loaded`, which imports the registering module as soon as nothing is
half-imported: Keras and TensorFlow have finished loading (each imports the other half-way
through its own start-up) and so has any module of the package being imported. That is at once
if they have loaded, else from the post-import hook of whichever finishes last.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Iterable
from types import ModuleType

import wrapt  # comes with TensorFlow; its post-import hooks are the standard ones

__all__ = ["import_once_keras_has_loaded"]


def import_once_keras_has_loaded(module: str, package_path: Iterable[str]) -> None:
    """Import ``module`` (say ``"unet.saving"``) once Keras and its package have loaded.

    Args:
        module: the module whose import registers every custom Keras object of its package.
        package_path: the package's ``__path__``, to list the modules that may be half-imported.
    """
    package = module.rpartition(".")[0]
    loading = {name for name in ("keras", "tensorflow",
                                 *(f"{package}.{info.name}"
                                   for info in pkgutil.iter_modules(package_path)))
               if name not in sys.modules}

    def register(loaded: ModuleType | None = None) -> None:
        loading.discard(getattr(loaded, "__name__", None))
        started = [name for name in loading if name in sys.modules]  # started, not finished
        if "keras" not in loading and not started:
            importlib.import_module(module)

    for name in sorted(loading):
        wrapt.register_post_import_hook(register, name)
    register()
