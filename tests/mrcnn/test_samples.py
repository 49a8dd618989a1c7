"""The dataset samples end to end on tiny generated data in each real on-disk format.

Each runs in-process through the sample's ``main`` with ``--preset tiny`` (64 px, narrow layers).
"""

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SIZE = 64
SQUARES = ([8, 8, 28, 8, 28, 28, 8, 28], [36, 30, 58, 30, 58, 56, 36, 56])


def sample(name: str):
    """Import samples/<name>.py as a module."""
    spec = importlib.util.spec_from_file_location(f"sample_{name}", ROOT / "samples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def draw(path: Path, polygons) -> None:
    """An RGB image with each polygon filled in a bright color on a dark background."""
    image = np.full((SIZE, SIZE, 3), 30, np.uint8)
    for polygon in polygons:
        points = np.array(polygon, np.int32).reshape(-1, 2)
        cv2.fillPoly(image, [points], (220, 180, 40))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


def write_coco(root: Path, subset: str) -> None:
    images, annotations = [], []
    for index in range(2):
        name = f"{subset}_{index}.jpg"
        draw(root / f"{subset}2017" / name, SQUARES)
        images.append({"id": index + 1, "file_name": name, "height": SIZE, "width": SIZE})
        for k, polygon in enumerate(SQUARES):
            xs, ys = polygon[0::2], polygon[1::2]
            annotations.append({"id": 10 * index + k + 1, "image_id": index + 1,
                                "category_id": 5 + 13 * k, "iscrowd": 0, "area": 400.0,
                                "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
                                "segmentation": [polygon]})
    # A crowd region as an uncompressed RLE list (column-major run lengths), as COCO ships them.
    crowd = np.zeros((SIZE, SIZE), np.uint8)
    crowd[40:60, 2:20] = 1
    runs, value, count = [], 0, 0
    for pixel in crowd.flatten(order="F"):
        if pixel != value:
            runs.append(count)
            value, count = pixel, 0
        count += 1
    runs.append(count)
    annotations.append({"id": 999, "image_id": 1, "category_id": 5, "iscrowd": 1,
                        "area": 360.0, "bbox": [2, 40, 18, 20],
                        "segmentation": {"counts": runs, "size": [SIZE, SIZE]}})
    categories = [{"id": 5, "name": "box"}, {"id": 18, "name": "crate"}]
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / f"instances_{subset}2017.json").write_text(json.dumps(
        {"images": images, "annotations": annotations, "categories": categories}))


