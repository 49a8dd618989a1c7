"""The backend-neutral training input (issue 17 item 2): ``TrainingBatches``, a
``keras.utils.PyDataset`` that builds ``build_dataset``'s samples without TensorFlow.

Its order is its own (a seeded permutation per epoch: tf.data's shuffle cannot be reproduced),
but the sample of a stream position and image, the batches' layout, the skipping of broken
images and the repeat-factor order are ``build_dataset``'s. (Importing it and training on JAX
with TensorFlow blocked: tests/backends/test_py_loader_backends.py.)
"""

import logging

import albumentations as A
import numpy as np
import pytest
import tensorflow as tf

from mrcnn.config import tiny_config
from mrcnn.data.dataset import DatasetError
from mrcnn.data.datasets.shapes import ShapesDataset
from mrcnn.data.pipeline import SKIPPED_SAMPLES, build_dataset
from mrcnn.data.py_loader import TrainingBatches
from mrcnn.engine.training_data import as_training_input

SEED = 7


class BrokenShapes(ShapesDataset):
    """Shapes whose images with the given ids are missing files."""

    def __init__(self, broken=()):
        super().__init__()
        self.broken = set(broken)

    def load_image(self, image_id):
        if image_id in self.broken:
            raise FileNotFoundError(f"no such file: shapes_{image_id}.png")
        return super().load_image(image_id)


def _shapes(count: int = 7, broken=(), seed: int = 0) -> BrokenShapes:
    dataset = BrokenShapes(broken)
    dataset.load_shapes(count, 64, 64, seed=seed)
    dataset.prepare()
    return dataset


def _mixed() -> ShapesDataset:
    """Wide, tall and square images: "pad64" batches them by aspect ratio."""
    dataset = ShapesDataset()
    for seed, (count, height, width) in enumerate([(3, 64, 128), (3, 128, 64), (2, 96, 96)]):
        dataset.load_shapes(count, height, width, seed=seed)
    dataset.prepare()
    return dataset


def _augmentation():
    """Random flips and brightness: both must come out the same from both inputs."""
    return A.Compose([A.HorizontalFlip(), A.RandomBrightnessContrast(p=0.5)])


def _tf_batches(dataset, config, count: int, **options) -> list[dict[str, np.ndarray]]:
    return list(build_dataset(dataset, config, seed=SEED, **options).take(count)
                .as_numpy_iterator())


