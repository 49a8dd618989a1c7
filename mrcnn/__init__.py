"""Mask R-CNN for TensorFlow 2 / Keras 3, API- and weight-compatible with matterport/Mask_RCNN.

Import the pieces as with Matterport's code: ``from mrcnn.config import Config``,
``from mrcnn import utils, visualize``, ``import mrcnn.model as modellib``.

The top level is that public face (``config``, ``model``, ``utils``, ``visualize``,
``parallel_model``) plus ``cli``.
Everything else lives in subpackages: ``geometry`` (boxes, anchors, image frames), ``data``
(datasets and the input pipeline), ``modeling`` (the network's stages), ``evaluation`` (AP and
COCO metrics) and ``engine`` (training, weights, devices). Modules that stood at the top level
in 0.1.0 still import from their old paths (but two, see ``MOVED_MODULES``), with a ``DeprecationWarning`` naming the new one.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

__version__ = "0.1.0"

# 0.1.0 module path -> where it lives now (a package's submodules follow it). Two 0.1.0 modules
# gave their names to packages and cannot be aliased: mrcnn.data (now mrcnn.data.pipeline) and
# mrcnn.evaluation (now mrcnn.evaluation.matterport_ap; Matterport's code reaches it via utils).
MOVED_MODULES = {
    "mrcnn.anchors": "mrcnn.geometry.anchors",
    "mrcnn.boxes": "mrcnn.geometry.boxes",
    "mrcnn.imaging": "mrcnn.geometry.imaging",
    "mrcnn.anchor_targets": "mrcnn.data.anchor_targets",
    "mrcnn.augment": "mrcnn.data.augment",
    "mrcnn.dataset": "mrcnn.data.dataset",
    "mrcnn.datasets": "mrcnn.data.datasets",
    "mrcnn.image_io": "mrcnn.data.image_io",
    "mrcnn.backbone": "mrcnn.modeling.backbone",
    "mrcnn.box_ops": "mrcnn.modeling.box_ops",
    "mrcnn.detection": "mrcnn.modeling.detection",
    "mrcnn.detection_targets": "mrcnn.modeling.detection_targets",
    "mrcnn.fpn": "mrcnn.modeling.fpn",
    "mrcnn.heads": "mrcnn.modeling.heads",
    "mrcnn.losses": "mrcnn.modeling.losses",
    "mrcnn.network": "mrcnn.modeling.network",
    "mrcnn.postprocess": "mrcnn.modeling.postprocess",
    "mrcnn.proposal": "mrcnn.modeling.proposal",
    "mrcnn.roi_align": "mrcnn.modeling.roi_align",
    "mrcnn.rpn": "mrcnn.modeling.rpn",
    "mrcnn.coco_eval": "mrcnn.evaluation.coco",
    "mrcnn.evaluator": "mrcnn.evaluation.evaluate",
    "mrcnn.callbacks": "mrcnn.engine.callbacks",
    "mrcnn.distribute": "mrcnn.engine.distribute",
    "mrcnn.download": "mrcnn.engine.download",
    "mrcnn.pretrained": "mrcnn.engine.pretrained",
    "mrcnn.training": "mrcnn.engine.training",
    "mrcnn.weights": "mrcnn.engine.weights",
}


def _new_path(old: str) -> str | None:
    """The current path of a 0.1.0 module path (``mrcnn.datasets.coco`` included), else None."""
    if old in MOVED_MODULES:
        return MOVED_MODULES[old]
    parent, _, leaf = old.rpartition(".")
    return MOVED_MODULES[parent] + "." + leaf if parent in MOVED_MODULES else None


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers an old module path with the module object at its new path (one object, not two)."""

    def find_spec(self, fullname, path=None, target=None):
        if _new_path(fullname) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        new = _new_path(spec.name)
        warnings.warn(f"{spec.name} moved to {new}; import it from there", DeprecationWarning,
                      stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module) -> None:
        """The module was executed under its new name already."""


sys.meta_path.insert(0, _MovedModuleFinder())
