"""Writing a serving function as a SavedModel or LiteRT file, and the checks every export makes.

A serving function takes one image ``uint8 [H, W, C]`` and returns a dict of tensors; the
packages build it (pre/post-processing included) and write their own ONNX graph with the
``tf2onnx`` that :func:`import_tf2onnx` imports.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import keras
import tensorflow as tf

__all__ = ["DEFAULT_OPSET", "EXPORT_FORMATS", "check_export_options", "check_image",
           "guarded_for_onnx", "image_spec", "import_tf2onnx", "save_saved_model", "save_tflite"]

EXPORT_FORMATS = ("saved_model", "tflite", "onnx")
DEFAULT_OPSET = 17

ServingFunction = Callable[[tf.Tensor], dict[str, tf.Tensor]]


def check_export_options(format: str, size: tuple[int, int] | None, quantize: bool,
                         opset: int) -> None:
    """Raise ValueError for a Keras backend other than TensorFlow (the serving functions are
    ``tf.function`` graphs calling the model), an unknown ``format``, LiteRT-only options
    elsewhere, or an opset below 13."""
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ValueError(f"{format} export needs the TensorFlow backend; Keras runs on {backend!r}"
                         " (rerun with KERAS_BACKEND=tensorflow)")
    if format not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {list(EXPORT_FORMATS)}; got {format!r}")
    if (size is not None or quantize) and format != "tflite":
        raise ValueError("size and quantize apply to format='tflite' only")
    if opset < 13:
        raise ValueError(f"opset must be >= 13; got {opset}")


def check_image(image: tf.Tensor, channels: int) -> tf.Tensor:
    """``image`` after asserts that it is ``[H, W, channels]`` with H, W >= 1 (run before use)."""
    message = f"expected image: uint8[H, W, {channels}] with H, W >= 1"
    with tf.control_dependencies([tf.debugging.assert_rank(image, 3, message=message)]):
        shape = tf.shape(image)
    with tf.control_dependencies([
            tf.debugging.assert_equal(shape[-1], channels, message=message),
            tf.debugging.assert_positive(shape[:2], message=message)]):
        return tf.ensure_shape(image, (None, None, channels))


def guarded_for_onnx(serve: ServingFunction, channels: int, minimum: int = 1) -> ServingFunction:
    """``serve`` refusing an image with H or W < ``minimum`` in a way ONNX keeps.

    ONNX has no assertion op and tf2onnx drops TensorFlow's, so :func:`check_image` would
    vanish and such an image would crash a kernel deep inside the graph. Here a Gather,
    named after what the model expects, reads index 1 of a 1-element tensor when the image is
    too small: onnxruntime refuses it before anything else runs, and its error names that node.
    """
    name = f"image_expected_uint8_HxWx{channels}_with_H_and_W_at_least_{minimum}"

    def guarded(image: tf.Tensor) -> dict[str, tf.Tensor]:
        too_small = tf.cast(tf.reduce_any(tf.shape(image)[:2] < minimum), tf.int32)
        return serve(image + tf.gather(tf.zeros([1], image.dtype), too_small[None], name=name))

    return guarded


def image_spec(channels: int, size: tuple[int, int] | None = None) -> tf.TensorSpec:
    """The ``image`` input: ``uint8 [height, width, channels]``, any height and width without
    ``size``."""
    height, width = size or (None, None)
    return tf.TensorSpec([height, width, channels], tf.uint8, name="image")


def _write_archive(model: keras.Model,
                   endpoints: dict[str, tuple[Callable, tf.TensorSpec]], path: Path) -> None:
    """SavedModel with one signature per ``name -> (function, spec)`` entry.

    Keras' ExportArchive tracks the model's variables; a plain ``tf.Module`` looked fine in
    TensorFlow but the LiteRT converter bound its variables wrongly (inf/NaN outputs).
    """
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (function, spec) in endpoints.items():
        archive.add_endpoint(name, function, input_signature=[spec])
    archive.write_out(str(path), verbose=False)


def save_saved_model(model: keras.Model, serve: ServingFunction, channels: int,
                     path: Path) -> None:
    """A SavedModel folder: ``serving_default`` takes ``image`` of any size (any rank: ``serve``
    checks it), ``serving_bytes`` an encoded JPEG/PNG ``image_bytes`` (EXIF orientation
    ignored)."""
    def serve_bytes(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        return serve(tf.io.decode_image(image_bytes, channels=channels, expand_animations=False))

    _write_archive(model, {
        "serving_default": (serve, tf.TensorSpec(None, tf.uint8, name="image")),
        "serving_bytes": (serve_bytes, tf.TensorSpec([], tf.string, name="image_bytes")),
    }, path)


def save_tflite(model: keras.Model, serve: ServingFunction, channels: int,
                size: tuple[int, int], path: Path, quantize: bool) -> None:
    """A LiteRT file with a fixed ``size = (height, width)`` input and builtin ops only;
    ``quantize`` stores the weights as int8 (dynamic-range quantization)."""
    if min(size) < 1:
        raise ValueError(f"size must be positive (height, width); got {size}")
    with tempfile.TemporaryDirectory() as folder:
        _write_archive(model, {"serving_default": (serve, image_spec(channels, size))},
                       Path(folder))
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no SELECT_TF_OPS
        if quantize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        path.write_bytes(converter.convert())


def import_tf2onnx() -> ModuleType:
    """``tf2onnx``, or an ImportError that names the extra to install."""
    try:
        import tf2onnx
    except ImportError as error:
        raise ImportError("ONNX export needs tf2onnx: pip install 'mrcnn-toolkit[export]'") from error
    return tf2onnx
