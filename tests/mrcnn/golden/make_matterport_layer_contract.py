"""Write Matterport's weight-layer contract (layer name -> weight shapes) as JSON test data.

This script restates matterport/Mask_RCNN's architecture on its own, without importing ``mrcnn``
(the contract must not be derived from the code it checks). Sources, all in matterport/Mask_RCNN
(commit 0038efff320e7192223c538f3ccd77a153962e30):

- ``mrcnn/model.py``: ``resnet_graph``, ``conv_block``, ``identity_block`` (backbone names and
  filters; every Conv2D there has ``use_bias=True``), ``MaskRCNN.build`` (FPN: ``fpn_c5p5`` ..
  ``fpn_c2p2`` 1x1 and ``fpn_p2`` .. ``fpn_p5`` 3x3, TOP_DOWN_PYRAMID_SIZE filters),
  ``rpn_graph``/``build_rpn_model`` (a nested Keras model ``rpn_model``: ``rpn_conv_shared`` 3x3
  x512, ``rpn_class_raw`` 1x1 x2A, ``rpn_bbox_pred`` 1x1 x4A), ``fpn_classifier_graph`` and
  ``build_fpn_mask_graph`` (TimeDistributed heads: the wrapper carries the name, the weights
  are the inner layer's).
- ``mrcnn/config.py``: the defaults (TOP_DOWN_PYRAMID_SIZE 256, FPN_CLASSIF_FC_LAYERS_SIZE 1024,
  POOL_SIZE 7, RPN_ANCHOR_RATIOS of length 3, 3 image channels); ``samples/coco/coco.py``:
  NUM_CLASSES = 1 + 80.

Published figures it must reproduce (checked below, and again by the test):

- ``MaskRCNN("inference", CocoConfig-like config with NUM_CLASSES=81).keras_model.summary()``
  for resnet101 (printed e.g. in blog.paperspace.com/mask-r-cnn-in-tensorflow-2-0/): "Total params:
  64,158,584 / Trainable params: 64,047,096 / Non-trainable params: 111,488"; per-layer rows
  conv1 9472, bn_conv1 256, mrcnn_mask_bn4 1024, mrcnn_mask_deconv 262400, mrcnn_mask 20817.
- A resnet101 training-mode summary with NUM_CLASSES=11 (a user's project, CS539Project):
  "Total params: 63,781,844 / Non-trainable params: 111,488", rpn_model 1189394,
  mrcnn_class_conv1 12846080, mrcnn_class_logits 11275, mrcnn_bbox_fc 45100, mrcnn_mask 2827.

Keras weight order per layer: Conv2D [kernel (kh, kw, in, out), bias (out,)]; Conv2DTranspose
[kernel (kh, kw, out, in), bias (out,)]; Dense [kernel (in, out), bias (out,)]; BatchNormalization
[gamma, beta, moving_mean, moving_variance], each (C,). "Non-trainable" in Matterport's summary is
exactly the BatchNorm moving statistics (TRAIN_BN=False freezes BN by calling it with
training=False; the layers stay trainable).

The h5 file has one top-level group per layer of ``keras_model``; ``rpn_model`` is one such layer
holding three sub-layers' weights, so 235 weight-bearing layer names live in 233 groups.

Run: ``python tests/mrcnn/golden/make_matterport_layer_contract.py`` (writes both JSON files).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent

# matterport/Mask_RCNN mrcnn/config.py defaults and samples/coco/coco.py.
NUM_CLASSES = 81
TOP_DOWN_PYRAMID_SIZE = 256
FPN_CLASSIF_FC_LAYERS_SIZE = 1024
POOL_SIZE = 7
ANCHORS_PER_LOCATION = 3  # len(RPN_ANCHOR_RATIOS) = len([0.5, 1, 2])
IMAGE_CHANNEL_COUNT = 3
RPN_CONV_FILTERS = 512  # hard-coded in rpn_graph
MASK_CONV_FILTERS = 256  # hard-coded in build_fpn_mask_graph

# resnet_graph: "block_count = {"resnet50": 5, "resnet101": 22}" identity blocks after res4a.
STAGE4_IDENTITY_BLOCKS = {"resnet50": 5, "resnet101": 22}

# Published totals (see the module docstring).
PUBLISHED = {
    ("resnet101", 81): {"total_params": 64_158_584, "non_trainable_params": 111_488},
    ("resnet101", 11): {"total_params": 63_781_844, "non_trainable_params": 111_488},
}


def conv(kh: int, kw: int, cin: int, cout: int) -> list[list[int]]:
    return [[kh, kw, cin, cout], [cout]]


def deconv(kh: int, kw: int, cin: int, cout: int) -> list[list[int]]:
    return [[kh, kw, cout, cin], [cout]]


def dense(cin: int, cout: int) -> list[list[int]]:
    return [[cin, cout], [cout]]


def batch_norm(channels: int) -> list[list[int]]:
    return [[channels]] * 4


def matterport_layers(backbone: str, num_classes: int = NUM_CLASSES) -> list[dict]:
    """Matterport's weight-bearing layers in build order: {name, group, kind, shapes}."""
    layers: list[dict] = []

    def add(name, kind, shapes, group=None):
        layers.append({"name": name, "group": group or name, "kind": kind, "shapes": shapes})

    def bottleneck(cin, filters, stage, block, shortcut):
        f1, f2, f3 = filters
        conv_base, bn_base = f"res{stage}{block}_branch", f"bn{stage}{block}_branch"
        add(conv_base + "2a", "Conv2D", conv(1, 1, cin, f1))
        add(bn_base + "2a", "BatchNorm", batch_norm(f1))
        add(conv_base + "2b", "Conv2D", conv(3, 3, f1, f2))
        add(bn_base + "2b", "BatchNorm", batch_norm(f2))
        add(conv_base + "2c", "Conv2D", conv(1, 1, f2, f3))
        add(bn_base + "2c", "BatchNorm", batch_norm(f3))
        if shortcut:  # conv_block
            add(conv_base + "1", "Conv2D", conv(1, 1, cin, f3))
            add(bn_base + "1", "BatchNorm", batch_norm(f3))
        return f3

    # resnet_graph(stage5=True)
    add("conv1", "Conv2D", conv(7, 7, IMAGE_CHANNEL_COUNT, 64))
    add("bn_conv1", "BatchNorm", batch_norm(64))
    stages = [
        (2, [64, 64, 256], 2),
        (3, [128, 128, 512], 3),
        (4, [256, 256, 1024], STAGE4_IDENTITY_BLOCKS[backbone]),
        (5, [512, 512, 2048], 2),
    ]
    channels, c_out = 64, {}
    for stage, filters, identity_blocks in stages:
        channels = bottleneck(channels, filters, stage, "a", shortcut=True)
        for i in range(identity_blocks):
            channels = bottleneck(channels, filters, stage, chr(98 + i), shortcut=False)
        c_out[stage] = channels

    # MaskRCNN.build: top-down FPN
    depth = TOP_DOWN_PYRAMID_SIZE
    for level in (5, 4, 3, 2):
        add(f"fpn_c{level}p{level}", "Conv2D", conv(1, 1, c_out[level], depth))
    for level in (2, 3, 4, 5):
        add(f"fpn_p{level}", "Conv2D", conv(3, 3, depth, depth))

    # build_rpn_model: one nested model, shared across P2..P6
    add("rpn_conv_shared", "Conv2D", conv(3, 3, depth, RPN_CONV_FILTERS), group="rpn_model")
    add("rpn_class_raw", "Conv2D", conv(1, 1, RPN_CONV_FILTERS, 2 * ANCHORS_PER_LOCATION),
        group="rpn_model")
    add("rpn_bbox_pred", "Conv2D", conv(1, 1, RPN_CONV_FILTERS, 4 * ANCHORS_PER_LOCATION),
        group="rpn_model")

    # fpn_classifier_graph (TimeDistributed wrappers)
    fc = FPN_CLASSIF_FC_LAYERS_SIZE
    add("mrcnn_class_conv1", "Conv2D", conv(POOL_SIZE, POOL_SIZE, depth, fc))
    add("mrcnn_class_bn1", "BatchNorm", batch_norm(fc))
    add("mrcnn_class_conv2", "Conv2D", conv(1, 1, fc, fc))
    add("mrcnn_class_bn2", "BatchNorm", batch_norm(fc))
    add("mrcnn_class_logits", "Dense", dense(fc, num_classes))
    add("mrcnn_bbox_fc", "Dense", dense(fc, num_classes * 4))

    # build_fpn_mask_graph (TimeDistributed wrappers)
    cin = depth
    for i in (1, 2, 3, 4):
        add(f"mrcnn_mask_conv{i}", "Conv2D", conv(3, 3, cin, MASK_CONV_FILTERS))
        add(f"mrcnn_mask_bn{i}", "BatchNorm", batch_norm(MASK_CONV_FILTERS))
        cin = MASK_CONV_FILTERS
    add("mrcnn_mask_deconv", "Conv2DTranspose", deconv(2, 2, cin, MASK_CONV_FILTERS))
    add("mrcnn_mask", "Conv2D", conv(1, 1, MASK_CONV_FILTERS, num_classes))
    return layers


