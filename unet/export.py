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
from pathlib import Path

import keras
import tensorflow as tf

from unet.inference import outputs_logits
from vision_common.export_writers import (
    DEFAULT_OPSET,
    EXPORT_FORMATS,
    check_export_options,
    check_image,
    guarded_for_onnx,
    image_spec,
    import_tf2onnx,
    save_saved_model,
    save_tflite,
)
from vision_common.opencv_resize import resize_like_opencv

logger = logging.getLogger(__name__)

__all__ = ["EXPORT_FORMATS", "build_serving_function", "export_model", "resize_like_opencv"]


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
            image = check_image(image, channels)
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


def _save_onnx(serve, spec: tf.TensorSpec, path: Path, opset: int) -> None:
    tf2onnx = import_tf2onnx()
    function = tf.function(guarded_for_onnx(serve, spec.shape[-1]), input_signature=[spec])
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
    check_export_options(format, size, quantize, opset)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1); got {threshold}")
    _, _, out_h, out_w, channels = _model_geometry(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "saved_model":
        save_saved_model(model, build_serving_function(model, threshold), channels, path)
    elif format == "tflite":
        save_tflite(model, build_serving_function(model, threshold, checks=False), channels,
                    size or (out_h, out_w), path, quantize)
    else:
        _save_onnx(build_serving_function(model, threshold, checks=False), image_spec(channels),
                   path, opset)
    logger.info("exported %s to %s", format, path)
    return path
