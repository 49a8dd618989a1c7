"""The LiteRT (TFLite) export: one fixed-size image in, ``detect()``'s results out, builtin ops.

LiteRT needs a fixed input size, so everything that depends on it is worked out once, in
numpy, when the graph is traced (:class:`FixedMolding`: the resize scale, padding, window,
image meta and anchors, exactly as ``detect()`` computes them); the file holds them as
constants. The graph is traced inside :func:`mrcnn.modeling.backend_ops.portable_ops`, so the
ROI crops and both NMS stages are the ``keras.ops`` versions (gathers, a WHILE loop) instead of
TensorFlow's CropAndResize, NonMaxSuppressionV3 and CombinedNonMaxSuppression, and it is
converted with ``tf.lite.OpsSet.TFLITE_BUILTINS`` only (no SELECT_TF_OPS, no Flex delegate).

Input ``image``: uint8[H, W, C] of the exported size (default: the config's molded size,
IMAGE_SHAPE). Outputs, by name (``interpreter.get_signature_runner()``): ``rois`` int32[N, 4]
pixels, ``class_ids`` int32[N], ``scores`` float32[N] and ``masks`` uint8[H, W, N]; N (at most
DETECTION_MAX_INSTANCES) is the tensor's own dynamic size, as in the SavedModel.

Where it differs from the SavedModel: LiteRT's kernels have no float64.

- MEAN_PIXEL / PIXEL_STD: a 256-entry table per channel, computed in float64 and looked up:
  exact.
- The resize (only when the exported size is not the molded size): scikit-image's bilinear sum
  in float32 instead of float64, so a resized pixel whose value lies within ~1e-5 of an
  integer may truncate to the other grey level.
- The mask paste: sampling positions in float32 (a mask pixel at exactly 0.5 may flip).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mrcnn.config import Config
from mrcnn.export.molding import _resize_bilinear
from mrcnn.export.unmolding import unmold_detections
from mrcnn.geometry.anchors import anchors_for_image_shape
from mrcnn.geometry.imaging import compose_image_meta, resize_image
from mrcnn.modeling.backend_ops import portable_ops
from vision_common.export_writers import save_tflite

__all__ = ["FixedMolding", "build_litert_function", "default_size", "mold_fixed",
           "plan_molding", "write_litert"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FixedMolding:
    """``detect()``'s molding of every image of one size, computed once.

    image_hw: the input's (H, W); resized_hw: after the resize (== image_hw when scale is 1);
    padding: ((top, bottom), (left, right)); window: (y1, x1, y2, x2) pixels of the content in
    the molded image; molded_hw: (Hm, Wm); image_meta float32[1, IMAGE_META_SIZE]; anchors
    float32[A, 4] normalized; pixel_table float32[256 * C]: molded value of grey level v in
    channel c at v * C + c.
    """

    image_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    padding: tuple[tuple[int, int], tuple[int, int]]
    window: tuple[int, int, int, int]
    scale: float
    molded_hw: tuple[int, int]
    image_meta: np.ndarray
    anchors: np.ndarray
    pixel_table: np.ndarray


def default_size(config: Config) -> tuple[int, int]:
    """The exported input size when none is given: the molded size (IMAGE_SHAPE), which
    ``detect()`` feeds the network without resizing in square mode."""
    return int(config.IMAGE_SHAPE[0]), int(config.IMAGE_SHAPE[1])


def plan_molding(config: Config, size: tuple[int, int]) -> FixedMolding:
    """:meth:`MaskRCNN.mold_inputs` and the anchors for images of ``size`` (H, W)."""
    from mrcnn.export.saved_model import ExportError

    height, width = _checked_size(size)
    channels = int(config.IMAGE_CHANNEL_COUNT)
    if config.IMAGE_RESIZE_MODE == "none" and (height % 64 or width % 64):
        raise ExportError(f"size=({height}, {width}): IMAGE_RESIZE_MODE='none' does not resize "
                          "or pad, so height and width must be multiples of 64")
    blank = np.zeros((height, width, channels), np.uint8)
    resized, window, scale, padding, _ = resize_image(
        blank, min_dim=config.IMAGE_MIN_DIM, max_dim=config.IMAGE_MAX_DIM,
        min_scale=config.IMAGE_MIN_SCALE, mode=config.IMAGE_RESIZE_MODE)
    meta = compose_image_meta(0, blank.shape, resized.shape, window, scale,
                              np.zeros([config.NUM_CLASSES], np.int32))
    (top, bottom), (left, right) = ((int(a), int(b)) for a, b in padding[:2])
    molded_hw = (int(resized.shape[0]), int(resized.shape[1]))
    # mold_image: float32 grey level minus the float64 mean (divided by the float64 std), cast
    # to float32: one value per (level, channel), so a lookup is exact.
    table = np.arange(256, dtype=np.float32)[:, None] - np.asarray(config.MEAN_PIXEL, np.float64)
    if config.PIXEL_STD is not None:
        table = table / np.asarray(config.PIXEL_STD, np.float64)
    table = np.broadcast_to(table, (256, channels)).astype(np.float32)
    return FixedMolding(
        image_hw=(height, width),
        resized_hw=(molded_hw[0] - top - bottom, molded_hw[1] - left - right),
        padding=((top, bottom), (left, right)), window=tuple(int(v) for v in window),
        scale=float(scale), molded_hw=molded_hw,
        image_meta=meta.astype(np.float32)[None],
        anchors=np.asarray(anchors_for_image_shape(config, resized.shape), np.float32),
        pixel_table=table.reshape(-1))


def build_litert_function(network: keras.Model, config: Config, plan: FixedMolding):
    """``image`` uint8[H, W, C] of ``plan.image_hw`` -> ``detect()``'s four results, in ops
    LiteRT has builtin kernels for (trace it inside ``portable_ops()``)."""
    channels = int(config.IMAGE_CHANNEL_COUNT)
    original_hw = tf.constant(plan.image_hw, tf.int32)
    molded_hw = tf.constant(plan.molded_hw, tf.int32)
    window = tf.constant(plan.window, tf.int32)

    def detect_image(image):
        outputs = network({"input_image": mold_fixed(image, plan, channels),
                           "input_image_meta": tf.constant(plan.image_meta),
                           "input_anchors": tf.constant(plan.anchors)}, training=False)
        return unmold_detections(outputs["detections"][0], outputs["masks"][0], original_hw,
                                 molded_hw, window, dtype=tf.float32)

    return detect_image


def mold_fixed(image: tf.Tensor, plan: FixedMolding, channels: int) -> tf.Tensor:
    """uint8[H, W, C] of ``plan.image_hw`` -> the network's input float32[1, Hm, Wm, C]: the
    resize (float32 arithmetic) when the size needs one, the padding, MEAN_PIXEL/PIXEL_STD."""
    resized = image
    if plan.resized_hw != plan.image_hw:
        resized = _resize_bilinear(image, plan.resized_hw[0], plan.resized_hw[1], tf.float32)
    # Pad the grey levels (int32: LiteRT's PAD has no uint8), then look the molded values up:
    # black padding becomes -MEAN_PIXEL as in mold_image.
    levels = tf.pad(tf.cast(resized, tf.int32), [*plan.padding, (0, 0)])
    molded = tf.gather(tf.constant(plan.pixel_table),
                       levels * channels + tf.range(channels, dtype=tf.int32))
    return molded[None]


def write_litert(network: keras.Model, config: Config, path: str | os.PathLike,
                 size: tuple[int, int] | None = None, quantize: bool = False) -> Path:
    """Write the ``.tflite`` file for images of ``size`` (H, W; default :func:`default_size`);
    ``quantize``: dynamic-range int8 weights. Returns the path."""
    path = Path(path)
    plan = plan_molding(config, default_size(config) if size is None else size)
    path.parent.mkdir(parents=True, exist_ok=True)
    detect_image = build_litert_function(network, config, plan)
    # Both are read when the graph is traced: the keras.ops crops and NMS, no XLA cluster.
    with portable_ops(), network.traced_without_xla():
        save_tflite(network, detect_image, int(config.IMAGE_CHANNEL_COUNT), plan.image_hw,
                    path, quantize)
    logger.info("LiteRT model for %dx%d images%s written to %s", *plan.image_hw,
                " (int8 weights)" if quantize else "", path)
    return path


def _checked_size(size) -> tuple[int, int]:
    from mrcnn.export.saved_model import ExportError

    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ExportError(f"size must be (height, width) in pixels; got {size!r}") from None
    if min(height, width) < 2:
        raise ExportError(f"size must be at least 2 x 2 pixels; got ({height}, {width})")
    return height, width
