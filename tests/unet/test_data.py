"""Loading folder pairs, Kaggle RLE CSVs and COCO person masks; bad files named and skipped."""

import json

import numpy as np
import pytest
from PIL import Image

from unet.data import (
    check_samples,
    load_coco_persons,
    load_folder_pairs,
    load_kaggle_csv,
    split_samples,
)
from unet.imaging import ImageReadError, binarize_mask, read_image
from unet.rle import encode_rle


def test_folder_pairs_load_with_masks_resized_to_the_image(tmp_path, dataset_writer):
    images, masks = dataset_writer(tmp_path, count=3, size=32, mask_scale=2)
    samples, skipped = load_folder_pairs(tmp_path)
    assert [s.name for s in samples] == ["person_00", "person_01", "person_02"]
    assert skipped == []
    image, mask = samples[0].load()
    np.testing.assert_array_equal(image, images[0])
    assert mask.shape == (32, 32) and set(np.unique(mask)) <= {0, 1}
    assert (mask == masks[0]).mean() > 0.9  # half-resolution mask, nearest upsampled


def test_zero_one_masks_and_grey_or_rgba_images(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(tmp_path / "images" / "grey.png")
    Image.fromarray(np.full((8, 8, 4), 50, np.uint8)).save(tmp_path / "images" / "rgba.png")
    one = np.zeros((8, 8), np.uint8)
    one[2:5, 2:5] = 1
    for name in ("grey", "rgba"):
        Image.fromarray(one).save(tmp_path / "masks" / f"{name}.png")
    samples, _ = load_folder_pairs(tmp_path)
    for sample in samples:
        image, mask = sample.load(channels=3)
        assert image.shape == (8, 8, 3)
        np.testing.assert_array_equal(mask, one)
    assert samples[1].load(channels=4)[0].shape == (8, 8, 4)


def test_exif_rotated_image_is_read_upright(tmp_path):
    array = np.zeros((10, 20, 3), np.uint8)
    array[:, :5] = 255
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert read_image(tmp_path / "rotated.jpg").shape == (20, 10, 3)


def test_bad_files_are_named_and_skipped(folder_dataset):
    root, _, _ = folder_dataset
    (root / "images" / "notes.txt").write_text("not an image")
    (root / "images" / "broken.png").write_bytes(b"\x89PNG garbage")
    (root / "masks" / "broken.png").write_bytes(b"\x89PNG garbage")
    Image.new("RGB", (32, 32)).save(root / "images" / "orphan.png")
    Image.new("L", (40, 10)).save(root / "images" / "wide.png")
    Image.new("L", (10, 10)).save(root / "masks" / "wide.png")
    samples, skipped = load_folder_pairs(root)
    reasons = dict(skipped)
    assert "not an image" in reasons[str(root / "images" / "notes.txt")]
    assert "no mask" in reasons[str(root / "images" / "orphan.png")]
    good, bad = check_samples(samples)
    bad = dict(bad)
    assert len(good) == 6
    assert "not a readable image" in bad[str(root / "images" / "broken.png")]
    assert "aspect ratio" in bad[str(root / "images" / "wide.png")]
    assert str(root / "masks" / "wide.png") in bad[str(root / "images" / "wide.png")]


def test_empty_or_missing_folders_raise(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        load_folder_pairs(tmp_path)
    with pytest.raises(ValueError, match="not a folder"):
        load_folder_pairs(tmp_path / "nowhere")
    Image.new("RGB", (4, 4)).save(tmp_path / "images" / "a.png")
    with pytest.raises(ValueError, match="--masks"):
        load_folder_pairs(tmp_path)


def test_mask_with_wrong_channel_count_is_named():
    with pytest.raises(ImageReadError, match="m.png.*channels"):
        binarize_mask(np.zeros((4, 4, 2)), "m.png")


def test_kaggle_csv_decodes_column_major_rle(folder_dataset):
    root, _, masks = folder_dataset
    csv_path = root / "train.csv"
    lines = ["id,rle_mask"] + [f"person_{i:02d},{encode_rle(m)}" for i, m in enumerate(masks)]
    lines.append("missing_image,1 3")
    csv_path.write_text("\n".join(lines) + "\n")
    samples, skipped = load_kaggle_csv(csv_path, root / "images")
    assert len(samples) == 6 and "missing_image" in skipped[0][1]
    np.testing.assert_array_equal(samples[2].load()[1], masks[2])
    with pytest.raises(ValueError, match="no RLE column 'pixels'"):
        load_kaggle_csv(csv_path, root / "images", rle_column="pixels")


def test_coco_persons_are_merged_and_filtered(tmp_path):
    (tmp_path / "img").mkdir()
    Image.new("RGB", (20, 10)).save(tmp_path / "img" / "a.jpg")
    Image.new("RGB", (20, 10)).save(tmp_path / "img" / "b.jpg")
    square = lambda x0, y0, s: [[x0, y0, x0 + s, y0, x0 + s, y0 + s, x0, y0 + s]]  # noqa: E731
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 10, "width": 20},
                   {"id": 2, "file_name": "b.jpg", "height": 10, "width": 20},
                   {"id": 3, "file_name": "c.jpg", "height": 10, "width": 20}],
        "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "segmentation": square(0, 0, 4),
             "area": 16, "iscrowd": 0},
            {"id": 11, "image_id": 1, "category_id": 1, "segmentation": square(10, 2, 6),
             "area": 36, "iscrowd": 0},
            {"id": 12, "image_id": 1, "category_id": 18, "segmentation": square(5, 5, 4),
             "area": 16, "iscrowd": 0},
            {"id": 2**40, "image_id": 2, "category_id": 1, "iscrowd": 1, "area": 20,
             "segmentation": {"counts": [0, 20, 180], "size": [10, 20]}},
            {"id": 13, "image_id": 3, "category_id": 1, "segmentation": square(0, 0, 4),
             "area": 16, "iscrowd": 0},
        ],
    }
    path = tmp_path / "person_keypoints.json"
    path.write_text(json.dumps(coco))
    samples, skipped = load_coco_persons(path, tmp_path / "img")
    assert [s.name for s in samples] == ["a"] and "c.jpg" in skipped[0][0]
    mask = samples[0].load()[1]
    assert mask.shape == (10, 20)
    assert mask[1, 1] == 1 and mask[4, 12] == 1 and mask[6, 6] == 0  # dog not merged
    large_only, _ = load_coco_persons(path, tmp_path / "img", min_area=20)
    assert large_only[0].load()[1][1, 1] == 0
    with_crowd, _ = load_coco_persons(path, tmp_path / "img", include_crowd=True)
    crowd_mask = with_crowd[1].load()[1]
    assert crowd_mask[:, 0].sum() == 10 and crowd_mask[:, 2:].sum() == 0


def test_split_is_deterministic_and_disjoint(folder_dataset):
    samples, _ = load_folder_pairs(folder_dataset[0])
    train, val = split_samples(samples, 0.34, seed=3)
    assert len(val) == 2 and not {s.name for s in train} & {s.name for s in val}
    assert [s.name for s in split_samples(samples, 0.34, seed=3)[1]] == [s.name for s in val]
