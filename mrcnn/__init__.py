"""Mask R-CNN for TensorFlow 2 / Keras 3, API- and weight-compatible with matterport/Mask_RCNN.

Import the pieces as with Matterport's code: ``from mrcnn.config import Config``,
``from mrcnn import utils, visualize``, ``import mrcnn.model as modellib``.
"""

__version__ = "0.1.0"