def count(layers: list[dict]) -> dict:
    total = sum(math.prod(s) for layer in layers for s in layer["shapes"])
    moving = sum(math.prod(s) for layer in layers if layer["kind"] == "BatchNorm"
                 for s in layer["shapes"][2:])
    return {"layers_with_weights": len(layers),
            "h5_groups": len({layer["group"] for layer in layers}),
            "total_params": total, "non_trainable_params": moving}


def check_against_published() -> None:
    for (backbone, classes), figures in PUBLISHED.items():
        got = count(matterport_layers(backbone, classes))
        for key, value in figures.items():
            if got[key] != value:
                raise SystemExit(f"{backbone}/{classes} classes: {key} {got[key]} != published "
                                 f"{value}")


def write(backbone: str) -> Path:
    layers = matterport_layers(backbone)
    figures = count(layers)
    header = {
        "description": (
            f"matterport/Mask_RCNN {backbone} COCO model (NUM_CLASSES={NUM_CLASSES}, default "
            "Config): every weight-bearing layer name and its weight shapes in Keras order. "
            "'group' is the top-level layer (h5 group) holding the weights; rpn_model nests "
            "three layers. Written by make_matterport_layer_contract.py from Matterport's "
            "sources, not from this library."
        ),
        "source": "matterport/Mask_RCNN@0038efff320e7192223c538f3ccd77a153962e30 mrcnn/model.py",
        "backbone": backbone,
        "num_classes": NUM_CLASSES,
        **figures,
    }
    # One layer per line keeps the file readable and its diffs small.
    lines = ["{"]
    lines += [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in header.items()]
    lines.append('  "layers": [')
    rows = [
        "    " + json.dumps({"name": layer["name"], "group": layer["group"],
                             "kind": layer["kind"], "shapes": layer["shapes"]})
        for layer in layers
    ]
    lines.append(",\n".join(rows))
    lines += ["  ]", "}", ""]
    path = HERE / f"matterport_{backbone}_coco_layers.json"
    path.write_text("\n".join(lines))
    json.loads(path.read_text())  # well-formed
    return path


if __name__ == "__main__":
    check_against_published()
    for name in ("resnet101", "resnet50"):
        written = write(name)
        print(written.name, count(matterport_layers(name)))
