"""Split, channel statistics, augmentation and the tf.data pipeline."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localization.annotations import LocalizationSample, load_annotations
from localization.augment import BoxAugmenter
from localization.data import (
    build_dataset,
    compute_channel_stats,
    load_image_rgb,
    samples_to_arrays,
    stratified_split,
)


def make_samples(counts):
    samples = []
    for class_index, count in enumerate(counts):
        for index in range(count):
            samples.append(LocalizationSample(f"c{class_index}_{index}.png", None,
                                              (0.1, 0.1, 0.5, 0.5), class_index, (10, 10), 0))
    return samples


def test_split_keeps_class_proportions_and_is_reproducible():
    samples = make_samples([60, 40])
    train, val = stratified_split(samples, val_fraction=0.25, seed=7)
    assert len(val) == 25
    assert sum(s.class_index == 1 for s in val) == 10
    again = stratified_split(samples, val_fraction=0.25, seed=7)[1]
    assert [s.filename for s in again] == [s.filename for s in val]
    other = stratified_split(samples, val_fraction=0.25, seed=8)[1]
    assert [s.filename for s in other] != [s.filename for s in val]


def test_split_never_puts_one_image_on_both_sides():
    base = make_samples([6, 6])
    duplicated = base + [LocalizationSample(s.filename, None, (0, 0, 1, 1), s.class_index,
                                            (10, 10), 1) for s in base]
    train, val = stratified_split(duplicated, val_fraction=0.5, seed=0)
    assert not {s.filename for s in train} & {s.filename for s in val}


def test_split_rejects_a_bad_fraction():
    with pytest.raises(ValueError, match="val_fraction"):
        stratified_split(make_samples([4]), val_fraction=1.0)


def test_channel_stats_are_pixel_weighted():
    images = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    images[0, ..., 0] = 100
    images[1, ..., 0] = 200
    images[..., 1] = 50
    mean, std = compute_channel_stats(images)
    np.testing.assert_allclose(mean, [150, 50, 0])
    np.testing.assert_allclose(std, [50, 1, 1])  # constant channels are floored at 1


@settings(max_examples=25, deadline=None)
@given(st.floats(0, 0.7), st.floats(0, 0.7), st.floats(0.05, 0.3), st.floats(0.05, 0.3),
       st.integers(0, 10_000))
def test_augmentation_keeps_one_valid_box(x1, y1, width, height, seed):
    image = np.random.default_rng(seed).integers(0, 255, (32, 48, 3), dtype=np.uint8)
    box = np.array([x1, y1, x1 + width, y1 + height])
    new_image, new_box = BoxAugmenter(seed=seed, affine=1.0)(image, box)
    assert new_image.shape == image.shape and new_image.dtype == np.uint8
    assert new_box.shape == (4,)
    assert 0 <= new_box[0] < new_box[2] <= 1 and 0 <= new_box[1] < new_box[3] <= 1


def test_flip_mirrors_the_box():
    image = np.zeros((20, 40, 3), dtype=np.uint8)
    augmenter = BoxAugmenter(seed=0, flip=1.0, affine=0.0)
    _, box = augmenter(image, np.array([0.1, 0.2, 0.3, 0.6]))
    np.testing.assert_allclose(box, [0.7, 0.2, 0.9, 0.6], atol=1e-5)


def test_pipeline_yields_model_batches_from_a_generated_csv(synthetic_dataset):
    table = load_annotations(synthetic_dataset / "train.csv")
    images, boxes, classes = samples_to_arrays(table.samples, (32, 32))
    assert images.shape == (24, 32, 32, 3) and images.dtype == np.uint8
    dataset = build_dataset(images, boxes, classes, batch_size=5, augment=BoxAugmenter(seed=1),
                            shuffle=True, seed=1)
    batches = list(dataset)
    assert [len(b[0]) for b in batches] == [5, 5, 5, 5, 4]
    image_batch, targets = batches[0]
    assert image_batch.dtype.name == "float32" and targets["box"].shape == (5, 4)
    assert targets["class"].dtype.name == "int32"


def test_grayscale_and_rgba_images_load_as_rgb(tmp_path):
    from PIL import Image

    Image.new("L", (5, 3), 7).save(tmp_path / "g.png")
    Image.new("RGBA", (5, 3), (1, 2, 3, 4)).save(tmp_path / "a.png")
    assert load_image_rgb(tmp_path / "g.png").shape == (3, 5, 3)
    assert load_image_rgb(tmp_path / "a.png")[0, 0].tolist() == [1, 2, 3]


def test_pipeline_moves_each_box_with_its_augmented_image():
    """If this fails, training images are flipped but their boxes are not (targets point at the
    wrong side of the image)."""
    images = np.zeros((4, 20, 40, 3), dtype=np.uint8)
    images[:, :, :10] = 255  # a bright stripe on the left, mirrored to the right by the flip
    boxes = np.tile([0.1, 0.2, 0.3, 0.6], (4, 1)).astype(np.float32)
    augmenter = BoxAugmenter(seed=0, flip=1.0, affine=0.0)
    image_batch, targets = next(iter(build_dataset(images, boxes, np.arange(4), batch_size=4,
                                                   augment=augmenter)))
    np.testing.assert_allclose(targets["box"], np.tile([0.7, 0.2, 0.9, 0.6], (4, 1)), atol=1e-5)
    assert image_batch.numpy()[:, :, 30:].mean() > image_batch.numpy()[:, :, :10].mean()
    assert targets["class"].numpy().tolist() == [0, 1, 2, 3]
