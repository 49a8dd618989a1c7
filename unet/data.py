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
    with open(csv_path, newline="") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        raise ValueError(f"{csv_path}: no data rows")
    id_index = _pick_column(rows[0], ID_COLUMNS, id_column, "id")
    rle_index = _pick_column(rows[0], RLE_COLUMNS, rle_column, "RLE")
    images_dir = Path(images_dir)
    samples, skipped = [], []
    for line, row in enumerate(rows[1:], start=2):
        image_id = row[id_index].strip()
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
    with open(json_path) as handle:
        coco = json.load(handle)
    person_ids = {c["id"] for c in coco.get("categories", []) if c.get("name") == "person"}
    if not person_ids:
        raise ValueError(f"{json_path}: no category named 'person'")
    segmentations: dict[int, list] = {}
    for annotation in coco.get("annotations", []):
        if annotation.get("category_id") not in person_ids or not annotation.get("segmentation"):
            continue
        if annotation.get("iscrowd", 0) and not include_crowd:
            continue
        if annotation.get("area", 0.0) < min_area:
            continue
        segmentations.setdefault(annotation["image_id"], []).append(annotation["segmentation"])
    images_dir = Path(images_dir)
    samples, skipped = [], []
    for info in coco.get("images", []):
        persons = segmentations.get(info["id"], [])
        if not persons and not keep_empty:
            continue
        path = images_dir / info["file_name"]
        if not path.is_file():
            skipped.append((str(path), "listed in the COCO file but missing"))
            continue
        samples.append(SegmentationSample(
            Path(info["file_name"]).stem, str(path), coco_segmentations=persons,
            coco_size=(int(info["height"]), int(info["width"])),
        ))
    if not samples:
        raise ValueError(f"{json_path}: no image with a usable person annotation in {images_dir}")
    return samples, skipped


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
