"""VGG Image Annotator (VIA) JSON, as in Matterport's balloon sample.

Reads VIA 1.x exports (``regions`` a dict) and 2.x exports (``regions`` a list), mixed in one
file or spread over several files; a full VIA 2 project file (``_via_img_metadata``) works too.
Shapes: polygon, rect, circle and ellipse (both drawn as 64-gons). Points and polylines have no
area and are skipped with a warning.

Layout: ``{dataset_dir}/{subset}/*.json`` with the images next to them (Matterport's
``via_region_data.json``), or explicit ``json_files`` and ``image_dir``.

VIA stores no image sizes, so each image header is read at load time (cheap: the pixels are
not decoded). The class of a region comes from ``region_attributes[class_attribute]`` (a name,
or a VIA checkbox dict with one ticked option); without ``class_attribute`` every region is of
the one class ``class_names[0]`` (default ``"object"``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mrcnn.data.dataset import Dataset, DatasetError
from mrcnn.data.datasets.annotations import (
    LoadIssues,
    check_box_overlaps_image,
    check_polygon,
    is_number,
    polygons_to_mask,
    read_image_size,
)
from mrcnn.data.datasets.coco import read_json_file

logger = logging.getLogger(__name__)

ELLIPSE_POINTS = 64


class ViaDataset(Dataset):
    """Instances drawn in VIA; subclass with another ``SOURCE`` (e.g. ``"balloon"``) if wanted."""

    SOURCE = "via"

    def __init__(self, class_map: dict | None = None) -> None:
        super().__init__(class_map)
        self.load_issues: list[str] = []

    def load_via(self, dataset_dir: str | Path, subset: str | None = None,
                 json_files: Sequence[str | Path] | None = None,
                 class_attribute: str | None = None,
                 class_names: Sequence[str] | None = None,
                 image_dir: str | Path | None = None,
                 keep_empty_images: bool = False) -> None:
        """Register the classes and images of one split.

        class_names: the classes in id order (ids 1..N); regions of other classes are skipped.
        Default: ``["object"]`` without ``class_attribute``, else every name found, sorted.
        keep_empty_images: keep images without regions as background-only samples (Matterport
        drops them, since an unannotated image in VIA often means "not annotated yet").
        """
        folder = Path(dataset_dir) / subset if subset else Path(dataset_dir)
        files = [Path(f) for f in json_files] if json_files else sorted(folder.glob("*.json"))
        if not files:
            raise DatasetError(f"no VIA JSON file in {folder}")
        issues = LoadIssues(", ".join(str(f) for f in files))
        images: dict[Path, dict] = {}
        for json_file in files:
            base = Path(image_dir) if image_dir is not None else json_file.parent
            for record_key, record in _via_records(json_file).items():
                where = f"{json_file}: {record_key!r}"
                image = _parse_record(record, base, where, class_attribute, issues)
                if image is None:
                    continue
                if image["path"] in images:
                    logger.warning("%s: image %s already listed; regions merged", where,
                                   image["path"])
                    images[image["path"]]["regions"] += image["regions"]
                else:
                    images[image["path"]] = image
        names = _class_names(images.values(), class_attribute, class_names)
        for class_id, name in enumerate(names, start=1):
            self.add_class(self.SOURCE, class_id, name)
        for image in images.values():
            regions = []
            for region in image["regions"]:
                name = names[0] if class_attribute is None else region["name"]
                if name in names:
                    regions.append({"class_id": names.index(name) + 1,
                                    "polygon": region["polygon"]})
                else:
                    issues.add(f"{region['where']}: class {name!r} is not one of "
                               f"{list(names)}; region skipped")
            if regions or keep_empty_images:
                self.add_image(self.SOURCE, image_id=image["filename"], path=image["path"],
                               height=image["height"], width=image["width"], regions=regions)
        issues.summarize()
        self.load_issues.extend(issues.messages)

    def load_mask(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """bool[H, W, N] region masks (original pixels) and int32[N] class ids."""
        info = self.image_info[image_id]
        if info["source"] != self.SOURCE:
            return super().load_mask(image_id)
        height, width = info["height"], info["width"]
        masks, class_ids = [], []
        for region in info["regions"]:
            mask = polygons_to_mask([region["polygon"]], height, width)
            if mask.any():
                masks.append(mask)
                class_ids.append(self.map_source_class_id(f"{self.SOURCE}.{region['class_id']}"))
        if not masks:
            return np.zeros((height, width, 0), dtype=bool), np.zeros((0,), dtype=np.int32)
        return np.stack(masks, axis=2), np.array(class_ids, dtype=np.int32)


def _via_records(json_file: Path) -> dict:
    data = read_json_file(json_file)
    if isinstance(data, dict) and "_via_img_metadata" in data:  # a full VIA 2 project
        data = data["_via_img_metadata"]
    elif isinstance(data, dict) and {"project", "metadata", "file"} <= set(data):
        raise DatasetError(f"{json_file} is a VIA 3 project; export it from VIA 2 "
                           "(Annotation > Export as JSON) or convert it to COCO")
    if not isinstance(data, dict):
        raise DatasetError(f"{json_file}: expected a VIA JSON object of image records, got "
                           f"{type(data).__name__}")
    return data


def _parse_record(record: Any, base: Path, where: str, class_attribute: str | None,
                  issues: LoadIssues) -> dict | None:
    """{filename, path, height, width, regions: [{name, polygon, where}]} or None (skipped)."""
    if not isinstance(record, dict) or not isinstance(record.get("filename"), str):
        issues.add(f"{where}: not a VIA image record with a 'filename'; skipped")
        return None
    regions = record.get("regions", [])
    if isinstance(regions, dict):  # VIA 1.x
        regions = list(regions.values())
    if not isinstance(regions, list):
        issues.add(f"{where}: 'regions' must be a list (VIA 2) or a dict (VIA 1); skipped")
        return None
    path = base / record["filename"]
    try:
        height, width = read_image_size(path)
    except DatasetError as error:
        issues.add(f"{where}: {error}; image skipped")
        return None
    parsed = []
    for index, region in enumerate(regions):
        region_where = f"{where} region {index}"
        shape = region.get("shape_attributes") if isinstance(region, dict) else None
        polygon, problem = _shape_to_polygon(shape, height, width)
        name = None
        if problem is None:
            attributes = region.get("region_attributes") or {}
            name, problem = _region_class(attributes, class_attribute)
        if problem:
            issues.add(f"{region_where}: {problem}; region skipped")
            continue
        parsed.append({"name": name, "polygon": polygon, "where": region_where})
    return {"filename": record["filename"], "path": path, "height": height, "width": width,
            "regions": parsed}


def _shape_to_polygon(shape: Any, height: int, width: int) -> tuple[list[float], str | None]:
    """Flat ``[x0, y0, ...]`` pixel polygon of a VIA shape, or a problem."""
    if not isinstance(shape, dict):
        return [], "missing 'shape_attributes'"
    kind = shape.get("name")
    values = {k: shape.get(k) for k in ("x", "y", "width", "height", "cx", "cy", "r", "rx", "ry")}
    if kind == "polygon":
        xs, ys = shape.get("all_points_x"), shape.get("all_points_y")
        if not (isinstance(xs, list) and isinstance(ys, list) and len(xs) == len(ys)):
            return [], "polygon needs all_points_x and all_points_y of equal length"
        polygon = [v for point in zip(xs, ys, strict=True) for v in point]
    elif kind == "rect":
        x, y, w, h = (values[k] for k in ("x", "y", "width", "height"))
        if not all(is_number(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
            return [], f"rect needs numbers x, y and width, height > 0, got {shape!r}"
        polygon = [x, y, x + w, y, x + w, y + h, x, y + h]
    elif kind in ("circle", "ellipse"):
        radii = (values["r"], values["r"]) if kind == "circle" else (values["rx"], values["ry"])
        theta = shape.get("theta", 0) or 0
        if not all(is_number(v) for v in (values["cx"], values["cy"], *radii, theta)) \
                or min(radii) <= 0:
            return [], f"{kind} needs numbers cx, cy and radii > 0, got {shape!r}"
        polygon = _ellipse_polygon(values["cx"], values["cy"], *radii, theta)
    elif kind in ("point", "polyline"):
        return [], f"a {kind} has no area"
    else:
        return [], f"unknown shape {kind!r} (expected polygon, rect, circle or ellipse)"
    problem = check_polygon(polygon, height, width)
    if problem is None:
        xs, ys = polygon[0::2], polygon[1::2]
        problem = check_box_overlaps_image(min(xs), min(ys), max(xs), max(ys), height, width)
    return polygon, problem


def _ellipse_polygon(cx: float, cy: float, rx: float, ry: float, theta: float) -> list[float]:
    """64 vertices of an ellipse rotated by ``theta`` radians (VIA's convention)."""
    angles = np.linspace(0, 2 * math.pi, ELLIPSE_POINTS, endpoint=False)
    x = rx * np.cos(angles)
    y = ry * np.sin(angles)
    xs = cx + x * math.cos(theta) - y * math.sin(theta)
    ys = cy + x * math.sin(theta) + y * math.cos(theta)
    return np.stack([xs, ys], axis=1).ravel().tolist()


def _region_class(attributes: Any, class_attribute: str | None) -> tuple[str | None, str | None]:
    """(class name, problem); the name is None when every region has the single class."""
    if class_attribute is None:
        return None, None
    value = attributes.get(class_attribute) if isinstance(attributes, dict) else None
    if isinstance(value, dict):  # VIA checkbox attribute: {"option": true, ...}
        ticked = [k for k, v in value.items() if v]
        value = ticked[0] if len(ticked) == 1 else None
    if not isinstance(value, str) or not value.strip():
        return None, (f"region attribute {class_attribute!r} must name one class, got "
                      f"{value!r}")
    return value.strip(), None


def _class_names(images: Any, class_attribute: str | None,
                 class_names: Sequence[str] | None) -> tuple:
    if class_names is not None:
        if not class_names or len(set(class_names)) != len(class_names):
            raise ValueError(f"class_names must be distinct names, got {class_names!r}")
        names = tuple(class_names)
    elif class_attribute is None:
        names = ("object",)
    else:
        names = tuple(sorted({r["name"] for image in images for r in image["regions"]}))
    return names
