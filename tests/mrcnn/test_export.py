"""MaskRCNN.export: a SavedModel that takes one image and returns what detect() returns.

The graph's molding and unmolding are checked against the numpy path piece by piece (fast, no
model), then the exported tiny model against detect() in a fresh interpreter that never
imports our packages, as a TF Serving user would run it.
"""

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from mrcnn.config import tiny_config
from mrcnn.export import ExportError, check_exportable
from mrcnn.export.molding import compute_anchors, mold_one_image
from mrcnn.export.unmolding import paste_masks
from mrcnn.geometry.anchors import anchors_for_image_shape
from mrcnn.geometry.imaging import compose_image_meta, mold_image, resize_image
from mrcnn.geometry.imaging import paste_masks as paste_masks_numpy

SHAPES = [(64, 64, 3), (50, 90, 3), (120, 33, 3), (20, 30, 3), (200, 130, 3)]


def _numpy_molding(image, config):
    resized, window, scale, _, _ = resize_image(
        image, min_dim=config.IMAGE_MIN_DIM, max_dim=config.IMAGE_MAX_DIM,
        min_scale=config.IMAGE_MIN_SCALE, mode=config.IMAGE_RESIZE_MODE)
    meta = compose_image_meta(0, image.shape, resized.shape, window, scale,
                              np.zeros([config.NUM_CLASSES], np.int32))
    return mold_image(resized, config), meta.astype(np.float32), np.array(window)


@pytest.mark.parametrize("overrides", [
    {"IMAGE_RESIZE_MODE": "square"},
    {"IMAGE_RESIZE_MODE": "pad64"},
    {"IMAGE_RESIZE_MODE": "pad64", "IMAGE_MIN_SCALE": 1.7},
    {"IMAGE_RESIZE_MODE": "square", "IMAGE_MIN_DIM": 48, "IMAGE_MAX_DIM": 128},
])
def test_graph_molding_gives_detects_pixels_exactly(overrides):
    """The exported model must see the input detect() feeds the network, pixel for pixel: a
    grey level off after the uint8 truncation moves scores and flips mask pixels near 0.5."""
    config = tiny_config(**overrides)
    rng = np.random.default_rng(1)
    for shape in SHAPES:
        image = rng.integers(0, 256, size=shape, dtype=np.uint8)
        molded, meta, window = _numpy_molding(image, config)
        graph = mold_one_image(tf.constant(image), config)
        np.testing.assert_array_equal(graph["molded"][0].numpy(), molded, err_msg=str(shape))
        np.testing.assert_array_equal(graph["image_meta"][0].numpy(), meta)
        np.testing.assert_array_equal(graph["window"].numpy(), window)


@pytest.mark.parametrize("molded_hw", [(64, 64), (128, 192), (192, 64)])
def test_graph_anchors_equal_get_anchors(molded_hw):
    """Outside square mode the molded shape varies, so the graph generates the anchors itself;
    an anchor off by a cell would shift every box the RPN proposes."""
    config = tiny_config(IMAGE_RESIZE_MODE="pad64")
    graph = compute_anchors(config, tf.constant(molded_hw)).numpy()
    np.testing.assert_array_equal(graph, anchors_for_image_shape(config, molded_hw))


def test_graph_paste_masks_equals_the_numpy_paste():
    """Full-size masks from the graph equal detect()'s: boxes partly outside the image, boxes
    larger and smaller than the 28x28 mask, a 1-pixel box, an empty box, and a mask that is
    >= 0.5 everywhere (its whole box is on, the border blend clipped back up)."""
    rng = np.random.default_rng(0)
    masks = rng.uniform(0, 1, size=(7, 28, 28)).astype(np.float32)
    masks[3] = rng.uniform(0.6, 1.0, size=(28, 28))
    boxes = np.array([[5, 7, 40, 33], [-6, -3, 20, 12], [30, 50, 75, 95], [10, 10, 50, 60],
                      [12, 20, 13, 21], [20, 20, 20, 30], [0, 0, 60, 80]], np.int32)
    expected = paste_masks_numpy(masks, boxes, (60, 80))
    got = paste_masks(tf.constant(masks), tf.constant(boxes), tf.constant([60, 80])).numpy()
    assert got.dtype == np.uint8 and got.shape == (60, 80, 7)
    np.testing.assert_array_equal(got.astype(bool), expected)


