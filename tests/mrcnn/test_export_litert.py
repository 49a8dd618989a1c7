"""MaskRCNN.export(format="tflite"): LiteRT with builtin ops only, checked in LiteRT's interpreter.

The tiny model is tempered as in tests/backends/maskrcnn_checks.py (its random heads scaled
down, so scores spread out instead of tying at 1.0 and boxes keep a size), but not its RPN
classifier: scaled down, every anchor scores ~0.5 to the 6th digit, where XNNPACK's float32
and TensorFlow's differ, and the proposal NMS keeps other near-identical boxes. The images are
the shapes dataset's coloured shapes. The interpreter is ai-edge-litert's (XNNPACK on), or
tf.lite's where ai-edge-litert is not installed.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from mrcnn.config import tiny_config
from mrcnn.export import ExportError

TEMPER = {"mrcnn_class_logits": 0.1, "mrcnn_bbox_fc": 0.1, "rpn_bbox_pred": 0.1}
# Default size: the molding is exact (a table lookup), only the kernels' float32 order differs
# (XNNPACK vs TensorFlow): scores within 1e-4. Another size: the resize runs in float32 too,
# so ~0.1% of resized pixels land one grey level off and scores move by up to ~1e-3.
SCORE_TOLERANCE = {"default": 1e-4, "resized": 5e-3}


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter  # noqa: N806
    return Interpreter


def _shapes_image(rng, height, width):
    from mrcnn.data.datasets.shapes import draw_shape, random_image

    background, shapes = random_image(rng, height, width)
    image = np.full((height, width, 3), background, np.uint8)
    for shape, color, dims in shapes:
        image = draw_shape(image, shape, dims, color)
    return image


def _tempered_model(root):
    import keras

    from mrcnn import model as modellib

    keras.utils.set_random_seed(0)
    config = tiny_config(IMAGES_PER_GPU=1, DETECTION_MIN_CONFIDENCE=0.35)
    model = modellib.MaskRCNN("inference", config, root / "logs")
    for name, factor in TEMPER.items():
        layer = model.keras_model.get_layer(name)
        layer.set_weights([w * factor for w in layer.get_weights()])
    return model


@pytest.fixture(scope="module")
def litert_export(tmp_path_factory):
    """The tempered tiny model exported at its default size (64 x 64), with the converters
    that export made (to check what they were asked for)."""
    root = tmp_path_factory.mktemp("litert")
    model = _tempered_model(root)
    converters = []
    original = tf.lite.TFLiteConverter.from_saved_model

    def recording(*args, **kwargs):
        converters.append(original(*args, **kwargs))
        return converters[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tf.lite.TFLiteConverter, "from_saved_model", recording)
        path = model.export(root / "tiny.tflite", format="tflite")
    return model, path, converters


def _agreement(got: dict, want: dict) -> dict:
    """Largest box (px) and score differences and the lowest mask IoU, detections paired in
    detect()'s order (equal scores may come in another order: paired by box)."""
    assert len(got["class_ids"]) == len(want["class_ids"]), (got["scores"], want["scores"])
    free, order = list(range(len(got["class_ids"]))), []
    for i in range(len(want["class_ids"])):
        best = min(free, key=lambda j: (got["class_ids"][j] != want["class_ids"][i],
                                        abs(float(got["scores"][j]) - float(want["scores"][i])),
                                        int(np.abs(got["rois"][j] - want["rois"][i]).max())))
        free.remove(best)
        order.append(best)
    got = {"class_ids": got["class_ids"][order], "scores": got["scores"][order],
           "rois": got["rois"][order], "masks": got["masks"][..., order]}
    np.testing.assert_array_equal(got["class_ids"], want["class_ids"])
    ious = []
    for i in range(len(want["class_ids"])):
        a, b = want["masks"][..., i].astype(bool), got["masks"][..., i].astype(bool)
        union = (a | b).sum()
        ious.append(1.0 if union == 0 else float((a & b).sum() / union))
    return {"box": int(np.abs(got["rois"] - want["rois"]).max(initial=0)),
            "score": float(np.abs(got["scores"] - want["scores"]).max(initial=0)),
            "mask_iou": min(ious, default=1.0), "count": len(ious)}


