"""`samples/coco.py evaluate` follows the official COCO protocol, checked against pycocotools.

The sample runs end to end (tiny model, ``--weights none``) with ``detect`` replaced by planned
detections whose scoring is known, on a COCO file written here: polygons, a compressed RLE, a
crowd region as uncompressed RLE, an annotation id above int32, small, medium and large objects,
an image without annotations, and one object whose ``area`` in the file puts it in another size
range than its pixel count does (COCOeval reads the file's ``area``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import mrcnn.model as modellib
from mrcnn.cli import build_parser, make_config
from mrcnn.data.datasets.coco import CocoDataset
from mrcnn.data.datasets.d2s import D2SDataset
from mrcnn.data.datasets.shapes import ShapesDataset
from mrcnn.evaluation.coco import (
    STAT_NAMES,
    build_coco_ground_truth,
    evaluate_coco_results,
    load_ground_truth,
)

ROOT = Path(__file__).resolve().parents[2]
CAT, DOG = 3, 7  # sparse source ids; internal ids 1 and 2
SIZES = {11: (128, 128), 12: (96, 128), 13: (64, 64)}  # image id: (height, width)


def _sample(name: str):
    spec = importlib.util.spec_from_file_location(f"sample_{name}", ROOT / "samples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rect(image_id: int, y1: int, x1: int, y2: int, x2: int) -> np.ndarray:
    mask = np.zeros(SIZES[image_id], dtype=bool)
    mask[y1:y2, x1:x2] = True
    return mask


def _polygon(y1: int, x1: int, y2: int, x2: int) -> list[list[int]]:
    return [[x1, y1, x2, y1, x2, y2, x1, y2]]


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """Column-major run lengths starting with a 0-run, as COCO ships crowd regions."""
    runs, value, count = [], 0, 0
    for pixel in mask.flatten(order="F"):
        if pixel != value:
            runs.append(count)
            value, count = pixel, 0
        count += 1
    runs.append(count)
    return {"counts": runs, "size": list(mask.shape)}


def _compressed_rle(mask: np.ndarray) -> dict:
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"counts": rle["counts"].decode("ascii"), "size": [int(s) for s in rle["size"]]}


def write_protocol_coco(root: Path) -> Path:
    """instances_val2017.json + val2017/*.jpg; returns the annotation file."""
    def ann(ann_id, image_id, category_id, segmentation, area, bbox, iscrowd=0):
        return {"id": ann_id, "image_id": image_id, "category_id": category_id,
                "segmentation": segmentation, "area": area, "bbox": bbox, "iscrowd": iscrowd}

    annotations = [
        ann(2**33 + 1, 11, CAT, _polygon(10, 10, 110, 110), 10000.0, [10, 10, 100, 100]),  # large
        ann(2, 11, DOG, _polygon(4, 112, 24, 124), 240.0, [112, 4, 12, 20]),  # small
        ann(3, 12, DOG, _compressed_rle(_rect(12, 10, 10, 50, 50)), 1600.0,
            [10, 10, 40, 40]),  # medium
        # 30 x 50 = 1500 pixels (medium), but the file says 900 (small): the file wins.
        ann(4, 12, CAT, _polygon(60, 70, 90, 120), 900.0, [70, 60, 50, 30]),
        ann(5, 12, CAT, _uncompressed_rle(_rect(12, 0, 80, 40, 128)), 1920.0,
            [80, 0, 48, 40], iscrowd=1),
    ]
    images = []
    for image_id, (height, width) in SIZES.items():
        name = f"{image_id}.jpg"
        (root / "val2017").mkdir(parents=True, exist_ok=True)
        image = np.full((height, width, 3), image_id, np.uint8)
        Image.fromarray(image).save(root / "val2017" / name)
        images.append({"id": image_id, "file_name": name, "height": height, "width": width})
    path = root / "annotations" / "instances_val2017.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [
        {"id": CAT, "name": "cat", "supercategory": "animal"},
        {"id": DOG, "name": "dog", "supercategory": "animal"}]}))
    return path


def _detections(found: list[tuple[np.ndarray, int, float]]) -> dict:
    """model.detect()'s dict for (mask, internal class id, score) triples."""
    masks = np.stack([mask for mask, _, _ in found], axis=2)
    rois = []
    for mask, _, _ in found:
        ys, xs = np.where(mask)
        rois.append([ys.min(), xs.min(), ys.max() + 1, xs.max() + 1])
    return {"rois": np.array(rois, np.int32), "masks": masks,
            "class_ids": np.array([c for _, c, _ in found], np.int32),
            "scores": np.array([s for _, _, s in found], np.float32)}


# What the "model" finds, by image size: hits, a shifted small object (IoU 0.6), confident
# false positives, and a detection on the crowd region (which must cost nothing).
PLANNED = {
    SIZES[11]: _detections([(_rect(11, 10, 10, 110, 110), 1, 0.9),
                            (_rect(11, 4, 115, 24, 127), 2, 0.6),
                            (_rect(11, 60, 60, 80, 80), 2, 0.95)]),
    SIZES[12]: _detections([(_rect(12, 10, 10, 50, 50), 2, 0.8),
                            (_rect(12, 0, 80, 40, 128), 1, 0.99),
                            (_rect(12, 60, 70, 90, 120), 1, 0.7)]),
    SIZES[13]: _detections([(_rect(13, 10, 10, 30, 30), 1, 0.5)]),
}


def _cocoeval_stats(coco_gt: COCO, results: list[dict], iou_type: str) -> list[float]:
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(results), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats.tolist()


def planned_detect(self, images, verbose=0):
    """MaskRCNN.detect's stand-in: the planned detections at or above the model's
    DETECTION_MIN_CONFIDENCE, as the detection layer keeps them."""
    found = []
    for image in images:
        planned = PLANNED[image.shape[:2]]
        keep = planned["scores"] >= self.config.DETECTION_MIN_CONFIDENCE
        found.append({key: value[..., keep] if key == "masks" else value[keep]
                      for key, value in planned.items()})
    return found


def run_evaluate(root: Path, *extra: str) -> dict:
    """`samples/coco.py evaluate --out --coco-results [extra]` on the protocol file in root."""
    coco = _sample("coco")
    metrics_path, results_path = root / "metrics.json", root / "results.json"
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(modellib.MaskRCNN, "detect", planned_detect)
        status = coco.main(coco.SPEC, [
            "evaluate", "--dataset", str(root / "coco"), "--logs", str(root / "logs"),
            "--preset", "tiny", "--set", "NUM_CLASSES=3", "--weights", "none",
            "--out", str(metrics_path), "--coco-results", str(results_path), *extra])
    assert status == 0
    return {"metrics": json.loads(metrics_path.read_text()),
            "results": json.loads(results_path.read_text()), "printed": printed.getvalue()}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """One `samples/coco.py evaluate` run on the protocol file, with the default threshold."""
    root = tmp_path_factory.mktemp("coco_protocol")
    gt_file = write_protocol_coco(root / "coco")
    return {"gt_file": gt_file, "root": root, **run_evaluate(root)}


def test_printed_ap_equals_cocoeval_by_hand_on_the_file_and_results_json(evaluated):
    """The 12 bbox and segm stats of `evaluate` are pycocotools' own on the annotation file and
    the --coco-results JSON, to 1e-9. A user comparing with a published COCO number (or with
    Matterport's evaluation of the same weights) would otherwise see a different AP."""
    metrics, results = evaluated["metrics"], evaluated["results"]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(evaluated["gt_file"]))
    by_hand = {"bbox": _cocoeval_stats(coco_gt, results, "bbox"),
               # COCO's segm results format has no "bbox" (else the box area decides APs/m/l)
               "segm": _cocoeval_stats(coco_gt, [{k: v for k, v in r.items() if k != "bbox"}
                                                 for r in results], "segm")}
    for iou_type, stats in by_hand.items():
        assert list(metrics[iou_type]) == list(STAT_NAMES)
        for name, expected in zip(STAT_NAMES, stats, strict=True):
            assert metrics[iou_type][name] == pytest.approx(expected, abs=1e-9), (iou_type, name)
        assert 0.0 < metrics[iou_type]["AP"] < 1.0  # a case that discriminates
        assert min(metrics[iou_type][k] for k in ("APs", "APm", "APl")) >= 0.0  # all 3 sizes
    with_box = _cocoeval_stats(coco_gt, results, "segm")  # the raw JSON: same size-free stats
    for name in ("AP", "AP50", "AP75", "AR1", "AR10", "AR100"):
        index = STAT_NAMES.index(name)
        assert metrics["segm"][name] == pytest.approx(with_box[index], abs=1e-9), name


def test_ground_truth_is_the_annotation_file_not_the_rasterized_masks(evaluated):
    """Rebuilding the ground truth from load_mask moves the 900-area cat from small to medium
    (its pixel count is 1500): APs/APm would disagree with COCOeval on the file."""
    dataset = CocoDataset()
    dataset.load_coco(evaluated["gt_file"].parents[1], "val")
    dataset.prepare()
    assert evaluated["metrics"]["ground_truth"] == "annotation file"
    raster = evaluate_coco_results(build_coco_ground_truth(dataset), evaluated["results"],
                                   iou_types=["bbox"])
    ours = evaluated["metrics"]["bbox"]
    assert (raster["bbox"]["APs"], raster["bbox"]["APm"]) != pytest.approx(
        (ours["APs"], ours["APm"]))
    assert {r["image_id"] for r in evaluated["results"]} == set(SIZES)  # the file's ids


def test_evaluate_scores_every_detection_and_says_so(evaluated):
    """`evaluate` runs the model with DETECTION_MIN_CONFIDENCE=0 (COCO's protocol, Matterport's
    InferenceConfig) and the table names the threshold; `--set DETECTION_MIN_CONFIDENCE=0.7`
    (the sample's own value) drops the 0.6 and 0.5 detections and AP comes out lower."""
    metrics = evaluated["metrics"]
    assert metrics["detection_min_confidence"] == 0.0
    assert len(evaluated["results"]) == sum(len(d["scores"]) for d in PLANNED.values())
    assert "detections scored: score >= 0 (DETECTION_MIN_CONFIDENCE=0)" in evaluated["printed"]
    assert "COCO ground truth: annotation file" in evaluated["printed"]

    cut = run_evaluate(evaluated["root"], "--set", "DETECTION_MIN_CONFIDENCE=0.7")
    assert cut["metrics"]["detection_min_confidence"] == 0.7
    assert "(DETECTION_MIN_CONFIDENCE=0.7)" in cut["printed"]
    assert sorted(round(r["score"], 2) for r in cut["results"]) == [0.7, 0.8, 0.9, 0.95, 0.99]
    for iou_type in ("bbox", "segm"):
        assert cut["metrics"][iou_type]["AP"] < metrics[iou_type]["AP"] - 0.05, iou_type


def test_only_evaluate_defaults_to_threshold_zero():
    """train and detect keep the sample's DETECTION_MIN_CONFIDENCE (0.7 for COCO): detect's
    PNGs would otherwise fill with every low-score box."""
    spec = _sample("coco").SPEC

    def threshold(*argv):
        return make_config(spec, build_parser(spec).parse_args(argv)).DETECTION_MIN_CONFIDENCE

    assert threshold("evaluate", "--preset", "tiny") == 0.0
    assert threshold("evaluate", "--set", "DETECTION_MIN_CONFIDENCE=0.5") == 0.5
    assert threshold("detect", "--image", "x.jpg") == threshold("train") == 0.7


def test_only_coco_format_datasets_use_their_annotation_records(tmp_path):
    """COCO and D2S (COCO-format files) are scored against their records; datasets without an
    annotation file (shapes here; VIA and DeepFashion2 likewise) against load_mask rasters."""
    gt_file = write_protocol_coco(tmp_path / "coco")
    d2s = D2SDataset()
    d2s.load_d2s(tmp_path, "val", annotation_file=gt_file, image_dir=tmp_path / "coco/val2017")
    d2s.prepare()
    coco_gt, origin = load_ground_truth(d2s)
    assert origin == "annotation file"
    areas = {ann["id"]: ann["area"] for ann in coco_gt.dataset["annotations"]}
    assert areas[4] == 900.0 and areas[2**33 + 1] == 10000.0
    assert [ann["iscrowd"] for ann in coco_gt.dataset["annotations"]] == [0, 0, 0, 0, 1]

    shapes = ShapesDataset()
    shapes.load_shapes(2, 64, 64, seed=0)
    shapes.prepare()
    assert load_ground_truth(shapes)[1] == "load_mask"
