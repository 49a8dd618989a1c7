"""Person-segmentation datasets as lists of :class:`SegmentationSample`.

Three sources, one record type:
- folder pairs: ``images/`` and ``masks/`` matched by file stem (masks any size with the
  image's aspect ratio, values {0, 255} or {0, 1});
- a Kaggle CSV of RLE masks (column-major, 1-indexed, see :mod:`unet.rle`);
- COCO ``instances`` or ``person_keypoints`` JSON: all persons of an image merged into one mask.
Each sample loads as ``(image uint8 (H, W, C), mask uint8 (H, W) in {0, 1})``.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask

from unet.imaging import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    fit_mask_to_image,
    list_image_files,
    read_image,
    read_mask,
)
from unet.rle import decode_rle

logger = logging.getLogger(__name__)

ID_COLUMNS = ("id", "image_id", "imageid", "img", "image", "filename", "file_name")
EXIF_ORIENTATION = 0x0112  # tag; values 5..8 mean the image is displayed rotated by 90 degrees
RLE_COLUMNS = ("rle_mask", "encodedpixels", "encoded_pixels", "rle", "mask", "segmentation")


@dataclass
class SegmentationSample:
    """One image and where its mask comes from (exactly one of the three mask fields is used).

    ``rle``: Kaggle RLE string for the image's size; ``coco_segmentations``: COCO polygons or
    RLE dicts in the image's pixel frame (as stored, before EXIF rotation).
    """

    name: str
    image_path: str
    mask_path: str | None = None
    rle: str | None = None
    coco_segmentations: list = field(default_factory=list)
    coco_size: tuple[int, int] | None = None  # (height, width) stated by the COCO file

    def load(self, channels: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """Reads ``(image (H, W, channels) uint8, mask (H, W) uint8 {0, 1})``."""
        image = read_image(self.image_path, channels)
        return image, self.load_mask(image.shape[:2])

    def load_mask(self, image_hw: tuple[int, int]) -> np.ndarray:
        """The mask in the image's frame ``(H, W)``; raises ImageReadError naming the file."""
        if self.mask_path is not None:
            return fit_mask_to_image(read_mask(self.mask_path), image_hw, self.mask_path)
        if self.rle is not None:
            try:
                return decode_rle(self.rle, image_hw)
            except ValueError as error:
                raise ImageReadError(f"{self.image_path}: bad RLE mask ({error})") from None
        return merge_coco_segmentations(self.coco_segmentations, self.coco_size or image_hw,
                                        image_hw, self.image_path)

    def check(self) -> None:
        """Cheap validation (headers only): the image opens and the mask fits it."""
        height, width = header_size(self.image_path)
        if self.mask_path is not None:
            mask_h, mask_w = header_size(self.mask_path)
            fit_mask_to_image(np.zeros((mask_h, mask_w), np.uint8), (height, width),
                              self.mask_path)


def merge_coco_segmentations(segmentations, coco_hw, image_hw, source) -> np.ndarray:
    """OR of COCO polygons / RLEs drawn at ``coco_hw``, resized to ``image_hw``: ``(H, W)`` {0,1}."""
    height, width = coco_hw
    mask = np.zeros((height, width), np.uint8)
    for segmentation in segmentations:
        if isinstance(segmentation, list):
            rles = coco_mask.frPyObjects(segmentation, height, width)
            decoded = coco_mask.decode(coco_mask.merge(rles))
        elif isinstance(segmentation.get("counts"), list):  # uncompressed (crowd) RLE
            decoded = coco_mask.decode(coco_mask.frPyObjects(segmentation, height, width))
        else:
            decoded = coco_mask.decode(segmentation)
        mask |= decoded.astype(np.uint8)
    if tuple(image_hw) != (height, width) and tuple(image_hw) == (width, height):
        logger.warning("%s: image is rotated relative to its COCO annotation", source)
        mask = np.ascontiguousarray(mask.T)
    return fit_mask_to_image(mask, image_hw, source)