def _assert_agrees(runner, model, images, score_tolerance):
    counts = []
    for image in images:
        want = model.detect([image])[0]
        got = runner(image=image)
        assert got["masks"].shape[:2] == image.shape[:2] and got["masks"].dtype == np.uint8
        assert got["rois"].dtype == got["class_ids"].dtype == np.int32
        measured = _agreement(got, want)
        assert measured["box"] <= 1 and measured["score"] <= score_tolerance, measured
        assert measured["mask_iou"] >= 0.99, measured
        counts.append(measured["count"])
    assert sum(counts) > 0, "the fixture model should detect something"


@pytest.mark.parametrize("overrides", [
    {}, {"PIXEL_STD": [58.4, 57.1, 57.4]}, {"IMAGE_RESIZE_MODE": "pad64"},
    {"IMAGE_RESIZE_MODE": "square", "IMAGE_MIN_DIM": 48, "IMAGE_MAX_DIM": 128}])
def test_fixed_size_molding_is_detects_molding(overrides):
    """No model: the planned window, meta and anchors are mold_inputs' and get_anchors'; the
    molded pixels are exact without a resize (a lookup table computed in float64) and, with
    the float32 resize, at most one grey level off on <= 0.5% of noise pixels."""
    from mrcnn.export.litert import mold_fixed, plan_molding
    from mrcnn.geometry.anchors import anchors_for_image_shape
    from mrcnn.geometry.imaging import compose_image_meta, mold_image, resize_image

    config = tiny_config(**overrides)
    rng = np.random.default_rng(1)
    sizes = [tuple(int(v) for v in config.IMAGE_SHAPE[:2]), (50, 90), (120, 33)]
    for size in sizes:
        image = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
        resized, window, scale, _, _ = resize_image(
            image, min_dim=config.IMAGE_MIN_DIM, max_dim=config.IMAGE_MAX_DIM,
            min_scale=config.IMAGE_MIN_SCALE, mode=config.IMAGE_RESIZE_MODE)
        plan = plan_molding(config, size)
        meta = compose_image_meta(0, image.shape, resized.shape, window, scale,
                                  np.zeros([config.NUM_CLASSES], np.int32))
        assert plan.window == tuple(window) and plan.molded_hw == resized.shape[:2]
        np.testing.assert_array_equal(plan.image_meta[0], meta.astype(np.float32))
        np.testing.assert_array_equal(plan.anchors, anchors_for_image_shape(config, resized.shape))
        got = mold_fixed(tf.constant(image), plan, 3)[0].numpy()
        want = mold_image(resized, config)
        if scale == 1:
            np.testing.assert_array_equal(got, want, err_msg=str(size))
        else:
            std = np.asarray(config.PIXEL_STD or 1.0)
            levels = np.abs(got - want) * std
            assert levels.max() <= 1.0 + 1e-3 and (levels > 1e-3).mean() <= 5e-3, size


def test_converts_with_builtin_ops_only_and_runs_in_the_litert_interpreter(litert_export):
    """No SELECT_TF_OPS asked, no Flex op in the file, none of the TensorFlow kernels that
    needed it (CropAndResize, the NMS kernels, TensorList loops); the interpreter runs it."""
    _, path, converters = litert_export
    assert len(converters) == 1
    assert set(converters[0].target_spec.supported_ops) == {tf.lite.OpsSet.TFLITE_BUILTINS}
    interpreter = _interpreter_class()(str(path))
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not {op for op in ops if op.startswith("Flex") or op == "CUSTOM"}, ops
    assert "WHILE" in ops and "GATHER" in ops  # the portable NMS loop and crops
    (spec,) = interpreter.get_input_details()
    assert spec["dtype"] == np.uint8 and list(spec["shape"]) == [64, 64, 3]
    outputs = interpreter.get_signature_list()["serving_default"]["outputs"]
    assert sorted(outputs) == ["class_ids", "masks", "rois", "scores"]


