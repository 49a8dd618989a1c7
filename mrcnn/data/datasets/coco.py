"""COCO instances JSON as a Matterport ``Dataset`` (polygons, compressed and uncompressed RLE).

Layout (Matterport's, overridable with ``annotation_file`` / ``image_dir``)::

    {dataset_dir}/annotations/instances_{subset}{year}.json
    {dataset_dir}/{subset}{year}/*.jpg

Behaviour worth knowing:

- Category ids stay the source ids (sparse, 1..90 for COCO); ``prepare()`` maps them to the
  contiguous internal ids 1..N, and ``class_info[i]["id"]`` maps back.
- Crowd annotations (``iscrowd=1``, usually uncompressed RLE) are returned by ``load_mask`` with
  NEGATIVE class ids, as Matterport does: training uses them as "crowd boxes" that no proposal
  may be matched against, and evaluation ignores detections on them.
- Images without annotations are kept (they are negative examples), unless ``class_ids`` is
  given: then only images with at least one annotation of those classes are kept (Matterport).
- Malformed records (unknown image or category, bad polygon or RLE, box outside the image) are
  skipped with a warning naming the file and the record; the count is in ``load_issues``.
  Malformed files (bad JSON, missing ``images``/``categories``, bad category) raise
  :class:`mrcnn.data.dataset.DatasetError`.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO

from mrcnn.data.dataset import Dataset, DatasetError
from mrcnn.data.datasets.annotations import (
    LoadIssues,
    check_box_overlaps_image,
    check_coco_segmentation,
    check_image_size,
    coco_segmentation_to_mask,
    is_number,
    read_image_size,
)

logger = logging.getLogger(__name__)


def read_json_file(path: str | Path) -> Any:
    """Parsed JSON of ``path``; DatasetError naming the file if it is missing or not JSON."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError as error:
        raise DatasetError(f"annotation file not found: {path}") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path} is not valid JSON: {error}") from error


def coco_paths(dataset_dir: str | Path, subset: str, year: str = "2017",
               annotation_file: str | Path | None = None,
               image_dir: str | Path | None = None) -> tuple[Path, Path]:
    """(annotation file, image folder) of a subset in Matterport's COCO layout.

    The 2014 ``minival`` and ``valminusminival`` subsets take their images from ``val2014``.
    """
    dataset_dir = Path(dataset_dir)
    if annotation_file is None:
        annotation_file = dataset_dir / "annotations" / f"instances_{subset}{year}.json"
    if image_dir is None:
        image_subset = "val" if subset in ("minival", "valminusminival") else subset
        image_dir = dataset_dir / f"{image_subset}{year}"
    return Path(annotation_file), Path(image_dir)


