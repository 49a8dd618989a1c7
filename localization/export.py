"""Export a localizer to SavedModel, LiteRT (``.tflite``) or ONNX, with pre/post-processing inside.

Every exported model takes one image ``uint8 [H, W, C]`` (C: the model's channels, 3 = RGB) and
returns what :func:`localization.inference.predict_images` returns for it:

    ``box``:            float32 ``[4]`` ``(xmin, ymin, xmax, ymax)`` in pixels of the input;
    ``box_normalized``: float32 ``[4]`` the same box divided by ``(W, H, W, H)``;
    ``class_id``:       int32 ``[]`` index into the class names;
    ``score``:          float32 ``[]`` softmax probability of ``class_id``;
    ``class_scores``:   float32 ``[num_classes]`` softmax probabilities.

The SavedModel adds ``class_name`` (string ``[]``). The image is resized to the model input the
way the Python path does (``cv2.INTER_AREA``, rounded to uint8), written in gather/cumsum ops so
one graph runs in all three runtimes (:mod:`vision_common.opencv_resize`, the U-Net's resampling
too).

- SavedModel: ``serving_default`` takes ``image`` of any size; ``serving_bytes`` takes
  ``image_bytes`` (an encoded JPEG/PNG, decoded to C channels). Bad input (not 3-D, not C
  channels, an empty side) fails at the signature with a message naming the expected input.
  JPEG/PNG hold 1, 3 or 4 channels, so other channel counts are refused here (ValueError);
  LiteRT and ONNX take them.
- LiteRT: a fixed input size (``size``; default the model input), builtin ops only;
  ``quantize=True`` stores the weights as int8 (dynamic-range quantization).
- ONNX: tf2onnx from the same function, any input size; run it with onnxruntime.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from localization.model import get_input_channels, get_input_size
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

__all__ = ["EXPORT_FORMATS", "build_serving_function", "export_localizer", "resize_area"]

# Channel counts tf.io.decode_image gives (grey, RGB, RGBA): what serving_bytes can serve.
DECODABLE_CHANNELS = (1, 3, 4)


def resize_area(image: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """``cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)`` of a uint8 image.

    ``image``: float ``[H, W, C]`` holding uint8 values; returns float ``[height, width, C]``
    rounded and clipped as OpenCV rounds uint8 results.
    """
    return resize_like_opencv(image, height, width, "area", uint8=True)


def build_serving_function(model: keras.Model, class_names: Sequence[str] | None = None,
                           checks: bool = True):
    """``image uint8 [H, W, C] -> {"box", "box_normalized", "class_id", "score", ...}``.

    ``class_names`` adds the ``class_name`` output. ``checks`` adds ``tf.debugging`` asserts on
    the image's rank, channels and size (not LiteRT builtins; LiteRT and ONNX leave them out).
    """
    in_h, in_w = get_input_size(model)
    channels = get_input_channels(model)

    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        if checks:
            image = check_image(image, channels)
        size = tf.cast(tf.shape(image)[:2], tf.float32)
        pixels = resize_area(tf.cast(image, tf.float32), in_h, in_w)
        outputs = model(tf.ensure_shape(pixels, (in_h, in_w, channels))[None], training=False)
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


def _save_onnx(serve, spec: tf.TensorSpec, path: Path, opset: int) -> None:
    """Freezes ``serve`` first: tf2onnx's ``from_function`` would turn the constants the Keras
    ``Normalization`` layer captures (its mean and variance) into extra graph inputs."""
    tf2onnx = import_tf2onnx()
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    function = tf.function(guarded_for_onnx(serve, spec.shape[-1]),
                           input_signature=[spec]).get_concrete_function()
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
    check_export_options(format, size, quantize, opset)
    predicted = model.output["class"].shape[-1]
    if class_names is not None and len(class_names) != predicted:
        raise ValueError(f"got {len(class_names)} class names but the model predicts {predicted}")
    channels = get_input_channels(model)
    if format == "saved_model" and channels not in DECODABLE_CHANNELS:
        raise ValueError(f"a SavedModel's serving_bytes decodes JPEG/PNG, which hold 1, 3 or 4 "
                         f"channels; this model reads {channels}: export format 'tflite' or "
                         "'onnx' (they take uint8 [H, W, C] arrays)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "saved_model":
        save_saved_model(model, build_serving_function(model, class_names), channels, path)
    elif format == "tflite":
        save_tflite(model, build_serving_function(model, checks=False), channels,
                    size or get_input_size(model), path, quantize)
    else:
        _save_onnx(build_serving_function(model, checks=False), image_spec(channels), path,
                   opset)
    logger.info("exported %s to %s", format, path)
    return path
