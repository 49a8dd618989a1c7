"""What training changes: which layers move under each preset, BatchNorm statistics under
TRAIN_BN, the weighted total loss, and the optimizer state a resume picks up again."""

import shutil

import keras
import numpy as np
import pytest

import mrcnn.model as modellib
from mrcnn.config import tiny_config
from mrcnn.data.datasets.shapes import ShapesDataset
from mrcnn.engine.training import optimizer_state_path

LOSS_WEIGHTS = {"rpn_class_loss": 2.0, "rpn_bbox_loss": 0.5, "mrcnn_class_loss": 3.0,
                "mrcnn_bbox_loss": 0.25, "mrcnn_mask_loss": 1.5}


def _shapes(count, seed):
    dataset = ShapesDataset()
    dataset.load_shapes(count, 64, 64, seed=seed)
    dataset.prepare()
    return dataset


def _snapshot(model):
    return {w.path: w.numpy().copy() for w in model.keras_model.weights}


def _moved(before, after):
    return {name for name in before if not np.array_equal(before[name], after[name])}


@pytest.fixture(scope="module")
def staged_run(tmp_path_factory):
    """Frozen BatchNorm, weighted losses: 'heads' for an epoch, then 'all' for another."""
    keras.utils.set_random_seed(3)
    config = tiny_config(TRAIN_BN=False, STEPS_PER_EPOCH=2, LEARNING_RATE=0.01,
                         LOSS_WEIGHTS=LOSS_WEIGHTS)
    logs = tmp_path_factory.mktemp("logs")
    model = modellib.MaskRCNN("training", config, logs)
    data = _shapes(4, seed=0)
    start = _snapshot(model)
    heads = model.train(data, None, learning_rate=0.01, epochs=1, layers="heads").history
    after_heads = _snapshot(model)
    full = model.train(data, None, learning_rate=0.01, epochs=2, layers="all").history
    return {"model": model, "config": config, "logs": logs, "data": data, "start": start,
            "after_heads": after_heads, "after_all": _snapshot(model),
            "histories": (heads, full)}


def test_heads_training_leaves_the_backbone_untouched(staged_run):
    """Fine-tuning 'heads' on a small dataset must keep the pretrained ResNet as it is."""
    moved = _moved(staged_run["start"], staged_run["after_heads"])
    backbone = [n for n in moved if n.split("/")[0].startswith(("res", "bn", "conv1"))]
    assert not backbone, backbone[:5]
    for layer in ("rpn_conv_shared", "fpn_c5p5", "mrcnn_class_logits", "mrcnn_bbox_fc",
                  "mrcnn_mask"):
        assert any(n.startswith(layer + "/") for n in moved), (layer, sorted(moved)[:10])


def test_all_layers_train_the_backbone_but_frozen_batchnorm_keeps_its_statistics(staged_run):
    """layers='all' moves the ResNet; TRAIN_BN=False keeps every BatchNorm's moving mean and
    variance (small batches would ruin them)."""
    moved = _moved(staged_run["after_heads"], staged_run["after_all"])
    assert any(n.startswith("res2a_branch2a/") for n in moved)
    assert any(n.startswith("res5a_branch2c/") for n in moved)
    statistics = [n for n in moved if "moving_" in n]
    assert not statistics, statistics[:5]


def test_trained_batchnorm_updates_its_statistics(tmp_path):
    """TRAIN_BN=True: BatchNorm learns the data's statistics (training from scratch needs it)."""
    keras.utils.set_random_seed(4)
    config = tiny_config(TRAIN_BN=True, STEPS_PER_EPOCH=1)
    model = modellib.MaskRCNN("training", config, tmp_path)
    before = _snapshot(model)
    model.train(_shapes(2, seed=0), None, learning_rate=0.01, epochs=1, layers="all")
    moved = _moved(before, _snapshot(model))
    assert any(n.startswith("bn_conv1/") and "moving_mean" in n for n in moved), sorted(moved)[:8]


def test_total_loss_is_the_loss_weighted_sum_of_the_parts(staged_run):
    """LOSS_WEIGHTS must change what is optimized: total = sum(weight * part) + weight decay."""
    for history in staged_run["histories"]:
        for epoch in range(len(history["loss"])):
            expected = sum(w * history[name][epoch] for name, w in LOSS_WEIGHTS.items())
            expected += history["weight_decay_loss"][epoch]
            assert history["loss"][epoch] == pytest.approx(expected, rel=1e-5)
            unweighted = sum(history[name][epoch] for name in LOSS_WEIGHTS)
            assert history["loss"][epoch] != pytest.approx(unweighted, rel=1e-3)