def test_litert_agrees_with_detect_at_the_default_size(litert_export):
    """Boxes within 1 px, scores within 1e-4, the same class ids, mask IoU >= 0.99."""
    model, path, _ = litert_export
    runner = _interpreter_class()(str(path), num_threads=2).get_signature_runner()
    rng = np.random.default_rng(3)
    images = [_shapes_image(rng, 64, 64) for _ in range(4)]
    _assert_agrees(runner, model, images, SCORE_TOLERANCE["default"])
    blank = runner(image=np.full((64, 64, 3), 128, np.uint8))
    assert blank["masks"].shape[:2] == (64, 64)


def test_litert_refuses_a_wrong_dtype_or_size_saying_what_it_expects(litert_export):
    """The interpreter checks dtype and the fixed shape at set_tensor; the signature runner
    resizes its input first, so a wrong size fails when the kernels are prepared."""
    _, path, _ = litert_export
    interpreter = _interpreter_class()(str(path))
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]
    with pytest.raises(ValueError, match="expected type UINT8"):
        interpreter.set_tensor(index, np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ValueError, match="Dimension mismatch. Got 40 but expected 64"):
        interpreter.set_tensor(index, np.zeros((40, 40, 3), np.uint8))
    runner = interpreter.get_signature_runner()
    with pytest.raises(ValueError, match="expected type UINT8"):
        runner(image=np.zeros((64, 64, 3), np.float32))
    with pytest.raises(RuntimeError):
        runner(image=np.zeros((40, 40, 3), np.uint8))


def test_a_training_mode_model_or_a_bad_size_refuses_to_export_to_litert(tmp_path):
    from mrcnn import model as modellib

    model = modellib.MaskRCNN("training", tiny_config(), tmp_path)
    with pytest.raises(ExportError, match="mode='inference'"):
        model.export(tmp_path / "m.tflite", format="tflite")
    inference = modellib.MaskRCNN("inference", tiny_config(IMAGES_PER_GPU=1), tmp_path)
    with pytest.raises(ExportError, match="tflite' only"):
        inference.export(tmp_path / "sm", size=(64, 64))
    with pytest.raises(ExportError, match="at least 2 x 2"):
        inference.export(tmp_path / "m.tflite", format="tflite", size=(1, 64))
    assert not (tmp_path / "m.tflite").exists()


def test_litert_at_another_size_resizes_in_the_graph_and_agrees_with_detect(tmp_path):
    """A 48 x 100 input, resized and padded to 64 x 64 in float32: scores within 5e-3."""
    model = _tempered_model(tmp_path)
    path = model.export(tmp_path / "wide.tflite", format="tflite", size=(48, 100))
    runner = _interpreter_class()(str(path), num_threads=2).get_signature_runner()
    rng = np.random.default_rng(5)
    _assert_agrees(runner, model, [_shapes_image(rng, 48, 100) for _ in range(3)],
                   SCORE_TOLERANCE["resized"])


def _shapes_sample():
    path = Path(__file__).resolve().parents[2] / "samples" / "shapes.py"
    spec = importlib.util.spec_from_file_location("sample_shapes_litert", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_command_writes_an_int8_litert_model_of_the_given_size(tmp_path, capsys):
    """``export --format tflite --size 48 80 --int8``: int8 weights, fixed 48 x 80 input."""
    shapes = _shapes_sample()
    out = tmp_path / "model.tflite"
    assert shapes.main(shapes.SPEC, ["export", "--preset", "tiny", "--weights", "none",
                                     "--logs", str(tmp_path / "logs"), "--format", "tflite",
                                     "--size", "48", "80", "--int8", "--out", str(out)]) == 0
    assert f"tflite written to {out}" in capsys.readouterr().out
    interpreter = _interpreter_class()(str(out))
    assert list(interpreter.get_input_details()[0]["shape"]) == [48, 80, 3]
    outputs = interpreter.get_signature_runner()(image=np.zeros((48, 80, 3), np.uint8))
    assert outputs["masks"].shape[:2] == (48, 80) and outputs["rois"].shape[1:] == (4,)


def test_export_command_refuses_litert_flags_for_other_formats(tmp_path, capsys):
    shapes = _shapes_sample()
    status = shapes.main(shapes.SPEC, ["export", "--preset", "tiny", "--weights", "none",
                                       "--logs", str(tmp_path), "--size", "64",
                                       "--out", str(tmp_path / "sm")])
    assert status == 2
    assert "--format tflite only" in capsys.readouterr().err