def test_coco_sample_trains_evaluates_and_detects(tmp_path, capsys):
    """python samples/coco.py train / evaluate --out / detect, as the README shows."""
    coco = sample("coco")
    data, logs = tmp_path / "coco", tmp_path / "logs"
    write_coco(data, "train")
    write_coco(data, "val")
    common = ["--dataset", str(data), "--logs", str(logs), "--preset", "tiny",
              "--set", "NUM_CLASSES=3"]
    assert coco.main(coco.SPEC, ["train", *common, "--weights", "none", "--epochs", "1",
                                 "--steps-per-epoch", "2"]) == 0
    assert len(list(logs.glob("coco*/mask_rcnn_coco_0001.h5"))) == 1
    metrics_path, results_path = tmp_path / "metrics.json", tmp_path / "results.json"
    assert coco.main(coco.SPEC, ["evaluate", *common, "--out", str(metrics_path),
                                 "--coco-results", str(results_path)]) == 0
    metrics = json.loads(metrics_path.read_text())
    results = json.loads(results_path.read_text())
    assert all(set(r) >= {"image_id", "category_id", "bbox", "score", "segmentation"}
               for r in results)
    assert {r["category_id"] for r in results} <= {5, 18}  # the file's own category ids
    assert metrics["images"] == 2 and set(metrics["per_class"]) == {"box", "crate"}
    assert "Matterport mAP@0.5" in capsys.readouterr().out
    out = tmp_path / "detections"
    assert coco.main(coco.SPEC, ["detect", *common, "--image", str(data / "val2017"),
                                 "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["val_0.png", "val_1.png"]
    records = json.loads((out / "detections.json").read_text())
    assert [Path(r["image"]).name for r in records] == ["val_0.jpg", "val_1.jpg"]


def test_d2s_sample_trains_and_evaluates_on_its_coco_format_files(tmp_path):
    """D2S_training.json / D2S_validation.json next to images/ are found by subset name."""
    d2s = sample("d2s")
    write_coco(tmp_path / "coco", "val")
    root = tmp_path / "d2s"
    (root / "annotations").mkdir(parents=True)
    annotation = json.loads((tmp_path / "coco/annotations/instances_val2017.json").read_text())
    (root / "annotations" / "D2S_validation.json").write_text(json.dumps(annotation))
    (tmp_path / "coco" / "val2017").rename(root / "images")
    (root / "annotations" / "D2S_training.json").write_text(json.dumps(annotation))
    common = ["--dataset", str(root), "--logs", str(tmp_path / "logs"), "--preset", "tiny",
              "--set", "NUM_CLASSES=3"]
    assert d2s.main(d2s.SPEC, ["train", *common, "--weights", "none", "--epochs", "1",
                               "--steps-per-epoch", "1"]) == 0
    metrics_path = tmp_path / "metrics.json"
    assert d2s.main(d2s.SPEC, ["evaluate", *common, "--out", str(metrics_path)]) == 0
    assert json.loads(metrics_path.read_text())["images"] == 2


def test_class_count_mismatch_is_a_one_line_user_error_with_the_fix(tmp_path, capsys):
    """A COCO file with 2 categories and the 81-class COCO config: say which --set fixes it."""
    coco = sample("coco")
    write_coco(tmp_path, "val")
    status = coco.main(coco.SPEC, ["evaluate", "--dataset", str(tmp_path), "--weights", "none",
                                   "--preset", "tiny"])
    assert status == 2 and "--set NUM_CLASSES=3" in capsys.readouterr().err


def test_d2s_sample_missing_subset_is_a_one_line_user_error(tmp_path, capsys):
    d2s = sample("d2s")
    (tmp_path / "annotations").mkdir()
    (tmp_path / "images").mkdir()
    status = d2s.main(d2s.SPEC, ["evaluate", "--dataset", str(tmp_path), "--weights", "none",
                                 "--preset", "tiny"])
    assert status == 2
    assert "D2S_validation.json" in capsys.readouterr().err


def write_deepfashion2(root: Path, count: int) -> None:
    for index in range(count):
        stem = f"{index + 1:06d}"
        draw(root / "train" / "image" / f"{stem}.jpg", SQUARES)
        items = {f"item{k + 1}": {"segmentation": [polygon], "category_id": category,
                                  "bounding_box": [polygon[0], polygon[1], polygon[4], polygon[5]]}
                 for k, (polygon, category) in enumerate(zip(SQUARES, (1, 8), strict=True))}
        annos = root / "train" / "annos"
        annos.mkdir(parents=True, exist_ok=True)
        (annos / f"{stem}.json").write_text(json.dumps({"source": "user", "pair_id": 1, **items}))


def test_deepfashion2_prepare_train_evaluate_upper_lower(tmp_path):
    """DeepFashion2: split the official layout, then run with the upper/lower classes."""
    df2 = sample("deepfashion2")
    write_deepfashion2(tmp_path / "df2", count=10)
    split = tmp_path / "split"
    assert df2.prepare(["--source", str(tmp_path / "df2"), "--out", str(split), "--seed", "1"]) == 0
    assert len(list((split / "val" / "image").glob("*.jpg"))) == 1
    manifest = json.loads((split / "split_manifest.json").read_text())
    assert sum(len(stems) for stems in manifest["splits"].values()) == 10
    common = ["--dataset", str(split), "--classes", "upper_lower", "--preset", "tiny",
              "--logs", str(tmp_path / "logs")]
    assert df2.main(df2.SPEC, ["train", *common, "--weights", "none", "--epochs", "1",
                               "--steps-per-epoch", "1"]) == 0
    metrics_path = tmp_path / "metrics.json"
    assert df2.main(df2.SPEC, ["evaluate", *common, "--out", str(metrics_path)]) == 0
    assert set(json.loads(metrics_path.read_text())["per_class"]) == {"upper", "lower"}


def write_balloon(root: Path, subset: str) -> None:
    regions = [{"shape_attributes": {"name": "polygon", "all_points_x": p[0::2],
                                     "all_points_y": p[1::2]}, "region_attributes": {}}
               for p in SQUARES]
    project = {}
    for index in range(2):
        name = f"{subset}_{index}.jpg"
        draw(root / subset / name, SQUARES)
        size = (root / subset / name).stat().st_size
        project[f"{name}{size}"] = {"filename": name, "size": size, "regions": regions,
                                    "file_attributes": {}}
    (root / subset / "via_region_data.json").write_text(json.dumps(project))


@pytest.fixture(scope="module")
def balloon_run(tmp_path_factory):
    balloon = sample("balloon")
    root = tmp_path_factory.mktemp("balloon")
    write_balloon(root / "data", "train")
    write_balloon(root / "data", "val")
    logs = root / "logs"
    status = balloon.main(balloon.SPEC, ["train", "--dataset", str(root / "data"), "--logs",
                                         str(logs), "--preset", "tiny", "--weights", "none",
                                         "--epochs", "1", "--steps-per-epoch", "1"])
    assert status == 0
    return balloon, root


def test_balloon_sample_evaluates_after_training(balloon_run, tmp_path):
    balloon, root = balloon_run
    metrics_path = tmp_path / "metrics.json"
    assert balloon.main(balloon.SPEC, ["evaluate", "--dataset", str(root / "data"), "--logs",
                                       str(root / "logs"), "--preset", "tiny",
                                       "--out", str(metrics_path)]) == 0
    assert set(json.loads(metrics_path.read_text())["per_class"]) == {"balloon"}


def test_balloon_splash_keeps_color_only_inside_instances():
    balloon = sample("balloon")
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0] = 200  # pure red: gray value 60
    masks = np.zeros((4, 4, 1), bool)
    masks[:2, :, 0] = True
    splashed = balloon.color_splash(image, masks)
    assert (splashed[:2] == image[:2]).all()
    assert (splashed[2:] == splashed[2:, :, :1]).all() and splashed[3, 3, 0] == 60


def test_balloon_splash_on_an_image_and_a_video(balloon_run, tmp_path):
    """python samples/balloon.py splash --image / --video writes the color-splash files."""
    balloon, root = balloon_run
    common = ["--logs", str(root / "logs"), "--preset", "tiny", "--out", str(tmp_path)]
    image = root / "data" / "val" / "val_0.jpg"
    assert balloon.splash(["--image", str(image), *common]) == 0
    assert (tmp_path / "val_0_splash.png").is_file()

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (SIZE, SIZE))
    for _ in range(3):
        writer.write(cv2.imread(str(image)))
    writer.release()
    assert balloon.splash(["--video", str(video), *common]) == 0
    capture = cv2.VideoCapture(str(tmp_path / "clip_splash.avi"))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 3


def test_balloon_splash_unreadable_video_is_a_user_error(balloon_run, tmp_path, capsys):
    balloon, root = balloon_run
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    status = balloon.splash(["--video", str(bad), "--logs", str(root / "logs"), "--preset",
                             "tiny", "--out", str(tmp_path)])
    assert status == 2 and "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize("strategy", ["mirrored", "multi_worker"])
def test_train_strategy_flag_selects_the_distribution_strategy(strategy):
    """`train --strategy mirrored` must reach Config.DISTRIBUTION_STRATEGY, or the run would
    silently train on one device."""
    from mrcnn.cli import build_parser, make_config

    spec = sample("shapes").SPEC
    args = build_parser(spec).parse_args(["train", "--preset", "tiny", "--strategy", strategy])
    assert make_config(spec, args).DISTRIBUTION_STRATEGY == strategy
    args = build_parser(spec).parse_args(["train", "--preset", "tiny"])
    assert make_config(spec, args).DISTRIBUTION_STRATEGY is None
