"""Every annotation parser, fed random and malformed input: the result is either a valid record
or the library's own typed error (DatasetError, AnnotationError, ImageReadError, ValueError
subclasses), never a KeyError/TypeError/AttributeError from deep inside.

Inputs start from a small valid file and hypothesis replaces random parts of it with random
JSON values (or random text/CSV cells), so most examples are near-valid: the hard case.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from localization.annotations import AnnotationError, load_annotations
from mrcnn.data.dataset import DatasetError
from mrcnn.data.datasets.coco import CocoDataset
from mrcnn.data.datasets.d2s import D2SDataset
from mrcnn.data.datasets.deepfashion2 import DeepFashion2Dataset
from mrcnn.data.datasets.via import ViaDataset
from unet.data import load_coco_persons, load_folder_pairs, load_kaggle_csv
from unet.imaging import ImageReadError
from unet.rle import decode_rle, parse_rle

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                  max_size=3),
    max_leaves=8,
)


def mutate(data: st.DataObject, value):
    """A copy of a JSON document with random nodes replaced, dropped or their keys renamed."""
    choice = data.draw(st.integers(0, 24))
    if choice == 0:
        return data.draw(JSON_VALUES)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            action = data.draw(st.integers(0, 30))
            if action == 0:
                continue  # key dropped
            out[data.draw(st.text(max_size=4)) if action == 1 else key] = mutate(data, item)
        return out
    if isinstance(value, list):
        items = [mutate(data, item) for item in value]
        if items and data.draw(st.integers(0, 15)) == 0:
            items.pop(data.draw(st.integers(0, len(items) - 1)))
        return items
    return value


def write_image(path: Path, height: int = 32, width: int = 40) -> Path:
    image = np.zeros((height, width, 3), np.uint8)
    image[8:24, 10:30] = 200
    Image.fromarray(image).save(path)
    return path


def check_mrcnn_records(dataset) -> None:
    """What the training pipeline needs of every registered image (else the parser let junk in)."""
    dataset.prepare()
    for image_id in dataset.image_ids:
        info = dataset.image_info[image_id]
        masks, class_ids = dataset.load_mask(image_id)
        assert masks.dtype == bool and masks.ndim == 3
        assert masks.shape[:2] == (info["height"], info["width"])
        assert class_ids.dtype == np.int32 and len(class_ids) == masks.shape[2]
        assert np.all((np.abs(class_ids) >= 1) & (np.abs(class_ids) < dataset.num_classes))


def fresh_dir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="fuzz")


VALID_COCO = {
    "images": [{"id": 1, "file_name": "a.png", "height": 32, "width": 40},
               {"id": 2, "file_name": "b.png", "height": 32, "width": 40}],
    "categories": [{"id": 1, "name": "person"}, {"id": 7, "name": "cup"}],
    "annotations": [
        {"id": 10, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 300.0,
         "bbox": [10, 8, 20, 16], "segmentation": [[10, 8, 30, 8, 30, 24, 10, 24]]},
        {"id": 11, "image_id": 2, "category_id": 7, "iscrowd": 1, "area": 60.0,
         "bbox": [0, 0, 4, 15], "segmentation": {"size": [32, 40], "counts": [0, 15, 17, 15]}},
        {"id": 12, "image_id": 2, "category_id": 1, "iscrowd": 0, "area": 40.0,
         "bbox": [0, 0, 4, 4], "segmentation": {"size": [32, 40], "counts": "04N0000O"}},
    ],
}


@FUZZ
@given(st.data())
def test_coco_and_d2s_loaders_accept_or_raise_dataset_error(data):
    document = mutate(data, VALID_COCO)
    d2s = data.draw(st.booleans())
    with fresh_dir() as folder:
        root = Path(folder)
        write_image(root / "a.png")
        write_image(root / "b.png")
        (root / "instances.json").write_text(json.dumps(document))
        dataset = D2SDataset() if d2s else CocoDataset()
        try:
            if d2s:
                dataset.load_d2s(root, "fuzz", annotation_file=root / "instances.json",
                                 image_dir=root)
            else:
                dataset.load_coco_annotations(root / "instances.json", root, return_coco=True)
        except DatasetError:
            return
        check_mrcnn_records(dataset)


@FUZZ
@given(st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_coco_loader_on_files_that_are_not_json_raises_dataset_error(content):
    """A corrupt annotation file must stop the run with its name, never load as 0 images."""
    try:
        json.loads(content.decode("utf-8"))
        is_json = True
    except (UnicodeDecodeError, json.JSONDecodeError):
        is_json = False
    with fresh_dir() as folder:
        (Path(folder) / "instances.json").write_bytes(content)
        dataset = CocoDataset()
        if not is_json:
            with pytest.raises(DatasetError, match=r"instances\.json is not valid JSON"):
                dataset.load_coco_annotations(Path(folder) / "instances.json", folder)
            return
        try:
            dataset.load_coco_annotations(Path(folder) / "instances.json", folder)
        except DatasetError:
            return
        check_mrcnn_records(dataset)


VALID_VIA = {
    "a.png1234": {"filename": "a.png", "size": 1234, "file_attributes": {}, "regions": [
        {"shape_attributes": {"name": "polygon", "all_points_x": [10, 30, 30, 10],
                              "all_points_y": [8, 8, 24, 24]},
         "region_attributes": {"type": "balloon"}},
        {"shape_attributes": {"name": "ellipse", "cx": 20, "cy": 16, "rx": 5, "ry": 3,
                              "theta": 0.3}, "region_attributes": {"type": "kite"}}]},
    "b.png99": {"filename": "b.png", "size": 99, "regions": {
        "0": {"shape_attributes": {"name": "rect", "x": 2, "y": 3, "width": 9, "height": 7},
              "region_attributes": {"type": "balloon"}}}},
}


@FUZZ
@given(st.data())
def test_via_loader_accepts_or_raises_dataset_error(data):
    document = mutate(data, VALID_VIA)
    class_attribute = data.draw(st.sampled_from([None, "type"]))
    with fresh_dir() as folder:
        root = Path(folder)
        write_image(root / "a.png")
        write_image(root / "b.png")
        (root / "via_region_data.json").write_text(json.dumps(document))
        dataset = ViaDataset()
        try:
            dataset.load_via(root, class_attribute=class_attribute)
        except DatasetError:
            return
        check_mrcnn_records(dataset)


VALID_DEEPFASHION2 = {
    "source": "user", "pair_id": 3,
    "item1": {"segmentation": [[10, 8, 30, 8, 30, 24, 10, 24]], "bounding_box": [10, 8, 30, 24],
              "category_id": 1, "category_name": "short sleeve top", "style": 1, "scale": 2,
              "occlusion": 1, "zoom_in": 1, "viewpoint": 2, "landmarks": [12, 9, 2]},
    "item2": {"segmentation": [[1, 1, 8, 1, 8, 6]], "bounding_box": [1, 1, 8, 6],
              "category_id": 8, "category_name": "trousers"},
}


@FUZZ
@given(st.data())
def test_deepfashion2_loader_accepts_or_raises_dataset_error(data):
    document = mutate(data, VALID_DEEPFASHION2)
    scheme = data.draw(st.sampled_from(["categories", "upper_lower"]))
    with fresh_dir() as folder:
        root = Path(folder)
        (root / "train" / "annos").mkdir(parents=True)
        (root / "train" / "image").mkdir()
        write_image(root / "train" / "image" / "000001.jpg")
        (root / "train" / "annos" / "000001.json").write_text(json.dumps(document))
        dataset = DeepFashion2Dataset()
        try:
            dataset.load_deepfashion2(root, "train", class_scheme=scheme)
        except DatasetError:
            return
        check_mrcnn_records(dataset)


CSV_CELLS = st.sampled_from(["a.png", "b.png", "missing.png", "", "mask", "no-mask",
                             "with_mask", "0", "1", "5", "39", "0.5", "-3", "1e400", "nan",
                             "x", "filename", "xmin", " 12 ", "\ufeffa.png", '"'])


@FUZZ
@given(st.lists(st.lists(CSV_CELLS, min_size=0, max_size=7), max_size=6),
       st.sampled_from(["auto", "pixel", "normalized"]),
       st.sampled_from(["largest", "per_row"]), st.sampled_from(["skip", "error"]))
def test_face_mask_csv_gives_valid_samples_or_annotation_error(rows, coordinates, policy,
                                                               on_bad_row):
    with fresh_dir() as folder:
        root = Path(folder)
        write_image(root / "a.png")
        write_image(root / "b.png")
        text = "\n".join(",".join(cells) for cells in rows)
        (root / "labels.csv").write_text(text)
        try:
            table = load_annotations(root / "labels.csv", root, coordinates=coordinates,
                                     multi_box_policy=policy, on_bad_row=on_bad_row)
        except AnnotationError:
            return
    assert table.samples
    for sample in table.samples:
        x1, y1, x2, y2 = sample.box
        assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1, sample
        assert 0 <= sample.class_index < len(table.class_names)


@FUZZ
@given(st.text(alphabet="0123456789 -\n\tx.", max_size=40) | st.text(max_size=20),
       st.integers(1, 8), st.integers(1, 8), st.sampled_from([0, 1]))
def test_kaggle_rle_decodes_inside_the_image_or_raises_value_error(rle, height, width, base):
    try:
        runs = parse_rle(rle, height * width, index_base=base)
    except ValueError:
        return
    assert runs.ndim == 2 and (runs[:, 1] >= 1).all() and (runs[:, 0] >= 0).all()
    mask = decode_rle(rle, (height, width), index_base=base)
    assert mask.shape == (height, width) and int(mask.sum()) == int(runs[:, 1].sum())


VALID_PERSONS = {
    "images": [{"id": 1, "file_name": "a.png", "height": 32, "width": 40}],
    "categories": [{"id": 1, "name": "person"}],
    "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 300.0,
                     "segmentation": [[10, 8, 30, 8, 30, 24, 10, 24]]}],
}


@FUZZ
@given(st.data())
def test_person_mask_sources_give_masks_or_raise_our_value_errors(data):
    """COCO persons JSON, a Kaggle RLE CSV and a mask folder: each sample's mask either loads
    in the image's frame or fails with ImageReadError naming the file."""
    kind = data.draw(st.sampled_from(["coco", "kaggle", "folder"]))
    with fresh_dir() as folder:
        root = Path(folder)
        (root / "images").mkdir()
        write_image(root / "images" / "a.png")
        try:
            if kind == "coco":
                (root / "persons.json").write_text(json.dumps(mutate(data, VALID_PERSONS)))
                samples, _ = load_coco_persons(root / "persons.json", root / "images")
            elif kind == "kaggle":
                rows = data.draw(st.lists(st.tuples(CSV_CELLS, st.text(max_size=12)),
                                          max_size=3))
                header = data.draw(st.sampled_from(["id,rle_mask", "img,EncodedPixels", "a,b"]))
                text = "\n".join([header] + [f"{name},{rle}" for name, rle in rows])
                (root / "train.csv").write_text(text)
                samples, _ = load_kaggle_csv(root / "train.csv", root / "images")
            else:
                (root / "masks").mkdir()
                size = data.draw(st.sampled_from([(32, 40), (16, 20), (40, 32), (1, 1)]))
                mode = data.draw(st.sampled_from(["L", "1", "RGB", "I;16"]))
                Image.new(mode, size[::-1], 1).save(root / "masks" / "a.png")
                samples, _ = load_folder_pairs(root)
        except ValueError as error:
            assert type(error) is ValueError or isinstance(error, ImageReadError)
            return
        for sample in samples:
            try:
                sample.check()
                image, mask = sample.load()
            except ImageReadError:
                continue
            assert mask.shape == image.shape[:2] and set(np.unique(mask)) <= {0, 1}


@pytest.mark.parametrize("content", [b"", b"[]", b"null", b'{"images": 3}', b"\xff\xfe"])
def test_person_coco_json_that_is_not_an_object_is_a_value_error(tmp_path, content):
    (tmp_path / "persons.json").write_bytes(content)
    with pytest.raises(ValueError, match="persons.json"):
        load_coco_persons(tmp_path / "persons.json", tmp_path)