def _assert_identical(expected: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> None:
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert (got[key].dtype, got[key].shape) == (value.dtype, value.shape), key
        assert got[key].tobytes() == value.tobytes(), key


def test_sample_of_a_stream_position_and_image_is_build_datasets_byte_for_byte():
    """Training on JAX/PyTorch would see other crops, flips or RPN targets than TensorFlow for
    the same seed, so the backends' results could not be compared."""
    dataset, config = _shapes(), tiny_config()
    expected = _tf_batches(dataset, config, 4, augmentation=_augmentation())
    loader = TrainingBatches(dataset, config, augmentation=_augmentation(), seed=SEED,
                             workers=2)
    size = config.BATCH_SIZE
    for number, batch in enumerate(expected):  # tf.data's order: read each batch's image ids
        counters = np.arange(number * size, (number + 1) * size)
        image_ids = batch["input_image_meta"][:, 0].astype(int)
        _assert_identical(batch, loader.build_batch(counters, image_ids))


@pytest.mark.parametrize("mode", ["square", "pad64"])
def test_unshuffled_batches_are_build_datasets_over_several_epochs(mode):
    """With shuffle=False both inputs walk the dataset in order; any difference (padding,
    aspect-ratio grouping, anchors, the wrap into the next epoch) would change what is trained."""
    dataset = _shapes() if mode == "square" else _mixed()
    config = tiny_config(IMAGE_RESIZE_MODE=mode)
    count = 6  # more than an epoch of images
    expected = _tf_batches(dataset, config, count, shuffle=False, augmentation=_augmentation())
    loader = TrainingBatches(dataset, config, shuffle=False, augmentation=_augmentation(),
                             seed=SEED)
    for number, batch in enumerate(expected):
        _assert_identical(batch, loader[number])


def test_repeat_factor_batches_are_build_datasets_in_the_same_order():
    """Repeat-factor epochs are drawn in numpy by both inputs: rare-class images would come
    at another rate on JAX than on TensorFlow if the draws differed."""
    dataset, config = _shapes(), tiny_config()
    expected = _tf_batches(dataset, config, 6, repeat_factor_threshold=0.5)
    loader = TrainingBatches(dataset, config, seed=SEED, repeat_factor_threshold=0.5)
    for number, batch in enumerate(expected):
        _assert_identical(batch, loader[number])


@pytest.mark.parametrize("mode", ["square", "pad64"])
def test_batches_have_build_datasets_keys_dtypes_and_shapes(mode):
    """The training model is built against build_dataset's element_spec; another key, dtype or
    shape would fail the first step on the other backends."""
    dataset = _shapes() if mode == "square" else _mixed()
    config = tiny_config(IMAGE_RESIZE_MODE=mode)
    spec = build_dataset(dataset, config, seed=SEED).element_spec
    batch = TrainingBatches(dataset, config, seed=SEED)[0]
    assert list(batch) == list(spec)
    for key, tensor_spec in spec.items():
        assert batch[key].dtype == tensor_spec.dtype.as_numpy_dtype, key
        assert tensor_spec.shape.is_compatible_with(batch[key].shape), key


def test_shuffled_epochs_are_seeded_permutations_of_the_images():
    """Without a per-epoch permutation some images would be trained on more than others; without
    the seed, runs would not repeat."""
    dataset, config = _shapes(count=6), tiny_config()
    loader = TrainingBatches(dataset, config, seed=SEED)
    ids = np.concatenate([loader[i]["input_image_meta"][:, 0] for i in range(6)]).astype(int)
    epochs = ids.reshape(2, 6)
    assert all(sorted(epoch) == list(range(6)) for epoch in epochs)
    assert epochs[0].tolist() != epochs[1].tolist()
    assert epochs[0].tolist() != list(range(6))
    again = TrainingBatches(dataset, config, seed=SEED)
    _assert_identical(loader[4], again[4])  # asked out of order, as worker threads do


def test_broken_image_is_replaced_by_the_next_one_warned_once_and_counted(caplog):
    """Users would notice: one missing file kills the run, or skips go unreported."""
    dataset, config = _shapes(broken={2}), tiny_config()
    SKIPPED_SAMPLES.take()
    with caplog.at_level(logging.WARNING):
        loader = TrainingBatches(dataset, config, shuffle=False, seed=SEED)
        assert SKIPPED_SAMPLES.take() == {}  # the eager first sample is a good image
        batches = [loader[i] for i in range(7)]  # two passes over the 7 images
    ids = np.concatenate([b["input_image_meta"][:, 0] for b in batches]).astype(int)
    assert ids[:9].tolist() == [0, 1, 3, 3, 4, 5, 6, 0, 1]  # position 2 shows image 3
    assert SKIPPED_SAMPLES.take() == {"missing file": 2}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("shapes image 2" in w and "shapes_2.png" in w for w in warnings) == 1, warnings
    expected = _tf_batches(dataset, config, 7, shuffle=False)
    SKIPPED_SAMPLES.take()
    for batch, got in zip(expected, batches, strict=True):
        _assert_identical(batch, got)


def test_dataset_where_no_image_loads_fails_when_the_loader_is_made():
    """Otherwise the run would die, or spin, at its first step instead of naming the problem."""
    with pytest.raises(DatasetError, match="none of the 3 images"):
        # Another seed: images the skip warnings of other tests have not named yet.
        TrainingBatches(_shapes(count=3, broken={0, 1, 2}, seed=1), tiny_config())
    SKIPPED_SAMPLES.take()


def test_training_input_is_tf_data_with_tensorflow_and_the_loader_when_asked():
    """train() must keep its tf.data input where TensorFlow is installed, and give the loader
    where it is not (tests/backends) or when asked; an input already made passes through."""
    dataset, config = _shapes(), tiny_config()
    data = as_training_input(dataset, config, seed=SEED)
    assert isinstance(data, tf.data.Dataset)
    assert as_training_input(data, config) is data
    loader = as_training_input(dataset, config, pipeline="pydataset", seed=SEED)
    assert isinstance(loader, TrainingBatches) and loader.seed == SEED
    assert as_training_input(loader, config) is loader
    with pytest.raises(ValueError, match="pipeline='torch'"):
        as_training_input(dataset, config, pipeline="torch")
