"""The U-Net's TensorFlow-free batches (unet.batches): what ``make_dataset(pipeline=
"pydataset")`` gives on JAX or PyTorch alone must be what the tf.data pipeline gives."""

import numpy as np
import pytest

from unet.batches import SegmentationBatches
from unet.data import load_folder_pairs
from unet.pipeline import build_augmenter, make_dataset


def test_unaugmented_batches_equal_the_tf_data_pipelines(folder_dataset):
    """Trained on JAX, the U-Net would see other pixels or masks (resizing, cropping for the
    unpadded U-Net, repeated deep-supervision targets) than on TensorFlow."""
    samples, _ = load_folder_pairs(folder_dataset[0])
    options = dict(target_hw=(12, 12), heads=2)
    expected = list(make_dataset(samples, (32, 32), 4, pipeline="tf.data", **options))
    loader = make_dataset(samples, (32, 32), 4, pipeline="pydataset", **options)
    assert isinstance(loader, SegmentationBatches) and loader.num_batches == len(expected) == 2
    for index, (images, (first, second)) in enumerate(expected):
        got_images, (got_first, got_second) = loader[index]
        np.testing.assert_array_equal(got_images, images.numpy())
        np.testing.assert_array_equal(got_first, first.numpy())
        np.testing.assert_array_equal(got_second, second.numpy())
        assert got_images.dtype == got_first.dtype == np.float32


def test_augmentation_is_seeded_per_sample_whatever_thread_builds_it(folder_dataset):
    """Worker threads sharing one augmenter would make a seeded run differ from run to run,
    and a stream whose passes repeat their augmentation would train on one variant only."""
    samples, _ = load_folder_pairs(folder_dataset[0])

    def loader(workers):
        return SegmentationBatches(samples, (32, 32), 3, augmenter=build_augmenter(0),
                                   shuffle=True, repeat=True, seed=7, workers=workers)

    first, second = loader(1), loader(2)
    batches = [first[i] for i in range(4)]
    for i in (3, 1, 0, 2):  # another order, another loader
        np.testing.assert_array_equal(second[i][0], batches[i][0])
        np.testing.assert_array_equal(second[i][1], batches[i][1])
    in_order = SegmentationBatches(samples, (32, 32), 3, augmenter=build_augmenter(0),
                                   repeat=True, seed=7, workers=1)
    assert not np.array_equal(in_order[0][0], in_order[2][0])  # samples 0-2, passes 0 and 1
    assert set(np.unique(batches[0][1])) <= {0.0, 1.0}


def test_an_unreadable_file_is_replaced_not_fatal(folder_dataset):
    """One broken photo must not stop training; its batch keeps its size (a JAX step compiled
    for batches of 4 is not compiled again)."""
    root = folder_dataset[0]
    samples, _ = load_folder_pairs(root)
    (root / "images" / "person_03.png").write_bytes(b"broken")
    images, masks = SegmentationBatches(samples, (16, 16), 4, workers=1)[0]
    assert images.shape == (4, 16, 16, 3) and masks.shape == (4, 16, 16, 1)
    reference = SegmentationBatches(samples, (16, 16), 1, workers=1)
    np.testing.assert_array_equal(images[3], reference[4][0][0])  # person_04 stands in


def test_nothing_readable_and_a_finite_shuffle_are_clear_errors(folder_dataset):
    """A folder of broken files would loop forever or crash inside Keras; a finite shuffled
    loader would train every epoch on the same order."""
    root = folder_dataset[0]
    samples, _ = load_folder_pairs(root)
    for path in (root / "images").iterdir():
        path.write_bytes(b"broken")
    with pytest.raises(ValueError, match="none of the 6 samples"):
        SegmentationBatches(samples, (16, 16), 2, workers=1)[0]
    with pytest.raises(ValueError, match="repeat=True"):
        make_dataset(samples, (16, 16), 2, shuffle=True, pipeline="pydataset")
