"""--weights coco / imagenet, offline: files found through the documented environment variables."""

import h5py
import numpy as np
import pytest

import mrcnn.model as modellib
from mrcnn.config import tiny_config
from mrcnn.engine.pretrained import HEAD_LAYERS, load_pretrained, matterport_resnet_name


@pytest.fixture(scope="module")
def coco_like_file(tmp_path_factory):
    """A Matterport-layout file from an 81-class model (stands in for mask_rcnn_coco.h5)."""
    path = tmp_path_factory.mktemp("weights") / "mask_rcnn_coco.h5"
    source = modellib.MaskRCNN("inference", tiny_config(num_classes=81), path.parent)
    source.save_weights(path)
    return path


def test_coco_weights_skip_heads_when_the_class_count_differs(coco_like_file, monkeypatch,
                                                              tmp_path):
    """Fine-tuning on 3 classes from COCO: everything but the four head layers loads."""
    monkeypatch.setenv("MRCNN_COCO_WEIGHTS", str(coco_like_file))
    model = modellib.MaskRCNN("training", tiny_config(num_classes=4), tmp_path)
    report = load_pretrained(model, "coco")
    # mrcnn_bbox is a weightless reshape in Matterport's graph; the other three hold weights.
    assert sorted(report.skipped) == ["mrcnn_bbox_fc", "mrcnn_class_logits", "mrcnn_mask"]
    assert set(report.skipped) <= set(HEAD_LAYERS)
    assert not report.missing and len(report.loaded) > 20


def test_coco_weights_load_every_layer_for_81_classes(coco_like_file, monkeypatch, tmp_path):
    monkeypatch.setenv("MRCNN_COCO_WEIGHTS", str(coco_like_file))
    model = modellib.MaskRCNN("inference", tiny_config(num_classes=81), tmp_path)
    report = load_pretrained(model, "coco")
    assert not report.skipped and not report.missing and not report.unused


@pytest.mark.parametrize("name, expected", [
    ("conv1_conv", "conv1"), ("conv1_bn", "bn_conv1"),
    ("conv2_block1_0_conv", "res2a_branch1"), ("conv3_block1_0_bn", "bn3a_branch1"),
    ("conv4_block3_2_conv", "res4c_branch2b"), ("conv4_block23_3_bn", "bn4w_branch2c"),
    ("conv5_block3_1_conv", "res5c_branch2a"), ("avg_pool", "avg_pool"),
])
def test_keras_resnet_names_map_to_matterport(name, expected):
    assert matterport_resnet_name(name) == expected


def test_imagenet_resnet101_loads_the_backbone_from_keras_names(monkeypatch, tmp_path):
    """keras.applications' ResNet-101 file (conv2_block1_1_conv, ...) fills Matterport's layers."""
    config = tiny_config(BACKBONE="resnet101", BACKBONE_STAGE_BLOCKS=None)
    model = modellib.MaskRCNN("training", config, tmp_path)
    backbone = {layer.name: layer for layer in model.keras_model.backbone.layers if layer.weights}
    # Write the file a keras.applications ResNet-101 would have, under its own layer names.
    keras_names = {"conv1": "conv1_conv", "bn_conv1": "conv1_bn"}
    for stage, blocks in ((2, 3), (3, 4), (4, 23), (5, 3)):
        for block in range(1, blocks + 1):
            letter = chr(ord("a") + block - 1)
            for part, branch in ((0, "1"), (1, "2a"), (2, "2b"), (3, "2c")):
                keras_names[f"res{stage}{letter}_branch{branch}"] = f"conv{stage}_block{block}_{part}_conv"
                keras_names[f"bn{stage}{letter}_branch{branch}"] = f"conv{stage}_block{block}_{part}_bn"
    rng = np.random.default_rng(0)
    expected = {}
    path = tmp_path / "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5"
    with h5py.File(path, "w") as handle:
        names = [keras_names[name] for name in backbone]
        handle.attrs["layer_names"] = np.array([n.encode() for n in names])
        for ours, layer in backbone.items():
            theirs = keras_names[ours]
            group = handle.create_group(theirs)
            arrays = [rng.normal(size=w.shape).astype("float32") for w in layer.weights]
            weight_names = [f"{theirs}/w{i}:0" for i in range(len(arrays))]
            for weight_name, array in zip(weight_names, arrays, strict=True):
                group.create_dataset(weight_name, data=array)
            group.attrs["weight_names"] = np.array([n.encode() for n in weight_names])
            expected[ours] = arrays
    monkeypatch.setenv("MRCNN_IMAGENET_WEIGHTS_DIR", str(tmp_path))
    report = load_pretrained(model, "imagenet")
    assert sorted(report.loaded) == sorted(backbone)
    np.testing.assert_array_equal(backbone["res4w_branch2c"].get_weights()[0],
                                  expected["res4w_branch2c"][0])
