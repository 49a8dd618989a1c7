"""COCO instances loader on tiny real files: sparse ids, crowd RLE, empty images, bad records."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as coco_mask

from mrcnn.data.dataset import DatasetError
from mrcnn.data.datasets.coco import CocoDataset

H, W = 48, 64
BIG_ANNOTATION_ID = 2**40  # COCO results files carry ids above int32


def _crowd_mask() -> np.ndarray:
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[30:40, 5:25] = 1
    return mask


def _uncompressed_rle(mask: np.ndarray) -> list[int]:
    """Column-major run lengths starting with a run of zeros, as COCO crowd annotations store."""
    flat = mask.flatten(order="F")
    runs, current, length = [], 0, 0
    for value in flat:
        if value == current:
            length += 1
        else:
            runs.append(length)
            current, length = value, 1
    runs.append(length)
    return runs


def write_coco(root, annotations=None, images=None, name="instances_val2017.json"):
    """A COCO 2017-layout dataset: RGB JPEG, grayscale JPEG, and an image with no annotations."""
    image_dir = root / "val2017"
    image_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(image_dir / "a.jpg")
    Image.fromarray(rng.integers(0, 255, (H, W), dtype=np.uint8), mode="L").save(
        image_dir / "gray.jpg")
    Image.fromarray(rng.integers(0, 255, (H, W, 4), dtype=np.uint8), mode="RGBA").save(
        image_dir / "empty.png")
    compressed = _crowd_mask()[::-1].copy()  # a different shape for the compressed-RLE object
    rle = coco_mask.encode(np.asfortranarray(compressed))
    if images is None:
        images = [
            {"id": 7, "file_name": "a.jpg", "height": H, "width": W},
            {"id": 9, "file_name": "gray.jpg", "height": H, "width": W},
            {"id": 11, "file_name": "empty.png", "height": H, "width": W},
        ]
    if annotations is None:
        annotations = [
            {"id": 1, "image_id": 7, "category_id": 3, "iscrowd": 0, "area": 300.0,
             "bbox": [10, 5, 20, 15], "segmentation": [[10, 5, 30, 5, 30, 20, 10, 20]]},
            {"id": BIG_ANNOTATION_ID, "image_id": 7, "category_id": 17, "iscrowd": 1,
             "area": 200.0, "bbox": [5, 30, 20, 10],
             "segmentation": {"size": [H, W], "counts": _uncompressed_rle(_crowd_mask())}},
            {"id": 3, "image_id": 9, "category_id": 90, "iscrowd": 0, "area": 200.0,
             "bbox": [5, 8, 20, 10],
             "segmentation": {"size": [H, W], "counts": rle["counts"].decode("ascii")}},
        ]
    data = {
        "images": images,
        "categories": [{"id": 3, "name": "car"}, {"id": 17, "name": "cat"},
                       {"id": 90, "name": "toothbrush"}],
        "annotations": annotations,
    }
    (root / "annotations").mkdir(exist_ok=True)
    path = root / "annotations" / name
    path.write_text(json.dumps(data))
    return path


def load(root, **kwargs) -> CocoDataset:
    dataset = CocoDataset()
    dataset.load_coco(root, "val", year="2017", **kwargs)
    dataset.prepare()
    return dataset


def index_of(dataset: CocoDataset, source_image_id) -> int:
    return dataset.image_from_source_map[f"coco.{source_image_id}"]


def test_sparse_category_ids_become_contiguous_class_ids(tmp_path):
    write_coco(tmp_path)
    dataset = load(tmp_path)
    assert dataset.class_names == ["BG", "car", "cat", "toothbrush"]
    assert [dataset.map_source_class_id(f"coco.{i}") for i in (3, 17, 90)] == [1, 2, 3]
    assert dataset.get_source_class_id(3, "coco") == 90


def test_polygon_annotation_gives_filled_mask_in_image_pixels(tmp_path):
    write_coco(tmp_path)
    dataset = load(tmp_path)
    masks, class_ids = dataset.load_mask(index_of(dataset, 7))
    assert masks.shape == (H, W, 2) and masks.dtype == bool and class_ids.dtype == np.int32
    polygon = masks[:, :, list(class_ids).index(1)]
    assert polygon[6:19, 11:29].all()  # inside the rectangle
    assert not polygon[:4].any() and not polygon[:, 32:].any()  # outside it


def test_crowd_uncompressed_rle_gets_negative_class_id_and_exact_mask(tmp_path):
    write_coco(tmp_path)
    dataset = load(tmp_path)
    masks, class_ids = dataset.load_mask(index_of(dataset, 7))
    assert sorted(class_ids.tolist()) == [-2, 1]
    crowd = masks[:, :, list(class_ids).index(-2)]
    np.testing.assert_array_equal(crowd, _crowd_mask().astype(bool))


def test_compressed_rle_string_decodes_to_the_encoded_mask(tmp_path):
    write_coco(tmp_path)
    dataset = load(tmp_path)
    masks, class_ids = dataset.load_mask(index_of(dataset, 9))
    assert class_ids.tolist() == [3]
    np.testing.assert_array_equal(masks[:, :, 0], _crowd_mask()[::-1].astype(bool))


def test_image_without_annotations_is_kept_with_zero_instances(tmp_path):
    write_coco(tmp_path)
    dataset = load(tmp_path)
    assert dataset.num_images == 3
    masks, class_ids = dataset.load_mask(index_of(dataset, 11))
    assert masks.shape == (H, W, 0) and class_ids.shape == (0,)


def test_class_ids_filter_keeps_only_images_with_those_classes(tmp_path):
    write_coco(tmp_path)
    dataset = load(tmp_path, class_ids=[90])
    assert dataset.class_names == ["BG", "toothbrush"]
    assert [info["id"] for info in dataset.image_info] == [9]


def test_unknown_class_id_filter_is_an_error_listing_known_ids(tmp_path):
    write_coco(tmp_path)
    with pytest.raises(DatasetError, match=r"class_ids \[4\].*\[3, 17, 90\]"):
        load(tmp_path, class_ids=[4])


def test_return_coco_indexes_annotation_ids_above_int32(tmp_path):
    write_coco(tmp_path)
    coco = CocoDataset().load_coco(tmp_path, "val", return_coco=True)
    assert BIG_ANNOTATION_ID in coco.anns
    assert coco.anns[BIG_ANNOTATION_ID]["iscrowd"] == 1
    assert sorted(coco.getImgIds()) == [7, 9, 11]


def test_explicit_paths_override_the_matterport_layout(tmp_path):
    path = write_coco(tmp_path, name="custom.json")
    dataset = CocoDataset()
    dataset.load_coco("/nonexistent", "val", annotation_file=path,
                      image_dir=tmp_path / "val2017")
    dataset.prepare()
    assert dataset.num_images == 3
    assert dataset.image_info[0]["path"].startswith(str(tmp_path / "val2017"))


def test_grayscale_and_rgba_images_load_as_rgb(tmp_path):
    pytest.importorskip("mrcnn.data.image_io")
    write_coco(tmp_path)
    dataset = load(tmp_path)
    for source_id in (7, 9, 11):
        image = dataset.load_image(index_of(dataset, source_id))
        assert image.shape == (H, W, 3) and image.dtype == np.uint8


def test_missing_image_size_is_read_from_the_file(tmp_path):
    write_coco(tmp_path, images=[{"id": 7, "file_name": "a.jpg"}], annotations=[])
    dataset = load(tmp_path)
    assert (dataset.image_info[0]["height"], dataset.image_info[0]["width"]) == (H, W)


def test_integral_float_image_sizes_are_accepted(tmp_path):
    write_coco(tmp_path, images=[{"id": 7, "file_name": "a.jpg", "height": 48.0,
                                  "width": 64.0}], annotations=[])
    assert load(tmp_path).image_info[0]["height"] == H


def test_invalid_json_raises_dataset_error_naming_the_file(tmp_path):
    path = write_coco(tmp_path)
    path.write_text('{"images": [')
    with pytest.raises(DatasetError, match="instances_val2017.json is not valid JSON"):
        load(tmp_path)


def test_missing_annotation_file_raises_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="annotation file not found"):
        load(tmp_path)


@pytest.mark.parametrize(
    ("bad_annotation", "expected"),
    [
        ({"image_id": 999, "category_id": 3, "segmentation": [[1, 1, 9, 1, 9, 9]]},
         "image_id 999, which is not in 'images'"),
        ({"image_id": 7, "category_id": 5, "segmentation": [[1, 1, 9, 1, 9, 9]]},
         "unknown category_id 5"),
        ({"image_id": 7, "category_id": 3, "segmentation": [[1, 1, 9, 1]]},
         "polygon has 2 point(s)"),
        ({"image_id": 7, "category_id": 3, "segmentation": [[1, 1, 9, 1, 9, 9]],
          "bbox": [500, 500, 10, 10]}, "lies outside the 64x48 image"),
        ({"image_id": 7, "category_id": 3, "segmentation": {"size": [H, W], "counts": [5, 3]}},
         "RLE runs cover 8 pixels"),
    ],
)
def test_bad_annotation_is_skipped_with_a_warning_naming_file_and_record(
        tmp_path, caplog, bad_annotation, expected):
    good = {"id": 1, "image_id": 7, "category_id": 3,
            "segmentation": [[10, 5, 30, 5, 30, 20, 10, 20]]}
    write_coco(tmp_path, annotations=[good, dict(bad_annotation, id=42)])
    with caplog.at_level(logging.WARNING):
        dataset = load(tmp_path)
    message = next(m for m in dataset.load_issues if "annotations[1]" in m)
    assert "instances_val2017.json" in message and "(id 42)" in message
    assert expected in message
    assert any(expected in record.getMessage() for record in caplog.records)
    masks, class_ids = dataset.load_mask(index_of(dataset, 7))
    assert class_ids.tolist() == [1]  # the good annotation still loads


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 100) | st.floats(allow_nan=True)
    | st.text(max_size=3),
    lambda children: st.lists(children, max_size=8) | st.dictionaries(
        st.sampled_from(["size", "counts", "x"]), children, max_size=3),
    max_leaves=20,
)
annotation_records = st.fixed_dictionaries(
    {"id": st.integers(0, 2**62)},
    optional={
        "image_id": st.sampled_from([7, 9, 11, 12, "7", None]),
        "category_id": st.sampled_from([3, 17, 90, 1, None, "3"]),
        "iscrowd": st.sampled_from([0, 1, 2, None]),
        "bbox": st.lists(st.floats(-100, 200), min_size=0, max_size=5) | json_values,
        "segmentation": json_values | st.lists(
            st.lists(st.floats(-200, 200), min_size=0, max_size=12), max_size=3)
        | st.fixed_dictionaries({"size": st.just([H, W]),
                                 "counts": st.lists(st.integers(-3, H * W), max_size=4)
                                 | st.text(max_size=8)}),
    },
) | json_values


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(annotation_records, max_size=4))
def test_random_annotation_records_load_or_raise_dataset_error(tmp_path, records):
    """Whatever the annotations hold, loading gives valid masks or a DatasetError, never a crash."""
    write_coco(tmp_path, annotations=records)
    try:
        dataset = load(tmp_path)
    except DatasetError:
        return
    for image_id in dataset.image_ids:
        masks, class_ids = dataset.load_mask(image_id)
        assert masks.shape[:2] == (H, W) and masks.shape[2] == len(class_ids)
        assert masks.dtype == bool and class_ids.dtype == np.int32
        assert set(np.abs(class_ids).tolist()) <= {1, 2, 3}
