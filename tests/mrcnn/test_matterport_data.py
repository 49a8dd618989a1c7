"""Matterport's input API (load_image_gt, build_rpn_targets, data_generator, random ROIs,
numpy detection targets, mold_mask) on the shapes dataset and the tiny preset."""

from __future__ import annotations

import numpy as np
import pytest

import mrcnn.model as modellib
from mrcnn import utils
from mrcnn.config import tiny_config
from mrcnn.data.datasets.shapes import ShapesDataset
from mrcnn.geometry.anchors import anchors_for_image_shape


@pytest.fixture(scope="module")
def config():
    return tiny_config(num_classes=4, USE_MINI_MASK=True)


@pytest.fixture(scope="module")
def dataset():
    data = ShapesDataset()
    data.load_shapes(4, 48, 80, seed=7)
    data.prepare()
    return data


def test_load_image_gt_full_size_masks_follow_the_resized_image(dataset, config):
    """use_mini_mask=False gives masks of the resized image whose boxes are the returned bbox
    (the notebook overlays them on the image)."""
    image, meta, class_ids, bbox, mask = modellib.load_image_gt(dataset, config, 0,
                                                                use_mini_mask=False)
    assert image.shape == tuple(config.IMAGE_SHAPE) and image.dtype == np.uint8
    assert mask.shape == (*image.shape[:2], len(class_ids)) and mask.dtype == bool
    np.testing.assert_array_equal(bbox, utils.extract_bboxes(mask))
    parsed = modellib.parse_image_meta(meta[None])
    assert tuple(parsed["original_image_shape"][0]) == (48, 80, 3)
    y1, x1, y2, x2 = parsed["window"][0]
    assert np.all(bbox[:, 0] >= y1) and np.all(bbox[:, 2] <= y2)
    assert np.all(bbox[:, 1] >= x1) and np.all(bbox[:, 3] <= x2)


def test_load_image_gt_mini_masks_expand_back_to_the_full_masks(dataset, config):
    """use_mini_mask=True (not config.USE_MINI_MASK) decides, and the mini masks are crops of
    the same instances: expanded, they cover the full masks."""
    _, _, ids_full, bbox_full, full = modellib.load_image_gt(dataset, config, 1)
    _, _, ids_mini, bbox_mini, mini = modellib.load_image_gt(dataset, config, 1,
                                                             use_mini_mask=True)
    assert full.shape[:2] == tuple(config.IMAGE_SHAPE[:2])
    assert mini.shape == (*config.MINI_MASK_SHAPE, len(ids_mini))
    np.testing.assert_array_equal(ids_full, ids_mini)
    np.testing.assert_array_equal(bbox_full, bbox_mini)
    expanded = utils.expand_mask(bbox_mini, mini, config.IMAGE_SHAPE)
    overlap = utils.compute_overlaps_masks(expanded, full)
    assert np.all(np.diag(overlap) > 0.8)


def test_data_generator_yields_matterports_lists_with_consistent_rpn_targets(dataset, config):
    """Training loops written for Matterport unpack seven inputs; rpn_match / rpn_bbox must be
    build_rpn_targets of the image's own boxes (positives are not subsampled here)."""
    generator = modellib.data_generator(dataset, config, shuffle=False, batch_size=2)
    inputs, outputs = next(generator)
    images, metas, rpn_match, rpn_bbox, gt_class_ids, gt_boxes, gt_masks = inputs
    anchors = anchors_for_image_shape(config, config.IMAGE_SHAPE, normalized=False)
    assert outputs == []
    assert images.shape == (2, *config.IMAGE_SHAPE) and images.dtype == np.float32
    assert rpn_match.shape == (2, len(anchors), 1)
    assert rpn_bbox.shape == (2, config.RPN_TRAIN_ANCHORS_PER_IMAGE, 4)
    assert gt_masks.shape == (2, *config.MINI_MASK_SHAPE, config.MAX_GT_INSTANCES)
    for row, image_id in enumerate(dataset.image_ids[:2]):
        image, _, class_ids, boxes, _ = modellib.load_image_gt(dataset, config, image_id,
                                                               use_mini_mask=True)
        np.testing.assert_allclose(modellib.unmold_image(images[row], config), image, atol=1)
        count = len(class_ids)
        np.testing.assert_array_equal(gt_boxes[row, :count], boxes)
        assert np.all(gt_class_ids[row, count:] == 0)
        match, deltas = modellib.build_rpn_targets(image.shape, anchors, class_ids, boxes, config)
        positives = np.where(match == 1)[0]
        assert 0 < len(positives) < config.RPN_TRAIN_ANCHORS_PER_IMAGE // 2
        np.testing.assert_array_equal(np.where(rpn_match[row, :, 0] == 1)[0], positives)
        np.testing.assert_allclose(rpn_bbox[row], deltas, atol=1e-5)
        assert np.sum(rpn_match[row] == -1) == np.sum(match == -1)