class _FirstBatchIterations(keras.callbacks.Callback):
    """Records the optimizer's step counter when the first batch of a run starts."""

    def on_train_batch_begin(self, batch, logs=None):
        if not hasattr(self, "iterations"):
            self.iterations = int(self.model.optimizer.iterations.numpy())


def test_a_run_copied_elsewhere_resumes_with_its_optimizer_state(staged_run, tmp_path):
    """--weights=last on another machine (or after a crash) continues the momentum and step
    count where the checkpoint left them, instead of restarting the optimizer from zero."""
    run_dir = staged_run["model"].log_dir
    copied = tmp_path / run_dir.name
    shutil.copytree(run_dir, copied)
    saved = np.load(optimizer_state_path(copied / "mask_rcnn_tiny_0002.h5"))
    resumed = modellib.MaskRCNN("training", staged_run["config"], tmp_path)
    resumed.load_weights(resumed.find_last(), by_name=True)
    probe = _FirstBatchIterations()
    resumed.train(staged_run["data"], None, learning_rate=0.01, epochs=3, layers="all",
                  custom_callbacks=[probe])
    assert probe.iterations == int(staged_run["config"].STEPS_PER_EPOCH) > 0
    assert len(saved.files) > 1


@pytest.mark.parametrize("replicas", [1, 2])
def test_decay_gradient_is_the_derivative_of_matterports_l2_term(staged_run, replicas):
    """Weights must shrink as under Matterport's loss term WEIGHT_DECAY * mean(w**2), which
    the TensorFlow step adds to the gradients instead of differentiating it: a wrong factor
    would decay every weight at another rate without any error."""
    import tensorflow as tf

    from mrcnn.modeling.training_step import with_decay_gradients

    network = staged_run["model"].keras_model
    variables = network.trainable_variables
    with tf.GradientTape() as tape:
        decay = network.weight_decay_loss()
    expected = tape.gradient(decay, variables)
    zeros = [tf.zeros_like(v) for v in variables]
    added = with_decay_gradients(network, zeros, variables, replicas)
    excluded = [v.path for v, e in zip(variables, expected, strict=True) if e is None]
    assert excluded and all(path.endswith(("gamma", "beta")) for path in excluded), excluded
    for variable, want, got in zip(variables, expected, added, strict=True):
        if want is None:
            assert not np.any(got.numpy()), variable.path
        else:
            np.testing.assert_allclose(got.numpy() * replicas, want.numpy(), rtol=1e-5,
                                       atol=1e-12, err_msg=variable.path)


def test_frozen_backbone_batchnorm_keeps_gamma_and_beta_and_trains_the_rest(tmp_path):
    """FROZEN_BACKBONE_BN (torchvision's FrozenBatchNorm2d): the ResNet's BatchNorm layers
    stay exactly as loaded while its convolutions and the heads' BatchNorm still learn; a
    user asking for it must not get Matterport's trained gamma/beta instead."""
    keras.utils.set_random_seed(5)
    config = tiny_config(TRAIN_BN=False, FROZEN_BACKBONE_BN=True, STEPS_PER_EPOCH=2)
    model = modellib.MaskRCNN("training", config, tmp_path)
    before = _snapshot(model)
    model.train(_shapes(2, seed=0), None, learning_rate=0.05, epochs=1, layers="all")
    moved = _moved(before, _snapshot(model))
    backbone_bn = [n for n in moved if n.split("/")[0].startswith("bn")]
    assert not backbone_bn, backbone_bn[:5]
    assert any(n.startswith("res2a_branch2a/") for n in moved)
    assert any(n.startswith("mrcnn_mask_bn1/") and n.endswith("gamma") for n in moved)


def test_frozen_backbone_batchnorm_needs_frozen_statistics():
    """Freezing gamma/beta while BatchNorm takes batch statistics (TRAIN_BN None/True) is a
    contradiction: refuse it in the config, naming both fields."""
    from mrcnn.config import ConfigError

    with pytest.raises(ConfigError, match="FROZEN_BACKBONE_BN.*TRAIN_BN"):
        tiny_config(TRAIN_BN=True, FROZEN_BACKBONE_BN=True)
