"""COCO evaluation: golden cases (perfect -> 1, empty -> 0) and parity with pycocotools' own run."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mrcnn.data.dataset import Dataset
from mrcnn.data.datasets.coco import CocoDataset
from mrcnn.evaluation.coco import (
    STAT_NAMES,
    build_coco_results,
    detections_to_coco_results,
    evaluate_coco,
    evaluate_coco_results,
    evaluate_detections,
    save_coco_results,
)

H, W = 64, 80


def rectangle(y1, x1, y2, x2) -> np.ndarray:
    mask = np.zeros((H, W), dtype=bool)
    mask[y1:y2, x1:x2] = True
    return mask


def boxes_of(masks: np.ndarray) -> np.ndarray:
    """[N, (y1, x1, y2, x2)] pixel boxes, y2/x2 exclusive (Matterport's extract_bboxes)."""
    boxes = []
    for i in range(masks.shape[2]):
        ys, xs = np.where(masks[:, :, i])
        boxes.append([ys.min(), xs.min(), ys.max() + 1, xs.max() + 1])
    return np.array(boxes, dtype=np.float32).reshape(-1, 4)


class ShapesDataset(Dataset):
    """Three images of rectangles in two classes with sparse source ids; one crowd region."""

    INSTANCES = {
        0: [((5, 5, 25, 30), 1), ((30, 40, 60, 75), 2)],
        1: [((10, 10, 20, 20), 2), ((40, 5, 50, 45), 1), ((2, 50, 12, 70), -1)],
        2: [],
    }

    def load(self):
        self.add_class("toy", 12, "square")
        self.add_class("toy", 40, "bar")
        for i in self.INSTANCES:
            self.add_image("toy", image_id=100 + i, path=None, height=H, width=W)
        self.prepare()
        return self

    def load_image(self, image_id):
        return np.full((H, W, 3), image_id, np.uint8)

    def load_mask(self, image_id):
        instances = self.INSTANCES[image_id]
        masks = np.stack([rectangle(*box) for box, _ in instances], axis=2) if instances \
            else np.zeros((H, W, 0), dtype=bool)
        return masks, np.array([c for _, c in instances], dtype=np.int32)


def perfect_detections(dataset):
    detections = []
    for image_id in dataset.image_ids:
        masks, class_ids = dataset.load_mask(image_id)
        keep = class_ids > 0
        masks, class_ids = masks[:, :, keep], class_ids[keep]
        detections.append({"rois": boxes_of(masks), "class_ids": class_ids,
                           "scores": np.ones(len(class_ids), np.float32), "masks": masks})
    return detections


def imperfect_detections(dataset, seed=0):
    """Shifted masks, random scores, one false positive per image."""
    rng = np.random.default_rng(seed)
    detections = []
    for found in perfect_detections(dataset):
        masks = np.roll(found["masks"], shift=(int(rng.integers(-3, 4)), 2), axis=(0, 1))
        masks = np.concatenate([masks, rectangle(0, 0, 8, 8)[:, :, None]], axis=2)
        class_ids = np.append(found["class_ids"], 2).astype(np.int32)
        detections.append({"rois": boxes_of(masks), "class_ids": class_ids,
                           "scores": rng.uniform(0.3, 1.0, len(class_ids)), "masks": masks})
    return detections


def test_perfect_detections_give_ap_one_for_boxes_and_masks():
    dataset = ShapesDataset().load()
    metrics = evaluate_detections(dataset, dataset.image_ids, perfect_detections(dataset))
    for kind in ("bbox", "segm"):
        assert list(metrics[kind]) == list(STAT_NAMES)
        for name in ("AP", "AP50", "AP75", "APs", "APm", "AR100"):
            assert metrics[kind][name] == pytest.approx(1.0), (kind, name)
    assert metrics["per_class"] == {"square": {"bbox": 1.0, "segm": 1.0},
                                    "bar": {"bbox": 1.0, "segm": 1.0}}
    assert metrics["images"] == 3


def test_no_detections_give_ap_zero_and_minus_one_where_no_ground_truth():
    dataset = ShapesDataset().load()
    empty = {"rois": np.zeros((0, 4)), "class_ids": np.zeros(0, np.int32),
             "scores": np.zeros(0), "masks": np.zeros((H, W, 0), bool)}
    metrics = evaluate_detections(dataset, dataset.image_ids, [empty] * 3)
    for kind in ("bbox", "segm"):
        assert metrics[kind]["AP"] == 0.0 and metrics[kind]["AR100"] == 0.0
        assert metrics[kind]["APl"] == -1.0  # no object above 96x96 px: pycocotools says -1
    assert metrics["per_class"]["square"] == {"bbox": 0.0, "segm": 0.0}


def test_detection_on_a_crowd_region_is_not_a_false_positive():
    """A crowd (iscrowd) region must be ignored: a confident detection on it costs no AP. If the
    crowd annotation were dropped, that detection would be the top-ranked false positive."""
    dataset = ShapesDataset().load()
    detections = perfect_detections(dataset)
    crowd = rectangle(2, 50, 12, 70)[:, :, None]
    for found in detections:
        found["scores"] = np.full(len(found["scores"]), 0.8, np.float32)
    found = detections[1]
    detections[1] = {"rois": np.concatenate([found["rois"], boxes_of(crowd)]),
                     "class_ids": np.append(found["class_ids"], 1).astype(np.int32),
                     "scores": np.append(found["scores"], 0.99),
                     "masks": np.concatenate([found["masks"], crowd], axis=2)}
    metrics = evaluate_detections(dataset, dataset.image_ids, detections)
    assert metrics["segm"]["AP"] == pytest.approx(1.0)
    assert metrics["bbox"]["AP"] == pytest.approx(1.0)


def test_results_use_xywh_boxes_source_category_ids_and_json_ready_rle():
    dataset = ShapesDataset().load()
    masks = rectangle(5, 5, 25, 30)[:, :, None]
    results = build_coco_results(dataset, [100], np.array([[5.0, 5.0, 25.0, 30.0]]),
                                 np.array([2]), np.array([0.9]), masks)
    assert len(results) == 1
    record = results[0]
    assert record["image_id"] == 100 and record["category_id"] == 40
    assert record["bbox"] == [5.0, 5.0, 25.0, 20.0]
    assert record["score"] == pytest.approx(0.9)
    decoded = coco_mask.decode(dict(record["segmentation"],
                                    counts=record["segmentation"]["counts"].encode()))
    np.testing.assert_array_equal(decoded.astype(bool), masks[:, :, 0])
    json.dumps(results)  # serializable as is


def test_mismatched_detection_arrays_are_rejected_with_their_shapes():
    dataset = ShapesDataset().load()
    with pytest.raises(ValueError, match="detections disagree"):
        build_coco_results(dataset, [100], np.zeros((2, 4)), np.array([1]), np.array([0.5]),
                           np.zeros((H, W, 2), bool))


def test_results_for_images_outside_the_ground_truth_are_rejected():
    dataset = ShapesDataset().load()
    coco_gt_images = {"images": [{"id": 1, "height": H, "width": W}],
                      "categories": [{"id": 12, "name": "square"}], "annotations": []}
    coco_gt = COCO()
    coco_gt.dataset = coco_gt_images
    coco_gt.createIndex()
    results = build_coco_results(dataset, [5], np.array([[1.0, 1, 9, 9]]), np.array([1]),
                                 np.array([0.5]), rectangle(1, 1, 9, 9)[:, :, None])
    with pytest.raises(ValueError, match=r"image ids \[5\]"):
        evaluate_coco_results(coco_gt, results)


def _write_coco_files(tmp_path, dataset):
    """A real COCO GT file of ``dataset`` (polygon rectangles) plus the image folder."""
    images, annotations = [], []
    for image_id in dataset.image_ids:
        masks, class_ids = dataset.load_mask(image_id)
        images.append({"id": 100 + int(image_id), "file_name": f"{image_id}.jpg",
                       "height": H, "width": W})
        for i, class_id in enumerate(class_ids):
            ys, xs = np.where(masks[:, :, i])
            x1, y1, x2, y2 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
            annotations.append({
                "id": 2**33 + len(annotations), "image_id": 100 + int(image_id),
                "category_id": int(dataset.class_info[abs(int(class_id))]["id"]),
                "iscrowd": int(class_id < 0), "area": float((x2 - x1) * (y2 - y1)),
                "bbox": [int(x1), int(y1), int(x2 - x1), int(y2 - y1)],
                "segmentation": [[int(x1), int(y1), int(x2), int(y1), int(x2), int(y2),
                                  int(x1), int(y2)]]})
    categories = [{"id": 12, "name": "square"}, {"id": 40, "name": "bar"}]
    (tmp_path / "annotations").mkdir()
    gt_file = tmp_path / "annotations" / "instances_val2017.json"
    gt_file.write_text(json.dumps({"images": images, "annotations": annotations,
                                   "categories": categories}))
    return gt_file


def _pycocotools_stats(gt_file, results_file, iou_type):
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_file))
        coco_dt = coco_gt.loadRes(str(results_file))
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return dict(zip(STAT_NAMES, evaluator.stats.tolist(), strict=True))


