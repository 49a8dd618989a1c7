"""The ONNX export: ``serving_default``'s graph (image in, ``detect()``'s results out) via tf2onnx.

ROIAlign's crops become ONNX ``RoiAlign`` nodes (:func:`_crop_and_resize_as_roi_align`).

One input, ``image`` uint8[H, W, C] of any size; outputs ``rois`` int32[N, 4], ``class_ids``
int32[N], ``scores`` float32[N] and ``masks`` uint8[H, W, N], as the SavedModel's. Runs in
onnxruntime's CPU provider. Needs the ``[export]`` extra (tf2onnx) to write, onnxruntime to run.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mrcnn.config import Config
from vision_common.export_writers import guarded_for_onnx

logger = logging.getLogger(__name__)

ONNX_OPSET = 17


def write_onnx(network: keras.Model, config: Config, path: str | os.PathLike,
               serving_function) -> Path:
    """Convert ``serving_function`` (``image`` -> results, built on ``network``) to ``path``.

    The trunk is traced without XLA: tf2onnx cannot convert inside a compiled cluster. An
    image smaller than 2x2 is refused by a node named after the expected input
    (:func:`vision_common.export_writers.guarded_for_onnx`).
    """
    from mrcnn.export.saved_model import ExportError

    try:
        import tf2onnx
    except ImportError as error:
        raise ExportError("format='onnx' needs tf2onnx: pip install -e '.[export]'") from error
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = int(config.IMAGE_CHANNEL_COUNT)
    signature = [tf.TensorSpec([None, None, channels], tf.uint8, name="image")]
    with network.traced_without_xla():
        function = tf.function(guarded_for_onnx(serving_function, channels, minimum=2),
                               input_signature=signature)
        temporary = path.with_name(path.name + ".tmp")
        tf2onnx.convert.from_function(
            function, input_signature=signature, opset=ONNX_OPSET, output_path=str(temporary),
            custom_op_handlers={"CropAndResize": (_crop_and_resize_as_roi_align, [])})
    os.replace(temporary, path)
    logger.info("ONNX (opset %d) written to %s", ONNX_OPSET, path)
    return path


def _crop_and_resize_as_roi_align(ctx, node, name, args) -> None:
    """tf2onnx handler: ``tf.image.crop_and_resize`` (bilinear) as one ONNX ``RoiAlign``.

    tf2onnx's own conversion loops over the boxes (a third of the ONNX model's time). RoiAlign
    with one sample per bin, in half_pixel coordinates, samples at exactly crop_and_resize's
    points when each box is widened by half a sampling step on every side: bin centres
    ``y1 (H - 1) + i (y2 - y1) (H - 1) / (crop_h - 1)``. The two differ only outside the
    image (zeros there for TensorFlow), where ROIAlign's proposals, clipped to the image, never go.
    """
    from onnx import TensorProto
    from tf2onnx import utils

    image, boxes, box_index = node.input[:3]
    crop_h, crop_w = (int(v) for v in node.inputs[3].get_tensor_value(as_list=True))
    if min(crop_h, crop_w) < 2 or node.get_attr_str("method") not in ("bilinear", None):
        raise ValueError(f"CropAndResize to {crop_h}x{crop_w}: only bilinear crops of 2 px and "
                         "more are converted to RoiAlign")

    def const(values, dtype=np.float32) -> str:
        return ctx.make_const(utils.make_name(f"{name}_const"), np.array(values, dtype)).output[0]

    def op(kind: str, inputs: list[str], **attr) -> str:
        return ctx.make_node(kind, inputs, attr=attr, name=utils.make_name(f"{name}_{kind}")
                             ).output[0]

    shape = op("Shape", [image])
    size_hw = op("Cast", [op("Slice", [shape, const([1], np.int64), const([3], np.int64)])],
                 to=TensorProto.FLOAT)
    last_pixel = op("Sub", [size_hw, const(1.0)])  # (H - 1, W - 1)
    pixels = op("Mul", [boxes, op("Concat", [last_pixel, last_pixel], axis=0)])
    corners = op("Gather", [pixels, const([1, 0, 3, 2], np.int64)], axis=1)  # x1 y1 x2 y2
    starts = op("Slice", [corners, const([0], np.int64), const([2], np.int64),
                          const([1], np.int64)])
    ends = op("Slice", [corners, const([2], np.int64), const([4], np.int64),
                        const([1], np.int64)])
    half_step = op("Mul", [op("Sub", [ends, starts]),
                           const([0.5 / (crop_w - 1), 0.5 / (crop_h - 1)])])
    widen = op("Concat", [op("Neg", [half_step]), half_step], axis=1)
    rois = op("Add", [op("Add", [corners, widen]), const(0.5)])  # half_pixel subtracts 0.5
    aligned = op("RoiAlign", [op("Transpose", [image], perm=[0, 3, 1, 2]), rois,
                              op("Cast", [box_index], to=TensorProto.INT64)],
                 output_height=crop_h, output_width=crop_w, sampling_ratio=1, spatial_scale=1.0,
                 mode="avg", coordinate_transformation_mode="half_pixel")
    dtypes, shapes = [ctx.get_dtype(node.output[0])], [ctx.get_shape(node.output[0])]
    ctx.remove_node(name)
    ctx.make_node("Transpose", [aligned], attr={"perm": [0, 2, 3, 1]}, name=name,
                  outputs=node.output, shapes=shapes, dtypes=dtypes)
