"""Evaluate a model on a dataset: Matterport-style mAP and COCO AP, in one pass of detection."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from mrcnn.evaluation.matterport_ap import compute_ap, compute_ap_range
from mrcnn.geometry.boxes import extract_bboxes

logger = logging.getLogger(__name__)


def ground_truth(dataset, image_id: int) -> dict[str, np.ndarray]:
    """An image's GT at its original size: boxes, class ids, masks (crowd instances dropped)."""
    masks, class_ids = dataset.load_mask(image_id)
    keep = class_ids > 0
    masks, class_ids = masks[..., keep], class_ids[keep]
    return {"boxes": extract_bboxes(masks), "class_ids": class_ids.astype(np.int32), "masks": masks}


def evaluate_dataset(
    model,
    dataset,
    image_ids: Sequence[int] | None = None,
    limit: int | None = None,
    progress: bool = True,
    coco_results: str | Path | None = None,
) -> dict[str, Any]:
    """Run ``model.detect`` over ``dataset`` and score it.

    The model scores what its config lets through: the COCO protocol (and ``evaluate`` on the
    command line) uses ``DETECTION_MIN_CONFIDENCE = 0``. coco_results: also write the
    detections there as COCO results JSON (RLE masks).

    Returns ``{"mAP50": mean per-image AP@0.5 (Matterport), "mAP": mean per-image AP@[.5:.95],
    "bbox": {COCO stats}, "segm": {COCO stats}, "per_class": {name: {"bbox": AP, "segm": AP}},
    "images": N, "images_with_ground_truth": the images in the per-image means,
    "detection_min_confidence": the model's threshold (None if it has no config),
    "ground_truth": "annotation file" | "load_mask"}`` (see
    :func:`mrcnn.evaluation.coco.load_ground_truth`). Images without GT instances count in the
    COCO numbers (their detections are false positives) and are left out of the per-image
    means, as in Matterport.
    """
    from mrcnn.evaluation.coco import evaluate_detections

    image_ids = list(dataset.image_ids if image_ids is None else image_ids)
    if limit:
        image_ids = image_ids[:limit]
    if not image_ids:
        raise ValueError("evaluate_dataset: the dataset has no images to evaluate")
    aps50, aps = [], []
    detections = []
    for image_id in tqdm(image_ids, desc="evaluate", disable=not progress, unit="img"):
        image = dataset.load_image(image_id)
        result = model.detect([image])[0]
        detections.append(result)
        gt = ground_truth(dataset, image_id)
        if gt["class_ids"].size == 0:
            continue
        ap50, _, _, _ = compute_ap(gt["boxes"], gt["class_ids"], gt["masks"], result["rois"],
                                   result["class_ids"], result["scores"], result["masks"])
        aps50.append(ap50)
        aps.append(compute_ap_range(gt["boxes"], gt["class_ids"], gt["masks"], result["rois"],
                                    result["class_ids"], result["scores"], result["masks"],
                                    verbose=0))
    coco = evaluate_detections(dataset, image_ids, detections, results_path=coco_results)
    return {
        "mAP50": float(np.mean(aps50)) if aps50 else 0.0,
        "mAP": float(np.mean(aps)) if aps else 0.0,
        "bbox": coco["bbox"],
        "segm": coco["segm"],
        "per_class": coco["per_class"],
        "images": len(image_ids),
        "images_with_ground_truth": len(aps50),
        "detection_min_confidence": _min_confidence(model),
        "ground_truth": coco["ground_truth"],
    }


def format_metrics(metrics: dict[str, Any]) -> str:
    """A readable table of :func:`evaluate_dataset`'s result."""
    threshold = metrics.get("detection_min_confidence")
    scored = ("as the detector returned them" if threshold is None
              else f"score >= {threshold:g} (DETECTION_MIN_CONFIDENCE={threshold:g})")
    images, with_gt = metrics["images"], metrics.get("images_with_ground_truth", metrics["images"])
    lines = [f"images evaluated: {images}" + (f" ({with_gt} with ground truth: the per-image mAP "
                                              "averages those)" if with_gt != images else ""),
             f"detections scored: {scored}",
             f"COCO ground truth: {metrics.get('ground_truth', 'unknown')}",
             f"Matterport mAP@0.5        {metrics['mAP50']:.4f}",
             f"Matterport mAP@[.5:.95]   {metrics['mAP']:.4f}",
             "",
             f"{'COCO':10}" + "".join(f"{k:>8}" for k in metrics["bbox"])]
    for kind in ("bbox", "segm"):
        lines.append(f"{kind:10}" + "".join(f"{v:8.3f}" for v in metrics[kind].values()))
    if metrics["per_class"]:
        lines += ["", f"{'class':24}{'bbox AP':>10}{'segm AP':>10}"]
        for name, values in metrics["per_class"].items():
            lines.append(f"{name:24}{values.get('bbox', float('nan')):10.3f}"
                         f"{values.get('segm', float('nan')):10.3f}")
    return "\n".join(lines)


def _min_confidence(model) -> float | None:
    """The detector's ``DETECTION_MIN_CONFIDENCE``; None for one without a Matterport config."""
    value = getattr(getattr(model, "config", None), "DETECTION_MIN_CONFIDENCE", None)
    return None if value is None else float(value)