@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_equal_pycocotools_own_run_on_the_same_files(tmp_path, seed):
    shapes = ShapesDataset().load()
    gt_file = _write_coco_files(tmp_path, shapes)
    dataset = CocoDataset()
    coco_gt = dataset.load_coco(tmp_path, "val", return_coco=True)
    dataset.prepare()
    detections = imperfect_detections(shapes, seed)
    results = detections_to_coco_results(dataset, dataset.image_ids, detections)
    results_file = save_coco_results(results, tmp_path / "results.json")
    ours = evaluate_detections(dataset, dataset.image_ids, detections, coco_gt=coco_gt)
    assert 0.0 < ours["bbox"]["AP"] < 1.0  # a case that discriminates
    # Without coco_gt, a CocoDataset is scored against its own annotation records: the same.
    default = evaluate_detections(dataset, dataset.image_ids, detections)
    assert default["ground_truth"] == "annotation file"
    assert (default["bbox"], default["segm"]) == (ours["bbox"], ours["segm"])

    assert ours["bbox"] == pytest.approx(_pycocotools_stats(gt_file, results_file, "bbox"))
    # segm: we drop each result's box so that the area ranges use the mask area; the file
    # given to pycocotools is the same results without "bbox".
    no_box_file = tmp_path / "results_segm.json"
    no_box_file.write_text(json.dumps([{k: v for k, v in r.items() if k != "bbox"}
                                       for r in results]))
    assert ours["segm"] == pytest.approx(_pycocotools_stats(gt_file, no_box_file, "segm"))
    with_box = _pycocotools_stats(gt_file, results_file, "segm")
    for name in ("AP", "AP50", "AP75", "AR1", "AR10", "AR100"):  # area-independent stats
        assert ours["segm"][name] == pytest.approx(with_box[name])


