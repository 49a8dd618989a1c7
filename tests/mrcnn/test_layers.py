"""Custom Keras layers of the Mask R-CNN graph: serialization and hand-checked behaviour."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mrcnn.modeling import box_ops
from mrcnn.modeling.backbone import BatchNorm
from mrcnn.modeling.detection import DetectionLayer
from mrcnn.modeling.detection_targets import DetectionTargetLayer
from mrcnn.modeling.heads import WholeInputConv2D
from mrcnn.modeling.proposal import ProposalLayer
from mrcnn.modeling.roi_align import PyramidROIAlign

LAYERS = [
    ProposalLayer(10, 0.7, 100, [0.1, 0.1, 0.2, 0.2], name="ROI"),
    PyramidROIAlign((7, 7), name="roi_align_classifier"),
    DetectionTargetLayer(16, 0.25, [0.1, 0.1, 0.2, 0.2], [28, 28], True, name="targets"),
    DetectionLayer(10, 0.5, 0.3, [0.1, 0.1, 0.2, 0.2], name="mrcnn_detection"),
    BatchNorm(frozen=True, name="bn_conv1"),
    WholeInputConv2D(8, 7, padding="valid", name="mrcnn_class_conv1"),
]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: type(layer).__name__)
def test_get_config_round_trip(layer):
    """A saved model would not reload if a layer's config lost a constructor argument."""
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


def test_whole_input_conv_equals_conv2d_with_the_same_weights():
    """The classifier's matmul form must give exactly what Matterport's Conv2D gives."""
    x = np.random.default_rng(0).normal(size=(5, 7, 7, 16)).astype("float32")
    reference = keras.layers.Conv2D(8, 7, padding="valid")
    fast = WholeInputConv2D(8, 7, padding="valid")
    reference.build(x.shape)
    fast.build(x.shape)
    fast.set_weights(reference.get_weights())
    np.testing.assert_allclose(fast(x), reference(x), rtol=1e-5, atol=1e-5)


def test_frozen_batchnorm_uses_moving_statistics_in_training():
    """With TRAIN_BN=False a batch of 1 image would otherwise be normalized by its own stats."""
    layer = BatchNorm(frozen=True)
    x = tf.random.normal((2, 4, 4, 3)) * 5 + 3
    np.testing.assert_allclose(layer(x, training=True), layer(x, training=False), rtol=1e-6)
    assert np.allclose(layer.moving_mean.numpy(), 0.0)


def test_roi_level_assignment_matches_fpn_formula():
    """ROIs must pool from the level k = 4 + log2(sqrt(wh)/224) (FPN eq. 1), clamped to 2..5.

    On a 1024x1024 image: a 224 px box -> P4, 112 px -> P3, 56 px -> P2, 448 px -> P5, tiny -> P2.
    Each level's feature map is filled with its level number, so the pooled value names the level.
    """
    side = 1024.0
    sizes = [224, 112, 56, 448, 8, 1000]
    expected = [4, 3, 2, 5, 2, 5]
    boxes = np.array([[[0, 0, s / side, s / side] for s in sizes]], np.float32)
    maps = [tf.fill((1, 8, 8, 1), float(level)) for level in (2, 3, 4, 5)]
    pooled = PyramidROIAlign((2, 2))(tf.constant(boxes), tf.constant([1024, 1024]), maps)
    assert pooled.shape == (1, len(sizes), 2, 2, 1)
    np.testing.assert_array_equal(pooled.numpy()[0, :, 0, 0, 0], expected)


def test_box_deltas_round_trip():
    """Encoding then decoding a GT box must give the GT box back (else boxes drift in training)."""
    boxes = tf.constant([[0.1, 0.1, 0.4, 0.5], [0.2, 0.3, 0.9, 0.6]])
    gt = tf.constant([[0.15, 0.05, 0.5, 0.45], [0.25, 0.2, 0.8, 0.7]])
    deltas = box_ops.box_refinement(boxes, gt)
    np.testing.assert_allclose(box_ops.apply_box_deltas(boxes, deltas), gt, atol=1e-6)


def test_overlaps_hand_computed():
    """IoU of two unit squares shifted by half: 0.5 / 1.5 = 1/3."""
    a = tf.constant([[0.0, 0.0, 1.0, 1.0]])
    b = tf.constant([[0.0, 0.5, 1.0, 1.5], [2.0, 2.0, 3.0, 3.0]])
    np.testing.assert_allclose(box_ops.overlaps(a, b), [[1 / 3, 0.0]], atol=1e-6)


def test_proposals_are_clipped_sorted_and_padded():
    """Proposals outside the image would pool garbage; too few must be zero-padded, not crash."""
    anchors = tf.constant([[-0.2, -0.2, 0.3, 0.3], [0.5, 0.5, 0.7, 0.7], [0.51, 0.5, 0.71, 0.7]])
    probs = tf.constant([[[0.1, 0.9], [0.3, 0.7], [0.2, 0.8]]])
    deltas = tf.zeros((1, 3, 4))
    out = ProposalLayer(5, 0.7, 100, [0.1, 0.1, 0.2, 0.2])(probs, deltas, anchors).numpy()[0]
    np.testing.assert_allclose(out[0], [0.0, 0.0, 0.3, 0.3], atol=1e-6)  # clipped, best first
    np.testing.assert_allclose(out[1], [0.51, 0.5, 0.71, 0.7], atol=1e-6)  # 0.8 beats its twin
    assert np.all(out[2:] == 0)  # the 0.7 twin is suppressed; the rest is padding


