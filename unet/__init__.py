"""U-Net family for binary person segmentation and background removal (Keras 3).

Typical use::

    from unet import build_unet, get_loss, DiceScore
    model = build_unet("attention", input_shape=(256, 256, 3))
    model.compile("adam", loss=get_loss("bce_dice"), metrics=[DiceScore()])

A saved model reloads with ``unet.load_model("u.keras")``, or ``keras.models.load_model`` after
``import unet``.
"""

import importlib

from vision_common.keras_registration import import_once_keras_has_loaded

# Public name -> defining module, imported on first use: ``import unet.cli`` (every
# ``--help``) then stays free of TensorFlow, which takes seconds to load.
_EXPORTS = {
    "SpatialSizeCheck": "unet.blocks",
    **dict.fromkeys(("LOSS_NAMES", "BinaryCrossentropyLoss", "CombinedLoss", "DiceLoss",
                     "EdgeWeightedCombinedLoss", "FocalTverskyLoss", "get_loss"), "unet.losses"),
    **dict.fromkeys(("Confusion", "DiceScore", "IoUScore", "SegmentationEvaluator",
                     "compute_confusion"), "unet.metrics"),
    **dict.fromkeys(("ARCHITECTURES", "InputNormalization", "build_inference_model",
                     "build_unet", "classic_valid_output_size", "set_input_normalization",
                     "size_divisor"), "unet.models"),
    **dict.fromkeys(("Padding", "center_crop", "crop_to_shape", "pad_to_multiple"),
                    "unet.padding"),
    **dict.fromkeys(("decode_rle", "encode_rle", "validate_submission", "write_submission"),
                    "unet.rle"),
    **dict.fromkeys(("ModelFileError", "load_model"), "unet.saving"),
}


def __getattr__(name: str):
    """The first public name loads them all: that registers every custom Keras object (layers,
    losses, metrics) which ``keras.models.load_model`` needs, as the eager imports did."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'unet' has no attribute {name!r}")
    for export, module in _EXPORTS.items():
        globals()[export] = getattr(importlib.import_module(module), export)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = [
    "ARCHITECTURES",
    "LOSS_NAMES",
    "BinaryCrossentropyLoss",
    "CombinedLoss",
    "Confusion",
    "DiceLoss",
    "DiceScore",
    "EdgeWeightedCombinedLoss",
    "FocalTverskyLoss",
    "InputNormalization",
    "IoUScore",
    "ModelFileError",
    "Padding",
    "SegmentationEvaluator",
    "SpatialSizeCheck",
    "build_inference_model",
    "build_unet",
    "center_crop",
    "classic_valid_output_size",
    "compute_confusion",
    "crop_to_shape",
    "decode_rle",
    "encode_rle",
    "get_loss",
    "load_model",
    "pad_to_multiple",
    "set_input_normalization",
    "size_divisor",
    "validate_submission",
    "write_submission",
]


# ``keras.models.load_model`` finds our layers, losses and metrics once unet.saving has
# imported their modules, which happens as soon as Keras has loaded: ``import unet`` itself stays
# free of TensorFlow.
import_once_keras_has_loaded("unet.saving", __path__)
