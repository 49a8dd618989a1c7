"""The Matterport Dataset API: registration, prepare(), source maps, default loaders."""

import numpy as np
import pytest
from PIL import Image

from mrcnn import utils
from mrcnn.data.dataset import Dataset, DatasetError


def _two_source_dataset(tmp_path):
    Image.fromarray(np.full((6, 8), 50, np.uint8)).save(tmp_path / "gray.png")
    dataset = utils.Dataset()
    dataset.add_class("coco", 1, "person")
    dataset.add_class("coco", 3, "car")
    dataset.add_class("balloon", 1, "balloon")
    dataset.add_class("coco", 1, "person")  # duplicate: ignored
    dataset.add_image("coco", image_id=42, path=tmp_path / "gray.png", width=8)
    dataset.add_image("balloon", image_id="b.jpg", path=None)
    dataset.prepare()
    return dataset


def test_utils_reexports_matterport_names():
    for name in ("Dataset", "compute_ap", "extract_bboxes", "resize_image", "compute_overlaps",
                 "non_max_suppression", "generate_pyramid_anchors", "norm_boxes",
                 "minimize_mask", "expand_mask", "compute_recall", "box_refinement"):
        assert callable(getattr(utils, name)), name
    assert utils.Dataset is Dataset


def test_prepare_builds_contiguous_ids_and_source_maps(tmp_path):
    dataset = _two_source_dataset(tmp_path)
    assert dataset.num_classes == 4 and dataset.class_names == ["BG", "person", "car", "balloon"]
    np.testing.assert_array_equal(dataset.image_ids, [0, 1])
    assert dataset.map_source_class_id("coco.3") == 2
    assert dataset.get_source_class_id(3, "balloon") == 1
    assert dataset.source_class_ids["balloon"] == [0, 3]
    assert dataset.source_class_ids["coco"] == [0, 1, 2]
    np.testing.assert_array_equal(dataset.active_class_ids(1), [1, 0, 0, 1])
    assert dataset.image_info[0]["width"] == 8


def test_default_load_image_reads_the_path_as_rgb(tmp_path):
    dataset = _two_source_dataset(tmp_path)
    image = dataset.load_image(0)
    assert image.shape == (6, 8, 3) and image.dtype == np.uint8 and (image == 50).all()
    with pytest.raises(DatasetError, match="without a path"):
        dataset.load_image(1)


def test_default_load_mask_is_an_empty_image(tmp_path, caplog):
    masks, class_ids = _two_source_dataset(tmp_path).load_mask(0)
    assert masks.shape[-1] == 0 and class_ids.shape == (0,)
    assert "not overridden" in caplog.text


def test_source_names_with_dots_are_rejected():
    with pytest.raises(DatasetError, match="'my.source'"):
        Dataset().add_class("my.source", 1, "x")


def test_get_source_class_id_from_the_wrong_source(tmp_path):
    with pytest.raises(DatasetError, match="belongs to source 'coco'"):
        _two_source_dataset(tmp_path).get_source_class_id(1, "balloon")
