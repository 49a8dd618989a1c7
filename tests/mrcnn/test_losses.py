"""Matterport's losses on hand-computed examples: what each one counts and how much."""

import numpy as np
import pytest
import tensorflow as tf

from mrcnn.modeling.losses import mrcnn_class_loss, rpn_class_loss, smooth_l1


def test_smooth_l1_is_quadratic_near_zero_and_linear_far_away():
    """A far-off box must cost linearly (smooth L1), or its gradient swamps the other boxes."""
    y_pred = tf.constant([0.0, 0.5, 1.0, 3.0, -4.0])
    values = smooth_l1(tf.zeros(5), y_pred).numpy()
    np.testing.assert_allclose(values, [0.0, 0.125, 0.5, 2.5, 3.5], rtol=1e-6)


def test_rpn_class_loss_ignores_neutral_anchors():
    """Anchors marked 0 (IoU between 0.3 and 0.7) train neither as object nor as background."""
    logits = tf.constant([[[0.0, 2.0], [1.0, -1.0], [5.0, -5.0], [-3.0, 3.0]]])
    match = tf.constant([[1, -1, 0, 0]], tf.int32)
    # Cross-entropy of the two used anchors only: object for anchor 0, background for anchor 1.
    expected = np.mean([np.log1p(np.exp(-2.0)), np.log1p(np.exp(-2.0))])
    assert float(rpn_class_loss(match, logits)) == pytest.approx(expected, rel=1e-5)
    flipped_neutral = tf.constant([[[0.0, 2.0], [1.0, -1.0], [-5.0, 5.0], [3.0, -3.0]]])
    assert float(rpn_class_loss(match, flipped_neutral)) == pytest.approx(expected, rel=1e-5)


def test_class_loss_weights_scale_each_rois_cross_entropy_by_its_target_class():
    """CLASS_LOSS_WEIGHTS: a rare class's ROIs count 3x in the classifier loss, and the mean is
    taken over the weights, so all-ones weights give Matterport's loss exactly."""
    logits = tf.constant([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.5]]])
    targets = tf.constant([[0, 1, 2]], tf.int32)
    active, valid = tf.ones([1, 3]), tf.constant([[True, True, True]])
    log_softmax = tf.nn.log_softmax(logits[0]).numpy()
    per_roi = -log_softmax[[0, 1, 2], [0, 1, 2]]
    plain = float(mrcnn_class_loss(targets, logits, active, valid))
    assert plain == pytest.approx(per_roi.mean(), rel=1e-5)
    ones = float(mrcnn_class_loss(targets, logits, active, valid, tf.constant([1.0, 1.0, 1.0])))
    assert ones == pytest.approx(plain, rel=1e-6)
    weighted = float(mrcnn_class_loss(targets, logits, active, valid, tf.constant([1.0, 1.0, 3.0])))
    assert weighted == pytest.approx((per_roi[0] + per_roi[1] + 3 * per_roi[2]) / 5, rel=1e-5)
