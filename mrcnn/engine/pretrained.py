"""Start training from published weights: Matterport's COCO model or ImageNet ResNets.

    from mrcnn.engine.pretrained import load_pretrained
    load_pretrained(model, "coco")       # heads excluded when NUM_CLASSES != 81
    load_pretrained(model, "imagenet")   # backbone only, ResNet-50 or ResNet-101 per config

Files are fetched (or found offline) by :func:`mrcnn.engine.download.get_weights_path`.
"""

from __future__ import annotations

import logging
import re

from mrcnn.engine.download import get_weights_path
from mrcnn.engine.weights import LoadReport, assign_weights, read_h5_weights, weight_layers

logger = logging.getLogger(__name__)

COCO_NUM_CLASSES = 81
# The layers whose shapes depend on the class count (Matterport's fine-tuning exclude list).
HEAD_LAYERS = ("mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask")
_KERAS_RESNET_NAME = re.compile(r"conv(\d)_block(\d+)_(\d)_(conv|bn)")


def load_pretrained(model, kind: str) -> LoadReport:
    """Load ``"coco"`` or ``"imagenet"`` weights into a :class:`mrcnn.model.MaskRCNN`.

    COCO: every layer of mask_rcnn_coco.h5 that the model has, heads excluded when the
    config's NUM_CLASSES differs from COCO's 81. ImageNet: the ResNet backbone of the
    config's depth (the Matterport-named ResNet-50 file, or keras.applications' ResNet-101
    with its layer names translated to Matterport's).
    """
    config = model.config
    if kind == "coco":
        exclude = HEAD_LAYERS if config.NUM_CLASSES != COCO_NUM_CLASSES else ()
        if exclude:
            logger.info("NUM_CLASSES=%d differs from COCO's %d: not loading %s",
                        config.NUM_CLASSES, COCO_NUM_CLASSES, ", ".join(exclude))
        return model.load_weights(get_weights_path("coco"), by_name=True, exclude=exclude)
    if kind != "imagenet":
        raise ValueError(f"pretrained weights {kind!r}; expected 'coco' or 'imagenet'")
    backbone = config.BACKBONE if isinstance(config.BACKBONE, str) else "custom"
    if backbone == "resnet50":
        return model.load_weights(get_weights_path("imagenet_resnet50_matterport"), by_name=True)
    if backbone != "resnet101":
        raise ValueError(f"ImageNet weights exist for BACKBONE resnet50 or resnet101, not "
                         f"{config.BACKBONE!r}")
    path = get_weights_path("imagenet", backbone="resnet101")
    file_layers = {matterport_resnet_name(name): arrays
                   for name, arrays in read_h5_weights(path).items()}
    report = assign_weights(weight_layers(model.keras_model.parts), file_layers, path.name)
    if not report.loaded:
        raise ValueError(f"{path}: no ResNet layer matched; is it a keras.applications file?")
    return report


def matterport_resnet_name(keras_name: str) -> str:
    """Translate a keras.applications ResNet layer name to Matterport's.

    ``conv1_conv`` -> ``conv1``, ``conv1_bn`` -> ``bn_conv1``, ``conv4_block3_2_conv`` ->
    ``res4c_branch2b``, ``conv3_block1_0_bn`` -> ``bn3a_branch1``. Other names are unchanged.
    """
    if keras_name == "conv1_conv":
        return "conv1"
    if keras_name == "conv1_bn":
        return "bn_conv1"
    match = _KERAS_RESNET_NAME.fullmatch(keras_name)
    if match is None:
        return keras_name
    stage, block, part, kind = match.groups()
    letter = chr(ord("a") + int(block) - 1)
    branch = "branch1" if part == "0" else "branch2" + "abc"[int(part) - 1]
    prefix = "res" if kind == "conv" else "bn"
    return f"{prefix}{stage}{letter}_{branch}"

