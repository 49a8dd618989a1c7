"""DeepFashion2 per-image JSON loader, upper/lower grouping and the seeded split."""

from __future__ import annotations

import json
import logging
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mrcnn.data.dataset import DatasetError
from mrcnn.data.datasets.deepfashion2 import (
    CATEGORY_NAMES,
    DeepFashion2Dataset,
    prepare_split,
)

H, W = 40, 32


def item(category_id, polygon, box=None, **extra):
    xs, ys = polygon[0::2], polygon[1::2]
    return {"segmentation": [polygon], "category_id": category_id,
            "category_name": CATEGORY_NAMES[category_id - 1] if 1 <= category_id <= 13 else "?",
            "bounding_box": box or [min(xs), min(ys), max(xs), max(ys)], "style": 1, "scale": 2,
            "occlusion": 1, "zoom_in": 1, "viewpoint": 2, "landmarks": [0, 0, 0], **extra}


TOP = [2, 2, 20, 2, 20, 15, 2, 15]
BOTTOM = [4, 20, 16, 20, 16, 38, 4, 38]


def write_image(subset_dir, stem, annotation):
    (subset_dir / "image").mkdir(parents=True, exist_ok=True)
    (subset_dir / "annos").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (W, H), (10, 20, 30)).save(subset_dir / "image" / f"{stem}.jpg")
    text = annotation if isinstance(annotation, str) else json.dumps(annotation)
    (subset_dir / "annos" / f"{stem}.json").write_text(text)


def write_deepfashion2(root):
    train = root / "train"
    base = {"source": "user", "pair_id": 1}
    write_image(train, "000001", {**base, "item1": item(1, TOP), "item2": item(8, BOTTOM)})
    write_image(train, "000002", {**base, "item1": item(11, TOP)})
    write_image(train, "000003", {**base, "item1": item(1, [1, 2, 3, 4]),  # 2 points
                                  "item2": item(9, BOTTOM)})
    write_image(train, "000004", {**base, "item1": {"category_id": 2, "bounding_box": [2, 2, 20, 15]}})
    write_image(train, "000005", '{"source": "shop", "item1": ')  # cut-off JSON
    write_image(train, "000006", {**base, "item1": item(7, BOTTOM, box=[100, 100, 120, 130]),
                                  "item2": item(14, TOP)})
    return root


def load(root, **kwargs):
    dataset = DeepFashion2Dataset()
    dataset.load_deepfashion2(root, "train", **kwargs)
    dataset.prepare()
    return dataset


def by_stem(dataset, stem):
    return next(i for i, info in enumerate(dataset.image_info) if info["id"] == stem)


def test_all_13_categories_by_default_with_one_mask_per_item(tmp_path):
    dataset = load(write_deepfashion2(tmp_path))
    assert dataset.class_names[1:] == list(CATEGORY_NAMES)
    masks, class_ids = dataset.load_mask(by_stem(dataset, "000001"))
    assert masks.shape == (H, W, 2) and class_ids.tolist() == [1, 8]
    assert masks[3:14, 3:19, 0].all() and not masks[20:, :, 0].any()
    assert masks[21:37, 5:15, 1].all() and not masks[:19, :, 1].any()


def test_upper_lower_flag_groups_tops_and_dresses_vs_trousers_and_skirts(tmp_path):
    dataset = load(write_deepfashion2(tmp_path), class_scheme="upper_lower")
    assert dataset.class_names == ["BG", "upper", "lower"]
    assert dataset.load_mask(by_stem(dataset, "000001"))[1].tolist() == [1, 2]
    assert dataset.load_mask(by_stem(dataset, "000002"))[1].tolist() == [1]  # long sleeve dress
    assert dataset.load_mask(by_stem(dataset, "000003"))[1].tolist() == [2]  # skirt


def test_degenerate_items_are_skipped_with_warnings_naming_file_and_item(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        dataset = load(write_deepfashion2(tmp_path))
    issues = dataset.load_issues
    expected = [("000003.json: item1", "2 point(s)"),
                ("000004.json: item1", "missing or empty segmentation"),
                ("000005.json", "not valid JSON"),
                ("000006.json: item1", "outside the 32x40 image"),
                ("000006.json: item2", "unknown category_id 14")]
    for where, what in expected:
        assert any(where in m and what in m for m in issues), (where, what, issues)
    assert any("skipped" in r.getMessage() and "record(s)" in r.getMessage()
               for r in caplog.records)  # the counted summary
    assert dataset.num_images == 5  # only the unreadable JSON drops its image
    masks, class_ids = dataset.load_mask(by_stem(dataset, "000004"))
    assert masks.shape == (H, W, 0) and class_ids.size == 0


def test_items_are_read_in_numeric_order_and_max_images_limits_files(tmp_path):
    subset = tmp_path / "train"
    items = {f"item{i}": item(1 if i % 2 else 8, TOP if i % 2 else BOTTOM) for i in (1, 2, 10)}
    write_image(subset, "000001", {"source": "shop", "pair_id": 3, **items})
    write_image(subset, "000002", {"source": "shop", "pair_id": 3, "item1": item(1, TOP)})
    dataset = load(tmp_path, max_images=1)
    assert dataset.num_images == 1
    assert [i["item"] for i in dataset.image_info[0]["instances"]] == ["item1", "item2", "item10"]
    assert dataset.image_info[0]["pair_id"] == 3


def test_missing_annos_folder_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="annos"):
        load(tmp_path)


