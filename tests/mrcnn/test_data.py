"""Training input: load_image_gt semantics, errors naming the image, the tf.data contract."""

import albumentations as A
import numpy as np
import pytest
import tensorflow as tf

from mrcnn.config import tiny_config
from mrcnn.data.dataset import Dataset, DatasetError
from mrcnn.data.datasets.shapes import ShapesDataset
from mrcnn.data.pipeline import build_dataset, build_training_sample, load_image_gt
from mrcnn.geometry.anchors import anchors_for_image_shape
from mrcnn.geometry.imaging import parse_image_meta


class RectanglesDataset(Dataset):
    """Images of 48x80 px with given rectangles; load_mask can be told to misbehave."""

    def __init__(self, rectangles, broken=None):
        super().__init__()
        self.add_class("rects", 1, "a")
        self.add_class("rects", 2, "b")
        self.add_class("rects", 3, "c")
        for i, rects in enumerate(rectangles):
            self.add_image("rects", image_id=f"img{i}", path=f"/data/img{i}.png", rects=rects)
        self.broken = broken
        self.prepare()

    def load_image(self, image_id):
        return np.full((48, 80, 3), 100, np.uint8)

    def load_mask(self, image_id):
        rects = self.image_info[image_id]["rects"]
        masks = np.zeros((48, 80, len(rects)), bool)
        for i, (y1, x1, y2, x2, _) in enumerate(rects):
            masks[y1:y2, x1:x2, i] = True
        class_ids = np.array([r[4] for r in rects], np.int32)
        if self.broken == "float":
            return masks.astype(np.float32), class_ids
        if self.broken == "shape":
            return masks[:40], class_ids
        if self.broken == "count":
            return masks, class_ids[:-1]
        if self.broken == "class":
            return masks, class_ids + 5
        return masks, class_ids


@pytest.fixture(scope="module")
def config():
    return tiny_config()


def test_load_image_gt_resizes_and_recomputes_boxes(config):
    """48x80 -> scale 0.8 into a 64x64 square; box and meta follow the resize."""
    dataset = RectanglesDataset([[(8, 10, 28, 50, 2)]])
    image, meta, class_ids, bbox, masks = load_image_gt(dataset, config, 0)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    parsed = parse_image_meta(meta)
    np.testing.assert_array_equal(parsed["original_image_shape"], [48, 80, 3])
    np.testing.assert_array_equal(parsed["window"], [13, 0, 51, 64])  # 38 rows centered
    assert parsed["scale"] == pytest.approx(0.8)
    np.testing.assert_array_equal(class_ids, [2])
    np.testing.assert_allclose(bbox[0], [13 + 6.4, 8, 13 + 22.4, 40], atol=1.01)
    assert masks.shape == (28, 28, 1) and masks.dtype == bool and masks.all()


def test_load_image_gt_after_flip_boxes_follow_the_masks(config):
    dataset = RectanglesDataset([[(8, 0, 28, 20, 1)]])
    flip = A.Compose([A.HorizontalFlip(p=1.0)])
    _, _, _, plain_box, _ = load_image_gt(dataset, config, 0)
    _, _, _, flipped_box, _ = load_image_gt(dataset, config, 0, augmentation=flip)
    np.testing.assert_array_equal(flipped_box[0, [0, 2]], plain_box[0, [0, 2]])
    np.testing.assert_array_equal(flipped_box[0, [1, 3]], 64 - plain_box[0, [3, 1]])


def test_instance_pushed_out_of_the_image_is_dropped(config):
    dataset = RectanglesDataset([[(0, 0, 10, 10, 1), (20, 30, 40, 60, 3)]])
    shift = A.Compose([A.Affine(translate_px={"x": 40, "y": 0}, p=1.0)])
    _, _, class_ids, bbox, masks = load_image_gt(dataset, config, 0, augmentation=shift)
    np.testing.assert_array_equal(class_ids, [1])
    assert bbox.shape == (1, 4) and masks.shape[-1] == 1


def test_augmentation_that_changes_the_size_is_rejected_naming_the_image(config):
    dataset = RectanglesDataset([[(8, 10, 28, 50, 2)]])
    with pytest.raises(DatasetError, match="img0.png.*augmentation"):
        load_image_gt(dataset, config, 0, augmentation=A.Compose([A.CenterCrop(32, 32)]))


@pytest.mark.parametrize("broken, message", [
    ("float", "dtype float32, expected bool"),
    ("shape", r"shape \[40, 80, 1\], expected \[48, 80, N\]"),
    ("count", "1 masks but 0 class ids"),
    ("class", r"class ids \[7\]"),
])
def test_bad_load_mask_gives_clear_error_naming_the_image(config, broken, message):
    dataset = RectanglesDataset([[(8, 10, 28, 50, 2)]], broken=broken)
    with pytest.raises(DatasetError, match=f"/data/img0.png.*{message}"):
        load_image_gt(dataset, config, 0)


def test_bad_image_gives_clear_error_naming_the_image(config):
    dataset = RectanglesDataset([[]])
    dataset.load_image = lambda image_id: np.zeros((48, 80), np.uint8)
    with pytest.raises(DatasetError, match=r"img0.png.*uint8\[48, 80\], expected an integer or float array \[H, W, 3\]"):
        load_image_gt(dataset, config, 0)