def find_by_stem(folder: Path, stem: str) -> Path | None:
    """The file ``folder/stem.<image extension>`` if there is one (any extension case)."""
    for extension in IMAGE_EXTENSIONS:
        for candidate in (folder / f"{stem}{extension}", folder / f"{stem}{extension.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def load_folder_pairs(
    dataset_dir: str | os.PathLike, images: str = "images", masks: str = "masks"
) -> tuple[list[SegmentationSample], list[tuple[str, str]]]:
    """Samples for ``dataset_dir/images/*`` with masks ``dataset_dir/masks/<same stem>.*``.

    Returns ``(samples, skipped)`` where ``skipped`` lists ``(path, reason)``: non-image files
    and images without a mask. Raises ValueError when a folder is missing or empty.
    """
    root = Path(dataset_dir)
    image_files, skipped = list_image_files(root / images)
    mask_dir = root / masks
    if not mask_dir.is_dir():
        raise ValueError(f"{mask_dir}: mask folder not found (choose another with --masks)")
    samples = []
    for path in image_files:
        mask_path = find_by_stem(mask_dir, path.stem)
        if mask_path is None:
            skipped.append((str(path), f"no mask named {path.stem}.* in {mask_dir}"))
            continue
        samples.append(SegmentationSample(path.stem, str(path), mask_path=str(mask_path)))
    return samples, skipped


def _pick_column(header: list[str], candidates: tuple[str, ...], wanted: str | None, what: str):
    lowered = [name.strip().lower() for name in header]
    if wanted is not None:
        if wanted.lower() not in lowered:
            raise ValueError(f"CSV has no {what} column {wanted!r}; columns are {header}")
        return lowered.index(wanted.lower())
    for candidate in candidates:
        if candidate in lowered:
            return lowered.index(candidate)
    raise ValueError(f"CSV has no {what} column (looked for {list(candidates)}); got {header}")


def load_kaggle_csv(
    csv_path: str | os.PathLike,
    images_dir: str | os.PathLike,
    id_column: str | None = None,
    rle_column: str | None = None,
) -> tuple[list[SegmentationSample], list[tuple[str, str]]]:
    """Samples from a CSV of ``id, rle`` rows; ``id`` is an image file name with or without
    its extension in ``images_dir``. Returns ``(samples, skipped)``.
    """
    try:
        with open(csv_path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{csv_path}: not a readable CSV ({error})") from None
    if len(rows) < 2:
        raise ValueError(f"{csv_path}: no data rows")
    id_index = _pick_column(rows[0], ID_COLUMNS, id_column, "id")
    rle_index = _pick_column(rows[0], RLE_COLUMNS, rle_column, "RLE")
    images_dir = Path(images_dir)
    samples, skipped = [], []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) <= max(id_index, rle_index):
            skipped.append((f"{csv_path}:{line}", f"expected {len(rows[0])} fields, got {len(row)}"))
            continue
        image_id = row[id_index].strip()
        if not image_id or "\0" in image_id:
            skipped.append((f"{csv_path}:{line}", "empty image id"))
            continue
        path = images_dir / image_id
        if not path.is_file():
            path = find_by_stem(images_dir, Path(image_id).stem)
        if path is None:
            skipped.append((f"{csv_path}:{line}", f"image {image_id!r} not in {images_dir}"))
            continue
        samples.append(SegmentationSample(image_id, str(path), rle=row[rle_index]))
    if not samples:
        raise ValueError(f"{csv_path}: none of its images were found in {images_dir}")
    return samples, skipped


def load_coco_persons(
    json_path: str | os.PathLike,
    images_dir: str | os.PathLike,
    min_area: float = 0.0,
    include_crowd: bool = False,
    keep_empty: bool = False,
) -> tuple[list[SegmentationSample], list[tuple[str, str]]]:
    """Samples from a COCO ``instances_*.json`` or ``person_keypoints_*.json``.

    All "person" annotations of an image are merged. Persons with ``area < min_area`` (pixels)
    or ``iscrowd`` (unless ``include_crowd``) are dropped; images left without a person are
    dropped unless ``keep_empty``. Returns ``(samples, skipped)`` (skipped: missing files).
    """
    coco = _read_json_object(json_path)
    categories = _records(coco, "categories", json_path)
    person_ids = {c.get("id") for c in categories if c.get("name") == "person"}
    if not person_ids:
        raise ValueError(f"{json_path}: no category named 'person'")
    segmentations: dict[int, list] = {}
    for annotation in _records(coco, "annotations", json_path):
        if annotation.get("category_id") not in person_ids or not annotation.get("segmentation"):
            continue
        if annotation.get("iscrowd", 0) and not include_crowd:
            continue
        area = annotation.get("area", 0.0)
        if not isinstance(area, (int, float)) or area < min_area:
            continue
        if isinstance(annotation.get("image_id"), int):
            segmentations.setdefault(annotation["image_id"], []).append(annotation["segmentation"])
    images_dir = Path(images_dir)
    samples, skipped = [], []
    for info in _records(coco, "images", json_path):
        persons = segmentations.get(info.get("id"), []) if _hashable(info.get("id")) else []
        if not persons and not keep_empty:
            continue
        problem = _coco_image_problem(info, persons)
        if problem:
            skipped.append((f"{json_path}: image {info.get('id')!r}", problem))
            continue
        path = images_dir / info["file_name"]
        if not path.is_file():
            skipped.append((str(path), "listed in the COCO file but missing"))
            continue
        samples.append(SegmentationSample(
            Path(info["file_name"]).stem, str(path), coco_segmentations=persons,
            coco_size=(info["height"], info["width"]),
        ))
    if not samples:
        raise ValueError(f"{json_path}: no image with a usable person annotation in {images_dir}")
    return samples, skipped