def test_evaluate_coco_results_scores_a_results_file_against_a_ground_truth_file(tmp_path):
    shapes = ShapesDataset().load()
    gt_file = _write_coco_files(tmp_path, shapes)
    dataset = CocoDataset()
    dataset.load_coco(tmp_path, "val")
    dataset.prepare()
    results = detections_to_coco_results(dataset, dataset.image_ids, perfect_detections(shapes))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_file))
    metrics = evaluate_coco_results(coco_gt, json.loads(json.dumps(results)),
                                    iou_types=["segm"])
    assert metrics["segm"]["AP"] == pytest.approx(1.0)
    assert "bbox" not in metrics and set(metrics["per_class"]) == {"square", "bar"}


class OracleModel:
    """Stands in for an inference MaskRCNN: detect() returns the ground truth of the image."""

    def __init__(self, dataset):
        self.by_pixels = {dataset.load_image(i).tobytes(): found for i, found in
                          zip(dataset.image_ids, perfect_detections(dataset), strict=True)}
        self.calls = 0

    def detect(self, images):
        self.calls += 1
        return [self.by_pixels[images[0].tobytes()]]


def test_matterport_style_evaluate_coco_runs_detect_per_image_and_honours_limit():
    dataset = ShapesDataset().load()
    model = OracleModel(dataset)
    metrics = evaluate_coco(model, dataset, eval_type="segm", progress=False)
    assert model.calls == 3 and metrics["segm"]["AP"] == pytest.approx(1.0)
    assert "bbox" not in metrics
    limited = evaluate_coco(model, dataset, limit=1, progress=False)
    assert limited["images"] == 1 and limited["bbox"]["AP"] == pytest.approx(1.0)
