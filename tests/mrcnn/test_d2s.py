"""MVTec D2S loader and config preset on a tiny dataset in D2S's own file layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mrcnn.data.dataset import DatasetError
from mrcnn.data.datasets.d2s import D2SConfig, D2SDataset

H, W = 36, 48
CATEGORIES = [{"id": i, "name": f"product_{i:02d}", "supercategory": "food"}
              for i in range(1, 61)]


def write_d2s(root, annotations_dir="annotations", images_dir="images"):
    (root / annotations_dir).mkdir(parents=True)
    (root / images_dir).mkdir(parents=True)
    for name in ("D2S_000200.jpg", "D2S_000201.jpg", "D2S_040000.jpg"):
        Image.new("RGB", (W, H), (120, 30, 60)).save(root / images_dir / name)
    images = [{"id": 200, "file_name": "D2S_000200.jpg", "height": H, "width": W},
              {"id": 201, "file_name": "D2S_000201.jpg", "height": H, "width": W}]
    training = {
        "images": images, "categories": CATEGORIES,
        "annotations": [
            {"id": 1, "image_id": 200, "category_id": 60, "iscrowd": 0, "area": 100.0,
             "bbox": [4, 4, 10, 10], "segmentation": [[4, 4, 14, 4, 14, 14, 4, 14]]},
            {"id": 2, "image_id": 201, "category_id": 7, "iscrowd": 0, "area": 80.0,
             "bbox": [20, 10, 10, 8], "segmentation": [[20, 10, 30, 10, 30, 18, 20, 18]]},
        ],
    }
    test_info = {"images": [{"id": 40000, "file_name": "D2S_040000.jpg", "height": H,
                             "width": W}], "categories": CATEGORIES}
    (root / annotations_dir / "D2S_training.json").write_text(json.dumps(training))
    (root / annotations_dir / "D2S_validation_clutter.json").write_text(json.dumps(training))
    (root / annotations_dir / "D2S_test_info.json").write_text(json.dumps(test_info))


def load(root, subset):
    dataset = D2SDataset()
    dataset.load_d2s(root, subset)
    dataset.prepare()
    return dataset


def test_training_subset_has_60_classes_plus_background_and_masks(tmp_path):
    write_d2s(tmp_path)
    dataset = load(tmp_path, "train")
    assert dataset.num_classes == D2SConfig.NUM_CLASSES == 61
    assert dataset.class_names[60] == "product_60"
    masks, class_ids = dataset.load_mask(0)
    assert masks.shape == (H, W, 1) and class_ids.tolist() == [60]
    assert masks[5:13, 5:13, 0].all() and masks[:, 20:, 0].sum() == 0
    assert dataset.image_info[0]["source"] == "d2s"
    assert dataset.image_reference(0).endswith("D2S_000200.jpg")


def test_test_info_file_without_annotations_gives_background_only_images(tmp_path):
    write_d2s(tmp_path)
    dataset = load(tmp_path, "test")
    assert dataset.num_images == 1
    masks, class_ids = dataset.load_mask(0)
    assert masks.shape == (H, W, 0) and class_ids.size == 0


def test_any_d2s_file_is_a_subset_and_the_archive_folder_names_are_found(tmp_path):
    write_d2s(tmp_path, "d2s_annotations_v1.1/annotations", "d2s_images_v1/images")
    dataset = load(tmp_path, "validation_clutter")
    assert dataset.num_images == 2
    image = dataset.load_image(1)
    assert image.shape == (H, W, 3)


def test_missing_subset_lists_the_subsets_found(tmp_path):
    write_d2s(tmp_path)
    with pytest.raises(DatasetError, match=r"'val'.*D2S_training\.json"):
        load(tmp_path, "val")


def test_d2s_config_is_valid_and_fits_1440x1920_photos_without_cropping():
    config = D2SConfig().validate()
    assert config.NUM_CLASSES == 61 and config.IMAGE_SHAPE.tolist() == [1024, 1024, 3]
    scale = config.IMAGE_MAX_DIM / 1920  # the long side sets the scale in "square" mode
    assert (round(1440 * scale), round(1920 * scale)) == (config.IMAGE_MIN_DIM, 1024)
    assert np.all(np.diff(config.RPN_ANCHOR_SCALES) > 0)
