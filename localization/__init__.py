"""Single-object localization + classification: one box and one class per image (face mask).

A saved localizer reloads with ``localization.load_model("localizer.keras")``, or
``keras.models.load_model`` after ``import localization``.
"""

import importlib

from vision_common.keras_registration import import_once_keras_has_loaded

# Public name -> defining module, imported on first use: ``import localization.cli`` (every
# ``--help``) then stays free of TensorFlow, which takes seconds to load.
_EXPORTS = {
    **dict.fromkeys(("AnnotationError", "LocalizationSample", "load_annotations"),
                    "localization.annotations"),
    "BoxAugmenter": "localization.augment",
    **dict.fromkeys(("ImageChannelError", "load_image_channels"), "localization.images"),
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
    "ImageChannelError",
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
    "load_image_channels",
    "load_localizer",
    "load_model",
    "save_localizer",
    "stratified_split",
]


# ``keras.models.load_model`` finds our layers, losses, metrics and optimizer once
# localization.saving has imported their modules, which happens as soon as Keras has loaded:
# ``import localization`` itself stays free of TensorFlow.
import_once_keras_has_loaded("localization.saving", __path__)
