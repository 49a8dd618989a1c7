"""Bad image files in a Mask R-CNN dataset: converted when possible, otherwise skipped with a
warning naming the file and counted; the input pipeline and training carry on, and each epoch
ends with a summary of what was skipped. A NaN/inf loss stops the run naming step and checkpoint.
"""

import logging
import math

import numpy as np
import pytest
from PIL import Image

import mrcnn.model as modellib
from mrcnn.config import tiny_config
from mrcnn.data.dataset import Dataset, DatasetError
from mrcnn.data.image_io import load_rgb_image
from mrcnn.data.pipeline import SKIPPED_SAMPLES, build_dataset


class FolderDataset(Dataset):
    """Image files on disk, each with one instance: the rectangle drawn in the middle."""

    def __init__(self, files):
        super().__init__()
        self.add_class("folder", 1, "box")
        for path, (height, width) in files:
            self.add_image("folder", image_id=path.name, path=str(path), height=height,
                           width=width)
        self.prepare()

    def load_mask(self, image_id):
        info = self.image_info[image_id]
        height, width = info["height"], info["width"]
        mask = np.zeros((height, width, 1), bool)
        mask[height // 4: 3 * height // 4, width // 4: 3 * width // 4] = True
        return mask, np.array([1], np.int32)


@pytest.fixture
def mixed_folder(tmp_path, image_kinds):
    """Convertible and broken files interleaved (good, bad, good, ...), plus a missing file."""
    convertible, broken = image_kinds
    good = [(writer(tmp_path / name), (3000, 4000) if name == "huge.png" else (48, 64))
            for name, writer in convertible.items()]
    bad = [(writer(tmp_path / name), (48, 64)) for name, writer in broken.items()]
    bad.append((tmp_path / "deleted.png", (48, 64)))
    files = [item for pair in zip(good, bad, strict=False) for item in pair]
    files += good[len(bad):]
    return FolderDataset(files), [path.name for path, _ in bad]


@pytest.mark.parametrize("name", ["rgb.png", "gray.jpg", "rgba.png", "16bit.png", "cmyk.jpg",
                                  "huge.png"])
def test_odd_but_valid_images_load_as_uint8_rgb_with_their_content(tmp_path, image_kinds, name):
    """Users would notice: grayscale/RGBA/16-bit/CMYK/huge photos crash or load scrambled."""
    path = image_kinds[0][name](tmp_path / name)
    image = load_rgb_image(path)
    height, width = Image.open(path).size[::-1]
    assert image.shape == (height, width, 3) and image.dtype == np.uint8
    center = image[height // 2, width // 2].astype(int).sum()
    corner = image[2, 2].astype(int).sum()
    assert center > corner + 100, (center, corner)  # the bright rectangle survived conversion


@pytest.mark.parametrize("name", ["zero.jpg", "caption.png", "truncated.jpg", "corrupt.png"])
def test_broken_files_raise_dataset_error_naming_the_file(tmp_path, image_kinds, name):
    path = image_kinds[1][name](tmp_path / name)
    with pytest.raises(DatasetError, match=name):
        load_rgb_image(path)


def test_image_above_the_decompression_bomb_limit_is_refused_not_decoded(tmp_path, monkeypatch,
                                                                          image_kinds):
    """A pixel flood must not exhaust memory: over the limit it is a DatasetError, not a warning."""
    path = image_kinds[0]["rgb.png"](tmp_path / "flood.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 48 * 64 // 2 + 1)  # warning zone of Pillow
    with pytest.raises(DatasetError, match="flood.png.*too large"):
        load_rgb_image(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow's own error zone
    with pytest.raises(DatasetError, match="flood.png.*too large"):
        load_rgb_image(path)


def test_pipeline_replaces_bad_images_warns_once_per_file_and_counts_every_skip(mixed_folder,
                                                                                caplog):
    """Users would notice: one bad JPEG kills a run at epoch 37, or bad files go unreported."""
    dataset, bad_names = mixed_folder
    config = tiny_config(num_classes=2)
    SKIPPED_SAMPLES.take()
    with caplog.at_level(logging.WARNING, logger="mrcnn.data.pipeline"):
        data = build_dataset(dataset, config, shuffle=False, repeat=False, seed=0)
        first_pass = SKIPPED_SAMPLES.take()  # the eager first sample is a good image
        batches = list(data.as_numpy_iterator())
        batches += list(data.as_numpy_iterator())  # a second epoch over the same files
    assert first_pass == {}
    assert len(batches) == 2 * (len(dataset.image_ids) // 2)
    used = {int(i) for b in batches for i in b["input_image_meta"][:, 0]}
    good_ids = {i for i in dataset.image_ids if dataset.image_info[i]["id"] not in bad_names}
    assert used <= good_ids and len(used) >= 4
    assert all(np.isfinite(b["input_image"]).all() for b in batches)
    assert SKIPPED_SAMPLES.take() == {"unreadable image": 2 * 4, "missing file": 2 * 1}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for name in bad_names:
        assert sum(name in w for w in warnings) == 1, (name, warnings)


def test_dataset_where_no_image_loads_fails_before_training_naming_a_file(tmp_path, image_kinds):
    broken = image_kinds[1]
    files = [(broken[name](tmp_path / name), (48, 64)) for name in ("zero.jpg", "caption.png")]
    with pytest.raises(DatasetError, match="none of the 2 images.*zero.jpg"):
        build_dataset(FolderDataset(files), tiny_config(num_classes=2))


def test_training_continues_over_bad_images_and_a_nan_loss_stops_naming_step_and_checkpoint(
        mixed_folder, tmp_path, caplog):
    """One run: an epoch over the mixed folder ends with a skip summary and a checkpoint; then an
    absurd learning rate makes the loss non-finite and the run stops, naming where to restart."""
    dataset, _ = mixed_folder
    config = tiny_config(num_classes=2, STEPS_PER_EPOCH=4, VALIDATION_STEPS=1)
    model = modellib.MaskRCNN("training", config, tmp_path / "logs")
    with caplog.at_level(logging.WARNING):
        history = model.train(dataset, None, learning_rate=0.001, epochs=1, layers="heads")
        assert all(math.isfinite(v) for v in history.history["loss"])
        assert history.history["skipped_samples"][0] >= 1
        assert any("epoch 1: skipped" in r.getMessage() for r in caplog.records)
        checkpoint = model.find_last()
        caplog.clear()
        history = model.train(dataset, None, learning_rate=1e12, epochs=3, layers="all")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("epoch 2 step" in e and checkpoint in e for e in errors), errors
    assert len(history.history["loss"]) == 1  # stopped in epoch 2, epoch 3 never ran
