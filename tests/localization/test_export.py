"""localization.export: SavedModel, LiteRT and ONNX exports agree with predict_images.

Tolerances: pixel boxes within 1 px and the same class everywhere; scores within 1e-4 when the
image needs no resize or shrinks by one integer factor (the graph's pixels are then exactly
OpenCV's), 5e-3 otherwise (resized pixels are rounded to uint8 like OpenCV's and can land
1 grey level apart: cv2's interpolation is fixed-point, a fractional area mean can sit on a tie).
"""

import io
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from localization import TINY_PRESET, build_localizer, save_localizer
from localization.cli import main
from localization.export import export_localizer
from localization.inference import predict_images


def _onnxruntime():
    pytest.importorskip("tf2onnx", reason="ONNX export needs the export extra")
    return pytest.importorskip("onnxruntime", reason="ONNX checks need the export extra")


def _litert():
    return pytest.importorskip("ai_edge_litert.interpreter",
                               reason="LiteRT checks need the export extra")


CLASS_NAMES = ("mask", "no-mask")
# (height, width, score tolerance): identity, 2x shrink, non-square shrink, non-square enlarge.
IMAGES = [(32, 32, 1e-4), (64, 64, 1e-4), (64, 48, 5e-3), (20, 45, 5e-3)]


@pytest.fixture(scope="module")
def model():
    """Tiny small-CNN localizer (32 px, 2 classes), untrained."""
    keras.utils.set_random_seed(0)
    return build_localizer(num_classes=2, **TINY_PRESET)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """``[(path, uint8 image, score tolerance)]`` PNGs of the sizes in IMAGES."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    result = []
    for height, width, tolerance in IMAGES:
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        path = folder / f"image_{height}x{width}.png"
        Image.fromarray(image).save(path)
        result.append((path, image, tolerance))
    return result


@pytest.fixture(scope="module")
def saved_model(model, tmp_path_factory):
    path = export_localizer(model, tmp_path_factory.mktemp("loc") / "saved_model",
                            class_names=CLASS_NAMES)
    return path, tf.saved_model.load(str(path))


def _assert_agrees(outputs, prediction, tolerance):
    np.testing.assert_allclose(np.asarray(outputs["box"]), prediction.pixel_box, atol=1.0)
    np.testing.assert_allclose(np.asarray(outputs["box_normalized"]), prediction.box,
                               atol=max(tolerance, 1e-5))
    assert int(outputs["class_id"]) == prediction.class_index
    assert float(outputs["score"]) == pytest.approx(prediction.score, abs=tolerance)


def test_saved_model_matches_predict_on_square_and_non_square_images(model, saved_model, images):
    """Served boxes must be predict()'s pixel boxes, for any image size, with the same class."""
    serve = saved_model[1].signatures["serving_default"]
    predictions = predict_images(model, [path for path, _, _ in images])
    for (_, image, tolerance), prediction in zip(images, predictions, strict=True):
        outputs = serve(image=tf.constant(image))
        _assert_agrees({k: v.numpy() for k, v in outputs.items()}, prediction, tolerance)
        assert outputs["class_name"].numpy().decode() == CLASS_NAMES[prediction.class_index]
        np.testing.assert_allclose(outputs["class_scores"].numpy().sum(), 1.0, atol=1e-5)


def test_image_bytes_signature_takes_an_encoded_jpeg(model, saved_model, images):
    """TF Serving clients send encoded files; the bytes signature must decode them itself."""
    path, image, _ = images[2]
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=95)
    jpeg = path.with_suffix(".jpg")
    jpeg.write_bytes(buffer.getvalue())
    outputs = saved_model[1].signatures["serving_bytes"](image_bytes=tf.constant(buffer.getvalue()))
    (prediction,) = predict_images(model, [jpeg])
    # TF's and PIL's JPEG decoders may differ by a grey level: compare loosely.
    _assert_agrees({k: v.numpy() for k, v in outputs.items()}, prediction, 2e-2)


@pytest.mark.parametrize("bad", [np.zeros((8, 8, 4), np.uint8), np.zeros((8, 0, 3), np.uint8),
                                 np.zeros((8, 8), np.uint8)], ids=["4-channel", "0-size", "2-D"])
def test_bad_images_fail_at_the_signature_naming_the_expected_input(saved_model, bad):
    """A wrong image must say what the model expects, not crash inside a resize kernel."""
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"expected image: uint8\[H, W, 3\]"):
        saved_model[1].signatures["serving_default"](image=tf.constant(bad))


def test_float_images_are_refused_by_the_uint8_signature(saved_model):
    """Float pixels (0..1 or 0..255) are ambiguous; the signature demands uint8."""
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError), match="uint8"):
        saved_model[1].signatures["serving_default"](image=tf.zeros((8, 8, 3)))


