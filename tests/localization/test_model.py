"""build_localizer: outputs, backbones, .keras round trip and per-group learning rates."""

import keras
import numpy as np
import pytest

from localization import TINY_PRESET, build_localizer, compile_localizer
from localization.training import load_localizer, save_localizer

HEADS = {"class_head_units": (16,), "class_head_dropout": (0.0,), "box_head_units": (16,),
         "box_head_dropout": (0.0,)}


def test_outputs_are_ordered_normalized_boxes_and_logits(tiny_model, batch):
    outputs = tiny_model.predict(batch[0], verbose=0)
    assert outputs["box"].shape == (8, 4) and outputs["class"].shape == (8, 2)
    boxes = outputs["box"]
    assert np.all((boxes >= 0) & (boxes <= 1))
    assert np.all(boxes[:, 0] <= boxes[:, 2]) and np.all(boxes[:, 1] <= boxes[:, 3])


def test_mean_and_std_are_stored_in_the_model():
    """Users rely on the saved model to standardize inputs itself."""
    model = build_localizer(mean=(10.0, 20.0, 30.0), std=(2.0, 3.0, 4.0), **TINY_PRESET)
    config = model.get_layer("input_standardization").get_config()
    np.testing.assert_allclose(np.ravel(config["mean"]), [10, 20, 30])
    np.testing.assert_allclose(np.ravel(config["variance"]), [4, 9, 16])


@pytest.mark.parametrize("backbone,use_fpn", [("resnet50", False), ("mobilenetv2", True)])
def test_application_backbones_build_offline(backbone, use_fpn):
    model = build_localizer(backbone, num_classes=3, input_shape=(32, 32, 3), use_fpn=use_fpn,
                            fpn_filters=8, **HEADS)
    outputs = model(np.zeros((1, 32, 32, 3), "float32"), training=False)
    assert outputs["box"].shape == (1, 4) and outputs["class"].shape == (1, 3)


def test_fpn_neck_on_the_small_cnn_pools_three_levels():
    preset = {**TINY_PRESET, "small_cnn_filters": (8, 8, 8), "input_shape": (64, 64, 3)}
    model = build_localizer(use_fpn=True, **preset)
    assert model.get_layer("fpn_concat").output.shape[-1] == 3 * preset["fpn_filters"]


@pytest.mark.parametrize("kwargs,message", [
    ({"backbone": "vgg16"}, "unknown backbone"),
    ({"num_classes": 1}, "num_classes"),
    ({"backbone": "resnet50", "input_shape": (16, 16, 3)}, "at least 32"),
    ({"class_head_units": (8, 8), "class_head_dropout": (0.1,)}, "dropout rate"),
])
def test_bad_model_arguments_say_what_was_expected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_localizer(**kwargs)


def test_keras_file_round_trip_without_custom_objects(tiny_model, batch, tmp_path):
    path = save_localizer(tiny_model, tmp_path / "localizer.keras", ["mask", "no-mask"])
    loaded, class_names = load_localizer(path, compile=True)
    assert class_names == ["mask", "no-mask"]
    expected = tiny_model.predict(batch[0], verbose=0)
    actual = loaded.predict(batch[0], verbose=0)
    np.testing.assert_allclose(actual["box"], expected["box"], atol=1e-6)
    np.testing.assert_allclose(actual["class"], expected["class"], atol=1e-5)
    assert loaded.optimizer.head_learning_rates == tiny_model.optimizer.head_learning_rates
    assert loaded.loss["class"].class_weights == [0.35, 0.65]


@pytest.fixture(scope="module")
def trained_twice():
    """One fresh model: the weight change of its first AdamW step, then a short fit's history.

    Both tests share one model because the first training step costs ~10 s of tracing on 2 CPUs.
    """
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 255, size=(8, 32, 32, 3)).astype("float32")
    targets = {"box": np.tile([[0.2, 0.3, 0.6, 0.8]], (8, 1)).astype("float32"),
               "class": np.array([0, 1] * 4)}
    model = build_localizer(**TINY_PRESET)
    compile_localizer(model, backbone_lr=1e-5, class_head_lr=1e-4, box_head_lr=1e-3,
                      weight_decay=0.0, jit_compile=False)
    before = {v.path: keras.ops.convert_to_numpy(v) for v in model.trainable_variables}
    model.train_on_batch(images, targets)
    first_step = {v.path: np.abs(keras.ops.convert_to_numpy(v) - before[v.path]).max()
                  for v in model.trainable_variables}
    history = model.fit(images, targets, epochs=8, batch_size=8, verbose=0).history
    return first_step, history


def test_heads_and_backbone_train_at_their_own_learning_rates(trained_twice):
    """Adam's first step moves each weight by about its group's learning rate."""
    steps = trained_twice[0]
    assert steps["box_head_dense1/kernel"] == pytest.approx(1e-3, rel=0.05)
    assert steps["class_head_dense1/kernel"] == pytest.approx(1e-4, rel=0.05)
    assert steps["backbone_block1_conv1/kernel"] == pytest.approx(1e-5, rel=0.05)


def test_training_steps_lower_the_loss(trained_twice):
    history = trained_twice[1]
    assert history["loss"][-1] < history["loss"][0]


def test_optimizer_rejects_non_positive_rates():
    with pytest.raises(ValueError, match="box_head_lr"):
        compile_localizer(build_localizer(**TINY_PRESET), box_head_lr=0.0)
