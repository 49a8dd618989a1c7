"""Training the tiny preset end to end: losses, repeated train() calls, checkpoints, TensorBoard.

One module-scoped run (heads for 1 epoch, then all layers to epoch 3) is shared by the tests.
"""

import math
from pathlib import Path

import keras
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import mrcnn.model as modellib
from mrcnn.config import tiny_config
from mrcnn.data.datasets.shapes import ShapesDataset

LOSS_NAMES = ("rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss",
              "mrcnn_mask_loss")


class EmptyImages(ShapesDataset):
    """Shapes images whose annotations were all removed: pure background."""

    def load_mask(self, image_id):
        image = self.load_image(image_id)
        return np.zeros(image.shape[:2] + (0,), bool), np.zeros([0], np.int32)


def _shapes(count: int, seed: int, cls=ShapesDataset) -> ShapesDataset:
    dataset = cls()
    dataset.load_shapes(count, 64, 64, seed=seed)
    dataset.prepare()
    return dataset


@pytest.fixture(scope="module")
def config():
    return tiny_config(TRAIN_BN=True, STEPS_PER_EPOCH=10, VALIDATION_STEPS=1, LEARNING_RATE=0.01)


@pytest.fixture(scope="module")
def run(config, tmp_path_factory):
    """Matterport's two-stage schedule: heads to epoch 1, then all layers to epoch 4."""
    keras.utils.set_random_seed(0)
    logs = tmp_path_factory.mktemp("logs")
    model = modellib.MaskRCNN("training", config, logs)
    train_set, val_set = _shapes(4, seed=0), _shapes(2, seed=1)
    heads = model.train(train_set, val_set, learning_rate=0.01, epochs=1, layers="heads")
    full = model.train(train_set, val_set, learning_rate=0.01, epochs=4, layers="all")
    return {"model": model, "logs": logs, "heads": heads.history, "all": full.history}


def test_loss_goes_down_while_overfitting_four_images(run):
    """Users would notice: training does not learn anything."""
    losses = run["all"]["loss"]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.8 * losses[0], losses


def test_repeated_train_calls_keep_total_equal_to_weighted_parts(run, config):
    """The TF2 forks' bug: losses added again on each train() call, so the total keeps growing."""
    for history in (run["heads"], run["all"]):
        for prefix in ("", "val_"):
            for epoch in range(len(history["loss"])):
                parts = sum(config.LOSS_WEIGHTS[name] * history[prefix + name][epoch]
                            for name in LOSS_NAMES)
                expected = parts + history[prefix + "weight_decay_loss"][epoch]
                assert history[prefix + "loss"][epoch] == pytest.approx(expected, rel=1e-5)


def test_checkpoints_use_matterport_names_and_find_last_resumes(run, config):
    """--weights=last must continue the run at the right epoch, in the same log dir."""
    model = run["model"]
    names = sorted(p.name for p in Path(model.log_dir).glob("*.h5"))
    assert names == [f"mask_rcnn_tiny_{e:04d}.h5" for e in (1, 2, 3, 4)]
    assert Path(model.log_dir).name.startswith("tiny")

    resumed = modellib.MaskRCNN("training", config, run["logs"])
    last = resumed.find_last()
    assert Path(last).name == "mask_rcnn_tiny_0004.h5"
    report = resumed.load_weights(last, by_name=True)
    assert not report.missing and not report.skipped
    assert resumed.epoch == 4 and resumed.log_dir == model.log_dir
    history = resumed.train(_shapes(4, seed=0), None, learning_rate=0.001, epochs=5,
                            layers="heads")
    assert len(history.history["loss"]) == 1  # only epoch 5 ran
    assert (Path(model.log_dir) / "mask_rcnn_tiny_0005.h5").is_file()


def test_tensorboard_has_every_loss_learning_rate_and_validation_losses(run):
    """Users open TensorBoard and expect Matterport's loss curves, the LR and val losses."""
    log_dir = Path(run["model"].log_dir)
    expected = {
        "train": {f"epoch_{n}" for n in ("loss", "learning_rate", *LOSS_NAMES)},
        "validation": {f"epoch_{n}" for n in ("loss", *LOSS_NAMES)},
    }
    for subdir, tags in expected.items():
        events = EventAccumulator(str(log_dir / subdir))
        events.Reload()
        found = set(events.Tags()["tensors"]) | set(events.Tags()["scalars"])
        assert tags <= found, (subdir, sorted(found))
        steps = [e.step for e in events.Tensors("epoch_loss")] if "epoch_loss" in \
            events.Tags()["tensors"] else [e.step for e in events.Scalars("epoch_loss")]
        assert steps[:4] == [0, 1, 2, 3]  # the resume test may have added epoch 5


def test_images_without_instances_train_with_finite_losses(config, tmp_path):
    """Background-only images are trained on (not skipped) and give finite losses."""
    model = modellib.MaskRCNN("training", config.override(STEPS_PER_EPOCH=2), tmp_path)
    history = model.train(_shapes(2, seed=3, cls=EmptyImages), None, learning_rate=0.01,
                          epochs=1, layers="all").history
    for name in ("loss", *LOSS_NAMES):
        assert math.isfinite(history[name][0]), (name, history[name])
    assert history["rpn_class_loss"][0] > 0  # anchors are trained as background
    assert history["mrcnn_class_loss"][0] > 0  # ROIs are trained as background
    assert history["mrcnn_mask_loss"][0] == 0 and history["mrcnn_bbox_loss"][0] == 0