def test_image_without_instances_is_a_valid_sample(config):
    """Background-only images must be trained on (Matterport skipped them)."""
    dataset = RectanglesDataset([[]])
    anchors = anchors_for_image_shape(config, config.IMAGE_SHAPE, normalized=False)
    sample = build_training_sample(dataset, config, 0, anchors, rng=np.random.default_rng(0))
    assert not sample["input_gt_class_ids"].any() and not sample["input_gt_masks"].any()
    assert np.sum(sample["input_rpn_match"] == -1) == config.RPN_TRAIN_ANCHORS_PER_IMAGE
    assert np.sum(sample["input_rpn_match"] == 1) == 0


def test_more_instances_than_max_gt_are_subsampled(config):
    rects = [(2 * i, 0, 2 * i + 2, 80, 1 + i % 3) for i in range(12)]  # 12 > MAX_GT_INSTANCES 8
    dataset = RectanglesDataset([rects])
    anchors = anchors_for_image_shape(config, config.IMAGE_SHAPE, normalized=False)
    sample = build_training_sample(dataset, config, 0, anchors, rng=np.random.default_rng(0))
    assert np.count_nonzero(sample["input_gt_class_ids"]) == config.MAX_GT_INSTANCES
    assert sample["input_gt_masks"].any(axis=(0, 1)).all()


def test_full_size_masks_without_mini_mask():
    config = tiny_config(USE_MINI_MASK=False)
    dataset = RectanglesDataset([[(8, 10, 28, 50, 2)]])
    anchors = anchors_for_image_shape(config, config.IMAGE_SHAPE, normalized=False)
    sample = build_training_sample(dataset, config, 0, anchors)
    assert sample["input_gt_masks"].shape == (64, 64, config.MAX_GT_INSTANCES)
    y1, x1, y2, x2 = sample["input_gt_boxes"][0]
    assert sample["input_gt_masks"][y1:y2, x1:x2, 0].all()
    assert sample["input_gt_masks"][:, :, 0].sum() == (y2 - y1) * (x2 - x1)


def test_build_dataset_batches_match_the_model_input_contract(config):
    """Keys, dtypes and static shapes the training model is built against."""
    shapes = ShapesDataset()
    shapes.load_shapes(6, 64, 64, seed=0)
    shapes.prepare()
    data = build_dataset(shapes, config, augmentation=A.Compose([A.HorizontalFlip()]), seed=3)
    num_anchors = len(anchors_for_image_shape(config, config.IMAGE_SHAPE, normalized=False))
    b, g = config.BATCH_SIZE, config.MAX_GT_INSTANCES
    expected = {
        "input_image": ([b, 64, 64, 3], tf.float32),
        "input_image_meta": ([b, config.IMAGE_META_SIZE], tf.float32),
        "input_rpn_match": ([b, num_anchors, 1], tf.int32),
        "input_rpn_bbox": ([b, config.RPN_TRAIN_ANCHORS_PER_IMAGE, 4], tf.float32),
        "input_gt_class_ids": ([b, g], tf.int32),
        "input_gt_boxes": ([b, g, 4], tf.int32),
        "input_gt_masks": ([b, 28, 28, g], tf.bool),
    }
    assert {k: (s.shape.as_list(), s.dtype) for k, s in data.element_spec.items()} == expected
    batches = list(data.take(4).as_numpy_iterator())
    assert len(batches) == 4
    for batch in batches:
        for key, (shape, _) in expected.items():
            assert list(batch[key].shape) == shape
        assert (batch["input_gt_class_ids"] > 0).any()
        assert np.abs(batch["input_image"].mean()) < 128  # molded: mean subtracted
    again = list(build_dataset(shapes, config, augmentation=A.Compose([A.HorizontalFlip()]),
                               seed=3).take(4).as_numpy_iterator())
    for first, second in zip(batches, again, strict=True):
        np.testing.assert_array_equal(first["input_rpn_match"], second["input_rpn_match"])
        np.testing.assert_array_equal(first["input_image"], second["input_image"])


def test_build_dataset_fails_fast_on_a_broken_dataset(config):
    with pytest.raises(DatasetError, match="img0.png"):
        build_dataset(RectanglesDataset([[(8, 10, 28, 50, 2)]] * 2, broken="float"), config)


def test_build_dataset_rejects_class_count_mismatch_and_unknown_augmentation(config):
    dataset = RectanglesDataset([[(8, 10, 28, 50, 2)]] * 2)
    with pytest.raises(ValueError, match="4 classes.*NUM_CLASSES = 3"):
        build_dataset(dataset, tiny_config(num_classes=3))
    with pytest.raises(TypeError, match="str"):
        build_dataset(dataset, config, augmentation="flip")


def test_build_dataset_without_repeat_is_one_pass(config):
    dataset = RectanglesDataset([[(8, 10, 28, 50, 2)]] * 5)
    batches = list(build_dataset(dataset, config, shuffle=False, repeat=False).as_numpy_iterator())
    assert len(batches) == 2  # 5 images, batch 2, remainder dropped
    ids = np.concatenate([b["input_image_meta"][:, 0] for b in batches])
    np.testing.assert_array_equal(ids, [0, 1, 2, 3])


def test_no_augmentation_sources_are_left_unaugmented(config):
    """A size-changing transform would fail, so passing proves the source was skipped."""
    dataset = RectanglesDataset([[(8, 10, 28, 50, 2)]] * 2)
    data = build_dataset(dataset, config, augmentation=A.Compose([A.CenterCrop(32, 32)]),
                         no_augmentation_sources=["rects"], seed=0)
    batch = next(iter(data.take(1).as_numpy_iterator()))
    assert batch["input_image"].shape[1:3] == (64, 64)