def test_random_crop_mode_is_refused_at_export_with_the_fix():
    """IMAGE_RESIZE_MODE='crop' is random (training only): export says what to use instead."""
    with pytest.raises(ExportError, match="pad64"):
        check_exportable(tiny_config(IMAGE_RESIZE_MODE="crop"))


# ------------------------------------------------------------------------------------------
# The exported tiny model against detect()

SERVE_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    model_dir, inputs, out = sys.argv[1:4]
    loaded = tf.saved_model.load(model_dir)
    serve = loaded.signatures["serving_default"]
    serve_bytes = loaded.signatures["serving_image_bytes"]
    data = np.load(inputs)
    results, errors = {}, {}
    for key in data.files:
        if key.startswith("image"):
            for name, value in serve(image=tf.constant(data[key])).items():
                results[f"{key}/{name}"] = value.numpy()
    for name, value in serve_bytes(image_bytes=tf.constant(data["png"].tobytes())).items():
        results[f"png/{name}"] = value.numpy()
    bad = {"float32": (serve, tf.zeros([40, 40, 3], tf.float32)),
           "four_channels": (serve, tf.zeros([40, 40, 4], tf.uint8)),
           "zero_size": (serve, tf.zeros([0, 40, 3], tf.uint8)),
           "empty_bytes": (serve_bytes, tf.constant(b""))}
    for case, (function, value) in bad.items():
        try:
            function(value)
        except Exception as error:  # what a serving user sees, whatever its type
            errors[case] = f"{type(error).__name__}: {error}"[:600]
    np.savez(out, **results)
    ours = sorted(m for m in sys.modules if m.split(".")[0] in {"mrcnn", "unet", "localization"})
    spec = serve.structured_input_signature[1]["image"]
    print(json.dumps({"errors": errors, "our_modules": ours,
                      "input": [spec.dtype.name, list(spec.shape)],
                      "outputs": {k: v.dtype.name for k, v in serve.structured_outputs.items()}}))
""")

SERVED_SHAPES = [(64, 64, 3), (50, 90, 3), (120, 33, 3)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny inference model that returns detections (no confidence cut), exported once.
    Seeded: an unseeded random model may detect nothing in an image, depending on which tests
    drew random numbers before it."""
    from mrcnn import model as modellib

    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("export")
    config = tiny_config(IMAGES_PER_GPU=1, DETECTION_MIN_CONFIDENCE=0.0)
    model = modellib.MaskRCNN("inference", config, root / "logs")
    path = model.export(root / "saved_model")
    return model, path


