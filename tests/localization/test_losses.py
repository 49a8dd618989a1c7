"""Box losses and class-weighted cross entropy, checked against independent NumPy formulas."""

import keras
import numpy as np
import pytest

from localization import TINY_PRESET, build_localizer, compile_localizer
from localization.losses import BoxLoss, WeightedClassCrossEntropy, build_localization_losses

TRUE = np.array([[0.1, 0.1, 0.5, 0.5], [0.2, 0.3, 0.6, 0.9]], dtype="float32")
PRED = np.array([[0.3, 0.3, 0.7, 0.7], [0.25, 0.3, 0.5, 0.95]], dtype="float32")


def test_mse_box_loss_is_the_mean_squared_coordinate_error():
    expected = np.mean((TRUE - PRED) ** 2)
    assert float(BoxLoss("mse")(TRUE, PRED)) == pytest.approx(expected, rel=1e-5)


def test_smooth_l1_is_quadratic_below_beta_and_linear_above():
    beta = 0.1
    error = np.abs(TRUE - PRED)
    per_coordinate = np.where(error < beta, 0.5 * error**2 / beta, error - 0.5 * beta)
    loss = BoxLoss("smooth_l1", beta=beta)(TRUE, PRED)
    assert float(loss) == pytest.approx(per_coordinate.mean(), rel=1e-5)


def test_giou_loss_uses_the_golden_giou():
    loss = BoxLoss("giou")(TRUE[:1], PRED[:1])
    assert float(loss) == pytest.approx(1 + 0.079365, abs=1e-5)


def test_weighted_cross_entropy_matches_pytorch_weighted_mean():
    """PyTorch parity: F.cross_entropy(weight=w) = sum(w_y * ce) / sum(w_y)."""
    logits = np.array([[2.0, -1.0], [0.5, 0.2], [-0.3, 1.5]], dtype="float32")
    labels = np.array([0, 1, 1])
    weights = np.array([0.35, 0.65])
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    ce = -log_probs[np.arange(3), labels]
    expected = (weights[labels] * ce).sum() / weights[labels].sum()
    loss = WeightedClassCrossEntropy(class_weights=weights)(labels, logits)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_unweighted_cross_entropy_equals_keras():
    logits = np.array([[2.0, -1.0, 0.3], [0.5, 0.2, 0.1]], dtype="float32")
    labels = np.array([2, 0])
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    assert float(WeightedClassCrossEntropy()(labels, logits)) == pytest.approx(float(keras_loss))


def test_alpha_splits_the_loss_weights():
    losses, weights = build_localization_losses(alpha=0.7, box_loss="giou")
    assert weights == {"box": 0.7, "class": pytest.approx(0.3)}
    assert losses["box"].kind == "giou"


@pytest.mark.parametrize("kwargs", [{"alpha": 1.5}, {"box_loss": "ciou"},
                                    {"class_weights": (-1.0, 1.0)}])
def test_bad_loss_settings_are_rejected(kwargs):
    with pytest.raises(ValueError):
        build_localization_losses(**kwargs)


def test_wrong_number_of_class_weights_is_reported():
    with pytest.raises(ValueError, match="3 class weights"):
        WeightedClassCrossEntropy((1.0, 1.0, 1.0))(np.array([0]), np.zeros((1, 2), "float32"))


def test_compiled_model_trains_on_alpha_box_plus_one_minus_alpha_class_loss():
    """If this fails, ALPHA does not balance box against class as documented (or a term is lost):
    the logged ``loss`` is not ``alpha * box_loss + (1 - alpha) * class_loss`` of the outputs."""
    alpha, weights = 0.25, np.array([0.35, 0.65])
    model = compile_localizer(build_localizer(**TINY_PRESET), alpha=alpha, class_weights=weights,
                              jit_compile=False)
    images = np.random.default_rng(0).uniform(0, 255, size=(8, 32, 32, 3)).astype("float32")
    boxes = np.tile([[0.2, 0.3, 0.6, 0.8]], (8, 1)).astype("float32")
    labels = np.array([0, 1, 1, 1, 0, 1, 1, 1])
    logged = model.evaluate(images, {"box": boxes, "class": labels}, batch_size=8, verbose=0,
                            return_dict=True)
    outputs = model.predict(images, verbose=0)
    box_loss = np.mean((outputs["box"] - boxes) ** 2)
    logits = outputs["class"].astype(np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    ce = -log_probs[np.arange(8), labels]
    class_loss = (weights[labels] * ce).sum() / weights[labels].sum()
    assert logged["box_loss"] == pytest.approx(box_loss, rel=1e-4)
    assert logged["class_loss"] == pytest.approx(class_loss, rel=1e-4)
    assert logged["loss"] == pytest.approx(alpha * box_loss + (1 - alpha) * class_loss, rel=1e-4)
