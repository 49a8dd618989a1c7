"""Deployment: a Mask R-CNN as one self-contained graph, image in, ``detect()``'s results out.

- ``molding``: resize (the config's IMAGE_RESIZE_MODE, scikit-image's bilinear arithmetic),
  padding, MEAN_PIXEL, image meta and anchors as TensorFlow ops.
- ``unmolding``: detections back to the original image as TensorFlow ops (pixel boxes, each
  mask resized into its box on an H x W canvas and thresholded at 0.5).
- ``saved_model``: the SavedModel with its ``serving_default`` (``image: uint8[H, W, C]``) and
  ``serving_image_bytes`` (``image_bytes: string``, JPEG/PNG) signatures;
  :func:`export_model` is the entry point behind ``MaskRCNN.export``.
- ``onnx``: the same graph converted with tf2onnx (ROIAlign as ONNX ``RoiAlign``).
- ``litert``: LiteRT (``.tflite``) for one fixed input size, converted with builtin ops only:
  molding planned in numpy once for that size, the graph traced under
  :func:`mrcnn.modeling.backend_ops.portable_ops` (crops and NMS in gathers and a WHILE loop
  instead of CropAndResize and the NMS kernels), float32 where the SavedModel computes in
  float64.

May import: ``mrcnn.geometry``, ``mrcnn.modeling``, ``mrcnn.config`` and
``vision_common.export_writers`` (the LiteRT writer the U-Net and localizer use). Never ``data``,
``evaluation`` or ``engine``. The exported files import nothing of ours.
"""

from mrcnn.export.saved_model import EXPORT_FORMATS, ExportError, check_exportable, export_model

__all__ = ["EXPORT_FORMATS", "ExportError", "check_exportable", "export_model"]
