"""Export a U-Net to SavedModel, LiteRT (``.tflite``) or ONNX, with pre/post-processing inside.

Every exported model takes one image ``uint8 [H, W, C]`` (C: the model's channels) and returns
what :func:`unet.inference.predict_probability` returns, at the input's size:

    ``probability``: float32 ``[H, W]`` foreground probability in [0, 1];
    ``mask``:        uint8 ``[H, W]``, 1 where ``probability > threshold``.

The graph does what the Python path does: resize to the model's size (OpenCV's rules: area
averaging when the image shrinks, bilinear otherwise, rounded to uint8), reflect-pad by the
margin of an unpadded classic U-Net, run the model (sigmoid on logits), resize the map back
bilinearly. The resize is written in gather/cumsum ops, so one graph runs in all three runtimes.

- SavedModel: ``serving_default`` takes ``image`` of any size; ``serving_bytes`` takes
  ``image_bytes`` (an encoded JPEG/PNG, EXIF orientation ignored). Bad input (not 3-D, wrong
  channel count, an empty side) fails at the signature with a message naming the expected input.
- LiteRT: a fixed input size (``size``; default the model's image size), builtin ops only;
  ``quantize=True`` stores the weights as int8 (dynamic-range quantization).
- ONNX: tf2onnx from the same function, any input size; run it with onnxruntime.

Models with a free input size (``input_shape=(None, None, C)``) are not exported: their
predict path depends on ``max_side``; rebuild them with a fixed input size.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from unet.inference import outputs_logits

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("saved_model", "tflite", "onnx")
DEFAULT_OPSET = 17

__all__ = ["EXPORT_FORMATS", "build_serving_function", "export_model", "resize_like_opencv"]


def _lerp(x: tf.Tensor, axis: int, low: tf.Tensor, fraction: tf.Tensor) -> tf.Tensor:
    """``x[low] * (1 - fraction) + x[low + 1] * fraction`` along ``axis`` (index clamped)."""
    size = tf.shape(x)[axis]
    high = tf.minimum(low + 1, size - 1)
    fraction = tf.reshape(fraction, [-1] + [1] * (x.shape.rank - 1 - axis))
    return tf.gather(x, low, axis=axis) * (1.0 - fraction) + tf.gather(x, high, axis=axis) * fraction


def _resample_axis(x: tf.Tensor, axis: int, out_size: tf.Tensor, integral_mode: tf.Tensor,
                   area: tf.Tensor) -> tf.Tensor:
    """One axis of ``cv2.resize``: ``area`` -> INTER_AREA, else INTER_LINEAR; float math.

    With INTER_AREA OpenCV averages exact pixel overlaps when no axis grows (``integral_mode``,
    computed from a cumulative sum), else it interpolates with its own INTER_AREA weights.
    """
    size = tf.shape(x)[axis]
    n = tf.cast(size, tf.float32)
    scale = n / tf.cast(out_size, tf.float32)
    index = tf.range(tf.cast(out_size, tf.float32))
    # INTER_LINEAR: half-pixel centres, clamped at both borders.
    linear = (index + 0.5) * scale - 0.5
    linear_low = tf.floor(linear)
    linear_fraction = tf.where((linear < 0) | (linear_low >= n - 1), 0.0, linear - linear_low)
    # INTER_AREA when the image grows along some axis (OpenCV's resize.cpp, "INTER_AREA" taps).
    area_low = tf.floor(index * scale)
    area_fraction = (index + 1) - (area_low + 1) / scale
    area_fraction = tf.where(area_fraction <= 0, 0.0, area_fraction - tf.floor(area_fraction))
    area_fraction = tf.where(area_low >= n - 1, 0.0, area_fraction)
    low = tf.where(area, area_low, linear_low)
    fraction = tf.where(area, area_fraction, linear_fraction)
    low = tf.cast(tf.clip_by_value(low, 0.0, n - 1), tf.int32)
    interpolated = _lerp(x, axis, low, fraction)
    # INTER_AREA when shrinking: mean over [i * scale, (i + 1) * scale) of the pixel step function.
    zeros = tf.zeros_like(tf.gather(x, [0], axis=axis))
    integral = tf.concat([zeros, tf.cumsum(x, axis=axis)], axis=axis)
    edges = tf.minimum(tf.range(tf.cast(out_size, tf.float32) + 1) * scale, n)
    edge_low = tf.minimum(tf.floor(edges), n - 1)
    sums = _lerp(integral, axis, tf.cast(edge_low, tf.int32), edges - edge_low)
    averaged = (tf.gather(sums, tf.range(1, out_size + 1), axis=axis)
                - tf.gather(sums, tf.range(out_size), axis=axis)) / scale
    return tf.where(integral_mode, averaged, interpolated)


def resize_like_opencv(image: tf.Tensor, height, width, method: str = "auto",
                       uint8: bool = False) -> tf.Tensor:
    """``cv2.resize`` of a float ``[H, W, C]`` tensor to ``[height, width, C]`` in TF ops.

    ``method``: "linear" (INTER_LINEAR), "area" (INTER_AREA) or "auto" (what
    :func:`unet.imaging.resize_image` picks: area when the pixel count drops, else linear).
    ``uint8``: round and clip as OpenCV does for a uint8 image (still a float tensor).
    """
    if method not in ("auto", "area", "linear"):
        raise ValueError(f"method must be 'auto', 'area' or 'linear'; got {method!r}")
    in_h, in_w = tf.shape(image)[0], tf.shape(image)[1]
    height, width = tf.cast(height, tf.int32), tf.cast(width, tf.int32)
    if method == "auto":
        area = height * width < in_h * in_w
    else:
        area = tf.constant(method == "area")
    integral = area & (height <= in_h) & (width <= in_w)
    resized = _resample_axis(_resample_axis(image, 1, width, integral, area), 0, height,
                             integral, area)
    if not uint8:
        return resized
    # OpenCV's fixed-point paths (bilinear, and area shrinking by one integer factor on both
    # axes) round halves up; its fractional area mean rounds to nearest even.
    same_factor = ((in_h % height == 0) & (in_w % width == 0)
                   & (in_h // height == in_w // width))
    half_up = ~integral | same_factor
    resized = tf.where(half_up, tf.floor(resized + 0.5), tf.round(resized))
    return tf.clip_by_value(resized, 0.0, 255.0)


def _model_geometry(model: keras.Model) -> tuple[int, int, int, int, int]:
    if len(model.outputs) != 1:
        raise ValueError(f"{model.name} has {len(model.outputs)} outputs; export one map: "
                         "unet.build_inference_model(model) first")
    in_h, in_w, channels = model.input_shape[1:]
    out_h, out_w = model.output_shape[1:3]
    if in_h is None or in_w is None:
        raise ValueError(f"{model.name} has a free input size {model.input_shape[1:3]}; export "
                         "needs a fixed one: rebuild it with input_shape=(S, S, C)")
    return in_h, in_w, out_h, out_w, channels


def _check_image(image: tf.Tensor, channels: int) -> tf.Tensor:
    """``image`` after asserts that it is ``[H, W, channels]`` with H, W >= 1 (run before use)."""
    message = f"expected image: uint8[H, W, {channels}] with H, W >= 1"
    with tf.control_dependencies([tf.debugging.assert_rank(image, 3, message=message)]):
        shape = tf.shape(image)
    with tf.control_dependencies([
            tf.debugging.assert_equal(shape[-1], channels, message=message),
            tf.debugging.assert_positive(shape[:2], message=message)]):
        return tf.ensure_shape(image, (None, None, channels))


def build_serving_function(model: keras.Model, threshold: float = 0.5, checks: bool = True):
    """``image uint8 [H, W, C] -> {"probability", "mask"}`` as a Python function of TF ops.

    ``checks`` adds ``tf.debugging`` asserts on the image's rank, channels and size (they are
    not LiteRT builtins; the LiteRT and ONNX exports leave them out).
    """
    in_h, in_w, out_h, out_w, channels = _model_geometry(model)
    margin_h, margin_w = (in_h - out_h) // 2, (in_w - out_w) // 2
    logits = outputs_logits(model)

    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        if checks:
            image = _check_image(image, channels)
        height, width = tf.shape(image)[0], tf.shape(image)[1]
        pixels = resize_like_opencv(tf.cast(image, tf.float32), out_h, out_w, uint8=True)
        if margin_h or margin_w:
            pixels = tf.pad(pixels, [[margin_h, margin_h], [margin_w, margin_w], [0, 0]],
                            mode="REFLECT")
        pixels = tf.ensure_shape(pixels, (in_h, in_w, channels))
        output = tf.cast(model(pixels[None], training=False), tf.float32)[0]
        if logits:
            output = tf.sigmoid(output)
        probability = resize_like_opencv(output, height, width, "linear")[..., 0]
        probability = tf.clip_by_value(probability, 0.0, 1.0)
        return {"probability": probability,
                "mask": tf.cast(probability > threshold, tf.uint8)}

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


def _save_saved_model(model, serve, channels, path: Path) -> None:
    def serve_bytes(image_bytes):
        return serve(tf.io.decode_image(image_bytes, channels=channels, expand_animations=False))

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
    try:
        import tf2onnx
    except ImportError as error:
        raise ImportError("ONNX export needs tf2onnx: pip install 'mrcnn-toolkit[export]'") from error
    function = tf.function(serve, input_signature=[spec])
    tf2onnx.convert.from_function(function, input_signature=[spec], opset=opset,
                                  output_path=str(path))


def export_model(
    model: keras.Model,
    path: str | Path,
    format: str = "saved_model",
    *,
    threshold: float = 0.5,
    size: tuple[int, int] | None = None,
    quantize: bool = False,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Writes ``model`` (single-output, fixed input size) with its pre/post-processing.

    Args:
        model: a U-Net from :func:`unet.build_unet` (deep supervision: pass it through
            :func:`unet.build_inference_model` first).
        path: a folder for "saved_model", a file (``.tflite`` / ``.onnx``) otherwise.
        format: "saved_model", "tflite" or "onnx".
        threshold: probability above which ``mask`` is 1.
        size: LiteRT only: the fixed ``(height, width)`` of its input image (default: the size
            the model sees, so the in-graph resize is the identity).
        quantize: LiteRT only: dynamic-range int8 weights (``optimizations=[DEFAULT]``).
        opset: ONNX opset (>= 13).
    Returns:
        ``path``.
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {list(EXPORT_FORMATS)}; got {format!r}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1); got {threshold}")
    if (size is not None or quantize) and format != "tflite":
        raise ValueError("size and quantize apply to format='tflite' only")
    if opset < 13:
        raise ValueError(f"opset must be >= 13; got {opset}")
    _, _, out_h, out_w, channels = _model_geometry(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "saved_model":
        _save_saved_model(model, build_serving_function(model, threshold), channels, path)
    elif format == "tflite":
        height, width = size or (out_h, out_w)
        if min(height, width) < 1:
            raise ValueError(f"size must be positive (height, width); got {size}")
        spec = tf.TensorSpec([height, width, channels], tf.uint8, name="image")
        _save_tflite(model, build_serving_function(model, threshold, checks=False), spec, path,
                    quantize)
    else:
        spec = tf.TensorSpec([None, None, channels], tf.uint8, name="image")
        _save_onnx(build_serving_function(model, threshold, checks=False), spec, path, opset)
    logger.info("exported %s to %s", format, path)
    return path
