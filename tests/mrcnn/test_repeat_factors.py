"""Repeat-factor sampling: per-image factors follow detectron2's formula, epochs follow them."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrcnn.config import tiny_config
from mrcnn.data.dataset import Dataset
from mrcnn.data.pipeline import build_dataset
from mrcnn.data.repeat_factors import epoch_ids, image_class_ids, repeat_factors


def test_factors_by_hand():
    """10 images: class 1 everywhere, class 2 in one (f = 0.1); t = 0.4 -> r(2) = 2."""
    classes = [{1, 2}] + [{1}] * 8 + [set()]
    factors = repeat_factors(classes, threshold=0.4)
    assert factors.tolist() == pytest.approx([2.0] + [1.0] * 9)


@settings(max_examples=60, deadline=None)
@given(classes=st.lists(st.sets(st.integers(1, 6), max_size=3), min_size=1, max_size=40),
       threshold=st.floats(1e-4, 1.0))
def test_each_image_gets_its_rarest_class_factor(classes, threshold):
    factors = repeat_factors(classes, threshold)
    for image_classes, factor in zip(classes, factors, strict=True):
        expected = max((max(1.0, math.sqrt(threshold * len(classes) /
                                           sum(c in other for other in classes)))
                        for c in image_classes), default=1.0)
        assert factor == pytest.approx(expected)


def test_epoch_counts_round_each_factor_stochastically():
    """Every epoch holds an image floor(r) or ceil(r) times, and r times on average."""
    factors = np.array([1.0, 1.5, 2.25, 3.0])
    rng = np.random.default_rng(0)
    counts = np.array([np.bincount(epoch_ids(range(4), factors, rng), minlength=4)
                       for _ in range(4000)])
    assert np.all(counts >= np.floor(factors)) and np.all(counts <= np.ceil(factors))
    np.testing.assert_allclose(counts.mean(axis=0), factors, atol=0.03)


def test_a_threshold_must_be_positive():
    with pytest.raises(ValueError, match="threshold"):
        repeat_factors([{1}], 0.0)


class OneRareImage(Dataset):
    """8 images of one square each: image 0 shows class 2, the others class 1."""

    def __init__(self):
        super().__init__()
        self.add_class("toy", 1, "common")
        self.add_class("toy", 2, "rare")
        for index in range(8):
            self.add_image("toy", image_id=index, path=None)
        self.prepare()

    def load_image(self, image_id):
        return np.full((64, 64, 3), 40 + image_id, np.uint8)

    def load_mask(self, image_id):
        mask = np.zeros((64, 64, 1), bool)
        mask[10:40, 10:40] = True
        return mask, np.array([2 if image_id == 0 else 1], np.int32)


def test_training_batches_show_rare_class_images_more_often():
    """t = 0.5: the rare image (f = 1/8) comes twice per epoch, the others once, so 3 epochs
    of 9 samples hold it 6 times; without the option it comes once per epoch."""
    dataset = OneRareImage()
    assert image_class_ids(dataset, 0) == {2}
    config = tiny_config(num_classes=3, IMAGES_PER_GPU=1)
    seen = {}
    for threshold in (0.5, 0.0):
        data = build_dataset(dataset, config, repeat_factor_threshold=threshold, seed=1)
        take = 27 if threshold else 24
        ids = [int(batch["input_image_meta"][0, 0]) for batch in data.take(take)]
        seen[threshold] = np.bincount(ids, minlength=8).tolist()
    assert seen[0.5] == [6] + [3] * 7
    assert seen[0.0] == [3] * 8


def test_coco_class_ids_come_from_annotations_as_load_mask_gives_them(tmp_path):
    """The COCO loader answers without decoding masks (a pass over 118k images otherwise)."""
    from mrcnn.data.datasets.coco import CocoDataset
    from tests.mrcnn.test_samples import write_coco

    write_coco(tmp_path, "train")
    dataset = CocoDataset()
    dataset.load_coco(tmp_path, "train")
    dataset.prepare()
    for image_id in dataset.image_ids:
        assert sorted(dataset.image_class_ids(image_id)) == \
            sorted(dataset.load_mask(image_id)[1].tolist())
    assert image_class_ids(dataset, 0) == {1, 2}  # the crowd region does not count
