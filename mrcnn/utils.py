"""Matterport-compatible ``mrcnn.utils``: the same names, re-exported from their modules.

``from mrcnn import utils`` then ``utils.Dataset``, ``utils.compute_ap``,
``utils.extract_bboxes``, ``utils.resize_image`` ... work as with Matterport's code.
This module has no logic of its own; its two TensorFlow graph functions (``batch_slice``,
``box_refinement_graph``) are imported when first used, so the rest needs no TensorFlow.
"""

import importlib

from mrcnn.data.dataset import Dataset, DatasetError
from mrcnn.data.head_targets import mold_mask
from mrcnn.engine.download import COCO_MODEL_URL, download_trained_weights
from mrcnn.evaluation.matterport_ap import (
    compute_ap,
    compute_ap_range,
    compute_matches,
    compute_recall,
    trim_zeros,
)
from mrcnn.geometry.anchors import (
    compute_backbone_shapes,
    denorm_boxes,
    generate_anchors,
    generate_pyramid_anchors,
    norm_boxes,
)
from mrcnn.geometry.boxes import (
    apply_box_deltas,
    box_refinement,
    compute_iou,
    compute_overlaps,
    compute_overlaps_masks,
    extract_bboxes,
    non_max_suppression,
)
from mrcnn.geometry.imaging import (
    compose_image_meta,
    expand_mask,
    minimize_mask,
    mold_image,
    parse_image_meta,
    resize,
    resize_image,
    resize_mask,
    unmold_image,
    unmold_mask,
)

TENSORFLOW_NAMES = ("batch_slice", "box_refinement_graph")  # in mrcnn.modeling.matterport_graph


def __getattr__(name: str):
    """``batch_slice`` or ``box_refinement_graph`` (TensorFlow), imported on first use."""
    if name not in TENSORFLOW_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("mrcnn.modeling.matterport_graph"), name)
    globals()[name] = value
    return value


__all__ = [
    "COCO_MODEL_URL",
    "Dataset",
    "DatasetError",
    "apply_box_deltas",
    "box_refinement",
    "compose_image_meta",
    "compute_ap",
    "compute_ap_range",
    "compute_backbone_shapes",
    "compute_iou",
    "compute_matches",
    "compute_overlaps",
    "compute_overlaps_masks",
    "compute_recall",
    "denorm_boxes",
    "download_trained_weights",
    "expand_mask",
    "extract_bboxes",
    "generate_anchors",
    "generate_pyramid_anchors",
    "minimize_mask",
    "mold_mask",
    "mold_image",
    "non_max_suppression",
    "norm_boxes",
    "parse_image_meta",
    "resize",
    "resize_image",
    "resize_mask",
    "trim_zeros",
    "unmold_image",
    "unmold_mask",
]
__all__ += TENSORFLOW_NAMES