def make_source(root, count=20):
    for i in range(count):
        write_image(root / "train", f"{i:06d}", {"source": "user", "pair_id": i,
                                                 "item1": item(1 + i % 13, TOP)})
    (root / "train" / "image" / "999999.jpg").write_bytes(b"no annotation for me")
    return root


def test_prepare_split_is_seeded_disjoint_and_loadable(tmp_path):
    source = make_source(tmp_path / "df2")
    splits = prepare_split(source, tmp_path / "out", ratios=(0.6, 0.2, 0.2), seed=42)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [12, 4, 4]
    every = splits["train"] + splits["val"] + splits["test"]
    assert sorted(every) == [f"{i:06d}" for i in range(20)]  # 999999 has no JSON: left out
    again = prepare_split(source, tmp_path / "out2", ratios=(0.6, 0.2, 0.2), seed=42)
    other = prepare_split(source, tmp_path / "out3", ratios=(0.6, 0.2, 0.2), seed=7)
    assert again == splits and other != splits
    dataset = DeepFashion2Dataset()
    dataset.load_deepfashion2(tmp_path / "out", "val")
    dataset.prepare()
    assert sorted(info["id"] for info in dataset.image_info) == sorted(splits["val"])
    manifest = json.loads((tmp_path / "out" / "split_manifest.json").read_text())
    assert manifest["seed"] == 42 and manifest["splits"] == splits


def test_prepare_split_links_instead_of_copying(tmp_path):
    source = make_source(tmp_path / "df2", count=5)
    splits = prepare_split(source, tmp_path / "out", max_images=3)
    stem = splits["train"][0]
    placed = tmp_path / "out" / "train" / "image" / f"{stem}.jpg"
    original = source / "train" / "image" / f"{stem}.jpg"
    assert os.path.samefile(placed, original)  # hard link (or symlink) to the same file
    assert sum(len(v) for v in splits.values()) == 3
    copied = prepare_split(source, tmp_path / "copy", max_images=3, link="copy")
    stem = copied["train"][0]
    assert not os.path.samefile(tmp_path / "copy" / "train" / "image" / f"{stem}.jpg",
                                source / "train" / "image" / f"{stem}.jpg")


def test_prepare_split_refuses_to_mix_with_an_existing_split(tmp_path):
    source = make_source(tmp_path / "df2", count=5)
    prepare_split(source, tmp_path / "out", seed=1)
    with pytest.raises(DatasetError, match="overwrite=True"):
        prepare_split(source, tmp_path / "out", seed=2)
    splits = prepare_split(source, tmp_path / "out", seed=2, overwrite=True)
    placed = sorted(p.stem for p in (tmp_path / "out" / "train" / "image").iterdir())
    assert placed == sorted(splits["train"])


@pytest.mark.parametrize("ratios", [(0.5, 0.5), (0.8, 0.3, -0.1), (0.5, 0.2, 0.2)])
def test_prepare_split_rejects_ratios_that_are_not_three_fractions_of_one(tmp_path, ratios):
    with pytest.raises(ValueError, match="ratios"):
        prepare_split(tmp_path, tmp_path / "out", ratios=ratios)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-50, 60) | st.floats(allow_nan=True)
    | st.text(max_size=3),
    lambda children: st.lists(children, max_size=8) | st.dictionaries(
        st.sampled_from(["segmentation", "category_id", "bounding_box"]), children, max_size=3),
    max_leaves=24,
)
items = st.fixed_dictionaries({}, optional={
    "category_id": st.integers(-1, 15) | json_values,
    "bounding_box": st.lists(st.floats(-60, 60), max_size=5) | json_values,
    "segmentation": st.lists(st.lists(st.floats(-80, 80), max_size=10), max_size=3)
    | json_values,
}) | json_values


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(random_items=st.lists(items, max_size=3))
def test_random_items_load_or_are_skipped_never_crash(tmp_path, random_items):
    """Whatever an annotation holds, the image loads with valid masks or is skipped."""
    annotation = {"source": "user", "pair_id": 1}
    annotation.update({f"item{i + 1}": value for i, value in enumerate(random_items)})
    write_image(tmp_path / "train", "000001", annotation)
    dataset = load(tmp_path)
    masks, class_ids = dataset.load_mask(0)
    assert masks.shape[:2] == (H, W) and masks.shape[2] == class_ids.size
    assert masks.dtype == bool and set(class_ids.tolist()) <= set(range(1, 14))
    assert masks.any(axis=(0, 1)).all()  # no empty instance masks
