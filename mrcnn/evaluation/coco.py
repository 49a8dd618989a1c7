"""COCO dataset-level evaluation (bbox and segm AP/AR) and COCO results JSON, via pycocotools.

Three entry points:

- :func:`evaluate_detections` takes a :class:`~mrcnn.data.dataset.Dataset`, its image ids and the
  per-image dicts of Matterport's ``model.detect()`` (``rois`` [N, (y1, x1, y2, x2)] pixels of
  the original image, ``class_ids`` [N] internal ids, ``scores`` [N], ``masks`` bool[H, W, N]).
- :func:`evaluate_coco_results` scores a COCO results list against a pycocotools ``COCO``
  ground truth, e.g. ``evaluate_coco_results(COCO("gt.json"), json.load(open("res.json")))``.
- :func:`evaluate_coco` is Matterport's ``evaluate_coco(model, dataset, coco, eval_type,
  limit, image_ids)``: it runs ``model.detect`` image by image, then scores.

All return ``{"bbox": {name: value}, "segm": {...}, "per_class": {class name: {"bbox": AP,
"segm": AP}}, "images": N}`` with the 12 pycocotools stats named in :data:`STAT_NAMES`.

Ground truth (:func:`load_ground_truth`): a COCO-format dataset (``CocoDataset`` and its
subclasses, e.g. D2S) is scored against its annotation file's records, with the file's image
ids, ``area`` (which decides small/medium/large), ``iscrowd`` flags and crowd regions, as the
official COCOeval on that file; any other dataset (shapes, VIA, DeepFashion2) against masks
rasterized from ``load_mask`` (:func:`build_coco_ground_truth`), crowd instances (negative
class ids) marked ``iscrowd``.

Conventions (pycocotools'): a stat is ``-1.0`` when no ground truth falls in its category/area
range (e.g. ``APs`` without small objects, or a class absent from the evaluated images); with
ground truth but no detections it is ``0.0``. A crowd region never counts as a miss, and a
detection on it is not a false positive. For ``segm``, the box is dropped from each result
before scoring: that is COCO's segm results format, and it makes the small/medium/large split
of the detections use the mask area rather than the box area (pycocotools uses the box area
when both are present; detectron2 and mmdetection drop it too). So the ``bbox`` stats equal
COCOeval on the results JSON as written, the ``segm`` stats COCOeval on it without ``bbox``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from tqdm import tqdm

from mrcnn.data.datasets.coco import CocoDataset

logger = logging.getLogger(__name__)

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl",
              "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
IOU_TYPES = ("bbox", "segm")


def coco_image_id(dataset, image_id: int) -> int | str:
    """The COCO image id of a dataset image: its source id when that is an int or comes from a
    COCO-format file, else ``image_id``.

    COCO and D2S keep the ids of their annotation file, so results match that file; other
    sources with string ids (VIA file names, DeepFashion2 stems) use the internal index.
    """
    info = dataset.image_info[image_id]
    source_id = info["id"]
    if isinstance(dataset, CocoDataset) and info["source"] == dataset.SOURCE:
        return source_id
    if isinstance(source_id, (int, np.integer)) and not isinstance(source_id, bool):
        return int(source_id)
    return int(image_id)


def build_coco_results(dataset, image_ids, rois: np.ndarray, class_ids: np.ndarray,
                       scores: np.ndarray, masks: np.ndarray) -> list[dict[str, Any]]:
    """COCO results records for the detections of ONE image (Matterport's signature).

    image_ids: the image's COCO id (an int, or a one-element list as Matterport passes it).
    rois: [N, (y1, x1, y2, x2)] pixels; masks: [H, W, N]. Boxes become COCO ``[x, y, w, h]``,
    masks compressed RLE (``counts`` as an ASCII string, JSON-ready) and class ids the source
    category ids (``dataset.class_info[class_id]["id"]``).
    """
    if rois is None:
        return []
    ids = [image_ids] if np.isscalar(image_ids) else list(image_ids)
    if len(ids) != 1:
        raise ValueError(f"build_coco_results takes the detections of one image, got "
                         f"{len(ids)} image ids; call it once per image")
    rois, class_ids, scores = np.asarray(rois), np.asarray(class_ids), np.asarray(scores)
    # A tiled detect()'s InstanceMasks stays as it is: masks[:, :, i] builds one mask at a time.
    masks = masks if hasattr(masks, "shape") else np.asarray(masks)
    count = len(rois)
    if not (len(class_ids) == len(scores) == count and masks.ndim == 3
            and masks.shape[2] == count):
        raise ValueError(f"detections disagree: rois {rois.shape}, class_ids {class_ids.shape}, "
                         f"scores {scores.shape}, masks {masks.shape} (expected [N, 4], [N], [N], "
                         "[H, W, N])")
    results = []
    for i in range(count):
        y1, x1, y2, x2 = (float(v) for v in rois[i])
        rle = coco_mask.encode(np.asfortranarray(masks[:, :, i].astype(np.uint8)))
        results.append({
            "image_id": ids[0] if isinstance(ids[0], str) else int(ids[0]),
            "category_id": int(dataset.class_info[int(class_ids[i])]["id"]),
            "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
            "score": float(scores[i]),
            "segmentation": {"size": [int(s) for s in rle["size"]],
                             "counts": rle["counts"].decode("ascii")},
        })
    return results


def detections_to_coco_results(dataset, image_ids: Sequence[int],
                               detections: Sequence[dict]) -> list[dict[str, Any]]:
    """COCO results of many images; ``detections[i]`` is ``model.detect()``'s dict for
    ``image_ids[i]`` (internal dataset ids)."""
    if len(image_ids) != len(detections):
        raise ValueError(f"got {len(image_ids)} image ids but {len(detections)} detection dicts")
    results = []
    for image_id, found in zip(image_ids, detections, strict=True):
        results += build_coco_results(dataset, [coco_image_id(dataset, image_id)], found["rois"],
                                      found["class_ids"], found["scores"], found["masks"])
    return results


def build_coco_ground_truth(dataset, image_ids: Sequence[int] | None = None) -> COCO:
    """A pycocotools ``COCO`` index of ``dataset``'s instances rasterized from ``load_mask``.

    For datasets without an annotation file (COCO-format ones have
    :meth:`CocoDataset.coco_ground_truth`): areas are mask pixel counts, masks RLE. Category
    ids are the source ids of ``dataset.class_info`` (they must be unique), image ids follow
    :func:`coco_image_id`; crowd instances (negative class ids) get ``iscrowd=1``.
    """
    image_ids = list(dataset.image_ids if image_ids is None else image_ids)
    categories = {}
    for class_id in range(1, dataset.num_classes):
        cat_id = int(dataset.class_info[class_id]["id"])
        if cat_id in categories:
            raise ValueError(f"classes {categories[cat_id]['name']!r} and "
                             f"{dataset.class_names[class_id]!r} share source id {cat_id}; "
                             "COCO evaluation needs one id per class")
        categories[cat_id] = {"id": cat_id, "name": dataset.class_names[class_id]}
    images, annotations = [], []
    for image_id in image_ids:
        masks, class_ids = dataset.load_mask(image_id)
        info = dataset.image_info[image_id]
        if masks.shape[:2] != (0, 0):
            height, width = masks.shape[:2]
        elif info.get("height"):
            height, width = info["height"], info["width"]
        else:
            height, width = dataset.load_image(image_id).shape[:2]
        coco_id = coco_image_id(dataset, image_id)
        images.append({"id": coco_id, "height": int(height), "width": int(width),
                       "file_name": str(info.get("path") or info["id"])})
        for i, class_id in enumerate(class_ids):
            rle = coco_mask.encode(np.asfortranarray(masks[:, :, i].astype(np.uint8)))
            annotations.append({
                "id": len(annotations) + 1, "image_id": coco_id,
                "category_id": int(dataset.class_info[abs(int(class_id))]["id"]),
                "iscrowd": int(class_id < 0), "area": float(coco_mask.area(rle)),
                "bbox": coco_mask.toBbox(rle).tolist(), "segmentation": rle,
            })
    if len({image["id"] for image in images}) != len(images):
        raise ValueError("the evaluated images do not have unique COCO image ids")
    coco = COCO()
    coco.dataset = {"images": images, "categories": list(categories.values()),
                    "annotations": annotations}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    return coco


def evaluate_coco_results(coco_gt: COCO, results: Sequence[dict],
                          iou_types: Sequence[str] = IOU_TYPES,
                          image_ids: Sequence[int] | None = None,
                          category_ids: Sequence[int] | None = None) -> dict[str, Any]:
    """COCOeval of ``results`` (COCO results records) against ``coco_gt``.

    image_ids / category_ids: COCO ids to evaluate (default: all of ``coco_gt``). Returns the
    12 stats per IoU type, the per-class AP (IoU .5:.95, all areas, 100 detections) keyed by
    class name, and the number of images.
    """
    unknown_types = [t for t in iou_types if t not in IOU_TYPES]
    if unknown_types or not iou_types:
        raise ValueError(f"iou_types must be a non-empty subset of {IOU_TYPES}, got {iou_types}")
    image_ids = sorted(coco_gt.getImgIds() if image_ids is None else image_ids)
    category_ids = sorted(coco_gt.getCatIds() if category_ids is None else category_ids)
    missing = sorted({r["image_id"] for r in results} - set(coco_gt.getImgIds()), key=str)
    if missing:
        raise ValueError(f"results refer to image ids {missing[:10]} that are not in the ground "
                         "truth")
    unknown_ids = [c for c in category_ids if c not in coco_gt.cats]
    if unknown_ids:
        raise ValueError(f"category ids {unknown_ids} are not in the ground truth; it has "
                         f"{sorted(coco_gt.cats)}")
    names = _unique_class_names(coco_gt, category_ids)
    metrics: dict[str, Any] = {"per_class": {names[c]: {} for c in category_ids},
                               "images": len(image_ids)}
    for iou_type in iou_types:
        stats, per_class = _run_cocoeval(coco_gt, results, iou_type, image_ids, category_ids)
        metrics[iou_type] = stats
        for cat_id, ap in per_class.items():
            metrics["per_class"][names[cat_id]][iou_type] = ap
    return metrics


def load_ground_truth(dataset, image_ids: Sequence[int] | None = None) -> tuple[COCO, str]:
    """The ground truth that COCOeval scores ``image_ids`` against, and where it comes from.

    A COCO-format dataset (a :class:`CocoDataset`, D2S included) gives its annotation file's
    records (:meth:`CocoDataset.coco_ground_truth`: the file's areas, crowd regions and ids);
    any other dataset, or one mixing in images of other sources, gives masks rasterized from
    ``load_mask`` (:func:`build_coco_ground_truth`). Returns ``(index, "annotation file")``
    or ``(index, "load_mask")``.
    """
    image_ids = list(dataset.image_ids if image_ids is None else image_ids)
    if isinstance(dataset, CocoDataset):
        foreign = [i for i in image_ids if dataset.image_info[i]["source"] != dataset.SOURCE]
        if not foreign:
            return dataset.coco_ground_truth(image_ids), "annotation file"
        logger.warning("%d evaluated images are not from the %r annotation file (first: %r); "
                       "the ground truth of all is rasterized from load_mask", len(foreign),
                       dataset.SOURCE, dataset.image_reference(foreign[0]))
    return build_coco_ground_truth(dataset, image_ids), "load_mask"


def evaluate_detections(dataset, image_ids: Sequence[int], detections: Sequence[dict],
                        coco_gt: COCO | None = None, iou_types: Sequence[str] = IOU_TYPES,
                        results_path: str | Path | None = None) -> dict[str, Any]:
    """COCO bbox/segm metrics of ``model.detect()`` outputs on ``dataset``'s ``image_ids``.

    coco_gt: the ground truth to score against (e.g. ``load_coco(..., return_coco=True)``);
    by default :func:`load_ground_truth`'s. results_path: also write the COCO results JSON
    there. Only the dataset's classes are scored. The metrics carry ``"ground_truth"``:
    ``"annotation file"``, ``"load_mask"`` or ``"coco_gt argument"``.
    """
    image_ids = list(image_ids)
    results = detections_to_coco_results(dataset, image_ids, detections)
    if results_path is not None:
        save_coco_results(results, results_path)
    origin = "coco_gt argument"
    if coco_gt is None:
        coco_gt, origin = load_ground_truth(dataset, image_ids)
    category_ids = [int(dataset.class_info[c]["id"]) for c in range(1, dataset.num_classes)]
    metrics = evaluate_coco_results(coco_gt, results, iou_types,
                                    image_ids=[coco_image_id(dataset, i) for i in image_ids],
                                    category_ids=category_ids)
    metrics["ground_truth"] = origin
    return metrics


def evaluate_coco(model, dataset, coco: COCO | None = None,
                  eval_type: str | Sequence[str] = IOU_TYPES, limit: int = 0,
                  image_ids: Sequence[int] | None = None, progress: bool = True) -> dict[str, Any]:
    """Matterport's ``evaluate_coco``: ``model.detect`` on each image, then COCOeval.

    model: anything with ``detect([image]) -> [dict]`` (an inference-mode MaskRCNN with
    BATCH_SIZE 1). eval_type: ``"bbox"``, ``"segm"`` or both (the default; Matterport's was
    bbox only). limit: evaluate the first N images (0: all). coco: the original ground truth,
    as :func:`evaluate_detections` takes it.
    """
    iou_types = [eval_type] if isinstance(eval_type, str) else list(eval_type)
    image_ids = list(dataset.image_ids if image_ids is None else image_ids)
    if limit:
        image_ids = image_ids[:limit]
    started = time.perf_counter()
    detections = [model.detect([dataset.load_image(image_id)])[0]
                  for image_id in tqdm(image_ids, desc="detect", unit="img",
                                       disable=not progress)]
    seconds = time.perf_counter() - started
    logger.info("detection: %.2f s per image over %d images", seconds / max(len(image_ids), 1),
                len(image_ids))
    return evaluate_detections(dataset, image_ids, detections, coco_gt=coco, iou_types=iou_types)


def save_coco_results(results: Sequence[dict], path: str | Path) -> Path:
    """Write COCO results records as JSON (readable by any COCO tool); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(results)))
    return path


