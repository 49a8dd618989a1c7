"""The localizer's TensorFlow-free batches (localization.batches): what ``build_dataset(
pipeline="pydataset")`` gives on JAX or PyTorch alone must be what the tf.data pipeline gives."""

import numpy as np
import pytest

from localization.annotations import load_annotations
from localization.augment import BoxAugmenter
from localization.batches import LocalizationBatches
from localization.data import build_dataset, samples_to_arrays


@pytest.fixture(scope="module")
def arrays(synthetic_dataset):
    """(images uint8 [24, 32, 32, 3], boxes, classes) of the generated CSV dataset."""
    return samples_to_arrays(load_annotations(synthetic_dataset / "train.csv").samples, (32, 32))


def test_unaugmented_batches_equal_the_tf_data_pipelines(arrays):
    """Trained on JAX, the localizer would see other images, boxes or classes (or other
    dtypes) than on TensorFlow."""
    expected = list(build_dataset(*arrays, 5, pipeline="tf.data"))
    loader = build_dataset(*arrays, 5, pipeline="pydataset")
    assert isinstance(loader, LocalizationBatches) and loader.num_batches == len(expected) == 5
    for index, (images, targets) in enumerate(expected):
        got_images, got_targets = loader[index]
        np.testing.assert_array_equal(got_images, images.numpy())
        assert got_images.dtype == np.float32
        for key in ("box", "class"):
            np.testing.assert_array_equal(got_targets[key], targets[key].numpy())
            assert got_targets[key].dtype == targets[key].dtype.as_numpy_dtype


def test_augmentation_moves_each_box_and_is_seeded_per_sample(arrays):
    """Flipped images with unflipped boxes would teach the wrong side; an augmentation that
    depended on which worker thread ran it would make a seeded run unrepeatable."""
    images, boxes, classes = arrays
    flip = BoxAugmenter(seed=0, flip=1.0, affine=0.0)
    flipped_images, flipped = LocalizationBatches(images, boxes, classes, 24, augment=flip,
                                                  repeat=True, workers=1)[0]
    np.testing.assert_allclose(flipped["box"][:, [0, 2]], 1 - boxes[:, [2, 0]], atol=1e-5)
    np.testing.assert_array_equal(flipped["class"], classes)

    def loader(workers):
        return LocalizationBatches(images, boxes, classes, 8, augment=BoxAugmenter(seed=1),
                                   shuffle=True, repeat=True, seed=3, workers=workers)

    first, second = loader(1), loader(2)
    batches = [first[i] for i in range(6)]
    for i in (5, 2, 0, 4, 1, 3):
        np.testing.assert_array_equal(second[i][0], batches[i][0])
        np.testing.assert_array_equal(second[i][1]["box"], batches[i][1]["box"])
    in_order = LocalizationBatches(images, boxes, classes, 8, augment=BoxAugmenter(seed=1),
                                   repeat=True, seed=3, workers=1)
    assert not np.array_equal(in_order[0][0], in_order[3][0])  # images 0-7, passes 0 and 1


def test_an_augmenter_it_cannot_reseed_and_a_finite_shuffle_are_clear_errors(arrays):
    """A plain function as ``augment`` cannot be reseeded per sample (threads would share its
    state); a finite shuffled loader would train every epoch on one order."""
    with pytest.raises(TypeError, match="set_random_seed"):
        build_dataset(*arrays, 4, augment=lambda image, box: (image, box), repeat=True,
                      pipeline="pydataset")
    with pytest.raises(ValueError, match="repeat=True"):
        build_dataset(*arrays, 4, shuffle=True, pipeline="pydataset")
