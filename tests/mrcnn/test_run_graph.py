"""MaskRCNN.run_graph / ancestor / get_layer as Matterport's samples/coco/inspect_model.ipynb
uses them, on the tiny preset."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mrcnn.data.datasets.shapes import ShapesDataset
from mrcnn.modeling.inspection import GraphTensor

# The notebook's requests (res4a_out stands for its res4w_out: the tiny ResNet has one block
# per stage).
NOTEBOOK_LAYERS = ("rpn_class", "rpn_bbox", "ROI", "roi_align_classifier", "mrcnn_class",
                   "mrcnn_bbox", "mrcnn_mask", "mrcnn_detection", "res4a_out", "fpn_p2")


@pytest.fixture(scope="module")
def image():
    data = ShapesDataset()
    data.load_shapes(1, 48, 80, seed=3)
    data.prepare()
    return data.load_image(0)


@pytest.fixture(scope="module")
def outputs(tiny_inference_model, image):
    model = tiny_inference_model
    pillar = model.keras_model.get_layer("ROI").output
    requests = [(name, model.keras_model.get_layer(name).output) for name in NOTEBOOK_LAYERS]
    requests += [
        ("anchors", model.keras_model.get_layer("anchors").output),
        ("pre_nms_anchors", model.ancestor(pillar, "ROI/pre_nms_anchors:0")),
        ("refined_anchors", model.ancestor(pillar, "ROI/refined_anchors:0")),
        ("refined_anchors_clipped", model.ancestor(pillar, "ROI/refined_anchors_clipped:0")),
        ("post_nms_anchor_ix", model.ancestor(pillar, "ROI/rpn_non_max_suppression:0")),
    ]
    return model.run_graph([image], requests)


def test_run_graph_returns_every_notebook_tensor_in_matterports_shapes(outputs,
                                                                       tiny_inference_model):
    """The notebook's cells index these arrays by batch, ROI and class: a wrong shape breaks
    every plot after the first run_graph call."""
    config = tiny_inference_model.config
    anchors = len(tiny_inference_model.get_anchors(config.IMAGE_SHAPE))
    rois, detections = config.POST_NMS_ROIS_INFERENCE, config.DETECTION_MAX_INSTANCES
    classes, depth = config.NUM_CLASSES, config.TOP_DOWN_PYRAMID_SIZE
    mask = 2 * config.MASK_POOL_SIZE
    assert list(outputs) == [*NOTEBOOK_LAYERS, "anchors", "pre_nms_anchors", "refined_anchors",
                             "refined_anchors_clipped", "post_nms_anchor_ix"]
    shapes = {name: value.shape for name, value in outputs.items()}
    assert shapes["rpn_class"] == (1, anchors, 2)
    assert shapes["rpn_bbox"] == (1, anchors, 4)
    assert shapes["anchors"] == (1, anchors, 4)
    assert shapes["ROI"] == (1, rois, 4)
    assert shapes["roi_align_classifier"] == (1, rois, config.POOL_SIZE, config.POOL_SIZE, depth)
    assert shapes["mrcnn_class"] == (1, rois, classes)
    assert shapes["mrcnn_bbox"] == (1, rois, classes, 4)
    assert shapes["mrcnn_detection"] == (1, detections, 6)
    assert shapes["mrcnn_mask"] == (1, detections, mask, mask, classes)
    assert shapes["pre_nms_anchors"] == (1, min(config.PRE_NMS_LIMIT, anchors), 4)
    assert all(isinstance(value, np.ndarray) for value in outputs.values())


def test_backbone_and_fpn_maps_have_their_stride(outputs, tiny_inference_model):
    """fpn_p2 is stride 4 and res4 stride 16; the notebook displays them as activation maps."""
    height, width = tiny_inference_model.config.IMAGE_SHAPE[:2]
    assert outputs["fpn_p2"].shape[1:3] == (height // 4, width // 4)
    assert outputs["res4a_out"].shape[1:3] == (height // 16, width // 16)


def test_rpn_class_is_a_distribution_and_proposals_are_normalized(outputs):
    """rpn_class is softmax over (bg, fg); proposals are clipped normalized boxes."""
    np.testing.assert_allclose(outputs["rpn_class"].sum(axis=-1), 1.0, atol=1e-5)
    proposals = outputs["ROI"]
    assert proposals.min() >= 0.0 and proposals.max() <= 1.0
    real = proposals[0][np.any(proposals[0] != 0, axis=1)]
    assert len(real) > 0 and np.all(real[:, 2] >= real[:, 0]) and np.all(real[:, 3] >= real[:, 1])


def test_proposal_stages_chain_like_matterports(outputs):
    """The notebook draws pre-NMS anchors, their refinement, the clipping and the NMS picks:
    each stage must be the previous one transformed, and the picks must be the proposals."""
    clipped = outputs["refined_anchors_clipped"][0]
    np.testing.assert_allclose(clipped, np.clip(outputs["refined_anchors"][0], 0.0, 1.0),
                               atol=1e-6)
    picks = outputs["post_nms_anchor_ix"]
    assert picks.ndim == 1 and len(picks) > 0
    np.testing.assert_allclose(clipped[picks], outputs["ROI"][0, :len(picks)], atol=1e-6)


def test_mrcnn_detection_is_what_detect_unmolds(outputs, tiny_inference_model, image):
    """run_graph and detect() must run the same network: unmolding run_graph's raw detections
    gives detect()'s boxes, classes and scores."""
    model = tiny_inference_model
    molded, metas, windows = model.mold_inputs([image])
    boxes, class_ids, scores, _ = model.unmold_detections(
        outputs["mrcnn_detection"][0], outputs["mrcnn_mask"][0], image.shape,
        np.asarray(molded[0]).shape, windows[0])
    result = model.detect([image])[0]
    np.testing.assert_array_equal(boxes, result["rois"])
    np.testing.assert_array_equal(class_ids, result["class_ids"])
    np.testing.assert_allclose(scores, result["scores"], rtol=1e-5)


