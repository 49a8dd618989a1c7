"""unet.export: SavedModel, LiteRT and ONNX exports agree with predict_probability.

Tolerances on probabilities: 1e-4 when the image needs no resize or shrinks by one integer
factor (the graph's pixels are then exactly OpenCV's); 5e-3 otherwise, because the resized
pixels are rounded to uint8 like OpenCV's and can land 1 grey level apart (cv2's bilinear is
fixed-point; a fractional area mean can sit on a .5 tie), which moves this tiny random net's
output by up to ~1e-3.
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

from unet import build_unet
from unet.cli import main
from unet.export import export_model, resize_like_opencv
from unet.imaging import resize_image
from unet.inference import predict_probability


def _onnxruntime():
    pytest.importorskip("tf2onnx", reason="ONNX export needs the export extra")
    return pytest.importorskip("onnxruntime", reason="ONNX checks need the export extra")


def _litert():
    return pytest.importorskip("ai_edge_litert.interpreter",
                               reason="LiteRT checks need the export extra")

# (shape, tolerance): identity, 2x shrink (area), non-square shrink, non-square enlarge (bilinear).
IMAGES = [((32, 32, 3), 1e-4), ((64, 64, 3), 1e-4), ((48, 40, 3), 5e-3), ((20, 45, 3), 5e-3)]


def _image(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture(scope="module")
def model():
    """Tiny 32 px U-Net (depth 2, 8 filters) with logits, so the sigmoid runs in the graph."""
    keras.utils.set_random_seed(0)
    return build_unet("improved", (32, 32, 3), depth=2, base_filters=8, logits=True)


@pytest.fixture(scope="module")
def saved_model(model, tmp_path_factory):
    path = export_model(model, tmp_path_factory.mktemp("unet") / "saved_model")
    return path, tf.saved_model.load(str(path))


def test_resize_like_opencv_matches_cv2_on_float_images():
    """If this failed, exported models would see other pixels than predict() (drifting masks).

    1e-2 grey levels: the area mean comes from a float32 cumulative sum along 300 px rows.
    """
    rng = np.random.default_rng(1)
    for (h, w), (out_h, out_w) in [((100, 80), (64, 64)), ((37, 53), (64, 64)),
                                   ((300, 200), (64, 48)), ((64, 64), (17, 23))]:
        image = rng.uniform(0, 255, (h, w, 3)).astype(np.float32)
        expected = resize_image(image, out_h, out_w)
        got = resize_like_opencv(tf.constant(image), out_h, out_w).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-2)


def test_saved_model_matches_predict_on_square_and_non_square_images(model, saved_model):
    """The served probability map must be predict()'s, at the input's own height and width."""
    serve = saved_model[1].signatures["serving_default"]
    for shape, tolerance in IMAGES:
        image = _image(shape)
        outputs = serve(image=tf.constant(image))
        expected = predict_probability(model, image)
        assert outputs["probability"].shape == shape[:2]
        np.testing.assert_allclose(outputs["probability"].numpy(), expected, atol=tolerance)
        mask = outputs["mask"].numpy()
        assert mask.dtype == np.uint8 and (mask == (outputs["probability"].numpy() > 0.5)).all()


def test_image_bytes_signature_takes_an_encoded_png(model, saved_model):
    """TF Serving clients send encoded files; the bytes signature must decode them itself."""
    image = _image((48, 40, 3), seed=2)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    outputs = saved_model[1].signatures["serving_bytes"](image_bytes=tf.constant(buffer.getvalue()))
    np.testing.assert_allclose(outputs["probability"].numpy(), predict_probability(model, image),
                               atol=5e-3)


@pytest.mark.parametrize("bad", [np.zeros((8, 8, 4), np.uint8), np.zeros((0, 8, 3), np.uint8),
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
                                                                       tmp_path):
    """Serving machines have TensorFlow only; loading must not need unet's Python code.

    The same process then imports unet and unet.export: that must leave the export runtimes
    (tf2onnx, onnxruntime, LiteRT) unloaded, so the core works without the export extra.
    """
    image = _image((64, 64, 3), seed=3)
    np.save(tmp_path / "image.npy", image)
    script = (
        "import json, sys, numpy as np, tensorflow as tf\n"
        f"model = tf.saved_model.load({str(saved_model[0])!r})\n"
        f"image = np.load({str(tmp_path / 'image.npy')!r})\n"
        "out = model.signatures['serving_default'](image=tf.constant(image))\n"
        "ours = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('unet', 'localization', 'mrcnn'))\n"
        "import unet, unet.export, unet.cli\n"
        "unet.build_unet\n"
        "runtimes = [m for m in ('tf2onnx', 'onnxruntime', 'onnx', 'ai_edge_litert') "
        "if m in sys.modules]\n"
        "print(json.dumps({'ours': ours, 'runtimes': runtimes, "
        "'probability': out['probability'].numpy().tolist()}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["ours"] == [] and report["runtimes"] == []
    np.testing.assert_allclose(np.array(report["probability"]), predict_probability(model, image),
                               atol=1e-4)


def _run_litert(path, image):
    runner = _litert().Interpreter(model_path=str(path)).get_signature_runner()
    return runner(image=image)


@pytest.fixture(scope="module")
def litert_48x40(model, tmp_path_factory):
    """Float LiteRT model with a fixed 48x40 input (so the in-graph resize runs)."""
    path = tmp_path_factory.mktemp("litert") / "unet_48x40.tflite"
    return export_model(model, path, "tflite", size=(48, 40))


def test_litert_export_uses_builtin_ops_and_agrees_with_predict(model, litert_48x40):
    """The converter is limited to TFLITE_BUILTINS: a Select TF op would fail the export."""
    image = _image((48, 40, 3), seed=4)
    outputs = _run_litert(litert_48x40, image)
    assert outputs["probability"].shape == (48, 40)
    np.testing.assert_allclose(outputs["probability"], predict_probability(model, image),
                               atol=5e-3)


def test_litert_int8_is_smaller_and_its_mask_agrees(model, litert_48x40, tmp_path):
    """Dynamic-range int8 must shrink the file and keep the mask (Dice vs float >= 0.9)."""
    int8_path = export_model(model, tmp_path / "int8.tflite", "tflite", quantize=True)
    image = _image((32, 32, 3), seed=5)
    expected = predict_probability(model, image)
    threshold = float(np.median(expected))  # a random net: split its map in two halves
    dense = expected > threshold
    quantized = _run_litert(int8_path, image)["probability"] > threshold
    dice = 2 * (dense & quantized).sum() / (dense.sum() + quantized.sum())
    float_size, int8_size = litert_48x40.stat().st_size, int8_path.stat().st_size
    print(f"LiteRT float {float_size} B, int8 {int8_size} B, mask Dice {dice:.4f}")
    assert int8_size < 0.5 * float_size
    assert dice >= 0.9


def test_onnx_export_runs_in_onnxruntime_and_agrees_with_predict(model, tmp_path):
    """ONNX (tf2onnx, opset 17) keeps the any-size input and the in-graph resize; an empty
    image is refused by the node named after the expected input, not deep in the resize."""
    onnxruntime = _onnxruntime()
    path = export_model(model, tmp_path / "unet.onnx", "onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    for shape, tolerance in IMAGES:
        image = _image(shape, seed=6)
        outputs = dict(zip(names, session.run(None, {"image": image}), strict=True))
        np.testing.assert_allclose(outputs["probability"], predict_probability(model, image),
                                   atol=tolerance)
    with pytest.raises(Exception, match="image_expected_uint8_HxWx3_with_H_and_W_at_least_1"):
        session.run(None, {"image": np.zeros((0, 8, 3), np.uint8)})


def test_models_that_cannot_be_exported_get_a_reason(tmp_path):
    """Free input size and multi-head U-Net++ are refused with what to do instead."""
    free = build_unet("improved", (None, None, 3), depth=2, base_filters=8)
    with pytest.raises(ValueError, match="free input size"):
        export_model(free, tmp_path / "free")
    heads = build_unet("unet++", (32, 32, 3), depth=2, base_filters=8, deep_supervision=True)
    with pytest.raises(ValueError, match="build_inference_model"):
        export_model(heads, tmp_path / "heads")
    with pytest.raises(ValueError, match="format must be one of"):
        export_model(free, tmp_path / "x", "torchscript")


def test_cli_export_writes_a_saved_model_from_a_keras_file(model, tmp_path, capsys):
    """`person_segmentation.py export --weights PATH --format saved_model` gives a servable model."""
    weights = tmp_path / "best.keras"
    model.save(weights)
    out = tmp_path / "exported"
    status = main(["export", "--weights", str(weights), "--logs", str(tmp_path), "--format",
                   "saved_model", "--out", str(out)])
    assert status == 0 and "wrote saved_model" in capsys.readouterr().out
    image = _image((32, 32, 3), seed=7)
    outputs = tf.saved_model.load(str(out)).signatures["serving_default"](image=tf.constant(image))
    np.testing.assert_allclose(outputs["probability"].numpy(), predict_probability(model, image),
                               atol=1e-4)


def test_cli_export_bad_arguments_exit_2_with_one_line(tmp_path, capsys):
    """An untrained --weights choice or a missing file is one line on stderr and status 2."""
    assert main(["export", "--weights", "none", "--format", "onnx", "--out", "x.onnx"]) == 2
    assert main(["export", "--weights", str(tmp_path / "missing.keras"), "--format", "onnx",
                 "--out", "x.onnx"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and "untrained" in errors[0] and "not found" in errors[1]
