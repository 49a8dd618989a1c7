"""The ONNX export: ``serving_default``'s graph (image in, ``detect()``'s results out) via tf2onnx.

One input, ``image`` uint8[H, W, C] of any size; outputs ``rois`` int32[N, 4], ``class_ids``
int32[N], ``scores`` float32[N] and ``masks`` uint8[H, W, N], as the SavedModel's. Runs in
onnxruntime's CPU provider. Needs the ``[export]`` extra (tf2onnx) to write, onnxruntime to run.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import keras
import tensorflow as tf

from mrcnn.config import Config

logger = logging.getLogger(__name__)

ONNX_OPSET = 17


def write_onnx(network: keras.Model, config: Config, path: str | os.PathLike,
               serving_function) -> Path:
    """Convert ``serving_function`` (``image`` -> results, built on ``network``) to ``path``.

    The trunk is traced without XLA: tf2onnx cannot convert inside a compiled cluster.
    """
    from mrcnn.export.saved_model import ExportError

    try:
        import tf2onnx
    except ImportError as error:
        raise ExportError("format='onnx' needs tf2onnx: pip install -e '.[export]'") from error
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    signature = [tf.TensorSpec([None, None, int(config.IMAGE_CHANNEL_COUNT)], tf.uint8,
                               name="image")]
    with network.traced_without_xla():
        function = tf.function(serving_function, input_signature=signature)
        temporary = path.with_name(path.name + ".tmp")
        tf2onnx.convert.from_function(function, input_signature=signature, opset=ONNX_OPSET,
                                      output_path=str(temporary))
    os.replace(temporary, path)
    logger.info("ONNX (opset %d) written to %s", ONNX_OPSET, path)
    return path
