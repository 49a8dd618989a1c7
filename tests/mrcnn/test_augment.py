"""Augmentation adapters keep image and masks consistent; imgaug is optional."""

import sys
import types

import albumentations as A
import numpy as np
import pytest

from mrcnn.data.augment import IMGAUG_MASK_AUGMENTERS, apply_augmentation, check_augmentation


def _scene():
    image = np.zeros((16, 20, 3), np.uint8)
    image[2:6, 0:4] = 255
    masks = np.zeros((16, 20, 2), bool)
    masks[2:6, 0:4, 0] = True
    masks[10:14, 8:12, 1] = True
    return image, masks, np.array([1, 2])


def test_albumentations_flip_moves_image_and_masks_together():
    image, masks, ids = _scene()
    out_image, out_masks, out_ids = apply_augmentation(A.Compose([A.HorizontalFlip(p=1)]),
                                                       image, masks, ids)
    assert out_masks.dtype == bool and out_masks.shape == (16, 20, 2)
    np.testing.assert_array_equal(out_masks, masks[:, ::-1])
    np.testing.assert_array_equal(out_image[..., 0] > 0, out_masks[..., 0])
    np.testing.assert_array_equal(out_ids, ids)


def test_masks_as_a_list_and_single_transform_accepted():
    image, masks, ids = _scene()
    listed = [masks[..., 0], masks[..., 1]]
    _, out_masks, _ = apply_augmentation(A.VerticalFlip(p=1), image, listed, ids)
    np.testing.assert_array_equal(out_masks, masks[::-1])


def test_colour_transforms_leave_masks_binary_and_unchanged():
    image, masks, ids = _scene()
    aug = A.Compose([A.RandomBrightnessContrast(p=1), A.GaussNoise(p=1)])
    _, out_masks, _ = apply_augmentation(aug, image, masks, ids)
    np.testing.assert_array_equal(out_masks, masks)


def test_instances_moved_out_of_the_image_are_dropped_with_their_class():
    image, masks, ids = _scene()
    aug = A.Compose([A.Affine(translate_px={"x": -6, "y": 0}, p=1)])
    _, out_masks, out_ids = apply_augmentation(aug, image, masks, ids)
    np.testing.assert_array_equal(out_ids, [2])
    assert out_masks.shape == (16, 20, 1)


def test_no_instances_and_no_augmentation_pass_through():
    image, _, _ = _scene()
    out_image, out_masks, out_ids = apply_augmentation(
        A.HorizontalFlip(p=1), image, np.zeros((16, 20, 0), bool), np.zeros(0))
    assert out_masks.shape == (16, 20, 0) and out_ids.shape == (0,)
    np.testing.assert_array_equal(out_image, image[:, ::-1])
    same = apply_augmentation(None, *_scene())
    np.testing.assert_array_equal(same[1], _scene()[1])


def test_unknown_augmentation_object_is_rejected_by_name():
    with pytest.raises(TypeError, match="builtins.dict"):
        check_augmentation({"flip": True})


def test_mismatched_class_ids_rejected():
    image, masks, _ = _scene()
    with pytest.raises(ValueError, match="2 masks but 3 class ids"):
        apply_augmentation(None, image, masks, np.array([1, 2, 3]))


class _FakeAugmenter:
    """Behaves like an imgaug augmenter (to_deterministic / augment_image with hooks)."""

    def __init__(self, op):
        self.op = op

    def to_deterministic(self):
        return self

    def augment_image(self, image, hooks=None):
        if hooks is not None and not hooks.activator([image], self, [], True):
            return image
        return self.op(image)


class Fliplr(_FakeAugmenter):
    pass


class Multiply(_FakeAugmenter):
    pass


class Resize(_FakeAugmenter):
    pass


@pytest.fixture
def fake_imgaug(monkeypatch):
    """imgaug 0.4 does not import on NumPy 2, so stand in its HooksImages class."""
    module = types.ModuleType("imgaug")
    module.HooksImages = lambda activator: types.SimpleNamespace(activator=activator)
    monkeypatch.setitem(sys.modules, "imgaug", module)


def test_imgaug_geometric_augmenter_moves_masks(fake_imgaug):
    image, masks, ids = _scene()
    assert "Fliplr" in IMGAUG_MASK_AUGMENTERS
    out_image, out_masks, _ = apply_augmentation(Fliplr(lambda a: a[:, ::-1]), image, masks, ids)
    np.testing.assert_array_equal(out_masks, masks[:, ::-1])
    np.testing.assert_array_equal(out_image, image[:, ::-1])


def test_imgaug_colour_augmenter_does_not_touch_masks(fake_imgaug):
    image, masks, ids = _scene()
    out_image, out_masks, _ = apply_augmentation(Multiply(lambda a: a * 0), image, masks, ids)
    assert not out_image.any()
    np.testing.assert_array_equal(out_masks, masks)


def test_imgaug_resize_that_skips_the_masks_is_refused_by_name(fake_imgaug):
    """imgaug's Resize is not mask-safe: the masks would stay at the old size and train
    against the wrong pixels. Matterport asserted the shapes; we say which augmenter did it."""
    image, masks, ids = _scene()
    with pytest.raises(ValueError, match="Resize made the image"):
        apply_augmentation(Resize(lambda a: a[::2, ::2]), image, masks, ids)


def test_training_without_augmentation_never_imports_albumentations():
    """albumentations imports PyTorch where it is installed: 480 MiB more resident memory in
    every training process that never augments (seen as our peak RSS against torchvision's)."""
    import subprocess
    import sys

    code = ("import sys\nimport mrcnn.model, mrcnn.data.pipeline, mrcnn.data.augment\n"
            "from mrcnn.data.augment import check_augmentation, is_albumentations\n"
            "check_augmentation(None)\nassert not is_albumentations(object())\n"
            "print(sorted(m for m in ('albumentations', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