def _run_cocoeval(coco_gt: COCO, results: Sequence[dict], iou_type: str,
                  image_ids: list, category_ids: list) -> tuple[dict[str, float], dict]:
    records = [dict(r) for r in results]  # loadRes adds fields in place
    if iou_type == "segm":
        for record in records:
            record.pop("bbox", None)
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        coco_dt = coco_gt.loadRes(records) if records else _empty_results(coco_gt)
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        evaluator.params.imgIds = image_ids
        evaluator.params.catIds = category_ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    logger.debug("pycocotools %s output:\n%s", iou_type, printed.getvalue())
    stats = {name: float(value) for name, value in zip(STAT_NAMES, evaluator.stats, strict=True)}
    # precision: [IoU thresholds, recall points, classes, area ranges, max detections]
    precision = evaluator.eval["precision"]
    per_class = {}
    for k, cat_id in enumerate(evaluator.params.catIds):
        values = precision[:, :, k, 0, -1]
        values = values[values > -1]
        per_class[cat_id] = float(values.mean()) if values.size else -1.0
    return stats, per_class


def _unique_class_names(coco_gt: COCO, category_ids: Sequence[int]) -> dict[int, str]:
    """Class name per category id; names shared by several ids get the id appended."""
    counts = Counter(coco_gt.cats[c]["name"] for c in category_ids)
    return {c: coco_gt.cats[c]["name"] if counts[coco_gt.cats[c]["name"]] == 1
            else f"{coco_gt.cats[c]['name']} ({c})" for c in category_ids}


def _empty_results(coco_gt: COCO) -> COCO:
    """A results index without detections (pycocotools' loadRes rejects an empty list)."""
    coco_dt = COCO()
    coco_dt.dataset = {"images": list(coco_gt.dataset["images"]),
                       "categories": list(coco_gt.dataset["categories"]), "annotations": []}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt.createIndex()
    return coco_dt