@pytest.fixture(scope="module")
def served(exported, tmp_path_factory):
    """The SavedModel run in a fresh interpreter: its outputs, error messages and imports."""
    model, path = exported
    root = tmp_path_factory.mktemp("serve")
    rng = np.random.default_rng(3)
    images = {f"image{i}": rng.integers(0, 256, size=s, dtype=np.uint8)
              for i, s in enumerate(SERVED_SHAPES)}
    images["png"] = np.frombuffer(tf.io.encode_png(images["image1"]).numpy(), np.uint8)
    np.savez(root / "inputs.npz", **images)
    done = subprocess.run([sys.executable, "-c", SERVE_SCRIPT, str(path), str(root / "inputs.npz"),
                           str(root / "out.npz")], capture_output=True, text=True, cwd=root,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    outputs = np.load(root / "out.npz")
    by_image = {key: {name: outputs[f"{key}/{name}"] for name in report["outputs"]}
                for key in [*[k for k in images if k != "png"], "png"]}
    expected = dict(zip(images, model.detect([images[k] for k in images if k != "png"]),
                        strict=False))
    expected["png"] = expected["image1"]
    return by_image, expected, report


def test_saved_model_agrees_with_detect_without_importing_our_packages(served):
    """A server that only has TensorFlow gets detect()'s results for square and non-square
    images, from raw pixels and from PNG bytes: boxes within 1 px, scores within 1e-4, each
    mask with IoU >= 0.99, masks at the input's size."""
    by_image, expected, report = served
    assert report["our_modules"] == []
    assert report["input"] == ["uint8", [None, None, None]]  # channels: checked in the graph
    assert report["outputs"] == {"rois": "int32", "class_ids": "int32", "scores": "float32",
                                 "masks": "uint8"}
    for key, got in by_image.items():
        _assert_agrees(got, expected[key], key)


def _assert_agrees(got: dict, want: dict, key: str) -> None:
    """Issue 13's tolerance: boxes within 1 px, scores within 1e-4, each mask IoU >= 0.99."""
    assert len(want["class_ids"]) > 0, "the fixture model should detect something"
    np.testing.assert_array_equal(got["class_ids"], want["class_ids"], err_msg=key)
    np.testing.assert_allclose(got["rois"], want["rois"], atol=1, err_msg=key)
    np.testing.assert_allclose(got["scores"], want["scores"], atol=1e-4, err_msg=key)
    assert got["masks"].shape == want["masks"].shape and got["masks"].dtype == np.uint8, key
    for index in range(want["masks"].shape[-1]):
        a, b = want["masks"][..., index], got["masks"][..., index].astype(bool)
        union = (a | b).sum()
        assert union == 0 or (a & b).sum() / union >= 0.99, (key, index)


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def _in_detects_order(got: dict, want: dict) -> dict:
    """``got`` reordered to pair with ``want``'s detections: among equal scores (a random tiny
    model scores many boxes 1.0) another runtime may rank them in another order."""
    free = list(range(len(got["class_ids"])))
    order = []
    for i in range(len(want["class_ids"])):
        candidates = [j for j in free if got["class_ids"][j] == want["class_ids"][i]
                      and abs(float(got["scores"][j]) - float(want["scores"][i])) <= 1e-4]
        assert candidates, f"detection {i} of detect() has no counterpart"
        best = min(candidates, key=lambda j: (
            int(np.abs(got["rois"][j].astype(int) - want["rois"][i]).max()),
            -_mask_iou(got["masks"][..., j].astype(bool), want["masks"][..., i])))
        free.remove(best)
        order.append(best)
    return {"class_ids": got["class_ids"][order], "scores": got["scores"][order],
            "rois": got["rois"][order], "masks": got["masks"][..., order]}


@pytest.fixture(scope="module")
def onnx_export(tmp_path_factory):
    """A tiny model with spread-out scores (a random classifier scores most boxes 1.0, and
    which ten of those ties are kept is arbitrary), exported to ONNX (tf2onnx) and loaded in
    onnxruntime's CPU provider."""
    ort = pytest.importorskip("onnxruntime")
    from mrcnn import model as modellib

    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("onnx")
    config = tiny_config(IMAGES_PER_GPU=1, DETECTION_MIN_CONFIDENCE=0.0)
    model = modellib.MaskRCNN("inference", config, root / "logs")
    logits = model._layers["mrcnn_class_logits"]
    kernel, bias = logits.get_weights()
    logits.set_weights([np.random.default_rng(0).normal(0, 0.05, kernel.shape), bias])
    path = model.export(root / "tiny.onnx", format="onnx")
    return model, ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_onnx_export_agrees_with_detect_in_onnxruntime(onnx_export):
    """A CPU server on onnxruntime gets detect()'s results: the same detections (equal scores
    may swap places), boxes within 1 px, scores within 1e-4, mask IoU >= 0.99."""
    model, onnx_session = onnx_export
    names = [output.name for output in onnx_session.get_outputs()]
    assert sorted(names) == ["class_ids", "masks", "rois", "scores"]
    rng = np.random.default_rng(3)
    for shape in SERVED_SHAPES:
        image = rng.integers(0, 256, size=shape, dtype=np.uint8)
        want = model.detect([image])[0]
        got = dict(zip(names, onnx_session.run(None, {"image": image}), strict=True))
        _assert_agrees(_in_detects_order(got, want), want, str(shape))


@pytest.mark.parametrize(("image", "words"), [
    (np.zeros((40, 40, 3), np.float32), ["expected: (tensor(uint8))"]),
    (np.zeros((40, 40, 4), np.uint8), ["image", "index: 2 Got: 4 Expected: 3"]),
    (np.zeros((0, 40, 3), np.uint8), ["image_expected_uint8_HxWx3_with_H_and_W_at_least_2"]),
    (np.zeros((40, 1, 3), np.uint8), ["image_expected_uint8_HxWx3_with_H_and_W_at_least_2"]),
])
def test_onnx_refuses_bad_input_at_its_input_saying_what_it_expects(onnx_export, image, words):
    """An onnxruntime client sending floats, RGBA or an empty image is told what the model
    expects (ONNX has no assertion op: the size check is a node named after it)."""
    _, onnx_session = onnx_export
    with pytest.raises(Exception) as raised:
        onnx_session.run(None, {"image": image})
    assert all(word in str(raised.value) for word in words), str(raised.value)


@pytest.mark.parametrize(("case", "words"), [
    ("float32", ["expected to be a uint8 tensor"]),
    ("four_channels", ["image: expected uint8[H, W, 3]", "got channels"]),
    ("zero_size", ["image: expected uint8[H, W, 3] with H, W >= 2", "got shape"]),
    ("empty_bytes", ["image_bytes", "empty"]),
])
def test_bad_input_is_refused_at_the_signature_saying_what_it_expects(served, case, words):
    """A client sending floats, RGBA or an empty image gets told the expected input, not a
    crash deep inside a convolution."""
    message = served[2]["errors"].get(case)
    assert message is not None, f"{case} was accepted"
    assert all(word in message for word in words), message


def test_a_training_mode_model_refuses_to_export_saying_to_build_it_for_inference(tmp_path):
    """Exporting the training graph would serve nothing useful; the message says the fix."""
    from mrcnn import model as modellib

    model = modellib.MaskRCNN("training", tiny_config(), tmp_path)
    with pytest.raises(ExportError, match="mode='inference'"):
        model.export(tmp_path / "saved_model")
    assert not (tmp_path / "saved_model").exists()


def _shapes_sample():
    """samples/shapes.py as a module (the samples are scripts, not a package)."""
    path = Path(__file__).resolve().parents[2] / "samples" / "shapes.py"
    spec = importlib.util.spec_from_file_location("sample_shapes_export", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_pad64_export_agrees_with_detect_on_non_square_images(tmp_path):
    """pad64 molds each image to its own multiple of 64, so anchors come from the graph."""
    from mrcnn import model as modellib

    config = tiny_config(IMAGES_PER_GPU=1, DETECTION_MIN_CONFIDENCE=0.0,
                         IMAGE_RESIZE_MODE="pad64")
    model = modellib.MaskRCNN("inference", config, tmp_path / "logs")
    serve = tf.saved_model.load(str(model.export(tmp_path / "sm"))).signatures["serving_default"]
    rng = np.random.default_rng(4)
    for shape in [(50, 90, 3), (130, 70, 3)]:
        image = rng.integers(0, 256, size=shape, dtype=np.uint8)
        got = {name: value.numpy() for name, value in serve(image=tf.constant(image)).items()}
        _assert_agrees(got, model.detect([image])[0], str(shape))


def test_export_command_refuses_a_random_crop_config_in_one_line(tmp_path, capsys):
    """The sample CLI says why and what to set, with status 2, before building any model."""
    shapes = _shapes_sample()
    status = shapes.main(shapes.SPEC, ["export", "--preset", "tiny", "--weights", "none",
                                       "--set", "IMAGE_RESIZE_MODE=crop", "--logs",
                                       str(tmp_path), "--out", str(tmp_path / "sm")])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: export:") and "pad64" in err and "\n" not in err


@pytest.mark.slow
def test_export_command_writes_a_saved_model_with_both_signatures(tmp_path):
    """``python samples/shapes.py export --weights PATH --out DIR`` serves images."""
    shapes = _shapes_sample()
    common = ["--preset", "tiny", "--logs", str(tmp_path / "logs")]
    assert shapes.main(shapes.SPEC, ["export", *common, "--weights", "none",
                                     "--out", str(tmp_path / "sm")]) == 0
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    assert {"serving_default", "serving_image_bytes"} <= set(loaded.signatures)
    out = loaded.signatures["serving_default"](image=tf.zeros([40, 70, 3], tf.uint8))
    assert out["masks"].shape[:2] == (40, 70)


def test_export_command_writes_onnx_that_onnxruntime_runs(tmp_path, capsys):
    """``python samples/shapes.py export --format onnx --out model.onnx`` gives a file that
    onnxruntime loads with one ``image`` input and detect()'s four outputs at the input's size."""
    ort = pytest.importorskip("onnxruntime")
    shapes = _shapes_sample()
    out = tmp_path / "model.onnx"
    assert shapes.main(shapes.SPEC, ["export", "--preset", "tiny", "--weights", "none",
                                     "--logs", str(tmp_path / "logs"), "--format", "onnx",
                                     "--out", str(out)]) == 0
    assert f"onnx written to {out}" in capsys.readouterr().out
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    outputs = dict(zip([o.name for o in session.get_outputs()],
                       session.run(None, {"image": np.zeros((40, 70, 3), np.uint8)}), strict=True))
    assert outputs["masks"].shape[:2] == (40, 70) and outputs["rois"].shape[1:] == (4,)