def test_saved_model_runs_in_a_process_that_never_imports_our_packages(model, saved_model,
                                                                       images, tmp_path):
    """Serving machines have TensorFlow only; loading must not need localization's code.

    The same process then imports localization and localization.export: that must leave the
    export runtimes (tf2onnx, onnxruntime, LiteRT) unloaded.
    """
    path, image, _ = images[1]
    np.save(tmp_path / "image.npy", image)
    script = (
        "import json, sys, numpy as np, tensorflow as tf\n"
        f"model = tf.saved_model.load({str(saved_model[0])!r})\n"
        f"image = np.load({str(tmp_path / 'image.npy')!r})\n"
        "out = model.signatures['serving_default'](image=tf.constant(image))\n"
        "ours = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('unet', 'localization', 'mrcnn'))\n"
        "import localization, localization.export, localization.cli\n"
        "localization.build_localizer\n"
        "runtimes = [m for m in ('tf2onnx', 'onnxruntime', 'onnx', 'ai_edge_litert') "
        "if m in sys.modules]\n"
        "print(json.dumps({'ours': ours, 'runtimes': runtimes, "
        "'box': out['box'].numpy().tolist(), 'class_id': int(out['class_id']), "
        "'box_normalized': out['box_normalized'].numpy().tolist(), "
        "'score': float(out['score'])}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["ours"] == [] and report["runtimes"] == []
    (prediction,) = predict_images(model, [path])
    _assert_agrees(report, prediction, 1e-4)


def _run_litert(path, image):
    return _litert().Interpreter(model_path=str(path)).get_signature_runner()(image=image)


@pytest.fixture(scope="module")
def litert_64x48(model, tmp_path_factory):
    """Float LiteRT model with a fixed 64x48 input (so the in-graph resize runs)."""
    path = tmp_path_factory.mktemp("litert") / "localizer_64x48.tflite"
    return export_localizer(model, path, "tflite", size=(64, 48))


def test_litert_export_uses_builtin_ops_and_agrees_with_predict(model, images, litert_64x48):
    """The converter is limited to TFLITE_BUILTINS: a Select TF op would fail the export."""
    path, image, tolerance = images[2]
    (prediction,) = predict_images(model, [path])
    _assert_agrees(_run_litert(litert_64x48, image), prediction, tolerance)


def test_litert_int8_is_smaller_and_keeps_box_and_class(model, images, litert_64x48, tmp_path):
    """Dynamic-range int8 must shrink the file and keep the class and the box (within 1 px).

    Only weight tensors of >= 1024 values are quantized, so the tiny model shrinks by ~1/4.
    """
    int8_path = export_localizer(model, tmp_path / "int8.tflite", "tflite", quantize=True)
    path, image, _ = images[0]
    (prediction,) = predict_images(model, [path])
    outputs = _run_litert(int8_path, image)
    float_size, int8_size = litert_64x48.stat().st_size, int8_path.stat().st_size
    box_error = np.abs(outputs["box"] - prediction.pixel_box).max()
    print(f"LiteRT float {float_size} B, int8 {int8_size} B, box error {box_error:.3f} px, "
          f"score error {abs(float(outputs['score']) - prediction.score):.4f}")
    assert int8_size < 0.8 * float_size
    assert int(outputs["class_id"]) == prediction.class_index and box_error <= 1.0


def test_onnx_export_runs_in_onnxruntime_and_agrees_with_predict(model, images, tmp_path):
    """ONNX (tf2onnx, opset 17) keeps the any-size input and the in-graph resize; an empty
    image is refused by the node named after the expected input, not deep in the resize."""
    onnxruntime = _onnxruntime()
    path = export_localizer(model, tmp_path / "localizer.onnx", "onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    predictions = predict_images(model, [p for p, _, _ in images])
    for (_, image, tolerance), prediction in zip(images, predictions, strict=True):
        outputs = dict(zip(names, session.run(None, {"image": image}), strict=True))
        _assert_agrees(outputs, prediction, tolerance)
    with pytest.raises(Exception, match="image_expected_uint8_HxWx3_with_H_and_W_at_least_1"):
        session.run(None, {"image": np.zeros((8, 0, 3), np.uint8)})


def test_bad_export_arguments_get_a_reason(model, tmp_path):
    """Unknown formats, LiteRT-only options elsewhere and a class-name mismatch are refused."""
    with pytest.raises(ValueError, match="format must be one of"):
        export_localizer(model, tmp_path / "x", "torchscript")
    with pytest.raises(ValueError, match="tflite"):
        export_localizer(model, tmp_path / "x", "onnx", quantize=True)
    with pytest.raises(ValueError, match="3 class names"):
        export_localizer(model, tmp_path / "x", class_names=("a", "b", "c"))


def test_cli_export_writes_a_saved_model_with_the_class_names(model, images, tmp_path, capsys):
    """`face_mask.py export --format saved_model` serves class names from the sidecar."""
    weights = save_localizer(model, tmp_path / "localizer.keras", CLASS_NAMES)
    out = tmp_path / "exported"
    status = main(["export", "--weights", str(weights), "--format", "saved_model",
                   "--out", str(out)])
    assert status == 0 and "wrote saved_model" in capsys.readouterr().out
    path, image, _ = images[1]
    outputs = tf.saved_model.load(str(out)).signatures["serving_default"](image=tf.constant(image))
    (prediction,) = predict_images(model, [path])
    assert outputs["class_name"].numpy().decode() == CLASS_NAMES[prediction.class_index]


def test_cli_export_without_a_model_exits_2_with_one_line(tmp_path, capsys):
    """No trained model under --logs is one line on stderr and status 2."""
    assert main(["export", "--logs", str(tmp_path), "--format", "onnx", "--out", "x.onnx"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and "localizer.keras" in errors[0]