def test_data_generator_with_random_rois_and_detection_targets(dataset, config):
    """Matterport's head-only path: rpn_rois and rois join the inputs, the targets fill
    outputs with Keras-style shapes."""
    inputs, outputs = next(modellib.data_generator(dataset, config, shuffle=True,
                                                   random_rois=40, batch_size=2,
                                                   detection_targets=True))
    rois_count, classes = config.TRAIN_ROIS_PER_IMAGE, config.NUM_CLASSES
    assert len(inputs) == 9
    assert inputs[7].shape == (2, 40, 4) and inputs[8].shape == (2, rois_count, 4)
    class_ids, bbox, mask = outputs
    assert class_ids.shape == (2, rois_count, 1)
    assert bbox.shape == (2, rois_count, classes, 4)
    assert mask.shape == (2, rois_count, *config.MASK_SHAPE, classes)


def test_generate_random_rois_are_valid_boxes_mostly_near_the_ground_truth():
    """Random ROIs replace the RPN when training the heads: 90% must sit near an object."""
    gt_boxes = np.array([[10, 10, 20, 30], [30, 40, 50, 60]])
    rois = modellib.generate_random_rois((64, 64, 3), 100, np.array([1, 2]), gt_boxes,
                                         rng=np.random.default_rng(0))
    assert rois.shape == (100, 4) and rois.dtype == np.int32
    assert np.all(rois[:, 2] > rois[:, 0]) and np.all(rois[:, 3] > rois[:, 1])
    assert rois.min() >= 0 and rois[:, 2].max() < 64 and rois[:, 3].max() < 64
    near_first = rois[:45]
    assert np.all(near_first[:, 0] >= 0) and np.all(near_first[:, 2] < 30)
    assert np.all(near_first[:, 1] >= 0) and np.all(near_first[:, 3] < 50)


def test_build_detection_targets_on_rois_equal_to_the_ground_truth():
    """A ROI that is a GT box is a positive of its class with zero deltas and its mask."""
    gt_boxes = np.array([[8, 8, 24, 40], [30, 30, 60, 50]], dtype=np.int32)
    gt_masks = np.zeros((64, 64, 2), dtype=bool)
    gt_masks[8:24, 8:40, 0] = True
    gt_masks[30:60, 30:50, 1] = True
    rois = np.concatenate([gt_boxes, [[0, 0, 4, 4], [60, 0, 63, 5]]])
    cfg = tiny_config(num_classes=4, USE_MINI_MASK=False)
    out_rois, class_ids, bboxes, masks = modellib.build_detection_targets(
        rois, np.array([1, 3], dtype=np.int32), gt_boxes, gt_masks, cfg,
        rng=np.random.default_rng(0))
    total = cfg.TRAIN_ROIS_PER_IMAGE
    assert out_rois.shape == (total, 4) and class_ids.shape == (total,)
    positives = {tuple(r): c for r, c in zip(out_rois, class_ids, strict=True) if c > 0}
    assert positives == {tuple(gt_boxes[0]): 1, tuple(gt_boxes[1]): 3}
    rows = np.where(class_ids > 0)[0]
    np.testing.assert_allclose(bboxes[rows], 0.0, atol=1e-6)
    np.testing.assert_allclose(masks[rows[0], :, :, class_ids[rows[0]]], 1.0)


def test_mold_mask_then_unmold_mask_gives_the_mask_back(config):
    """mold_mask (unimplemented in Matterport) is the inverse of unmold_mask."""
    yy, xx = np.mgrid[:64, :64]
    mask = (yy - 30) ** 2 + (xx - 25) ** 2 < 15 ** 2
    small = utils.mold_mask(mask, config)
    assert small.shape == tuple(config.MASK_SHAPE)
    bbox = utils.extract_bboxes(mask[:, :, None])[0]
    back = utils.unmold_mask(small, bbox, mask.shape)
    iou = np.sum(back & mask) / np.sum(back | mask)
    assert iou > 0.95
    with pytest.raises(ValueError, match="non-empty"):
        utils.mold_mask(np.zeros((8, 8), bool), config)
