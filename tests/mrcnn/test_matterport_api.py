"""Matterport parity (issue 12): every public name of Matterport's mrcnn exists here and accepts
Matterport's arguments, and the new Matterport-API functions do what Matterport's did.

The parameter lists below are written out from matterport/Mask_RCNN (master, 2019):
mrcnn/model.py, utils.py, visualize.py, parallel_model.py and config.py. A parameter is its
name, with ``=default`` when Matterport gives one (the default as Python source).
"""

from __future__ import annotations

import ast
import functools
import http.server
import inspect
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import mrcnn.model as modellib
from mrcnn import config as config_module
from mrcnn import utils, visualize

MODEL = {
    "log": "text, array=None",
    "BatchNorm.call": "inputs, training=None",
    "compute_backbone_shapes": "config, image_shape",
    "identity_block": "input_tensor, kernel_size, filters, stage, block, use_bias=True, "
                      "train_bn=True",
    "conv_block": "input_tensor, kernel_size, filters, stage, block, strides=(2, 2), "
                  "use_bias=True, train_bn=True",
    "resnet_graph": "input_image, architecture, stage5=False, train_bn=True",
    "apply_box_deltas_graph": "boxes, deltas",
    "clip_boxes_graph": "boxes, window",
    "ProposalLayer": "proposal_count, nms_threshold, config=None",
    "ProposalLayer.call": "inputs",
    "log2_graph": "x",
    "PyramidROIAlign": "pool_shape",
    "PyramidROIAlign.call": "inputs",
    "overlaps_graph": "boxes1, boxes2",
    "detection_targets_graph": "proposals, gt_class_ids, gt_boxes, gt_masks, config",
    "DetectionTargetLayer": "config",
    "DetectionTargetLayer.call": "inputs",
    "refine_detections_graph": "rois, probs, deltas, window, config",
    "DetectionLayer": "config=None",
    "DetectionLayer.call": "inputs",
    "rpn_graph": "feature_map, anchors_per_location, anchor_stride",
    "build_rpn_model": "anchor_stride, anchors_per_location, depth",
    "fpn_classifier_graph": "rois, feature_maps, image_meta, pool_size, num_classes, "
                            "train_bn=True, fc_layers_size=1024",
    "build_fpn_mask_graph": "rois, feature_maps, image_meta, pool_size, num_classes, "
                            "train_bn=True",
    "smooth_l1_loss": "y_true, y_pred",
    "rpn_class_loss_graph": "rpn_match, rpn_class_logits",
    "rpn_bbox_loss_graph": "config, target_bbox, rpn_match, rpn_bbox",
    "mrcnn_class_loss_graph": "target_class_ids, pred_class_logits, active_class_ids",
    "mrcnn_bbox_loss_graph": "target_bbox, target_class_ids, pred_bbox",
    "mrcnn_mask_loss_graph": "target_masks, target_class_ids, pred_masks",
    "load_image_gt": "dataset, config, image_id, augment=False, augmentation=None, "
                     "use_mini_mask=False",
    "build_detection_targets": "rpn_rois, gt_class_ids, gt_boxes, gt_masks, config",
    "build_rpn_targets": "image_shape, anchors, gt_class_ids, gt_boxes, config",
    "generate_random_rois": "image_shape, count, gt_class_ids, gt_boxes",
    "data_generator": "dataset, config, shuffle=True, augment=False, augmentation=None, "
                      "random_rois=0, batch_size=1, detection_targets=False, "
                      "no_augmentation_sources=None",
    "MaskRCNN": "mode, config, model_dir",
    "MaskRCNN.build": "mode, config",
    "MaskRCNN.find_last": "",
    "MaskRCNN.load_weights": "filepath, by_name=False, exclude=None",
    "MaskRCNN.get_imagenet_weights": "",
    "MaskRCNN.compile": "learning_rate, momentum",
    "MaskRCNN.set_trainable": "layer_regex, keras_model=None, indent=0, verbose=1",
    "MaskRCNN.set_log_dir": "model_path=None",
    "MaskRCNN.train": "train_dataset, val_dataset, learning_rate, epochs, layers, "
                      "augmentation=None, custom_callbacks=None, no_augmentation_sources=None",
    "MaskRCNN.mold_inputs": "images",
    "MaskRCNN.unmold_detections": "detections, mrcnn_mask, original_image_shape, image_shape, "
                                  "window",
    "MaskRCNN.detect": "images, verbose=0",
    "MaskRCNN.detect_molded": "molded_images, image_metas, verbose=0",
    "MaskRCNN.get_anchors": "image_shape",
    "MaskRCNN.ancestor": "tensor, name, checked=None",
    "MaskRCNN.find_trainable_layer": "layer",
    "MaskRCNN.get_trainable_layers": "",
    "MaskRCNN.run_graph": "images, outputs, image_metas=None",
    "compose_image_meta": "image_id, original_image_shape, image_shape, window, scale, "
                          "active_class_ids",
    "parse_image_meta": "meta",
    "parse_image_meta_graph": "meta",
    "mold_image": "images, config",
    "unmold_image": "normalized_images, config",
    "trim_zeros_graph": "boxes, name='trim_zeros'",
    "batch_pack_graph": "x, counts, num_rows",
    "norm_boxes_graph": "boxes, shape",
    "denorm_boxes_graph": "boxes, shape",
}

