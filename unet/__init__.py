"""U-Net family for binary person segmentation and background removal (Keras 3).

Typical use::

    from unet import build_unet, get_loss, DiceScore
    model = build_unet("attention", input_shape=(256, 256, 3))
    model.compile("adam", loss=get_loss("bce_dice"), metrics=[DiceScore()])
"""

from unet.blocks import SpatialSizeCheck
from unet.losses import (
    LOSS_NAMES,
    BinaryCrossentropyLoss,
    CombinedLoss,
    DiceLoss,
    EdgeWeightedCombinedLoss,
    FocalTverskyLoss,
    get_loss,
)
from unet.metrics import (
    Confusion,
    DiceScore,
    IoUScore,
    SegmentationEvaluator,
    compute_confusion,
)
from unet.models import (
    ARCHITECTURES,
    InputNormalization,
    build_inference_model,
    build_unet,
    classic_valid_output_size,
    set_input_normalization,
    size_divisor,
)
from unet.padding import Padding, center_crop, crop_to_shape, pad_to_multiple
from unet.rle import decode_rle, encode_rle, validate_submission, write_submission

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
    "pad_to_multiple",
    "set_input_normalization",
    "size_divisor",
    "validate_submission",
    "write_submission",
]