class CocoDataset(Dataset):
    """Matterport ``CocoDataset``: ``load_coco(...)``, then ``prepare()``.

    ``load_mask`` returns bool[H, W, N] masks in original image pixels and int32[N] internal
    class ids, negative for crowd regions.
    """

    SOURCE = "coco"

    def __init__(self, class_map: dict | None = None) -> None:
        super().__init__(class_map)
        self.load_issues: list[str] = []

    def load_coco(self, dataset_dir: str | Path, subset: str, year: str = "2017",
                  class_ids: Iterable[int] | None = None, return_coco: bool = False,
                  annotation_file: str | Path | None = None,
                  image_dir: str | Path | None = None) -> COCO | None:
        """Register the classes and images of one COCO subset (e.g. ``"train"``, ``"val"``).

        class_ids: source category ids to load (default: all). return_coco: also return a
        pycocotools ``COCO`` object of the checked annotations (for COCOeval).
        """
        annotation_file, image_dir = coco_paths(dataset_dir, subset, year, annotation_file,
                                                image_dir)
        return self.load_coco_annotations(annotation_file, image_dir, class_ids, return_coco)

    def load_coco_annotations(self, annotation_file: str | Path, image_dir: str | Path,
                              class_ids: Iterable[int] | None = None,
                              return_coco: bool = False) -> COCO | None:
        """Same as ``load_coco`` with explicit paths: any COCO-format instances file."""
        annotation_file = Path(annotation_file)
        data = read_json_file(annotation_file)
        if not isinstance(data, dict):
            raise DatasetError(f"{annotation_file}: expected a JSON object with 'images' and "
                               f"'categories', got {type(data).__name__}")
        issues = LoadIssues(str(annotation_file))
        categories = _parse_categories(data, annotation_file)
        selected = sorted(categories) if class_ids is None else sorted(set(class_ids))
        unknown = [c for c in selected if c not in categories]
        if unknown:
            raise DatasetError(f"{annotation_file}: class_ids {unknown} are not categories of "
                               f"this file; known ids: {sorted(categories)}")
        images = _parse_images(data, annotation_file, Path(image_dir), issues)
        annotations = _parse_annotations(data, annotation_file, images, categories, issues)

        per_image: dict[Any, list[dict]] = {image_id: [] for image_id in images}
        wanted = set(selected)
        for ann in annotations:
            if ann["category_id"] in wanted:
                per_image[ann["image_id"]].append(ann)
        for cat_id in selected:
            self.add_class(self.SOURCE, cat_id, categories[cat_id]["name"])
        kept = 0
        for image_id, image in images.items():
            if class_ids is not None and not per_image[image_id]:
                continue
            self.add_image(self.SOURCE, image_id=image_id, path=image["path"],
                           width=image["width"], height=image["height"],
                           annotations=per_image[image_id])
            kept += 1
        issues.summarize()
        self.load_issues.extend(issues.messages)
        logger.info("%s: %d images, %d annotations, %d classes", annotation_file, kept,
                    sum(len(v) for v in per_image.values()), len(selected))
        if not return_coco:
            return None
        return _build_coco(images, categories, annotations)

    def load_mask(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """bool[H, W, N] instance masks and int32[N] class ids (negative for crowd regions).

        Annotations too small to cover a pixel are dropped (Matterport). An image without
        instances gives bool[H, W, 0] and int32[0].
        """
        info = self.image_info[image_id]
        if info["source"] != self.SOURCE:
            return super().load_mask(image_id)
        height, width = info["height"], info["width"]
        masks, class_ids = [], []
        for ann in info["annotations"]:
            class_id = self.map_source_class_id(f"{self.SOURCE}.{ann['category_id']}")
            mask = coco_segmentation_to_mask(ann["segmentation"], height, width)
            if not mask.any():
                continue
            masks.append(mask)
            class_ids.append(-class_id if ann.get("iscrowd") else class_id)
        if not masks:
            return np.zeros((height, width, 0), dtype=bool), np.zeros((0,), dtype=np.int32)
        return np.stack(masks, axis=2), np.array(class_ids, dtype=np.int32)

    def image_class_ids(self, image_id: int) -> list[int]:
        """Class ids of an image's annotations (crowd regions negative), without decoding masks."""
        info = self.image_info[image_id]
        if info["source"] != self.SOURCE:
            return list(self.load_mask(image_id)[1])
        return [(-1 if ann.get("iscrowd") else 1)
                * self.map_source_class_id(f"{self.SOURCE}.{ann['category_id']}")
                for ann in info["annotations"]]

    def coco_ground_truth(self, image_ids: Iterable[int] | None = None) -> COCO:
        """A pycocotools ``COCO`` index of the annotation-file records of ``image_ids``.

        image_ids: internal ids (default: every image). The index holds the file's own image
        ids, category ids and annotation records as loaded (their ``area``, ``bbox``,
        ``iscrowd`` and crowd RLE), so COCOeval on it scores as COCOeval on the file does;
        the records ``load_coco`` skipped as malformed are left out. Raises ValueError for an
        image that was not loaded from a COCO-format file by this class.
        """
        image_ids = self.image_ids if image_ids is None else image_ids
        images: dict[Any, dict] = {}
        annotations: list[dict] = []
        for image_id in image_ids:
            info = self.image_info[image_id]
            if info["source"] != self.SOURCE:
                raise ValueError(f"image {image_id} comes from source {info['source']!r}, not "
                                 f"from a {self.SOURCE!r} annotation file")
            if info["id"] not in images:
                images[info["id"]] = {"id": info["id"], "height": info["height"],
                                      "width": info["width"]}
                annotations += info["annotations"]
        categories = {info["id"]: {"id": info["id"], "name": info["name"]}
                      for info in self.class_info if info["source"] == self.SOURCE}
        return _build_coco(images, categories, annotations)

    def image_reference(self, image_id: int) -> str:
        """The COCO explorer link for COCO images, the file path otherwise."""
        info = self.image_info[image_id]
        if info["source"] == "coco":
            return f"http://cocodataset.org/#explore?id={info['id']}"
        return super().image_reference(image_id)


def _parse_categories(data: dict, path: Path) -> dict[int, dict]:
    records = data.get("categories")
    if not isinstance(records, list) or not records:
        raise DatasetError(f"{path}: 'categories' must be a non-empty list of "
                           "{'id': int, 'name': str} records")
    categories: dict[int, dict] = {}
    for index, record in enumerate(records):
        if not (isinstance(record, dict) and isinstance(record.get("id"), int)
                and not isinstance(record.get("id"), bool) and record["id"] >= 1
                and isinstance(record.get("name"), str)):
            raise DatasetError(f"{path}: categories[{index}] = {record!r} must be "
                               "{'id': int >= 1, 'name': str}")
        if record["id"] in categories:
            raise DatasetError(f"{path}: category id {record['id']} appears twice")
        categories[record["id"]] = record
    return categories


def _parse_images(data: dict, path: Path, image_dir: Path, issues: LoadIssues) -> dict:
    records = data.get("images")
    if not isinstance(records, list):
        raise DatasetError(f"{path}: 'images' must be a list of image records")
    images: dict[Any, dict] = {}
    for index, record in enumerate(records):
        where = f"{path}: images[{index}]"
        if not isinstance(record, dict) or not isinstance(record.get("file_name"), str) \
                or not isinstance(record.get("id"), (int, str)) or isinstance(record["id"], bool):
            issues.add(f"{where}: needs 'id' (int or str) and 'file_name' (str); skipped")
            continue
        if record["id"] in images:
            issues.add(f"{where}: image id {record['id']!r} appears twice; kept the first")
            continue
        image_path = image_dir / record["file_name"]
        height, width = record.get("height"), record.get("width")
        if height is None or width is None:  # not stored: read it from the file header
            try:
                height, width = read_image_size(image_path)
            except DatasetError as error:
                issues.add(f"{where}: no height/width and {error}; skipped")
                continue
        if isinstance(height, float) and isinstance(width, float) and height.is_integer() \
                and width.is_integer():  # some exporters write 480.0
            height, width = int(height), int(width)
        problem = check_image_size(height, width)
        if problem:
            issues.add(f"{where} ({record['file_name']}): {problem}; skipped")
            continue
        images[record["id"]] = {"id": record["id"], "file_name": record["file_name"],
                                "path": str(image_path), "height": height, "width": width}
    return images


def _parse_annotations(data: dict, path: Path, images: dict, categories: dict,
                       issues: LoadIssues) -> list[dict]:
    records = data.get("annotations", [])  # test-info files have none
    if not isinstance(records, list):
        raise DatasetError(f"{path}: 'annotations' must be a list of annotation records")
    kept = []
    for index, record in enumerate(records):
        ann_id = record.get("id") if isinstance(record, dict) else None
        where = f"{path}: annotations[{index}] (id {ann_id!r})"
        problem = _annotation_problem(record, images, categories)
        if problem:
            issues.add(f"{where}: {problem}; skipped")
            continue
        kept.append(record)
    return kept


def _annotation_problem(record: Any, images: dict, categories: dict) -> str | None:
    if not isinstance(record, dict):
        return "not a JSON object"
    image = images.get(record.get("image_id")) if _hashable(record.get("image_id")) else None
    if image is None:
        return f"refers to image_id {record.get('image_id')!r}, which is not in 'images'"
    category_id = record.get("category_id")
    if not _hashable(category_id) or category_id not in categories:
        return f"unknown category_id {category_id!r}; known ids: {sorted(categories)}"
    if record.get("iscrowd", 0) not in (0, 1):
        return f"iscrowd must be 0 or 1, got {record.get('iscrowd')!r}"
    problem = check_coco_segmentation(record.get("segmentation"), image["height"], image["width"])
    if problem:
        return f"{problem} (image {image['file_name']})"
    bbox = record.get("bbox")
    if bbox is not None:
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(is_number(v) for v in bbox)):
            return f"bbox must be [x, y, w, h], got {bbox!r}"
        x, y, w, h = bbox
        problem = check_box_overlaps_image(x, y, x + w, y + h, image["height"], image["width"])
        if problem:
            return f"{problem} (image {image['file_name']})"
    return None


def _hashable(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _build_coco(images: dict, categories: dict, annotations: list[dict]) -> COCO:
    """A pycocotools COCO index of the checked records, with ids, areas and boxes filled in."""
    next_id = 1 + max((a["id"] for a in annotations if isinstance(a.get("id"), int)), default=0)
    used_ids: set[int] = set()
    complete = []
    for ann in annotations:
        ann = dict(ann, iscrowd=ann.get("iscrowd", 0))
        if not isinstance(ann.get("id"), int) or ann["id"] in used_ids:
            ann["id"], next_id = next_id, next_id + 1
        used_ids.add(ann["id"])
        if "area" not in ann or "bbox" not in ann:
            image = images[ann["image_id"]]
            mask = coco_segmentation_to_mask(ann["segmentation"], image["height"], image["width"])
            rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
            ann.setdefault("area", float(coco_mask.area(rle)))
            ann.setdefault("bbox", coco_mask.toBbox(rle).tolist())
        complete.append(ann)
    coco = COCO()
    coco.dataset = {
        "images": [{k: v for k, v in image.items() if k != "path"} for image in images.values()],
        "categories": list(categories.values()),
        "annotations": complete,
    }
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    return coco