UTILS = {
    "extract_bboxes": "mask",
    "compute_iou": "box, boxes, box_area, boxes_area",
    "compute_overlaps": "boxes1, boxes2",
    "compute_overlaps_masks": "masks1, masks2",
    "non_max_suppression": "boxes, scores, threshold",
    "apply_box_deltas": "boxes, deltas",
    "box_refinement_graph": "box, gt_box",
    "box_refinement": "box, gt_box",
    "Dataset": "class_map=None",
    "Dataset.add_class": "source, class_id, class_name",
    "Dataset.add_image": "source, image_id, path",
    "Dataset.image_reference": "image_id",
    "Dataset.prepare": "class_map=None",
    "Dataset.map_source_class_id": "source_class_id",
    "Dataset.get_source_class_id": "class_id, source",
    "Dataset.append_data": "class_info, image_info",
    "Dataset.source_image_link": "image_id",
    "Dataset.load_image": "image_id",
    "Dataset.load_mask": "image_id",
    "resize_image": "image, min_dim=None, max_dim=None, min_scale=None, mode='square'",
    "resize_mask": "mask, scale, padding, crop=None",
    "minimize_mask": "bbox, mask, mini_shape",
    "expand_mask": "bbox, mini_mask, image_shape",
    "mold_mask": "mask, config",
    "unmold_mask": "mask, bbox, image_shape",
    "generate_anchors": "scales, ratios, shape, feature_stride, anchor_stride",
    "generate_pyramid_anchors": "scales, ratios, feature_shapes, feature_strides, anchor_stride",
    "trim_zeros": "x",
    "compute_matches": "gt_boxes, gt_class_ids, gt_masks, pred_boxes, pred_class_ids, "
                       "pred_scores, pred_masks, iou_threshold=0.5, score_threshold=0.0",
    "compute_ap": "gt_boxes, gt_class_ids, gt_masks, pred_boxes, pred_class_ids, pred_scores, "
                  "pred_masks, iou_threshold=0.5",
    "compute_ap_range": "gt_box, gt_class_id, gt_mask, pred_box, pred_class_id, pred_score, "
                        "pred_mask, iou_thresholds=None, verbose=1",
    "compute_recall": "pred_boxes, gt_boxes, iou",
    "batch_slice": "inputs, graph_fn, batch_size, names=None",
    "download_trained_weights": "coco_model_path, verbose=1",
    "norm_boxes": "boxes, shape",
    "denorm_boxes": "boxes, shape",
    "resize": "image, output_shape, order=1, mode='constant', cval=0, clip=True, "
              "preserve_range=False, anti_aliasing=False, anti_aliasing_sigma=None",
}

VISUALIZE = {
    "display_images": "images, titles=None, cols=4, cmap=None, norm=None, interpolation=None",
    "random_colors": "N, bright=True",
    "apply_mask": "image, mask, color, alpha=0.5",
    "display_instances": "image, boxes, masks, class_ids, class_names, scores=None, title='', "
                         "figsize=(16, 16), ax=None, show_mask=True, show_bbox=True, "
                         "colors=None, captions=None",
    "display_differences": "image, gt_box, gt_class_id, gt_mask, pred_box, pred_class_id, "
                           "pred_score, pred_mask, class_names, title='', ax=None, "
                           "show_mask=True, show_box=True, iou_threshold=0.5, "
                           "score_threshold=0.5",
    "draw_rois": "image, rois, refined_rois, mask, class_ids, class_names, limit=10",
    "draw_box": "image, box, color",
    "display_top_masks": "image, mask, class_ids, class_names, limit=4",
    "plot_precision_recall": "AP, precisions, recalls",
    "plot_overlaps": "gt_class_ids, pred_class_ids, pred_scores, overlaps, class_names, "
                     "threshold=0.5",
    "draw_boxes": "image, boxes=None, refined_boxes=None, masks=None, captions=None, "
                  "visibilities=None, title='', ax=None",
    "display_table": "table",
    "display_weight_stats": "model",
}