def _read_json_object(path: str | os.PathLike) -> dict:
    """The JSON object in ``path``; ValueError naming the file for anything else."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a COCO JSON object, got {type(data).__name__}")
    return data


def _records(coco: dict, key: str, path) -> list[dict]:
    """``coco[key]`` as a list of dicts (non-dict entries dropped); ValueError if not a list."""
    value = coco.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{path}: {key!r} must be a list, got {type(value).__name__}")
    return [record for record in value if isinstance(record, dict)]


def _hashable(value) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _coco_image_problem(info: dict, segmentations: list) -> str | None:
    """Why an image record or one of its person segmentations cannot be drawn, or None."""
    height, width = info.get("height"), info.get("width")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (height, width)):
        return f"height/width must be integers >= 1, got {height!r}/{width!r}"
    name = info.get("file_name")
    if not isinstance(name, str) or not name.strip() or "\0" in name:
        return f"file_name must be a non-empty string, got {name!r}"
    for segmentation in segmentations:
        problem = _segmentation_problem(segmentation, height, width)
        if problem:
            return problem
    return None


def _segmentation_problem(segmentation, height: int, width: int) -> str | None:
    """pycocotools does no bounds checks: anything it cannot draw safely is refused here."""
    if isinstance(segmentation, list):
        for polygon in segmentation:
            if (not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                               and np.isfinite(v) and abs(v) < 1e6 for v in polygon)):
                return "polygons must be lists of at least 3 finite (x, y) pairs"
        return None
    if not isinstance(segmentation, dict) or segmentation.get("size") != [height, width]:
        return f"RLE must be a dict with size [{height}, {width}]"
    counts = segmentation.get("counts")
    if isinstance(counts, str):
        counts = _decode_compressed_counts(counts)
    if (not isinstance(counts, list)
            or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)
            or sum(counts) != height * width):
        return f"RLE counts must be non-negative integers summing to {height * width}"
    return None


def _decode_compressed_counts(text: str) -> list[int] | None:
    """COCO's compressed RLE string -> run lengths (None if malformed)."""
    counts, position = [], 0
    while position < len(text):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(text) or not 48 <= ord(text[position]) < 48 + 64:
                return None
            chunk = ord(text[position]) - 48
            value |= (chunk & 0x1F) << (5 * shift)
            more = bool(chunk & 0x20)
            position += 1
            shift += 1
            if not more and chunk & 0x10:
                value |= -1 << (5 * shift)
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def check_samples(
    samples: list[SegmentationSample],
) -> tuple[list[SegmentationSample], list[tuple[str, str]]]:
    """Splits samples into readable ones and ``(path, reason)`` for the bad ones (logged)."""
    good, bad = [], []
    for sample in samples:
        try:
            sample.check()
            good.append(sample)
        except (ImageReadError, OSError) as error:
            reason = str(error)
            bad.append((sample.image_path, reason))
            logger.warning("skipping %s: %s", sample.image_path, reason)
    return good, bad


def split_samples(
    samples: list[SegmentationSample], val_fraction: float = 0.2, seed: int = 0
) -> tuple[list[SegmentationSample], list[SegmentationSample]]:
    """Shuffled ``(train, val)`` split; val gets at least one sample when there are two or more."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1); got {val_fraction}")
    order = np.random.default_rng(seed).permutation(len(samples))
    count = int(round(len(samples) * val_fraction))
    if val_fraction > 0 and len(samples) > 1:
        count = max(count, 1)
    val = [samples[i] for i in order[:count]]
    return [samples[i] for i in order[count:]], val


def header_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(height, width)`` as displayed (EXIF orientation applied), read from the header only."""
    try:
        with Image.open(path) as handle:
            width, height = handle.size
            orientation = handle.getexif().get(EXIF_ORIENTATION, 1)
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageReadError(f"{path}: not a readable image ({error})") from None
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)
