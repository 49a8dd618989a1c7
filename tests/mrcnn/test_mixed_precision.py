"""Mixed precision as a Config switch: trains, detects, and checkpoints stay float32."""

import math

import keras
import numpy as np
import pytest

import mrcnn.model as modellib
from mrcnn.config import tiny_config
from mrcnn.data.datasets.shapes import ShapesDataset


# bfloat16 takes the same code path as float16 but for loss scaling: slow (~30 s).
@pytest.mark.parametrize("policy", [pytest.param("mixed_bfloat16", marks=pytest.mark.slow),
                                    "mixed_float16"])
def test_mixed_precision_trains_detects_and_saves_float32_weights(policy, tmp_path):
    """Users switching MIXED_PRECISION on get a working run and checkpoints any model can load."""
    config = tiny_config(MIXED_PRECISION=policy, STEPS_PER_EPOCH=2, TRAIN_BN=True)
    data = ShapesDataset()
    data.load_shapes(2, 64, 64, seed=0)
    data.prepare()
    model = modellib.MaskRCNN("training", config, tmp_path)
    conv = model.keras_model.backbone.get_layer("conv1")
    assert conv.compute_dtype == policy.split("_")[1] and conv.variable_dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left alone
    # Scores, deltas and mask probabilities leave the heads in float32: 16-bit scores would
    # tie when anchors, proposals and detections are ranked.
    network = model.keras_model
    for head in (network.rpn, network.classifier_head, network.mask_head):
        assert all(tensor.dtype == "float32" for tensor in head.outputs), head.name

    history = model.train(data, None, learning_rate=0.01, epochs=1, layers="all").history
    assert all(math.isfinite(values[-1]) for values in history.values()), history

    result = model.detect([data.load_image(0)])[0]
    assert result["masks"].shape[:2] == (64, 64) and result["scores"].dtype == np.float32

    plain = modellib.MaskRCNN("inference", tiny_config(), tmp_path)
    report = plain.load_weights(model.find_last())
    assert not report.missing and not report.skipped
