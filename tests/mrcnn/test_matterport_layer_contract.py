"""Matterport's ``.h5`` contract, checked against a full-width build of our model.

Matterport's weight files (``mask_rcnn_coco.h5``, and every checkpoint people trained with
matterport/Mask_RCNN) load by layer name. The expected names and weight shapes live in
``golden/matterport_<backbone>_coco_layers.json``, written by
``golden/make_matterport_layer_contract.py`` from Matterport's own sources (never from this
library), so renaming or reshaping a layer here cannot pass unnoticed: such a change means a
user's Matterport ``.h5`` no longer loads into that layer.

Cost: one full-width inference build per backbone (module-scoped), no weights loaded: 3-4 s
(resnet101) and 1-3 s (resnet50) on 2 shared CPU cores, after TensorFlow's import; ~1.4 GB RSS.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import time
from pathlib import Path

import pytest

from mrcnn import model as modellib
from mrcnn.config import Config
from mrcnn.engine.weights import weight_layers

logger = logging.getLogger(__name__)
GOLDEN = Path(__file__).resolve().parent / "golden"
BACKBONES = ("resnet101", "resnet50")

# Figures published for Matterport's models, independent of our code and of the JSON files.
# resnet101 / NUM_CLASSES=81: MaskRCNN("inference", ...).keras_model.summary() prints
# "Total params: 64,158,584 ... Non-trainable params: 111,488" and has 233 layers with weights
# (rpn_model is one layer holding three). resnet50 has no published Mask R-CNN summary; its
# backbone equals Keras' ResNet50(include_top=False), 23,587,712 parameters, 53,120 of them
# BatchNorm moving statistics; the FPN and heads are the resnet101 model's.
PUBLISHED = {
    "resnet101": {"h5_groups": 233, "total_params": 64_158_584, "non_trainable_params": 111_488},
    "resnet50": {"h5_groups": 131, "total_params": 45_088_120, "non_trainable_params": 59_264},
}


class MatterportCocoConfig(Config):
    """Matterport's COCO configuration: 80 classes + background, every width at its default."""

    NAME = "coco"
    IMAGES_PER_GPU = 1
    NUM_CLASSES = 1 + 80


def load_contract(backbone: str) -> dict:
    return json.loads((GOLDEN / f"matterport_{backbone}_coco_layers.json").read_text())


def expected_shapes(contract: dict) -> dict[str, list[tuple[int, ...]]]:
    return {layer["name"]: [tuple(s) for s in layer["shapes"]] for layer in contract["layers"]}


def load_generator():
    path = GOLDEN / "make_matterport_layer_contract.py"
    spec = importlib.util.spec_from_file_location("make_matterport_layer_contract", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", params=BACKBONES)
def built(request, tmp_path_factory):
    """(backbone, {layer name: [weight shapes]}, build seconds) of a full-width COCO inference
    model."""
    backbone = request.param
    config = type("Config", (MatterportCocoConfig,), {"BACKBONE": backbone})()
    start = time.perf_counter()
    model = modellib.MaskRCNN(mode="inference", config=config,
                              model_dir=tmp_path_factory.mktemp(f"logs_{backbone}"))
    seconds = time.perf_counter() - start
    logger.info("full-width %s inference model built in %.1f s", backbone, seconds)
    layers = weight_layers(model.keras_model.parts)
    shapes = {name: [tuple(int(d) for d in w.shape) for w in layer.weights]
              for name, layer in layers.items()}
    del model, layers
    yield backbone, shapes, seconds
    import keras

    keras.backend.clear_session()


@pytest.mark.parametrize("backbone", BACKBONES)
def test_contract_data_reproduces_matterports_published_model_size(backbone):
    """The golden data itself must match Matterport's published figures (233 layers with
    weights, 64,158,584 parameters for resnet101/COCO); if not, the contract was edited or
    regenerated wrongly and no longer describes the files users have."""
    contract = load_contract(backbone)
    layers = contract["layers"]
    names = [layer["name"] for layer in layers]
    assert len(names) == len(set(names)), "duplicate layer names in the contract"
    found = {
        "h5_groups": len({layer["group"] for layer in layers}),
        "total_params": sum(math.prod(s) for layer in layers for s in layer["shapes"]),
        "non_trainable_params": sum(math.prod(s) for layer in layers
                                    if layer["kind"] == "BatchNorm" for s in layer["shapes"][2:]),
    }
    assert found == PUBLISHED[backbone]
    assert {k: contract[k] for k in found} == found, "the JSON header disagrees with its layers"
    backbone_params = sum(math.prod(s) for layer in layers
                          if layer["name"].startswith(("conv1", "bn_conv1", "res", "bn"))
                          for s in layer["shapes"])
    assert backbone_params == {"resnet101": 42_658_176, "resnet50": 23_587_712}[backbone]


@pytest.mark.parametrize("backbone", BACKBONES)
def test_contract_data_is_what_the_generator_writes(backbone):
    """The JSON must be the generator's output (which restates Matterport's code); a hand edit
    of one side only would leave the two descriptions of Matterport's files disagreeing."""
    assert load_contract(backbone)["layers"] == load_generator().matterport_layers(backbone)


def test_matterport_coco_h5_layer_names_all_exist_in_our_model(built, record_property):
    """Every weight-bearing layer of Matterport's COCO model must exist here under the same name
    and nothing else may carry weights; otherwise a user's Matterport .h5 loads only partly
    (e.g. ``fpn_c5p5`` renamed: the FPN keeps random weights and detections are garbage)."""
    backbone, shapes, seconds = built
    record_property(f"build_seconds_{backbone}", round(seconds, 2))
    expected = set(expected_shapes(load_contract(backbone)))
    missing = sorted(expected - set(shapes))
    extra = sorted(set(shapes) - expected)
    assert not missing and not extra, (
        f"{backbone}: our layer names differ from Matterport's .h5 layer names.\n"
        f"  in Matterport's file but not in our model ({len(missing)}): {missing}\n"
        f"  in our model but not in Matterport's file ({len(extra)}): {extra}"
    )


def test_matterport_coco_h5_weight_shapes_fit_our_layers(built):
    """Each layer's weights must have Matterport's shapes in Keras order (kernel, bias; gamma,
    beta, moving mean, moving variance); a changed width or kernel size makes loading a
    Matterport .h5 fail with a shape mismatch on that layer."""
    backbone, shapes, _ = built
    expected = expected_shapes(load_contract(backbone))
    wrong = {name: {"matterport": expected[name], "ours": shapes[name]}
             for name in expected if name in shapes and shapes[name] != expected[name]}
    assert not wrong, (
        f"{backbone}: {len(wrong)} layers have weight shapes that Matterport's .h5 does not fit:\n"
        + "\n".join(f"  {name}: Matterport {v['matterport']}, ours {v['ours']}"
                    for name, v in sorted(wrong.items()))
    )
    total = sum(math.prod(s) for layer_shapes in shapes.values() for s in layer_shapes)
    assert total == PUBLISHED[backbone]["total_params"]
