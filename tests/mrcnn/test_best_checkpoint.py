"""The best checkpoint: kept for the best validation score, atomically, across resumes."""

import json

import pytest

from mrcnn.engine.best_checkpoint import BestCheckpoint, find_best
from mrcnn.engine.training import checkpoint_path, checkpoint_problem, find_last
from mrcnn.engine.weights import read_h5_weights, save_weights_h5, weight_layers


def _scores(segm, map50=0.5):
    return {"val_segm_AP": segm, "val_bbox_AP": 0.4, "val_mAP50": map50, "val_mAP": 0.3}


def test_the_best_score_is_kept_and_a_worse_one_leaves_it(tiny_inference_model, tmp_path):
    """Users pick the best epoch's weights; a later worse epoch must not overwrite them."""
    network = tiny_inference_model.keras_model
    keeper = BestCheckpoint(network, tmp_path, "tiny")
    assert [keeper.update(e, _scores(s)) for e, s in ((1, 0.2), (2, 0.1), (3, 0.3), (4, 0.3))] \
        == [True, False, True, False]
    assert json.loads((tmp_path / "best.json").read_text()) == {
        "metric": "val_segm_AP", "value": 0.3, "epoch": 3, "checkpoint": "mask_rcnn_tiny_best.h5"}
    path = tmp_path / "mask_rcnn_tiny_best.h5"
    assert checkpoint_problem(path) is None
    assert set(read_h5_weights(path)) == set(weight_layers(network.parts))
    assert not list(tmp_path.glob("*.tmp"))


def test_a_resumed_run_only_replaces_the_best_with_a_better_one(tiny_inference_model, tmp_path):
    network = tiny_inference_model.keras_model
    BestCheckpoint(network, tmp_path, "tiny").update(2, _scores(0.4))
    resumed = BestCheckpoint(network, tmp_path, "tiny")
    assert not resumed.update(3, _scores(0.35))
    assert resumed.update(4, _scores(0.45))


def test_without_mask_ground_truth_the_best_follows_map50(tiny_inference_model, tmp_path):
    """COCO's segm AP is -1 when nothing can be scored: fall back to mAP@0.5, not to 'never'."""
    keeper = BestCheckpoint(tiny_inference_model.keras_model, tmp_path, "tiny")
    assert keeper.update(1, _scores(-1.0, map50=0.6))
    assert not keeper.update(2, _scores(-1.0, map50=0.5))
    assert json.loads((tmp_path / "best.json").read_text())["metric"] == "val_mAP50"


def test_last_is_the_newest_numbered_checkpoint_never_the_best(tiny_inference_model, tmp_path):
    """'_best' sorts after '_0002': --weights last must still resume the newest epoch."""
    run = tmp_path / "tiny20261203T1000"
    layers = weight_layers(tiny_inference_model.keras_model.parts)
    for epoch in (1, 2):
        save_weights_h5(layers, checkpoint_path(run, "tiny", epoch))
    BestCheckpoint(tiny_inference_model.keras_model, run, "tiny").update(1, _scores(0.2))
    assert find_last(tmp_path, "tiny").name == "mask_rcnn_tiny_0002.h5"
    assert find_best(tmp_path, "tiny").name == "mask_rcnn_tiny_best.h5"
    with pytest.raises(FileNotFoundError, match="--map-every"):
        find_best(tmp_path / "empty", "tiny")


def test_an_unknown_metric_is_refused(tiny_inference_model, tmp_path):
    with pytest.raises(ValueError, match="val_segm_AP"):
        BestCheckpoint(tiny_inference_model.keras_model, tmp_path, "tiny", metric="val_loss")
