"""The SavedModel export: one image in, ``detect()``'s results out, everything in the graph.

:func:`export_model` also writes ONNX (:mod:`mrcnn.export.onnx`) from the same graph, and
LiteRT (:mod:`mrcnn.export.litert`) from a fixed-size variant of it.

Signatures (``tf.saved_model.load(path).signatures[...]``, or TF Serving's REST API):

- ``serving_default``: ``image`` uint8[H, W, C] (C = IMAGE_CHANNEL_COUNT, H, W >= 2; the
  signature's channel axis is open, the graph checks it);
- ``serving_image_bytes``: ``image_bytes`` string, an encoded JPEG/PNG/BMP/GIF (decoded to
  C channels; RGBA loses its alpha channel as in ``detect()``).

Both return ``rois`` int32[N, (y1, x1, y2, x2)] pixels, ``class_ids`` int32[N], ``scores``
float32[N] and ``masks`` uint8[H, W, N] (0/1) at the input's size, as ``detect()`` does.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mrcnn.config import Config
from mrcnn.export.molding import SUPPORTED_RESIZE_MODES, compute_anchors, mold_one_image
from mrcnn.export.unmolding import unmold_detections

__all__ = ["EXPORT_FORMATS", "ExportError", "build_serving_functions", "check_exportable",
           "export_model"]

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("saved_model", "tflite", "onnx")
BYTES_SIGNATURE = "serving_image_bytes"


class ExportError(ValueError):
    """The model or config cannot be exported as asked (the message says what to change)."""


def export_model(network: keras.Model, config: Config, path: str | os.PathLike,
                 format: str = "saved_model", mode: str = "inference", *,
                 size: tuple[int, int] | None = None, quantize: bool = False) -> Path:
    """Export an inference-mode Mask R-CNN network to ``path``; returns the path written.

    network: the ``MaskRCNN.keras_model``; mode: the mode the ``MaskRCNN`` was built in.
    size, quantize: "tflite" only: the fixed (height, width) of its input (default: the
    config's IMAGE_SHAPE) and dynamic-range int8 weights.
    Raises ExportError for a training-mode model, an unknown format, or a config the graph
    cannot mold (IMAGE_RESIZE_MODE "crop"; a custom BACKBONE callable outside square mode; a
    MEAN_PIXEL outside 0..255, i.e. a model of 16-bit or float data: the graph takes uint8).
    """
    if mode != "inference":
        raise ExportError(f"this model was built with mode={mode!r}; export needs an inference "
                          "model: MaskRCNN(mode='inference', config=config, model_dir=...) and "
                          "load_weights(...) on it")
    if format not in EXPORT_FORMATS:
        raise ExportError(f"format={format!r}; expected one of {EXPORT_FORMATS}")
    if (size is not None or quantize) and format != "tflite":
        raise ExportError("size and quantize apply to format='tflite' only (the SavedModel and "
                          "ONNX graphs take any size)")
    check_exportable(config)
    path = Path(path)
    if format == "tflite":
        from mrcnn.export.litert import write_litert

        return write_litert(network, config, path, size=size, quantize=quantize)
    image_fn, bytes_fn = build_serving_functions(network, config)
    if format == "onnx":
        from mrcnn.export.onnx import write_onnx

        return write_onnx(network, config, path, image_fn)
    archive = keras.export.ExportArchive()
    archive.track(network)
    # The channel axis stays open in the signature: signatures check dtypes, not shapes, so a
    # 4-channel image is refused by the graph's own check with a message (not by a kernel).
    archive.add_endpoint("serving_default", image_fn,
                         [tf.TensorSpec([None, None, None], tf.uint8, name="image")])
    archive.add_endpoint(BYTES_SIGNATURE, bytes_fn,
                         [tf.TensorSpec([], tf.string, name="image_bytes")])
    archive.write_out(str(path), verbose=False)
    logger.info("SavedModel written to %s (signatures serving_default, %s)", path,
                BYTES_SIGNATURE)
    return path


def check_exportable(config: Config) -> None:
    """Raise ExportError when the graph cannot reproduce ``detect()``'s molding for config."""
    mode = config.IMAGE_RESIZE_MODE
    if mode not in SUPPORTED_RESIZE_MODES:
        raise ExportError(f"IMAGE_RESIZE_MODE={mode!r} cannot be exported (a random crop is for "
                          f"training only); expected one of {SUPPORTED_RESIZE_MODES}, e.g. "
                          "--set IMAGE_RESIZE_MODE=pad64")
    mean = np.ravel(np.asarray(config.MEAN_PIXEL, dtype=np.float64))
    if mean.min() < 0 or mean.max() > 255:
        raise ExportError(f"MEAN_PIXEL={mean.tolist()} lies outside 0..255: the model was trained "
                          "on 16-bit or float images, but the exported graph takes uint8 images; "
                          "run detect() on such data instead")
    if callable(config.BACKBONE) and mode != "square":
        raise ExportError(f"a custom BACKBONE callable exports only with IMAGE_RESIZE_MODE="
                          f"'square' (its anchors are computed once for IMAGE_SHAPE), got {mode!r}")


def build_serving_functions(network: keras.Model, config: Config):
    """The two endpoint functions: ``image`` uint8[H, W, C] -> results, and ``image_bytes``."""
    channels = int(config.IMAGE_CHANNEL_COUNT)

    def detect_image(image):
        image = _checked_image(image, config)
        original_hw = tf.shape(image)[:2]
        inputs = mold_one_image(image, config)
        molded_hw = tf.shape(inputs["molded"])[1:3]
        outputs = network({"input_image": inputs["molded"],
                           "input_image_meta": inputs["image_meta"],
                           "input_anchors": compute_anchors(config, molded_hw)}, training=False)
        return unmold_detections(outputs["detections"][0], outputs["masks"][0], original_hw,
                                 molded_hw, inputs["window"])

    def detect_image_bytes(image_bytes):
        tf.debugging.assert_greater(tf.strings.length(image_bytes), 0,
                                    message="image_bytes: expected an encoded JPEG/PNG image, "
                                            "got an empty string")
        image = tf.io.decode_image(image_bytes, channels=channels, dtype=tf.uint8,
                                   expand_animations=False)
        image.set_shape([None, None, channels])
        return detect_image(image)

    return detect_image, detect_image_bytes


def _checked_image(image: tf.Tensor, config: Config) -> tf.Tensor:
    """Clear errors for inputs the graph would otherwise crash on inside a kernel."""
    shape = tf.shape(image)
    channels = int(config.IMAGE_CHANNEL_COUNT)
    expected = f"image: expected uint8[H, W, {channels}] with H, W >= 2"
    checks = [tf.debugging.assert_equal(shape[2], channels, message=f"{expected}; got channels"),
              tf.debugging.assert_greater_equal(shape[:2], 2, message=f"{expected}; got shape")]
    if config.IMAGE_RESIZE_MODE == "none":
        checks.append(tf.debugging.assert_equal(
            shape[:2] % 64, 0, message=f"{expected} multiples of 64 (IMAGE_RESIZE_MODE='none' "
                                       "does not resize or pad); got shape"))
    with tf.control_dependencies(checks):
        image = tf.identity(image)
    image.set_shape([None, None, channels])
    return image
