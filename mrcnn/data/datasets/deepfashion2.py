"""DeepFashion2 in its official layout, its upper/lower grouping and a seeded train/val/test split.

Layout (``subset`` is ``train``, ``validation``, ... or a split made by :func:`prepare_split`)::

    {dataset_dir}/{subset}/image/000001.jpg
    {dataset_dir}/{subset}/annos/000001.json   # {"source", "pair_id", "item1": {...}, ...}

Each ``itemN`` holds ``segmentation`` (flat polygons), ``bounding_box`` ``[x1, y1, x2, y2]``,
``category_id`` 1..13 and ``category_name``, plus style, landmarks and visibility fields that
instance segmentation does not use. Image sizes are not stored, so each image header is read
once at load time. Items with a missing or degenerate segmentation, an unknown category or a
box outside the image are skipped with a warning naming the file and the item (counted in
``load_issues``); unreadable files are skipped the same way, so one bad file among 190,000
does not stop a training run.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mrcnn.data.dataset import Dataset, DatasetError
from mrcnn.data.datasets.annotations import (
    LoadIssues,
    check_box_overlaps_image,
    check_polygon,
    polygons_to_mask,
    read_image_size,
)
from mrcnn.data.datasets.coco import read_json_file

logger = logging.getLogger(__name__)

# DeepFashion2 category ids 1..13, in order.
CATEGORY_NAMES = (
    "short sleeve top", "long sleeve top", "short sleeve outwear", "long sleeve outwear",
    "vest", "sling", "shorts", "trousers", "skirt",
    "short sleeve dress", "long sleeve dress", "vest dress", "sling dress",
)
# The upper/lower grouping: shorts, trousers and skirt are "lower"; every other category is
# "upper", the four dress categories (10..13) included, as a dress covers the upper body.
UPPER_LOWER_NAMES = ("upper", "lower")
UPPER_LOWER = {category_id: 2 if name in ("shorts", "trousers", "skirt") else 1
               for category_id, name in enumerate(CATEGORY_NAMES, start=1)}
CLASS_SCHEMES = ("categories", "upper_lower")
SPLIT_NAMES = ("train", "val", "test")
LINK_MODES = ("auto", "hardlink", "symlink", "copy")
ITEM_KEY = re.compile(r"item(\d+)")


class DeepFashion2Dataset(Dataset):
    """DeepFashion2 garments; ``load_mask`` gives bool[H, W, N] and int32[N] class ids."""

    SOURCE = "deepfashion2"

    def __init__(self, class_map: dict | None = None) -> None:
        super().__init__(class_map)
        self.load_issues: list[str] = []

    def load_deepfashion2(self, dataset_dir: str | Path, subset: str,
                          class_scheme: str = "categories",
                          max_images: int | None = None) -> None:
        """Register one subset. class_scheme: ``"categories"`` (the 13 DeepFashion2 classes)
        or ``"upper_lower"`` (``upper`` / ``lower``, see ``UPPER_LOWER``). max_images: first N
        files by name."""
        if class_scheme not in CLASS_SCHEMES:
            raise ValueError(f"class_scheme must be one of {CLASS_SCHEMES}, got {class_scheme!r}")
        subset_dir = Path(dataset_dir) / subset
        annos_dir, image_dir = subset_dir / "annos", subset_dir / "image"
        if not annos_dir.is_dir():
            raise DatasetError(f"DeepFashion2 subset {subset!r}: no annotation folder "
                               f"{annos_dir} (expected {{subset}}/annos/*.json next to "
                               "{subset}/image/*.jpg)")
        names = CATEGORY_NAMES if class_scheme == "categories" else UPPER_LOWER_NAMES
        for class_id, name in enumerate(names, start=1):
            self.add_class(self.SOURCE, class_id, name)
        issues = LoadIssues(str(annos_dir))
        json_files = sorted(annos_dir.glob("*.json"))[:max_images]
        for json_path in json_files:
            self._add_annotated_image(json_path, image_dir / f"{json_path.stem}.jpg",
                                      class_scheme, issues)
        issues.summarize()
        self.load_issues.extend(issues.messages)
        logger.info("%s: %d images", subset_dir, len(self.image_info))

    def _add_annotated_image(self, json_path: Path, image_path: Path, class_scheme: str,
                             issues: LoadIssues) -> None:
        try:
            data = read_json_file(json_path)
            height, width = read_image_size(image_path)
        except DatasetError as error:
            issues.add(f"{error}; image skipped")
            return
        if not isinstance(data, dict):
            issues.add(f"{json_path}: expected a JSON object with item1..itemN; image skipped")
            return
        items = sorted((int(m.group(1)), key) for key in data
                       if (m := ITEM_KEY.fullmatch(key)))
        instances = []
        for _, key in items:
            where = f"{json_path}: {key}"
            polygons, problem = _item_polygons(data[key], height, width, where, issues)
            if problem:
                issues.add(f"{where}: {problem}; item skipped")
                continue
            category_id = data[key]["category_id"]
            class_id = category_id if class_scheme == "categories" else UPPER_LOWER[category_id]
            instances.append({"item": key, "category_id": category_id, "class_id": class_id,
                              "polygons": polygons})
        self.add_image(self.SOURCE, image_id=json_path.stem, path=image_path, height=height,
                       width=width, instances=instances, image_source=data.get("source"),
                       pair_id=data.get("pair_id"))

    def load_mask(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """bool[H, W, N] garment masks (original pixels) and int32[N] internal class ids."""
        info = self.image_info[image_id]
        if info["source"] != self.SOURCE:
            return super().load_mask(image_id)
        height, width = info["height"], info["width"]
        masks, class_ids = [], []
        for instance in info["instances"]:
            mask = polygons_to_mask(instance["polygons"], height, width)
            if mask.any():
                masks.append(mask)
                class_ids.append(self.map_source_class_id(f"{self.SOURCE}.{instance['class_id']}"))
        if not masks:
            return np.zeros((height, width, 0), dtype=bool), np.zeros((0,), dtype=np.int32)
        return np.stack(masks, axis=2), np.array(class_ids, dtype=np.int32)


def _item_polygons(item: Any, height: int, width: int, where: str,
                   issues: LoadIssues) -> tuple[list, str | None]:
    """(valid polygons, problem). Degenerate polygons are dropped one by one with a warning."""
    if not isinstance(item, dict):
        return [], "not a JSON object"
    category_id = item.get("category_id")
    if not isinstance(category_id, int) or isinstance(category_id, bool) \
            or category_id not in UPPER_LOWER:
        return [], f"unknown category_id {category_id!r} (expected 1..13)"
    box = item.get("bounding_box")
    if box is not None:
        if not (isinstance(box, list) and len(box) == 4):
            return [], f"bounding_box must be [x1, y1, x2, y2], got {box!r}"
        problem = check_box_overlaps_image(*box, height, width)
        if problem:
            return [], problem
    segmentation = item.get("segmentation")
    if not isinstance(segmentation, list) or not segmentation:
        return [], "missing or empty segmentation"
    polygons = []
    for index, polygon in enumerate(segmentation):
        problem = check_polygon(polygon, height, width)
        if problem:
            issues.add(f"{where}: segmentation[{index}]: {problem}; polygon dropped")
        else:
            polygons.append(polygon)
    return polygons, None if polygons else "no usable segmentation polygon"


def prepare_split(source_dir: str | Path, output_dir: str | Path,
                  ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 42,
                  max_images: int | None = None, source_subset: str = "train",
                  link: str = "auto", overwrite: bool = False) -> dict[str, list[str]]:
    """A reproducible split: shuffle the annotated images of one subset, cut train/val/test.

    Images with a matching ``annos/*.json`` are sorted by name, shuffled with
    ``random.Random(seed)`` (sorting first makes the split the same on every file system),
    cut to ``max_images`` and split by ``ratios``. Files are placed in the official layout
    under ``output_dir/{train,val,test}/{image,annos}``: hard links when the file system allows,
    else symlinks, else copies (``link="auto"``; or force one mode). Writes
    ``split_manifest.json``. Returns the image stems of each split.
    """
    source_dir, output_dir = Path(source_dir), Path(output_dir)
    ratios = tuple(float(r) for r in ratios)
    if len(ratios) != 3 or min(ratios) < 0 or abs(sum(ratios) - 1.0) > 1e-6:
        raise ValueError(f"ratios must be 3 non-negative fractions (train, val, test) summing "
                         f"to 1, got {ratios}")
    if link not in LINK_MODES:
        raise ValueError(f"link must be one of {LINK_MODES}, got {link!r}")
    if output_dir.resolve() == source_dir.resolve():
        raise ValueError(f"output_dir must differ from source_dir ({source_dir})")
    image_dir, annos_dir = source_dir / source_subset / "image", source_dir / source_subset / "annos"
    if not image_dir.is_dir() or not annos_dir.is_dir():
        raise DatasetError(f"expected {image_dir} and {annos_dir} (DeepFashion2 layout)")
    images = {p.stem for p in image_dir.glob("*.jpg")}
    annotated = {p.stem for p in annos_dir.glob("*.json")}
    if images ^ annotated:
        logger.warning("%s: %d image(s) without annotation and %d annotation(s) without image "
                       "are left out", source_dir / source_subset, len(images - annotated),
                       len(annotated - images))
    stems = sorted(images & annotated)
    random.Random(seed).shuffle(stems)
    stems = stems[:max_images]
    n_train = round(len(stems) * ratios[0])
    n_val = round(len(stems) * ratios[1])
    splits = {"train": stems[:n_train], "val": stems[n_train:n_train + n_val],
              "test": stems[n_train + n_val:]}
    for name in SPLIT_NAMES:
        target = output_dir / name
        if target.exists() and any(target.iterdir()):
            if not overwrite:
                raise DatasetError(f"{target} already exists and is not empty; pass "
                                   "overwrite=True to replace the split")
            shutil.rmtree(target)
    modes_used: dict[str, int] = {}
    for name, split_stems in splits.items():
        for stem in split_stems:
            for folder, suffix in (("image", ".jpg"), ("annos", ".json")):
                source = source_dir / source_subset / folder / f"{stem}{suffix}"
                used = _place(source, output_dir / name / folder / source.name, link)
                modes_used[used] = modes_used.get(used, 0) + 1
    manifest = {"source": str(source_dir / source_subset), "seed": seed, "ratios": ratios,
                "max_images": max_images, "splits": splits}
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "split_manifest.json").write_text(json.dumps(manifest, indent=1))
    logger.info("DeepFashion2 split in %s: %s images; files placed by %s", output_dir,
                {k: len(v) for k, v in splits.items()}, modes_used)
    return splits


def _place(source: Path, target: Path, link: str) -> str:
    """Hard-link, symlink or copy ``source`` to ``target``; returns the mode used."""
    target.parent.mkdir(parents=True, exist_ok=True)
    modes = ("hardlink", "symlink", "copy") if link == "auto" else (link,)
    for mode in modes[:-1]:
        try:
            _link(mode, source, target)
            return mode
        except OSError as error:
            logger.debug("%s of %s failed (%s); trying the next mode", mode, source, error)
    _link(modes[-1], source, target)
    return modes[-1]


def _link(mode: str, source: Path, target: Path) -> None:
    if mode == "hardlink":
        os.link(source, target)
    elif mode == "symlink":
        os.symlink(source.resolve(), target)
    else:
        shutil.copy2(source, target)