def test_run_graph_on_molded_images_with_their_metas(tiny_inference_model, image, outputs):
    """With image_metas the images are taken as molded already (load_image_gt + mold_image)."""
    model = tiny_inference_model
    molded, metas, _ = model.mold_inputs([image])
    again = model.run_graph(molded, [("ROI", "ROI")], image_metas=metas)
    np.testing.assert_allclose(again["ROI"], outputs["ROI"], atol=1e-6)


def test_ancestor_answers_none_for_unknown_names_and_walks_the_stage_graph(
        tiny_inference_model):
    """Matterport's notebooks try several NMS names and take the first that is not None."""
    model = tiny_inference_model
    pillar = model.keras_model.get_layer("mrcnn_detection").output
    assert model.ancestor(pillar, "ROI/rpn_non_max_suppression/NonMaxSuppressionV3:0") is None
    assert model.ancestor(pillar, "ROI/refined_anchors_clipped:0") == \
        GraphTensor("ROI/refined_anchors_clipped")
    assert model.ancestor(pillar, "fpn_p3:0") == GraphTensor("fpn_p3")


def test_get_layer_finds_weight_layers_inside_the_sub_models(tiny_inference_model):
    """inspect_weights-style code reads kernels through get_layer(name).get_weights()."""
    layer = tiny_inference_model.keras_model.get_layer("mrcnn_class_logits")
    assert isinstance(layer, keras.layers.Dense)
    assert tiny_inference_model.find_trainable_layer(
        keras.layers.TimeDistributed(layer)) is layer
    assert tiny_inference_model.keras_model.get_layer("ROI").proposal_count == \
        tiny_inference_model.config.POST_NMS_ROIS_INFERENCE
    with pytest.raises(ValueError, match="no layer named 'res9z_out'"):
        tiny_inference_model.keras_model.get_layer("res9z_out")


def test_run_graph_rejects_what_it_cannot_compute(tiny_inference_model, image):
    """A clear error instead of a silent wrong tensor."""
    with pytest.raises(TypeError, match="'x' is a object"):
        tiny_inference_model.run_graph([image], [("x", object())])
    with pytest.raises(ValueError, match="no tensor for"):
        tiny_inference_model.run_graph([image], [("x", None)])
