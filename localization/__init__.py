"""Single-object localization + classification: one box and one class per image (face mask).

A saved localizer reloads with ``localization.load_model("localizer.keras")``, or
``keras.models.load_model`` after ``import localization``.
"""

import importlib
import pkgutil
import sys

import wrapt  # comes with TensorFlow; its post-import hooks are the standard ones

# Public name -> defining module, imported on first use: ``import localization.cli`` (every
# ``--help``) then stays free of TensorFlow, which takes seconds to load.
_EXPORTS = {
    **dict.fromkeys(("AnnotationError", "LocalizationSample", "load_annotations"),
                    "localization.annotations"),
    "BoxAugmenter": "localization.augment",
    **dict.fromkeys(("compute_giou", "compute_iou"), "localization.boxes"),
    **dict.fromkeys(("build_dataset", "compute_channel_stats", "stratified_split"),
                    "localization.data"),
    **dict.fromkeys(("BoxLoss", "WeightedClassCrossEntropy", "build_localization_losses"),
                    "localization.losses"),
    **dict.fromkeys(("MeanBoxIoU", "compute_localization_metrics"), "localization.metrics"),
    **dict.fromkeys(("TINY_PRESET", "SortBoxCorners", "build_localizer"), "localization.model"),
    **dict.fromkeys(("HeadGroupAdamW", "build_optimizer"), "localization.optimizer"),
    **dict.fromkeys(("ModelFileError", "load_model"), "localization.saving"),
    **dict.fromkeys(("compile_localizer", "load_localizer", "save_localizer"),
                    "localization.training"),
}


def __getattr__(name: str):
    """The first public name loads them all: that registers every custom Keras object (layers,
    losses, metrics) which ``keras.models.load_model`` needs, as the eager imports did."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'localization' has no attribute {name!r}")
    for export, module in _EXPORTS.items():
        globals()[export] = getattr(importlib.import_module(module), export)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = [
    "TINY_PRESET",
    "AnnotationError",
    "BoxAugmenter",
    "BoxLoss",
    "HeadGroupAdamW",
    "LocalizationSample",
    "MeanBoxIoU",
    "ModelFileError",
    "SortBoxCorners",
    "WeightedClassCrossEntropy",
    "build_dataset",
    "build_localization_losses",
    "build_localizer",
    "build_optimizer",
    "compile_localizer",
    "compute_channel_stats",
    "compute_giou",
    "compute_iou",
    "compute_localization_metrics",
    "load_annotations",
    "load_localizer",
    "load_model",
    "save_localizer",
    "stratified_split",
]


# ``keras.models.load_model`` finds our layers, losses, metrics and optimizer only once their modules have run
# ``register_keras_serializable``, and those modules need Keras, which takes seconds to load. So
# ``import localization`` imports them (through localization.saving) as soon as nothing is half-imported:
# Keras and TensorFlow have finished loading (each imports the other half-way through its own
# start-up) and so has any module of this package being imported. That is at once if they have
# loaded, else from the import hook of whichever finishes last.
_LOADING = {name for name in ("keras", "tensorflow",
                              *(f"localization.{module.name}" for module in pkgutil.iter_modules(__path__)))
            if name not in sys.modules}


def _register_keras_objects(module=None) -> None:
    _LOADING.discard(getattr(module, "__name__", None))
    started = [name for name in _LOADING if name in sys.modules]  # started, not finished
    if "keras" not in _LOADING and not started:
        importlib.import_module("localization.saving")


for _name in sorted(_LOADING):
    wrapt.register_post_import_hook(_register_keras_objects, _name)
_register_keras_objects()
