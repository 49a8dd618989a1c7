"""MASK_CLASS_AGNOSTIC: one mask for every class, trained and used like the per-class head."""

import logging

import numpy as np

import mrcnn.model as modellib
from mrcnn.config import tiny_config
from mrcnn.data.datasets.shapes import ShapesDataset


def _agnostic(mode, tmp_path, **fields):
    return modellib.MaskRCNN(mode, tiny_config(MASK_CLASS_AGNOSTIC=True, **fields), tmp_path)


def test_a_per_class_checkpoint_loads_all_but_the_mask_layer_with_a_log_line(
        tiny_inference_model, tmp_path, caplog):
    """Fine-tuning a COCO (per-class) .h5 into a class-agnostic model must not stop at a
    shape error: everything else loads, mrcnn_mask keeps its initialization, and the log says so."""
    path = tmp_path / "per_class.h5"
    tiny_inference_model.save_weights(path)
    model = _agnostic("inference", tmp_path)
    assert model._layers["mrcnn_mask"].get_weights()[0].shape[-1] == 1
    with caplog.at_level(logging.WARNING):
        report = model.load_weights(path, by_name=True)
    assert report.skipped == ["mrcnn_mask"] and not report.missing
    assert "MASK_CLASS_AGNOSTIC" in caplog.text
    np.testing.assert_array_equal(model._layers["conv1"].get_weights()[0],
                                  tiny_inference_model._layers["conv1"].get_weights()[0])
    image = np.full((64, 64, 3), 90, np.uint8)
    result = model.detect([image])[0]
    assert result["masks"].shape[:2] == (64, 64)


def test_the_single_mask_channel_trains(tmp_path):
    """The one mask channel gets the gradient of every class's ROIs."""
    dataset = ShapesDataset()
    dataset.load_shapes(2, 64, 64, seed=0)
    dataset.prepare()
    model = _agnostic("training", tmp_path, STEPS_PER_EPOCH=1)
    before = model._layers["mrcnn_mask"].get_weights()[0].copy()
    history = model.train(dataset, None, learning_rate=0.01, epochs=1, layers="heads").history
    after = model._layers["mrcnn_mask"].get_weights()[0]
    assert np.isfinite(history["mrcnn_mask_loss"][0]) and history["mrcnn_mask_loss"][0] > 0
    assert not np.array_equal(before, after)