PARALLEL_MODEL = {"ParallelModel": "keras_model, gpu_count"}

CONFIG = {"Config": "", "Config.display": ""}

# Matterport's Config fields (and the three it derives in __init__).
CONFIG_FIELDS = (
    "NAME GPU_COUNT IMAGES_PER_GPU STEPS_PER_EPOCH VALIDATION_STEPS BACKBONE "
    "COMPUTE_BACKBONE_SHAPE BACKBONE_STRIDES FPN_CLASSIF_FC_LAYERS_SIZE TOP_DOWN_PYRAMID_SIZE "
    "NUM_CLASSES RPN_ANCHOR_SCALES RPN_ANCHOR_RATIOS RPN_ANCHOR_STRIDE RPN_NMS_THRESHOLD "
    "RPN_TRAIN_ANCHORS_PER_IMAGE PRE_NMS_LIMIT POST_NMS_ROIS_TRAINING POST_NMS_ROIS_INFERENCE "
    "USE_MINI_MASK MINI_MASK_SHAPE IMAGE_RESIZE_MODE IMAGE_MIN_DIM IMAGE_MAX_DIM "
    "IMAGE_MIN_SCALE IMAGE_CHANNEL_COUNT MEAN_PIXEL TRAIN_ROIS_PER_IMAGE ROI_POSITIVE_RATIO "
    "POOL_SIZE MASK_POOL_SIZE MASK_SHAPE MAX_GT_INSTANCES RPN_BBOX_STD_DEV BBOX_STD_DEV "
    "DETECTION_MAX_INSTANCES DETECTION_MIN_CONFIDENCE DETECTION_NMS_THRESHOLD LEARNING_RATE "
    "LEARNING_MOMENTUM WEIGHT_DECAY LOSS_WEIGHTS USE_RPN_ROIS TRAIN_BN GRADIENT_CLIP_NORM "
    "BATCH_SIZE IMAGE_SHAPE IMAGE_META_SIZE"
).split()

MODULES = {"mrcnn.model": (modellib, MODEL), "mrcnn.utils": (utils, UTILS),
           "mrcnn.visualize": (visualize, VISUALIZE), "mrcnn.config": (config_module, CONFIG)}


def _parse(spec: str) -> list[tuple[str, object]]:
    """"a, b=1" -> [("a", EMPTY), ("b", 1)]."""
    tree = ast.parse(f"def f({spec}): pass").body[0].args
    defaults = [inspect.Parameter.empty] * (len(tree.args) - len(tree.defaults))
    defaults += [ast.literal_eval(d) for d in tree.defaults]
    return [(a.arg, d) for a, d in zip(tree.args, defaults, strict=True)]


def _resolve(module, dotted: str):
    obj = module
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _parameters(obj) -> list[inspect.Parameter]:
    target = obj.__init__ if inspect.isclass(obj) else obj
    params = list(inspect.signature(target).parameters.values())
    return params[1:] if params and params[0].name == "self" else params


