"""Variable-size training batches: IMAGE_RESIZE_MODE "pad64" / "none" batched by aspect ratio.

torchvision's grouping (GroupedBatchSampler over two aspect-ratio groups) and per-batch padding
to multiples of 64; "square" keeps its fixed 1-shape batches and its losses.
"""

import math

import keras
import numpy as np
import pytest

from mrcnn import model as modellib
from mrcnn.config import tiny_config
from mrcnn.data.anchor_targets import build_rpn_targets
from mrcnn.data.datasets.shapes import SHAPE_CLASSES, ShapesDataset, random_image
from mrcnn.data.grouped_batches import compute_aspect_groups, padded_batch_shape
from mrcnn.data.pipeline import build_dataset
from mrcnn.geometry.anchors import anchors_for_image_shape
from mrcnn.geometry.imaging import mold_image, parse_image_meta
from mrcnn.modeling.network import MaskRCNNNetwork

WIDE_AND_TALL = [(64, 128), (128, 64), (64, 64), (96, 160), (160, 96), (64, 192)]


class MixedShapes(ShapesDataset):
    """Matterport's generated shapes on images of several sizes (wide, tall and square)."""

    def load_mixed(self, sizes, seed: int) -> None:
        for class_id, name in enumerate(SHAPE_CLASSES, start=1):
            self.add_class("shapes", class_id, name)
        rng = np.random.default_rng(seed)
        for i, (height, width) in enumerate(sizes):
            bg_color, shapes = random_image(rng, height, width)
            self.add_image("shapes", image_id=i, path=None, width=width, height=height,
                           bg_color=bg_color, shapes=shapes)


def _mixed(sizes, seed: int = 0) -> MixedShapes:
    dataset = MixedShapes()
    dataset.load_mixed(sizes, seed)
    dataset.prepare()
    return dataset


def _batches(config, dataset, count: int, seed: int = 3) -> list[dict[str, np.ndarray]]:
    data = build_dataset(dataset, config, seed=seed)
    return [{k: v.numpy() for k, v in batch.items()} for batch in data.take(count)]


@pytest.fixture(scope="module")
def pad64_batches():
    config = tiny_config(IMAGE_RESIZE_MODE="pad64")
    return config, _batches(config, _mixed(WIDE_AND_TALL * 2), 8)


def test_aspect_groups_are_torchvisions():
    """With other bins, wide and tall images would share batches and pad each other to squares."""
    ratios = [0.5, 0.99, 1.0, 2.0, 3.0]
    assert compute_aspect_groups(ratios).tolist() == [0, 0, 1, 1, 1]  # k=0: tall | wide
    # k=1: edges 2**linspace(-1, 1, 3) = [0.5, 1, 2], 4 groups.
    assert compute_aspect_groups(ratios, k=1).tolist() == [1, 1, 2, 3, 3]


def test_batch_shape_is_the_largest_image_rounded_up_to_64():
    """Otherwise images would be cropped, or the FPN's feature maps would not line up."""
    assert padded_batch_shape([(64, 128, 3), (128, 64, 3)]) == (128, 128)
    assert padded_batch_shape([(50, 90, 3), (70, 65, 3)]) == (128, 128)
    assert padded_batch_shape([(64, 64, 3)]) == (64, 64)


def test_batches_hold_one_aspect_group_padded_to_their_largest_image(pad64_batches):
    """A batch mixing wide and tall images pads both into a big square: the memory and time
    that grouping is there to save."""
    config, batches = pad64_batches
    shapes = set()
    for batch in batches:
        meta = parse_image_meta(batch["input_image_meta"])
        originals = meta["original_image_shape"]
        groups = compute_aspect_groups(originals[:, 1] / originals[:, 0])
        assert len(set(groups.tolist())) == 1, originals
        height, width = batch["input_image"].shape[1:3]
        assert height % 64 == 0 and width % 64 == 0
        windows = meta["window"]
        assert (height, width) == padded_batch_shape(windows[:, 2:])
        assert (meta["image_shape"][:, :2] == (height, width)).all()
        assert batch["input_anchors"].shape == (config.BATCH_SIZE,
                                                batch["input_rpn_match"].shape[1], 4)
        np.testing.assert_array_equal(
            batch["input_anchors"][0], anchors_for_image_shape(config, (height, width)))
        shapes.add((height, width))
    assert len(shapes) > 1  # the test saw batches of different shapes


def test_windows_describe_each_images_real_area_and_the_rest_is_padding(pad64_batches):
    """A wrong window makes detections or masks come back shifted, or padding treated as image."""
    config, batches = pad64_batches
    padding_value = mold_image(np.zeros([1, 1, 3], np.uint8), config)[0, 0]
    for batch in batches:
        meta = parse_image_meta(batch["input_image_meta"])
        for image, window, original in zip(batch["input_image"], meta["window"],
                                           meta["original_image_shape"], strict=True):
            y1, x1, y2, x2 = window
            assert (y2 - y1, x2 - x1) == tuple(original[:2])  # pad64 at >= 64 px: no rescale
            outside = np.ones(image.shape[:2], bool)
            outside[y1:y2, x1:x2] = False
            np.testing.assert_array_equal(image[outside], np.broadcast_to(
                padding_value, image[outside].shape))
            # Generated shapes have a plain, non-black background: no padding inside.
            assert not (image[y1:y2, x1:x2] == padding_value).all(axis=-1).any()


