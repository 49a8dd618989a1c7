"""tf.data + albumentations: shapes, binary masks, joint geometry, cropped targets, bad files."""

import numpy as np

from unet.data import load_folder_pairs
from unet.pipeline import build_augmenter, compute_pixel_stats, make_dataset, prepare_pair


def test_batches_have_model_shapes_and_binary_masks(folder_dataset):
    samples, _ = load_folder_pairs(folder_dataset[0])
    dataset = make_dataset(samples, (16, 16), batch_size=4, augment=True, shuffle=True)
    images, masks = next(iter(dataset))
    assert images.shape == (4, 16, 16, 3) and masks.shape == (4, 16, 16, 1)
    assert set(np.unique(masks.numpy())) <= {0.0, 1.0}
    assert 0 <= images.numpy().min() and images.numpy().max() <= 255


def test_augmentation_moves_image_and_mask_together():
    """The person's pixels stay under its mask after flips and affine moves."""
    image = np.zeros((32, 32, 3), np.uint8)
    image[8:20, 4:14] = 200
    mask = (image[..., 0] > 0).astype(np.uint8)
    augmenter = build_augmenter(seed=5)
    for _ in range(5):
        out_image, out_mask = prepare_pair(image, mask, (32, 32), augmenter)
        bright = out_image[..., 0] > 100
        inside = bright[out_mask[..., 0] == 1].mean()
        assert inside > 0.8


def test_targets_are_cropped_for_unpadded_models_and_heads_repeated(folder_dataset):
    samples, _ = load_folder_pairs(folder_dataset[0])
    dataset = make_dataset(samples, (32, 32), batch_size=2, target_hw=(12, 12), heads=2)
    images, (first, second) = next(iter(dataset))
    assert images.shape == (2, 32, 32, 3) and first.shape == (2, 12, 12, 1)
    np.testing.assert_array_equal(first, second)


def test_unreadable_file_is_skipped_not_fatal(folder_dataset):
    root = folder_dataset[0]
    samples, _ = load_folder_pairs(root)
    (root / "images" / "person_03.png").write_bytes(b"broken")
    batches = list(make_dataset(samples, (16, 16), batch_size=8))
    assert batches[0][0].shape[0] == 5


def test_pixel_stats(folder_dataset):
    samples, _ = load_folder_pairs(folder_dataset[0])
    mean, std = compute_pixel_stats(samples)
    images = folder_dataset[1].reshape(-1, 3)
    np.testing.assert_allclose(mean, images.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(std, images.std(axis=0), rtol=1e-4)