def test_detection_layer_per_class_nms_and_threshold():
    """Overlapping boxes of different classes both survive; same class keeps the best only."""
    rois = tf.constant([[[0.1, 0.1, 0.5, 0.5], [0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.5, 0.5],
                         [0.6, 0.6, 0.9, 0.9]]])
    probs = tf.constant([[[0.1, 0.9, 0.0], [0.2, 0.0, 0.8], [0.15, 0.85, 0.0], [0.6, 0.4, 0.0]]])
    deltas = tf.zeros((1, 4, 3, 4))
    windows = tf.constant([[0.0, 0.0, 1.0, 1.0]])
    out = DetectionLayer(5, 0.5, 0.3, [0.1, 0.1, 0.2, 0.2])(rois, probs, deltas, windows).numpy()[0]
    kept = out[out[:, 4] > 0]
    np.testing.assert_allclose(kept[:, 4:], [[1, 0.9], [2, 0.8]], atol=1e-6)


def test_detection_targets_on_image_without_instances():
    """A background-only image still yields negative ROIs (it teaches what is not an object)."""
    layer = DetectionTargetLayer(8, 0.25, [0.1, 0.1, 0.2, 0.2], [28, 28], True)
    proposals = tf.constant([[[0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.9, 0.9], [0, 0, 0, 0]]])
    rois, class_ids, deltas, masks = layer(
        proposals, tf.zeros((1, 4), tf.int32), tf.zeros((1, 4, 4)), tf.zeros((1, 28, 28, 4))
    )
    assert rois.shape == (1, 8, 4) and masks.shape == (1, 2, 28, 28)
    assert np.count_nonzero(np.any(rois.numpy()[0] != 0, axis=1)) == 2
    assert np.all(class_ids.numpy() == 0) and np.all(deltas.numpy() == 0)


def test_detection_targets_ignore_padding_rows_of_normalized_gt_boxes():
    """Padded GT rows (class 0) are not zero once normalized (Matterport's norm_boxes maps 0 to
    -1/(size-1)); they must not join the ROIs as degenerate background samples."""
    layer = DetectionTargetLayer(8, 0.5, [0.1, 0.1, 0.2, 0.2], [4, 4], True)
    gt_boxes = box_ops.norm_boxes(tf.constant([[[10, 10, 30, 30], [0, 0, 0, 0], [0, 0, 0, 0]]]),
                                  tf.constant([64, 64]))
    proposals = tf.constant([[[0.7, 0.7, 0.9, 0.9], [0.0, 0.0, 0.0, 0.0]]])
    rois, class_ids, _, _ = layer(proposals, tf.constant([[2, 0, 0]]), gt_boxes,
                                  tf.ones((1, 4, 4, 3)))
    valid = np.any(rois.numpy()[0] != 0, axis=1)
    assert valid.sum() == 2  # the GT box (positive) and the one real proposal (negative)
    assert class_ids.numpy()[0].tolist()[:2] == [2, 0]


def test_detection_targets_split_positives_and_negatives_at_iou_half():
    """Matterport's rule: IoU >= 0.5 with a GT box makes an ROI a positive of that class, below
    0.5 a background sample, each exactly once. A shifted threshold would teach the classifier
    to call loose boxes objects (or good boxes background) and score detections badly."""
    gt_box = [0.2, 0.2, 0.6, 0.6]

    def shifted(iou):  # the GT box moved right until its IoU with the GT box is ``iou``
        shift = 0.4 * (1 - iou) / (1 + iou)
        return [0.2, 0.2 + shift, 0.6, 0.6 + shift]

    proposals = {iou: shifted(iou) for iou in (0.42, 0.48, 0.52, 0.58)}
    layer = DetectionTargetLayer(8, 1.0, [0.1, 0.1, 0.2, 0.2], [4, 4], True)
    rois, class_ids, _, _ = layer(tf.constant([list(proposals.values())], tf.float32),
                                  tf.constant([[3, 0]]), tf.constant([[gt_box, [0, 0, 0, 0]]]),
                                  tf.ones((1, 4, 4, 2)))
    rois, class_ids = rois.numpy()[0], class_ids.numpy()[0]
    for iou, box in proposals.items():
        rows = np.flatnonzero(np.all(np.abs(rois - box) < 1e-6, axis=1))
        assert len(rows) == 1, (iou, rois)
        assert class_ids[rows[0]] == (3 if iou >= 0.5 else 0), (iou, class_ids)


def test_detection_targets_positive_mask_and_deltas():
    """A proposal equal to a GT box is positive: class = GT class, deltas 0, mask = GT mask crop."""
    layer = DetectionTargetLayer(4, 0.5, [0.1, 0.1, 0.2, 0.2], [4, 4], True)
    gt_box = [0.2, 0.2, 0.6, 0.6]
    proposals = tf.constant([[gt_box, [0.7, 0.7, 0.9, 0.9]]])
    mini = np.zeros((1, 4, 4, 2), np.float32)
    mini[0, :, :2, 0] = 1  # left half of the GT box
    rois, class_ids, deltas, masks = layer(
        proposals, tf.constant([[3, 0]]), tf.constant([[gt_box, [0, 0, 0, 0]]]), tf.constant(mini)
    )
    rois, class_ids, deltas, masks = (t.numpy()[0] for t in (rois, class_ids, deltas, masks))
    positives = class_ids > 0
    assert positives.sum() == 2  # the proposal and the GT box itself (added to the proposals)
    np.testing.assert_allclose(deltas[positives], 0.0, atol=1e-5)
    np.testing.assert_array_equal(masks[0], mini[0, :, :, 0])