def test_anchor_targets_never_lie_in_padding_only(pad64_batches):
    """The RPN would learn batch padding as background, which differs from batch to batch."""
    config, batches = pad64_batches
    for batch in batches:
        height, width = batch["input_image"].shape[1:3]
        anchors = anchors_for_image_shape(config, (height, width), normalized=False)
        meta = parse_image_meta(batch["input_image_meta"])
        for match, (y1, x1, y2, x2) in zip(batch["input_rpn_match"][..., 0], meta["window"],
                                           strict=True):
            used = anchors[match != 0]
            assert len(used) > 0
            assert ((used[:, 0] < y2) & (used[:, 2] > y1) & (used[:, 1] < x2)
                    & (used[:, 3] > x1)).all()


def test_rpn_targets_window_only_neutralizes_padding_anchors():
    """Without a window (square / crop) every anchor may still be a negative, as in Matterport."""
    config = tiny_config()
    anchors = anchors_for_image_shape(config, (64, 128), normalized=False)
    boxes, class_ids = np.array([[10, 10, 40, 40]]), np.array([1])
    plain, _ = build_rpn_targets(anchors, class_ids, boxes, config, np.random.default_rng(0))
    windowed, _ = build_rpn_targets(anchors, class_ids, boxes, config, np.random.default_rng(0),
                                    window=(0, 0, 64, 64))
    in_padding = anchors[:, 1] >= 64
    assert (plain[in_padding] == -1).any()
    assert (windowed[in_padding] == 0).all()
    assert (windowed == 1).sum() == (plain == 1).sum()


def test_none_mode_pads_odd_sizes_and_full_masks():
    """IMAGE_RESIZE_MODE="none" keeps any size; without mini masks the masks pad like the image,
    else the mask targets would not line up with the boxes."""
    config = tiny_config(IMAGE_RESIZE_MODE="none", USE_MINI_MASK=False, IMAGES_PER_GPU=1)
    dataset = _mixed([(50, 90), (90, 50)])
    for batch in _batches(config, dataset, 2):
        meta = parse_image_meta(batch["input_image_meta"])
        y1, x1, y2, x2 = meta["window"][0]
        assert (y1, x1) == (0, 0) and (y2, x2) in ((50, 90), (90, 50))
        assert batch["input_image"].shape[1:3] == padded_batch_shape([(y2, x2)])
        masks = batch["input_gt_masks"][0]
        assert masks.shape[:2] == batch["input_image"].shape[1:3]
        assert masks.any() and not masks[y2:].any() and not masks[:, x2:].any()


def test_pad64_training_learns_on_non_square_shapes_with_one_trace(tmp_path, monkeypatch):
    """pad64 / none training failed ('training needs IMAGE_SHAPE'); a retrace per batch shape
    would make every new shape cost a full graph compile."""
    traces = []
    compute_losses = MaskRCNNNetwork.compute_losses

    def counted(self, batch, training):
        traces.append(tuple(batch["input_image"].shape))
        return compute_losses(self, batch, training)

    monkeypatch.setattr(MaskRCNNNetwork, "compute_losses", counted)
    config = tiny_config(IMAGE_RESIZE_MODE="pad64", STEPS_PER_EPOCH=6)
    keras.utils.set_random_seed(0)
    model = modellib.MaskRCNN("training", config, tmp_path)
    history = model.train(_mixed(WIDE_AND_TALL * 2), None, learning_rate=0.01, epochs=3,
                          layers="all").history
    losses = history["loss"]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0], losses
    assert traces == [(config.BATCH_SIZE, None, None, 3)]


def test_square_mode_batches_and_losses_are_unchanged(tmp_path):
    """Square mode (the default) must train exactly as before variable-size batches existed.

    The figures were measured before the change (tiny preset, 48x80 shapes, seed 0). The loss
    is the first step's, on the initial weights: after a few updates it depends on the CPU's
    kernels (3 steps: 28.3633 on one machine, 28.3681 on an AVX2-only one), the first step's
    only within 2e-4 (36.6973 with TensorFlow's Eigen kernels, 36.7040 with oneDNN's).
    """
    config = tiny_config(STEPS_PER_EPOCH=1)
    keras.utils.set_random_seed(0)
    dataset = _mixed([(48, 80)] * 6)
    batch = _batches(config, dataset, 1, seed=5)[0]
    assert "input_anchors" not in batch
    assert batch["input_image"].shape == (2, 64, 64, 3)
    sums = {name: float(np.sum(value, dtype=np.float64)) for name, value in batch.items()}
    assert sums == pytest.approx({
        "input_gt_boxes": 859.0, "input_gt_class_ids": 12.0, "input_gt_masks": 3490.0,
        "input_image": -682878.8004596978, "input_image_meta": 794.6000000238419,
        "input_rpn_bbox": 5.836743712425232, "input_rpn_match": -116.0}, rel=1e-9)
    model = modellib.MaskRCNN("training", config, tmp_path)
    history = model.train(dataset, None, learning_rate=0.01, epochs=1, layers="all").history
    assert history["loss"][0] == pytest.approx(36.69725, rel=1e-3)
    assert history["rpn_class_loss"][0] == pytest.approx(9.996769, rel=1e-3)
    assert history["mrcnn_mask_loss"][0] == pytest.approx(0.853522, rel=1e-3)
