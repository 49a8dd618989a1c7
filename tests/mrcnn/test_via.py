"""VIA 1.x/2.x JSON loader (Matterport balloon format) on tiny real files."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mrcnn.data.dataset import DatasetError
from mrcnn.data.datasets.via import ViaDataset

H, W = 48, 64


def polygon(xs, ys, **attributes):
    return {"shape_attributes": {"name": "polygon", "all_points_x": xs, "all_points_y": ys},
            "region_attributes": attributes}


def shape(name, **values):
    attributes = values.pop("attributes", {})
    return {"shape_attributes": {"name": name, **values}, "region_attributes": attributes}


def record(filename, regions):
    return {"filename": filename, "size": 1234, "regions": regions, "file_attributes": {}}


def write_images(folder, names=("a.jpg", "b.png", "c.jpg")):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        mode, color = ("RGBA", (200, 10, 10, 128)) if name.endswith(".png") else ("RGB", (5, 5, 5))
        Image.new(mode, (W, H), color).save(folder / name)


def write_json(path, data):
    path.write_text(json.dumps(data))
    return path


def balloon_v1(root):
    """Matterport's balloon layout: VIA 1.x dict regions in train/via_region_data.json."""
    write_images(root / "train")
    write_json(root / "train" / "via_region_data.json", {
        "a.jpg1234": record("a.jpg", {"0": polygon([10, 30, 30, 10], [5, 5, 20, 20])}),
        "c.jpg1234": record("c.jpg", {}),
    })
    return root


def load(root, subset="train", **kwargs):
    dataset = ViaDataset()
    dataset.load_via(root, subset, **kwargs)
    dataset.prepare()
    return dataset


def test_via1_dict_regions_load_as_one_class_with_filled_polygons(tmp_path):
    dataset = load(balloon_v1(tmp_path), class_names=["balloon"])
    assert dataset.class_names == ["BG", "balloon"]
    assert [info["id"] for info in dataset.image_info] == ["a.jpg"]  # c.jpg has no regions
    masks, class_ids = dataset.load_mask(0)
    assert masks.shape == (H, W, 1) and class_ids.tolist() == [1]
    assert masks[6:19, 11:29, 0].all() and not masks[22:, :, 0].any()


def test_image_sizes_are_read_from_the_image_files(tmp_path):
    dataset = load(balloon_v1(tmp_path))
    assert (dataset.image_info[0]["height"], dataset.image_info[0]["width"]) == (H, W)


def test_images_without_regions_are_kept_on_request(tmp_path):
    dataset = load(balloon_v1(tmp_path), keep_empty_images=True)
    assert dataset.num_images == 2
    masks, class_ids = dataset.load_mask(1)
    assert masks.shape == (H, W, 0) and class_ids.size == 0


def test_via2_list_regions_and_via1_dict_regions_mix_in_one_file(tmp_path):
    write_images(tmp_path / "train")
    write_json(tmp_path / "train" / "mixed.json", {
        "a": record("a.jpg", {"0": polygon([1, 9, 9], [1, 1, 9], kind="cat")}),
        "b": record("b.png", [polygon([20, 40, 40, 20], [20, 20, 40, 40], kind="dog"),
                              shape("rect", x=2, y=3, width=10, height=6,
                                    attributes={"kind": "cat"})]),
    })
    dataset = load(tmp_path, class_attribute="kind")
    assert dataset.class_names == ["BG", "cat", "dog"]
    masks, class_ids = dataset.load_mask(1)
    assert class_ids.tolist() == [2, 1]
    expected_rect = np.zeros((H, W), bool)
    expected_rect[3:9, 2:12] = True
    np.testing.assert_array_equal(masks[:, :, 1], expected_rect)


def test_circle_and_rotated_ellipse_are_drawn_with_their_area_and_orientation(tmp_path):
    write_images(tmp_path / "train")
    write_json(tmp_path / "train" / "shapes.json", {"a": record("a.jpg", [
        shape("circle", cx=20, cy=20, r=10),
        shape("ellipse", cx=40, cy=24, rx=4, ry=16, theta=math.pi / 2),
    ])})
    masks, _ = load(tmp_path).load_mask(0)
    assert masks[:, :, 0].sum() == pytest.approx(math.pi * 100, rel=0.1)
    ys, xs = np.where(masks[:, :, 1])
    assert np.ptp(xs) > 2 * np.ptp(ys)  # rotated by 90 degrees: wide, not tall


def test_checkbox_attribute_and_fixed_class_list(tmp_path, caplog):
    write_images(tmp_path / "train")
    write_json(tmp_path / "train" / "a.json", {"a": record("a.jpg", [
        polygon([1, 9, 9], [1, 1, 9], kind={"cat": True, "dog": False}),
        polygon([20, 30, 30], [20, 20, 30], kind="horse"),
    ])})
    with caplog.at_level(logging.WARNING):
        dataset = load(tmp_path, class_attribute="kind", class_names=["dog", "cat"])
    assert dataset.class_names == ["BG", "dog", "cat"]
    assert dataset.load_mask(0)[1].tolist() == [2]
    assert any("'horse' is not one of ['dog', 'cat']" in m for m in dataset.load_issues)