def _check(obj, spec: str) -> list[str]:
    """What keeps a call written for Matterport's ``spec`` from binding to ``obj``."""
    problems = []
    params = _parameters(obj)
    by_name = {p.name: p for p in params}
    positional = [p.name for p in params
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for index, (name, default) in enumerate(_parse(spec)):
        ours = by_name.get(name)
        if ours is None:
            problems.append(f"parameter {name!r} missing")
            continue
        if index >= len(positional) or positional[index] != name:
            problems.append(f"{name!r} is not positional parameter {index}")
        if default is not inspect.Parameter.empty:
            if ours.default is inspect.Parameter.empty:
                problems.append(f"{name!r} has no default (Matterport: {default!r})")
            elif not _same_default(ours.default, default):
                problems.append(f"{name!r} defaults to {ours.default!r}, Matterport {default!r}")
    return problems


def _same_default(ours, theirs) -> bool:
    if isinstance(theirs, tuple):
        return isinstance(ours, (tuple, list)) and tuple(ours) == theirs
    return type(ours) is type(theirs) and ours == theirs


def test_every_matterport_name_exists_and_takes_matterports_arguments():
    """Code written for Matterport would fail with AttributeError or TypeError on the first
    call of a missing name, a renamed parameter or a reordered positional one."""
    from mrcnn import parallel_model

    problems = []
    modules = {**MODULES, "mrcnn.parallel_model": (parallel_model, PARALLEL_MODEL)}
    for module_name, (module, names) in modules.items():
        for dotted, spec in names.items():
            try:
                obj = _resolve(module, dotted)
            except AttributeError:
                problems.append(f"{module_name}.{dotted}: missing")
                continue
            problems += [f"{module_name}.{dotted}: {p}" for p in _check(obj, spec)]
    assert not problems, "\n".join(problems)


def test_config_has_every_matterport_field():
    """A Matterport Config subclass overriding a field we lack would be silently ignored."""
    config = config_module.Config()
    assert [name for name in CONFIG_FIELDS if not hasattr(config, name)] == []


def test_the_signature_check_catches_what_it_should():
    """The parity test above would pass vacuously if _check accepted everything."""

    def reordered(b, a=1):
        pass

    def renamed(a, c=1):
        pass

    def other_default(a, b=2):
        pass

    assert _check(reordered, "a, b=1") != []
    assert _check(renamed, "a, b=1") == ["parameter 'b' missing"]
    assert _check(other_default, "a, b=1") == ["'b' defaults to 2, Matterport 1"]
    assert _check(lambda a, b=1, c=None: None, "a, b=1") == []


def test_same_default_compares_by_value_and_type():
    """True == 1 must not pass as the same default (a flag where a count was expected)."""
    assert _same_default((16, 16), (16, 16)) and _same_default("", "")
    assert not _same_default(True, 1) and not _same_default(0.5, 0.6)


# ----------------------------------------------------------------------------------------------
# Behaviour of the Matterport functions that do real work


def test_log_prints_matterports_line(capsys):
    """Notebooks read these lines; the columns must be Matterport's."""
    modellib.log("anchors", np.array([[1.5, -2.0]], dtype=np.float32))
    modellib.log("empty", np.zeros((0, 4), dtype=np.int32))
    modellib.log("just text")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "{:25}shape: {:20}  min: {:10.5f}  max: {:10.5f}  {}".format(
        "anchors", "(1, 2)", -2.0, 1.5, "float32")
    assert lines[1] == "{:25}shape: {:20}  min: {:10}  max: {:10}  {}".format(
        "empty", "(0, 4)", "", "", "int32")
    assert lines[2] == "just text"


def test_batch_slice_runs_a_per_image_function_over_the_batch():
    """Matterport's per-image graph helper: one output is a tensor, several are a list."""
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    y = np.ones((3, 2), dtype=np.float32)
    np.testing.assert_allclose(utils.batch_slice([x, y], lambda a, b: a + b, 3), x + y)
    total, first = utils.batch_slice(x, lambda a: (a.sum(), a[0]), 2, names=["t", "f"])
    np.testing.assert_allclose(total, [1.0, 5.0])
    np.testing.assert_allclose(first, [0.0, 2.0])


def test_download_trained_weights_fetches_matterports_file(tmp_path, monkeypatch):
    """utils.download_trained_weights(path) must leave mask_rcnn_coco.h5's bytes at path
    (here from a mirror on 127.0.0.1, as MRCNN_WEIGHTS_URL allows)."""
    served = tmp_path / "mirror"
    served.mkdir()
    payload = np.random.default_rng(0).bytes(50_000)
    (served / utils.COCO_MODEL_URL.rsplit("/", 1)[-1]).write_bytes(payload)
    handler = functools.partial(_QuietHandler, directory=str(served))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        monkeypatch.setenv("MRCNN_WEIGHTS_URL", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.delenv("MRCNN_COCO_WEIGHTS", raising=False)
        target = tmp_path / "weights" / "mask_rcnn_coco.h5"
        utils.download_trained_weights(str(target), verbose=0)
        server.shutdown()
    assert target.read_bytes() == payload


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_graph_functions_build_matterports_layers_and_shapes():
    """Custom backbones and heads written with Matterport's graph functions keep its layer
    names (the .h5 contract) and tensor shapes."""
    import keras

    image = keras.Input((None, None, 3))
    c1, c2, c3, c4, c5 = modellib.resnet_graph(image, "resnet101", stage5=True, train_bn=False)
    model = keras.Model(image, [c2, c3, c4, c5])
    assert [int(t.shape[-1]) for t in (c2, c3, c4, c5)] == [256, 512, 1024, 2048]
    assert model.get_layer("res4w_out") is not None and model.get_layer("bn5c_branch2c").frozen
    assert modellib.resnet_graph(image, "resnet50")[-1] is None
    with pytest.raises(ValueError, match="architecture"):
        modellib.resnet_graph(image, "resnet18")

    rng = np.random.default_rng(0)
    feature_maps = [rng.random((2, s, s, 8), dtype=np.float32) for s in (16, 8, 4, 2)]
    rois = np.tile(np.array([[0.1, 0.1, 0.6, 0.5], [0.2, 0.3, 0.9, 0.9]], np.float32), (2, 1, 1))
    meta = np.stack([modellib.compose_image_meta(0, (64, 64, 3), (64, 64, 3), (0, 0, 64, 64),
                                                 1.0, np.ones(5))] * 2).astype(np.float32)
    logits, probs, deltas = modellib.fpn_classifier_graph(rois, feature_maps, meta, 7, 5,
                                                          fc_layers_size=16)
    assert logits.shape == (2, 2, 5) and deltas.shape == (2, 2, 5, 4)
    np.testing.assert_allclose(np.sum(probs, axis=-1), 1.0, atol=1e-5)
    masks = modellib.build_fpn_mask_graph(rois, feature_maps, meta, 7, 5)
    assert masks.shape == (2, 2, 14, 14, 5)
    rpn_logits, rpn_probs, rpn_bbox = modellib.rpn_graph(feature_maps[0], 3, 1)
    assert rpn_probs.shape == (2, 16 * 16 * 3, 2) and rpn_bbox.shape == (2, 16 * 16 * 3, 4)


def test_graph_layers_take_matterports_config_and_list_inputs():
    """ProposalLayer(..., config=config)([probs, deltas, anchors]) as in Matterport's build()."""
    from mrcnn.config import tiny_config

    config = tiny_config()
    rng = np.random.default_rng(0)
    count = 100
    corners = rng.random((count, 2, 2), dtype=np.float32)  # two random (y, x) points each
    anchors = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
    probs = rng.dirichlet([1, 1], size=(2, count)).astype(np.float32)
    deltas = np.zeros((2, count, 4), np.float32)
    layer = modellib.ProposalLayer(proposal_count=5, nms_threshold=0.7, config=config)
    proposals = np.asarray(layer([probs, deltas, np.stack([anchors] * 2)]))
    assert proposals.shape == (2, 5, 4)
    best = anchors[np.argmax(probs[0, :, 1])]
    np.testing.assert_allclose(proposals[0, 0], np.clip(best, 0, 1), atol=1e-6)
    clone = modellib.ProposalLayer.from_config(layer.get_config())
    assert clone.pre_nms_limit == config.PRE_NMS_LIMIT

    meta = np.stack([modellib.compose_image_meta(0, (64, 64, 3), (64, 64, 3), (0, 0, 64, 64),
                                                 1.0, np.ones(config.NUM_CLASSES))] * 2)
    class_probs = np.zeros((2, 5, config.NUM_CLASSES), np.float32)
    class_probs[:, :, 1] = 1.0
    detections = np.asarray(modellib.DetectionLayer(config)(
        [proposals, class_probs, np.zeros((2, 5, config.NUM_CLASSES, 4), np.float32),
         meta.astype(np.float32)]))
    assert detections.shape == (2, config.DETECTION_MAX_INSTANCES, 6)
    assert set(detections[0, :, 4]) <= {0.0, 1.0} and detections[0, 0, 4] == 1.0
    one = np.asarray(modellib.refine_detections_graph(
        proposals[0], class_probs[0], np.zeros((5, config.NUM_CLASSES, 4), np.float32),
        np.array([0, 0, 1, 1], np.float32), config))
    np.testing.assert_allclose(one, detections[0], atol=1e-6)


def test_matterport_loss_graphs_agree_with_their_definitions():
    """The mask loss over [B, N] ROIs only counts the positives' class-specific masks."""
    target_masks = np.zeros((1, 3, 2, 2), np.float32)
    target_masks[0, 0] = 1.0
    class_ids = np.array([[2, 0, 0]])
    pred = np.full((1, 3, 2, 2, 3), 0.5, np.float32)
    pred[0, 0, :, :, 2] = 0.9
    loss = float(modellib.mrcnn_mask_loss_graph(target_masks, class_ids, pred))
    assert loss == pytest.approx(-np.log(0.9), rel=1e-5)
    np.testing.assert_allclose(modellib.smooth_l1_loss(np.zeros(2), np.array([0.5, 3.0])),
                               [0.125, 2.5])


PARALLEL_SCRIPT = textwrap.dedent("""
    import json, warnings
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from mrcnn.parallel_model import ParallelModel
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1, name="dense")(inputs))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parallel = ParallelModel(model, 2)
    same = all(np.array_equal(a, b) for a, b in zip(model.get_weights(), parallel.get_weights()))
    parallel.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).random((8, 4)).astype("float32")
    history = parallel.fit(x, x.sum(axis=1, keepdims=True), batch_size=4, epochs=1, verbose=0)
    print(json.dumps({"warnings": [str(w.message) for w in caught], "same_weights": same,
                      "replicas": parallel.distribute_strategy.num_replicas_in_sync,
                      "loss": history.history["loss"][-1]}))
""")


def test_parallel_model_warns_and_trains_on_the_mirrored_strategy():
    """Matterport code that wraps its model in ParallelModel must still train, on every
    device, and say that tf.distribute does it now."""
    import json
    import math

    done = subprocess.run([sys.executable, "-c", PARALLEL_SCRIPT], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(result["warnings"]) == 1 and "MirroredStrategy" in result["warnings"][0]
    assert result["same_weights"] and result["replicas"] == 2
    assert math.isfinite(result["loss"])


def test_visualize_draw_rois_and_weight_table(tiny_inference_model):
    """inspect_model's ROI and weight-statistics cells: a figure and a table of every weight."""
    image = np.zeros((64, 64, 3), np.uint8)
    rois = np.array([[5, 5, 30, 30], [10, 20, 50, 60]])
    masks = np.ones((2, 14, 14), np.float32)
    fig = visualize.draw_rois(image, rois, rois + 2, masks, np.array([1, 0]),
                              ["BG", "a", "b", "c"])
    assert fig.axes[0].get_title() == "2 ROIs"
    html = visualize.display_weight_stats(tiny_inference_model)
    assert html.startswith("<table>") and "mrcnn_class_logits/kernel" in html
    rows = html.count("<tr>")
    weights = sum(len(layer.weights) for part in tiny_inference_model.keras_model.parts
                  for layer in part.layers)
    assert rows == weights + 1
    assert visualize.display_table([["a", 1]]) == f"<table><tr><td>{'a':40}</td>" \
        f"<td>{'1':40}</td></tr></table>"


def test_detect_molded_and_compile_run_like_matterports(tiny_inference_model):
    """detect_molded takes load_image_gt-style molded images; compile prepares SGD."""
    model = tiny_inference_model
    image = (np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8)
    molded, metas, _ = model.mold_inputs([image])
    result = model.detect_molded(molded, metas)[0]
    expected = model.detect([image])[0]
    np.testing.assert_array_equal(result["rois"], expected["rois"])
    assert result["masks"].shape[:2] == (64, 64)
    model.compile(0.01, 0.8)
    assert float(model.keras_model.optimizer.momentum) == pytest.approx(0.8)


def test_detection_targets_graph_gives_one_images_targets_in_matterports_shapes():
    """Matterport's per-image target graph: masks for every ROI slot (ours keeps them for the
    positives only), positives first; a user inspecting targets indexes them by ROI."""
    from mrcnn.config import tiny_config

    config = tiny_config(USE_MINI_MASK=False)
    gt_boxes = np.array([[0.1, 0.1, 0.5, 0.6], [0.0, 0.0, 0.0, 0.0]], np.float32)
    masks = np.zeros((64, 64, 2), bool)
    masks[6:32, 6:38, 0] = True
    proposals = np.concatenate([gt_boxes[:1], [[0.6, 0.6, 0.9, 0.9]], np.zeros((3, 4))])
    rois, class_ids, deltas, target_masks = (np.asarray(t) for t in
                                             modellib.detection_targets_graph(
        proposals.astype(np.float32), np.array([2, 0]), gt_boxes, masks, config))
    total = config.TRAIN_ROIS_PER_IMAGE
    assert rois.shape == (total, 4) and class_ids.shape == (total,)
    assert target_masks.shape == (total, *config.MASK_SHAPE)
    # Two positives: the proposal on the GT box, and the GT box our layer adds to proposals.
    assert list(class_ids[:2]) == [2, 2] and not class_ids[2:].any()
    np.testing.assert_allclose(deltas[:2], 0.0, atol=1e-5)
    assert target_masks[:2].mean() > 0.9 and not target_masks[2:].any()
