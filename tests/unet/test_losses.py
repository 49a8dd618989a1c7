"""Losses against hand-computed golden values (research notes d.1) and Keras' own Dice."""

import keras
import numpy as np
import pytest

from unet import (
    BinaryCrossentropyLoss,
    CombinedLoss,
    DiceLoss,
    EdgeWeightedCombinedLoss,
    FocalTverskyLoss,
    get_loss,
)
from unet.losses import LOSS_NAMES

# y = [1, 1, 0, 0], p = [0.9, 0.4, 0.2, 0.0]: TP 1.3, FN 0.7, FP 0.2 (computed by hand).
Y = np.array([1, 1, 0, 0], "float32").reshape(1, 2, 2, 1)
P = np.array([0.9, 0.4, 0.2, 0.0], "float32").reshape(1, 2, 2, 1)
# Keras API docs example for keras.losses.dice(axis=(1, 2, 3)) -> [0.5, 0.75757575].
KERAS_TRUE = np.array([[[[1], [1]], [[0], [0]]], [[[1], [1]], [[0], [0]]]], "float32")
KERAS_PRED = np.array([[[[0], [1]], [[0], [1]]], [[[0.4], [0]], [[0], [0.9]]]], "float32")


def value(loss, y_true=Y, y_pred=P):
    return keras.ops.convert_to_numpy(loss(y_true, y_pred))


def test_focal_tversky_matches_paper_golden_value():
    """alpha=0.7 on FN, beta=0.3 on FP, gamma=4/3: (1 - 0.702703) ** 0.75 = 0.402618."""
    assert value(FocalTverskyLoss(smooth=0)) == pytest.approx(0.402618, abs=1e-5)
    plain_tversky = FocalTverskyLoss(smooth=0, gamma=1.0)
    assert value(plain_tversky) == pytest.approx(0.297297, abs=1e-5)


def test_focal_tversky_alpha_weighs_false_negatives():
    """Missing foreground costs more than adding false foreground (recall-oriented)."""
    truth = np.ones((1, 2, 2, 1), "float32") * np.array([1, 1, 0, 0]).reshape(1, 2, 2, 1)
    misses = np.array([1, 0, 0, 0], "float32").reshape(1, 2, 2, 1)
    extras = np.array([1, 1, 1, 0], "float32").reshape(1, 2, 2, 1)
    loss = FocalTverskyLoss(smooth=0)
    assert value(loss, truth, misses) > value(loss, truth, extras)


def test_dice_and_bce_golden_values():
    assert value(DiceLoss(smooth=0)) == pytest.approx(1 - 0.742857, abs=1e-5)
    assert value(BinaryCrossentropyLoss()) == pytest.approx(0.311199, abs=1e-5)
    assert value(CombinedLoss(0.5, 0.5, smooth=0)) == pytest.approx(
        0.5 * 0.311199 + 0.5 * (1 - 0.742857), abs=1e-5)


def test_dice_per_image_equals_keras_dice():
    ours = DiceLoss(smooth=0, reduction=None)(KERAS_TRUE, KERAS_PRED)
    np.testing.assert_allclose(ours, [0.5, 0.75757575], atol=1e-6)
    np.testing.assert_allclose(ours, keras.losses.dice(KERAS_TRUE, KERAS_PRED, axis=(1, 2, 3)),
                               atol=1e-6)


def test_batch_dice_pools_pixels_over_the_batch():
    """per_image=False gives Keras' batch-level Dice 0.6164384 (API docs)."""
    pooled = value(DiceLoss(smooth=0, per_image=False), KERAS_TRUE, KERAS_PRED)
    assert pooled == pytest.approx(0.6164384, abs=1e-6)


def test_from_logits_matches_probabilities():
    logits = np.log(np.clip(P, 1e-6, 1 - 1e-6) / (1 - np.clip(P, 1e-6, 1 - 1e-6)))
    for name in LOSS_NAMES:
        with_probabilities = value(get_loss(name))
        with_logits = value(get_loss(name, from_logits=True), Y, logits.astype("float32"))
        assert with_logits == pytest.approx(with_probabilities, rel=2e-3, abs=2e-4), name


def test_edge_weighting_raises_the_cost_of_boundary_errors():
    """An error on the mask boundary costs more under the edge loss than under the plain one."""
    truth = np.zeros((1, 16, 16, 1), "float32")
    truth[0, 4:12, 4:12] = 1
    prediction = truth.copy()
    prediction[0, 4, 4:12] = 0  # one boundary row missed
    edge = value(EdgeWeightedCombinedLoss(dice_weight=0), truth, prediction)
    plain = value(CombinedLoss(dice_weight=0), truth, prediction)
    assert edge > plain * 1.5
    assert value(EdgeWeightedCombinedLoss(), truth, truth) < 1e-3


# Every named loss with its default arguments on (Y, P), by hand: BCE = -(ln 0.9 + ln 0.4 +
# ln 0.8 + ln(1 - 1e-7)) / 4 = 0.311199; soft Dice with smooth 1 = (2 * 1.3 + 1) / (2 + 1.5 + 1)
# = 0.8; Tversky with smooth 1 = 2.3 / (1.3 + 0.7 * 0.7 + 0.3 * 0.2 + 1) = 0.807018, and
# (1 - 0.807018) ** 0.75 = 0.291164. On a 2x2 target every pixel lies in the 3x3 boundary band,
# so "edge" weighs all pixels alike and equals "bce_dice".
DEFAULT_GOLDEN = {
    "bce": 0.311199,
    "dice": 0.2,
    "bce_dice": 0.311199 + 0.2,
    "weighted": 0.5 * 0.311199 + 0.5 * 0.2,
    "edge": 0.311199 + 0.2,
    "focal_tversky": 0.291164,
}


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_named_losses_match_hand_computed_values(name):
    """What ``--loss NAME`` optimizes, on a 4-pixel example worked out by hand."""
    assert value(get_loss(name)) == pytest.approx(DEFAULT_GOLDEN[name], abs=1e-5)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_perfect_prediction_has_near_zero_loss_and_finite_gradient(name):
    """A perfect mask costs ~0, a partly wrong one more, the inverted one most; no NaN gradient.

    If this fails, training would not drive the loss towards the target (an offset or a sign
    error), or it would stall on NaNs once the model gets the mask right.
    """
    import tensorflow as tf

    perfect = Y * 0.999 + 0.0005
    prediction = tf.Variable(perfect)
    with tf.GradientTape() as tape:
        loss = get_loss(name)(Y, prediction)
    gradient = tape.gradient(loss, prediction)
    assert np.isfinite(gradient.numpy()).all()
    assert float(loss) < 0.01
    inverted = 1.0 - perfect
    assert value(get_loss(name), Y, perfect) < value(get_loss(name), Y, P) < value(
        get_loss(name), Y, inverted)


def test_mismatched_target_shape_is_explained():
    with pytest.raises(ValueError, match="center_crop"):
        DiceLoss()(np.zeros((1, 8, 8, 1)), np.zeros((1, 4, 4, 1), "float32"))


def test_losses_serialize_with_their_arguments():
    loss = FocalTverskyLoss(alpha=0.6, beta=0.4, gamma=2.0, from_logits=True)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert (restored.alpha, restored.beta, restored.gamma, restored.from_logits) == (
        0.6, 0.4, 2.0, True)
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss("lovasz")