def test_several_json_files_per_split_and_duplicate_images_are_merged(tmp_path):
    write_images(tmp_path / "train")
    write_json(tmp_path / "train" / "part1.json", {"a": record("a.jpg", [
        polygon([1, 9, 9], [1, 1, 9])])})
    write_json(tmp_path / "train" / "part2.json", {
        "b": record("b.png", [polygon([1, 9, 9], [1, 1, 9])]),
        "a": record("a.jpg", [polygon([20, 30, 30], [20, 20, 30])])})
    dataset = load(tmp_path)
    assert sorted(info["id"] for info in dataset.image_info) == ["a.jpg", "b.png"]
    index = next(i for i, info in enumerate(dataset.image_info) if info["id"] == "a.jpg")
    assert dataset.load_mask(index)[0].shape[2] == 2


def test_rgba_png_loads_as_rgb(tmp_path):
    write_images(tmp_path / "train")
    write_json(tmp_path / "train" / "b.json", {"b": record("b.png", [
        polygon([1, 9, 9], [1, 1, 9])])})
    image = load(tmp_path).load_image(0)
    assert image.shape == (H, W, 3) and image.dtype == np.uint8


def test_full_via2_project_file_is_read(tmp_path):
    write_images(tmp_path / "train")
    write_json(tmp_path / "train" / "project.json", {
        "_via_settings": {}, "_via_attributes": {},
        "_via_img_metadata": {"a": record("a.jpg", [polygon([1, 9, 9], [1, 1, 9])])}})
    assert load(tmp_path).num_images == 1


@pytest.mark.parametrize(("region", "expected"), [
    (polygon([1, 9], [1, 1]), "polygon has 2 point(s)"),
    (polygon([100, 120, 120], [100, 100, 130]), "lies outside the 64x48 image"),
    (shape("point", cx=3, cy=3), "a point has no area"),
    (shape("rect", x=1, y=1, width=0, height=3), "rect needs"),
    (shape("hexagon"), "unknown shape 'hexagon'"),
])
def test_bad_region_is_skipped_with_a_warning_naming_file_record_and_region(
        tmp_path, caplog, region, expected):
    write_images(tmp_path / "train")
    write_json(tmp_path / "train" / "via.json", {"a.jpg99": record("a.jpg", [
        polygon([1, 9, 9], [1, 1, 9]), region])})
    with caplog.at_level(logging.WARNING):
        dataset = load(tmp_path)
    assert dataset.load_mask(0)[1].tolist() == [1]  # the good region survives
    (message,) = dataset.load_issues
    assert "via.json: 'a.jpg99' region 1" in message and expected in message
    assert any(expected in r.getMessage() for r in caplog.records)


def test_record_for_a_missing_image_is_skipped_naming_it(tmp_path):
    write_images(tmp_path / "train")
    write_json(tmp_path / "train" / "via.json", {"x": record("gone.jpg", [
        polygon([1, 9, 9], [1, 1, 9])])})
    dataset = load(tmp_path)
    assert dataset.num_images == 0
    assert "gone.jpg" in dataset.load_issues[0]


def test_bad_json_and_via3_projects_raise_dataset_error_naming_the_file(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "broken.json").write_text("{")
    with pytest.raises(DatasetError, match="broken.json is not valid JSON"):
        load(tmp_path)
    write_json(tmp_path / "train" / "broken.json", {"project": {}, "metadata": {}, "file": {}})
    with pytest.raises(DatasetError, match="VIA 3 project"):
        load(tmp_path)


def test_empty_split_folder_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="no VIA JSON file"):
        load(tmp_path)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-100, 100) | st.floats(allow_nan=True)
    | st.text(max_size=3),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(
        st.text(max_size=3), children, max_size=3),
    max_leaves=16,
)
numbers = st.integers(-80, 120) | st.floats(-80, 120) | json_values
shape_attributes = st.fixed_dictionaries(
    {"name": st.sampled_from(["polygon", "rect", "circle", "ellipse", "point", "x"])},
    optional={k: numbers for k in ("x", "y", "width", "height", "cx", "cy", "r", "rx", "ry",
                                   "theta")}
    | {"all_points_x": st.lists(numbers, max_size=6), "all_points_y": st.lists(numbers, max_size=6)},
)
regions = st.fixed_dictionaries({"shape_attributes": shape_attributes | json_values,
                                 "region_attributes": st.fixed_dictionaries(
                                     {}, optional={"kind": json_values | st.just("cat")})})


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(random_regions=st.lists(regions | json_values, max_size=4), as_dict=st.booleans())
def test_random_regions_load_or_are_skipped_never_crash(tmp_path, random_regions, as_dict):
    """Whatever a VIA region holds, the loader gives valid masks or skips it with a warning."""
    write_images(tmp_path / "train", ["a.jpg"])
    stored = {str(i): r for i, r in enumerate(random_regions)} if as_dict else random_regions
    write_json(tmp_path / "train" / "via.json", {"a": record("a.jpg", stored)})
    for kwargs in ({}, {"class_attribute": "kind"}):
        dataset = load(tmp_path, keep_empty_images=True, **kwargs)
        masks, class_ids = dataset.load_mask(0)
        assert masks.shape[:2] == (H, W) and masks.shape[2] == class_ids.size
        assert set(class_ids.tolist()) <= set(range(1, dataset.num_classes))
