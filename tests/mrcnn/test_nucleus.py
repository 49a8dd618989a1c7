"""Kaggle DSB 2018 nuclei: the loader, Kaggle RLE, and samples/nucleus.py on generated files.

The files are written in the stage-1 layout (``<id>/images/<id>.png``, ``<id>/masks/*.png``),
with RGBA, gray and RGB images as the real data has, and ids named like the real ones.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import logging
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from mrcnn.cli import build_parser, make_config
from mrcnn.config import tiny_config
from mrcnn.data.dataset import DatasetError
from mrcnn.data.datasets.kaggle_rle import mask_to_rle, rle_decode, rle_encode, save_submission
from mrcnn.data.datasets.nucleus import (
    VAL_IMAGE_IDS,
    NucleusConfig,
    NucleusDataset,
    NucleusInferenceConfig,
    build_augmentation,
)
from mrcnn.data.pipeline import load_image_gt

ROOT = Path(__file__).resolve().parents[2]
VAL_IDS = VAL_IMAGE_IDS[:3]
TRAIN_IDS = tuple(hashlib.sha256(f"train{i}".encode()).hexdigest() for i in range(3))
TEST_IDS = tuple(hashlib.sha256(f"test{i}".encode()).hexdigest() for i in range(2))
MODES = ("RGBA", "L", "RGB")
SIZES = ((40, 48), (48, 40), (44, 52))


def blobs(height: int, width: int, count: int, seed: int) -> list[np.ndarray]:
    """``count`` disjoint round nuclei of radius 4-6 px, each a bool[H, W] mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    masks = []
    for k in range(count):
        cy, cx = 10 + 12 * (k // 3), 10 + 13 * (k % 3)
        radius = int(rng.integers(4, 7))
        masks.append((yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2)
    return masks


def expected_masks(index: int) -> list[np.ndarray]:
    """The nuclei of the ``index``-th generated image, in mask-file-name order."""
    height, width = SIZES[index % len(SIZES)]
    return blobs(height, width, count=2 + index % 3, seed=index)


def write_image(folder: Path, image_id: str, index: int, with_masks: bool) -> None:
    """One stage-1 image folder: the image (RGBA, gray or RGB) and one PNG per nucleus."""
    height, width = SIZES[index % len(SIZES)]
    masks = expected_masks(index)
    gray = np.full((height, width), 20, np.uint8)
    for mask in masks:
        gray[mask] = 200
    mode = MODES[index % len(MODES)]
    pixels = {"L": gray, "RGB": np.stack([gray, gray // 2, gray], -1),
              "RGBA": np.stack([gray, gray, gray, np.full_like(gray, 255)], -1)}[mode]
    (folder / image_id / "images").mkdir(parents=True)
    Image.fromarray(pixels, mode).save(folder / image_id / "images" / f"{image_id}.png")
    if with_masks:
        (folder / image_id / "masks").mkdir()
        for k, mask in enumerate(masks):
            name = hashlib.sha256(f"{image_id}{k}".encode()).hexdigest()
            Image.fromarray(mask.astype(np.uint8) * 255, "L").save(
                folder / image_id / "masks" / f"{k:02d}{name}.png")


@pytest.fixture
def nucleus_root(tmp_path) -> Path:
    root = tmp_path / "nucleus"
    for index, image_id in enumerate(VAL_IDS + TRAIN_IDS):
        write_image(root / "stage1_train", image_id, index, with_masks=True)
    for index, image_id in enumerate(TEST_IDS):
        write_image(root / "stage1_test", image_id, index, with_masks=False)
    return root


def load(root: Path, subset: str) -> NucleusDataset:
    dataset = NucleusDataset()
    dataset.load_nucleus(root, subset)
    dataset.prepare()
    return dataset


def ids(dataset: NucleusDataset) -> list[str]:
    return [info["id"] for info in dataset.image_info]


# ------------------------------------------------------------------------------------------
# Dataset
def test_images_load_as_rgb_and_masks_as_one_nucleus_class_per_png(nucleus_root):
    """RGBA, gray and RGB stage-1 PNGs become uint8 RGB; every mask PNG is one nucleus."""
    dataset = load(nucleus_root, "stage1_train")
    assert dataset.class_names == ["BG", "nucleus"]
    for image_id, name in enumerate(ids(dataset)):
        index = (VAL_IDS + TRAIN_IDS).index(name)
        expected = expected_masks(index)
        image = dataset.load_image(image_id)
        masks, class_ids = dataset.load_mask(image_id)
        assert image.dtype == np.uint8 and image.shape == (*SIZES[index % 3], 3)
        assert image[..., 0][expected[0]].min() == 200 and image[0, 0, 0] == 20
        assert masks.dtype == bool and masks.shape == (*SIZES[index % 3], len(expected))
        assert all((masks[:, :, k] == expected[k]).all() for k in range(len(expected)))
        assert class_ids.dtype == np.int32 and class_ids.tolist() == [1] * len(expected)
        assert dataset.image_reference(image_id) == name


def test_train_val_split_follows_matterports_val_image_ids(nucleus_root):
    """Ids in VAL_IMAGE_IDS are val, the rest train; stage1_train is both (Matterport's rule)."""
    assert len(VAL_IMAGE_IDS) == len(set(VAL_IMAGE_IDS)) == 25
    assert ids(load(nucleus_root, "val")) == list(VAL_IDS)
    assert ids(load(nucleus_root, "train")) == sorted(TRAIN_IDS)
    assert ids(load(nucleus_root, "stage1_train")) == sorted(VAL_IDS + TRAIN_IDS)
    test = load(nucleus_root, "stage1_test")
    assert ids(test) == sorted(TEST_IDS)
    masks, class_ids = test.load_mask(0)
    assert masks.shape[-1] == 0 and len(class_ids) == 0


def test_bad_folders_are_skipped_with_a_warning_naming_them(nucleus_root, caplog):
    """A folder without images/<id>.png or (in train) without mask PNGs is skipped, by name."""
    no_image, no_masks = TRAIN_IDS[0], TRAIN_IDS[1]
    (nucleus_root / "stage1_train" / no_image / "images" / f"{no_image}.png").unlink()
    for path in (nucleus_root / "stage1_train" / no_masks / "masks").iterdir():
        path.unlink()
    with caplog.at_level(logging.WARNING):
        dataset = load(nucleus_root, "train")
    assert ids(dataset) == [TRAIN_IDS[2]]
    assert len(dataset.load_issues) == 2
    assert any(no_image in m and f"no images/{no_image}.png" in m for m in dataset.load_issues)
    assert any(no_masks in m and "no mask PNG" in m for m in dataset.load_issues)
    assert no_image in caplog.text


def test_mask_of_the_wrong_size_raises_naming_the_png(nucleus_root):
    """A mask PNG that does not match its image's size is an error naming that PNG."""
    image_id = TRAIN_IDS[0]
    bad = nucleus_root / "stage1_train" / image_id / "masks" / "zz_bad.png"
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(bad)
    dataset = load(nucleus_root, "train")
    with pytest.raises(DatasetError, match=r"zz_bad\.png is 10x12 pixels, its image is 40x48"):
        dataset.load_mask(ids(dataset).index(image_id))


@pytest.mark.parametrize(("subset", "match"), [("stage3", "must be one of"),
                                               ("stage2_test", "no folder")])
def test_unknown_subset_or_missing_folder_is_a_dataset_error(nucleus_root, subset, match):
    """A mistyped --subset or a stage not unpacked says so instead of loading nothing."""
    with pytest.raises(DatasetError, match=match):
        load(nucleus_root, subset)


def test_configs_are_matterports(nucleus_root):
    """NucleusConfig trains on 512 crops at >= 2x; NucleusInferenceConfig runs pad64."""
    train, infer = NucleusConfig().validate(), NucleusInferenceConfig().validate()
    assert (train.IMAGE_RESIZE_MODE, train.IMAGE_MIN_DIM, train.IMAGE_MIN_SCALE) == ("crop", 512, 2.0)
    assert (train.STEPS_PER_EPOCH, train.VALIDATION_STEPS, train.NUM_CLASSES) == (105, 4, 2)
    assert (train.RPN_NMS_THRESHOLD, train.DETECTION_MAX_INSTANCES) == (0.9, 400)
    assert (infer.IMAGE_RESIZE_MODE, infer.IMAGES_PER_GPU, infer.RPN_NMS_THRESHOLD) == ("pad64", 1, 0.7)
    assert list(train.IMAGE_SHAPE) == [512, 512, 3]


def test_crop_mode_gives_2x_square_crops_with_their_nuclei(nucleus_root):
    """Crop mode at IMAGE_MIN_SCALE 2: a 40x48 image is scaled to 80x96 and cropped to 64x64."""
    config = tiny_config(2, "nucleus", IMAGE_RESIZE_MODE="crop", IMAGE_MIN_SCALE=2.0,
                         USE_MINI_MASK=False)
    dataset = load(nucleus_root, "val")
    image, meta, class_ids, boxes, masks = load_image_gt(dataset, config, 0,
                                                         rng=np.random.default_rng(0))
    assert image.shape == (64, 64, 3) and masks.shape[:2] == (64, 64)
    assert meta[1:4].tolist() == [40, 48, 3] and meta[11] == 2.0  # original shape, scale
    assert len(class_ids) >= 1 and (class_ids == 1).all() and len(boxes) == len(class_ids)


def test_augmentation_moves_masks_with_the_image_and_draws_zero_to_two():
    """Matterport's SomeOf((0, 2)): flips/turns move image and masks alike; some draws do nothing."""
    augment = build_augmentation()
    augment.set_random_seed(0)
    mask = np.zeros((32, 32), np.uint8)
    mask[2:10, 3:7] = 1  # asymmetric: every flip or turn moves it
    image = np.repeat((mask * 200 + 20)[..., None], 3, axis=-1).astype(np.uint8)
    unchanged = 0
    for _ in range(60):
        out = augment(image=image, masks=[mask])
        moved = out["masks"][0]
        assert out["image"].shape == image.shape and moved.sum() == mask.sum()
        assert any((moved == np.rot90(f, k)).all() for f in (mask, mask.T) for k in range(4))
        unchanged += bool((out["image"] == image).all())
    assert 5 <= unchanged <= 45


# ------------------------------------------------------------------------------------------
# Kaggle RLE
def test_rle_matches_kaggles_documented_example():
    """Kaggle: '1 3 10 5' is pixels 1,2,3,10..14, numbered top to bottom, then left to right."""
    height = 4
    expected = np.zeros((height, 4), bool)
    for pixel in (1, 2, 3, 10, 11, 12, 13, 14):
        expected[(pixel - 1) % height, (pixel - 1) // height] = True
    assert expected[0, 0] and expected[1, 0] and expected[0, 3]  # pixel 1 = (1,1), 13 = (1,4)
    assert (rle_decode("1 3 10 5", (height, 4)) == expected).all()
    assert rle_encode(expected) == "1 3 10 5"
    assert rle_encode(np.zeros((3, 3))) == "" and not rle_decode("", (3, 3)).any()


@settings(max_examples=80, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12))))
def test_rle_round_trips_and_lists_every_pixel_column_major(mask):
    """decode(encode(m)) == m, and the runs cover exactly the 1-based column-major pixels."""
    rle = rle_encode(mask)
    assert (rle_decode(rle, mask.shape) == mask).all()
    values = [int(v) for v in rle.split()]
    pixels = [s + i for s, n in zip(values[0::2], values[1::2], strict=True) for i in range(n)]
    assert pixels == (np.flatnonzero(mask.T.ravel()) + 1).tolist()


@pytest.mark.parametrize(("rle", "match"), [("1 2 3", "pairs"), ("0 2", ">= 1"),
                                            ("5 3 6 1", "overlap"), ("9 2", "beyond"),
                                            ("1 x", "integers")])
def test_rle_decode_rejects_malformed_strings(rle, match):
    """A broken RLE string says what is wrong instead of decoding garbage."""
    with pytest.raises(ValueError, match=match):
        rle_decode(rle, (3, 3))


def test_mask_to_rle_writes_one_row_per_instance_without_overlaps():
    """Overlapping pixels go to the higher score; no instance leaves the image's empty row."""
    masks = np.zeros((4, 4, 3), bool)
    masks[0:2, 0:2, 0] = True  # low score
    masks[1:3, 1:3, 1] = True  # high score, overlaps pixel (1, 1)
    masks[1, 1, 2] = True  # lowest score, lies entirely under the other two: dropped
    lines = mask_to_rle("abc", masks, np.array([0.6, 0.9, 0.5])).split("\n")
    assert lines == ["abc,6 2 10 2", "abc,1 2 5 1"]
    assert mask_to_rle("abc", np.zeros((4, 4, 0), bool), np.zeros(0)) == "abc,"
    with pytest.raises(ValueError, match="2 scores"):
        mask_to_rle("abc", masks, np.array([0.5, 0.4]))


# ------------------------------------------------------------------------------------------
# samples/nucleus.py
def sample():
    spec = importlib.util.spec_from_file_location("sample_nucleus", ROOT / "samples" / "nucleus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_submission(path: Path) -> list[list[str]]:
    with path.open(newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["ImageId", "EncodedPixels"]
    return rows[1:]


def test_sample_train_runs_a_step_in_crop_mode(nucleus_root, tmp_path, monkeypatch):
    """train --preset tiny in Matterport's crop mode (2x, random 64 px crops) saves epoch 1,
    with Matterport's augmentation (flips, turns, brightness, blur) on the training images."""
    import mrcnn.model as modellib

    augmentations = []
    real_train = modellib.MaskRCNN.train

    def recording_train(self, *args, **kwargs):
        augmentations.append(kwargs.get("augmentation"))
        return real_train(self, *args, **kwargs)

    monkeypatch.setattr(modellib.MaskRCNN, "train", recording_train)
    nucleus = sample()
    logs = tmp_path / "logs"
    train = ["train", "--dataset", str(nucleus_root), "--logs", str(logs), "--preset", "tiny",
             "--weights", "none", "--epochs", "1", "--steps-per-epoch", "1",
             "--set", "IMAGE_RESIZE_MODE=crop", "--set", "IMAGE_MIN_SCALE=2.0",
             "--set", "VALIDATION_STEPS=1"]
    config = make_config(nucleus.SPEC, build_parser(nucleus.SPEC).parse_args(train))
    assert (config.IMAGE_RESIZE_MODE, config.IMAGE_MIN_SCALE, config.NAME) == ("crop", 2.0,
                                                                               "nucleus")
    assert nucleus.run(train) == 0
    assert len(list(logs.glob("nucleus*/mask_rcnn_nucleus_0001.h5"))) == 1
    assert len(augmentations) == 1
    assert repr(augmentations[0]) == repr(nucleus.build_augmentation())


def test_sample_detect_writes_a_kaggle_submission(nucleus_root, tmp_path):
    """detect --subset stage1_test writes submit.csv and one PNG per image.

    Every test image has rows in the original image's frame: decodable, disjoint, non-empty,
    or the single ``<id>,`` row of an image without detections.
    """
    out = tmp_path / "results"
    # The tiny preset's square 64 px input (pad64 would trace the model once per image shape).
    assert sample().run(["detect", "--dataset", str(nucleus_root), "--subset", "stage1_test",
                         "--logs", str(tmp_path / "logs"), "--preset", "tiny",
                         "--weights", "none", "--set", "DETECTION_MIN_CONFIDENCE=0",
                         "--out", str(out)]) == 0
    rows = read_submission(out / "submit.csv")
    assert sorted({image_id for image_id, _ in rows}) == sorted(TEST_IDS)
    for index, image_id in enumerate(TEST_IDS):
        encoded = [rle for name, rle in rows if name == image_id]
        if encoded == [""]:
            continue  # no detection: Matterport's "<id>," row
        masks = np.stack([rle_decode(rle, SIZES[index]) for rle in encoded], -1)
        assert masks.any(axis=(0, 1)).all() and masks.sum(-1).max() == 1
    assert sorted(p.stem for p in out.glob("*.png")) == sorted(TEST_IDS)


def test_sample_trains_with_nucleus_config_and_evaluates_with_the_inference_config(nucleus_root):
    """Without a preset, train is Matterport's 512 crops and evaluate/detect its pad64 config."""
    spec = sample().SPEC
    parse = build_parser(spec).parse_args
    train = make_config(spec, parse(["train", "--dataset", str(nucleus_root)]))
    evaluate = make_config(spec, parse(["evaluate", "--dataset", str(nucleus_root)]))
    assert (type(train), train.IMAGE_RESIZE_MODE, train.BATCH_SIZE) == (NucleusConfig, "crop", 6)
    assert (type(evaluate), evaluate.IMAGE_RESIZE_MODE) == (NucleusInferenceConfig, "pad64")
    assert parse(["train"]).subset == "train" and spec.default_dataset == "datasets/nucleus"
    with pytest.raises(SystemExit):
        parse(["train", "--subset", "stage1_test"])  # no masks to train on


def test_sample_detect_reports_a_missing_subset_in_one_line(nucleus_root, tmp_path, capsys):
    """detect --subset stage2_test before unpacking it: exit 2 and the folder it looked for."""
    assert sample().run(["detect", "--dataset", str(nucleus_root), "--subset", "stage2_test",
                         "--preset", "tiny", "--weights", "none",
                         "--out", str(tmp_path / "out")]) == 2
    assert "stage2_test" in capsys.readouterr().err


def test_save_submission_writes_header_and_rows(tmp_path):
    """The CSV Kaggle reads: header, then one image's rows, the empty-image row kept."""
    path = save_submission(tmp_path / "s" / "submit.csv", ["a,1 2\na,5 1", "b,"])
    assert path.read_text() == "ImageId,EncodedPixels\na,1 2\na,5 1\nb,\n"
