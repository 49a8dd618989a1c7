"""Export a localizer to SavedModel, LiteRT (``.tflite``) or ONNX, with pre/post-processing inside.

Every exported model takes one RGB image ``uint8 [H, W, 3]`` and returns what
:func:`localization.inference.predict_images` returns for it:

    ``box``:            float32 ``[4]`` ``(xmin, ymin, xmax, ymax)`` in pixels of the input;
    ``box_normalized``: float32 ``[4]`` the same box divided by ``(W, H, W, H)``;
    ``class_id``:       int32 ``[]`` index into the class names;
    ``score``:          float32 ``[]`` softmax probability of ``class_id``;
    ``class_scores``:   float32 ``[num_classes]`` softmax probabilities.

The SavedModel adds ``class_name`` (string ``[]``). The image is resized to the model input the
way the Python path does (``cv2.INTER_AREA``, rounded to uint8), written in gather/cumsum ops so
one graph runs in all three runtimes (the same resampling as in ``unet/export.py``: the two
packages may not import each other).

- SavedModel: ``serving_default`` takes ``image`` of any size; ``serving_bytes`` takes
  ``image_bytes`` (an encoded JPEG/PNG). Bad input (not 3-D, not 3 channels, an empty side)
  fails at the signature with a message naming the expected input.
- LiteRT: a fixed input size (``size``; default the model input), builtin ops only;
  ``quantize=True`` stores the weights as int8 (dynamic-range quantization).
- ONNX: tf2onnx from the same function, any input size; run it with onnxruntime.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from localization.model import get_input_size

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("saved_model", "tflite", "onnx")
DEFAULT_OPSET = 17
EXPECTED_INPUT = "image: uint8[H, W, 3] with H, W >= 1"

__all__ = ["EXPORT_FORMATS", "build_serving_function", "export_localizer", "resize_area"]


def _lerp(x: tf.Tensor, axis: int, low: tf.Tensor, fraction: tf.Tensor) -> tf.Tensor:
    """``x[low] * (1 - fraction) + x[low + 1] * fraction`` along ``axis`` (index clamped)."""
    high = tf.minimum(low + 1, tf.shape(x)[axis] - 1)
    fraction = tf.reshape(fraction, [-1] + [1] * (x.shape.rank - 1 - axis))
    return tf.gather(x, low, axis=axis) * (1.0 - fraction) + tf.gather(x, high, axis=axis) * fraction


def _area_axis(x: tf.Tensor, axis: int, out_size: int, integral_mode: tf.Tensor) -> tf.Tensor:
    """One axis of ``cv2.resize(..., INTER_AREA)`` in float math.

    OpenCV averages exact pixel overlaps when no axis grows (here from a cumulative sum), and
    otherwise interpolates between two pixels with its own INTER_AREA weights.
    """
    n = tf.cast(tf.shape(x)[axis], tf.float32)
    scale = n / out_size
    index = tf.range(float(out_size))
    low = tf.floor(index * scale)
    fraction = (index + 1) - (low + 1) / scale
    fraction = tf.where(fraction <= 0, 0.0, fraction - tf.floor(fraction))
    fraction = tf.where(low >= n - 1, 0.0, fraction)
    interpolated = _lerp(x, axis, tf.cast(tf.minimum(low, n - 1), tf.int32), fraction)
    zeros = tf.zeros_like(tf.gather(x, [0], axis=axis))
    integral = tf.concat([zeros, tf.cumsum(x, axis=axis)], axis=axis)
    edges = tf.minimum(tf.range(float(out_size + 1)) * scale, n)
    edge_low = tf.minimum(tf.floor(edges), n - 1)
    sums = _lerp(integral, axis, tf.cast(edge_low, tf.int32), edges - edge_low)
    averaged = (tf.gather(sums, tf.range(1, out_size + 1), axis=axis)
                - tf.gather(sums, tf.range(out_size), axis=axis)) / scale
    return tf.where(integral_mode, averaged, interpolated)


def resize_area(image: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """``cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)`` of a uint8 image.

    ``image``: float ``[H, W, C]`` holding uint8 values; returns float ``[height, width, C]``
    rounded and clipped as OpenCV rounds uint8 results (halves up on its fixed-point paths:
    interpolation, and shrinking by one integer factor on both axes; else to nearest even).
    """
    in_h, in_w = tf.shape(image)[0], tf.shape(image)[1]
    integral = (height <= in_h) & (width <= in_w)
    resized = _area_axis(_area_axis(image, 1, width, integral), 0, height, integral)
    same_factor = (in_h % height == 0) & (in_w % width == 0) & (in_h // height == in_w // width)
    resized = tf.where(~integral | same_factor, tf.floor(resized + 0.5), tf.round(resized))
    return tf.clip_by_value(resized, 0.0, 255.0)


def _check_image(image: tf.Tensor) -> tf.Tensor:
    """``image`` after asserts that it is ``[H, W, 3]`` with H, W >= 1 (run before use)."""
    message = f"expected {EXPECTED_INPUT}"
    with tf.control_dependencies([tf.debugging.assert_rank(image, 3, message=message)]):
        shape = tf.shape(image)
    with tf.control_dependencies([tf.debugging.assert_equal(shape[-1], 3, message=message),
                                  tf.debugging.assert_positive(shape[:2], message=message)]):
        return tf.ensure_shape(image, (None, None, 3))


def build_serving_function(model: keras.Model, class_names: Sequence[str] | None = None,
                           checks: bool = True):
    """``image uint8 [H, W, 3] -> {"box", "box_normalized", "class_id", "score", ...}``.

    ``class_names`` adds the ``class_name`` output. ``checks`` adds ``tf.debugging`` asserts on
    the image's rank, channels and size (not LiteRT builtins; LiteRT and ONNX leave them out).
    """
    in_h, in_w = get_input_size(model)

    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        if checks:
            image = _check_image(image)
        size = tf.cast(tf.shape(image)[:2], tf.float32)
        pixels = resize_area(tf.cast(image, tf.float32), in_h, in_w)
        outputs = model(tf.ensure_shape(pixels, (in_h, in_w, 3))[None], training=False)
        box = tf.cast(outputs["box"][0], tf.float32)
        class_scores = tf.nn.softmax(tf.cast(outputs["class"][0], tf.float32))
        class_id = tf.argmax(class_scores, output_type=tf.int32)
        result = {"box": box * tf.stack([size[1], size[0], size[1], size[0]]),
                  "box_normalized": box, "class_id": class_id,
                  "score": tf.reduce_max(class_scores), "class_scores": class_scores}
        if class_names is not None:
            result["class_name"] = tf.gather(tf.constant(list(class_names)), class_id)
        return result

    return serve


def _write_archive(model: keras.Model, endpoints: dict, path: Path) -> None:
    """SavedModel with one signature per ``name -> (function, spec)`` entry.

    Keras' ExportArchive tracks the model's variables; a plain ``tf.Module`` looked fine in
    TensorFlow but the LiteRT converter bound its variables wrongly (inf/NaN outputs).
    """
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (function, spec) in endpoints.items():
        archive.add_endpoint(name, function, input_signature=[spec])
    archive.write_out(str(path), verbose=False)


def _save_saved_model(model, serve, path: Path) -> None:
    def serve_bytes(image_bytes):
        return serve(tf.io.decode_image(image_bytes, channels=3, expand_animations=False))

    _write_archive(model, {
        "serving_default": (serve, tf.TensorSpec(None, tf.uint8, name="image")),
        "serving_bytes": (serve_bytes, tf.TensorSpec([], tf.string, name="image_bytes")),
    }, path)


def _save_tflite(model, serve, spec: tf.TensorSpec, path: Path, quantize: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        _write_archive(model, {"serving_default": (serve, spec)}, Path(folder))
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no SELECT_TF_OPS
        if quantize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        path.write_bytes(converter.convert())


def _save_onnx(serve, spec: tf.TensorSpec, path: Path, opset: int) -> None:
    """Freezes ``serve`` first: tf2onnx's ``from_function`` would turn the constants the Keras
    ``Normalization`` layer captures (its mean and variance) into extra graph inputs."""
    try:
        import tf2onnx
    except ImportError as error:
        raise ImportError("ONNX export needs tf2onnx: pip install 'mrcnn-toolkit[export]'") from error
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    function = tf.function(serve, input_signature=[spec]).get_concrete_function()
    frozen = convert_variables_to_constants_v2(function)
    # Flattened outputs follow the sorted keys of the returned dict.
    names = {tensor.name: key for tensor, key in zip(
        frozen.outputs, sorted(function.structured_outputs), strict=True)}
    tf2onnx.convert.from_graph_def(
        frozen.graph.as_graph_def(), input_names=[frozen.inputs[0].name],
        output_names=list(names), opset=opset, output_path=str(path),
        tensors_to_rename={frozen.inputs[0].name: "image", **names})


def export_localizer(
    model: keras.Model,
    path: str | Path,
    format: str = "saved_model",
    *,
    class_names: Sequence[str] | None = None,
    size: tuple[int, int] | None = None,
    quantize: bool = False,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Writes ``model`` (from :func:`localization.build_localizer`) with its pre/post-processing.

    Args:
        path: a folder for "saved_model", a file (``.tflite`` / ``.onnx``) otherwise.
        format: "saved_model", "tflite" or "onnx".
        class_names: SavedModel only: adds the ``class_name`` output.
        size: LiteRT only: the fixed ``(height, width)`` of its input image (default: the model
            input size, so the in-graph resize is the identity).
        quantize: LiteRT only: dynamic-range int8 weights (``optimizations=[DEFAULT]``).
        opset: ONNX opset (>= 13).
    Returns:
        ``path``.
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {list(EXPORT_FORMATS)}; got {format!r}")
    if (size is not None or quantize) and format != "tflite":
        raise ValueError("size and quantize apply to format='tflite' only")
    if opset < 13:
        raise ValueError(f"opset must be >= 13; got {opset}")
    predicted = model.output["class"].shape[-1]
    if class_names is not None and len(class_names) != predicted:
        raise ValueError(f"got {len(class_names)} class names but the model predicts {predicted}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "saved_model":
        _save_saved_model(model, build_serving_function(model, class_names), path)
    elif format == "tflite":
        height, width = size or get_input_size(model)
        if min(height, width) < 1:
            raise ValueError(f"size must be positive (height, width); got {size}")
        spec = tf.TensorSpec([height, width, 3], tf.uint8, name="image")
        _save_tflite(model, build_serving_function(model, checks=False), spec, path, quantize)
    else:
        spec = tf.TensorSpec([None, None, 3], tf.uint8, name="image")
        _save_onnx(build_serving_function(model, checks=False), spec, path, opset)
    logger.info("exported %s to %s", format, path)
    return path
