"""Parse a one-box-per-row CSV ``filename,xmin,ymin,xmax,ymax,class`` into localization samples.

What real exports look like: a header row or none (Roboflow's Keras RetinaNet CSV has none;
its TensorFlow Object Detection CSV has ``filename,width,height,class,xmin,ymin,xmax,ymax``:
columns are then found by name); pixel or normalized coordinates; any class names
(``mask``/``no-mask`` or ``with_mask``/``without_mask``/``mask_weared_incorrect``); several
rows per image.

Every bad row (wrong column count, non-numeric value, ``xmin >= xmax``, box outside the image,
unknown file, unknown class) is reported with its 1-based line number. ``on_bad_row="skip"``
logs each one and keeps the rest; ``on_bad_row="error"`` raises :class:`AnnotationError`.
Boxes in the returned samples are normalized xyxy in ``[0, 1]`` of the original image.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

logger = logging.getLogger(__name__)

COLUMNS = ("filename", "xmin", "ymin", "xmax", "ymax", "class")
COLUMN_ALIASES = {
    "filename": ("filename", "file", "path", "image", "image_path", "image_id"),
    "xmin": ("xmin", "x1", "x_min"),
    "ymin": ("ymin", "y1", "y_min"),
    "xmax": ("xmax", "x2", "x_max"),
    "ymax": ("ymax", "y2", "y_max"),
    "class": ("class", "class_name", "label", "category"),
}
COORDINATE_MODES = ("auto", "pixel", "normalized")
MULTI_BOX_POLICIES = ("largest", "per_row")
BAD_ROW_ACTIONS = ("skip", "error")
# Subfolders searched (after the dataset folder itself) for a CSV filename.
IMAGE_SUBDIRS = ("images",)
TOLERANCE = 1e-6


@dataclass(frozen=True)
class RowProblem:
    """One rejected CSV row: its 1-based line number and why."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class AnnotationError(ValueError):
    """The CSV cannot be used; ``problems`` lists the offending rows."""

    def __init__(self, message: str, problems: Sequence[RowProblem] = ()):
        self.problems = list(problems)
        details = "; ".join(str(problem) for problem in self.problems[:20])
        more = f" (+{len(self.problems) - 20} more)" if len(self.problems) > 20 else ""
        super().__init__(f"{message}: {details}{more}" if details else message)


@dataclass(frozen=True)
class LocalizationSample:
    """One training target: an image, its box and its class.

    ``box`` is normalized xyxy in ``[0, 1]``; ``image_size`` is the original ``(width, height)``.
    """

    filename: str
    path: Path
    box: tuple[float, float, float, float]
    class_index: int
    image_size: tuple[int, int]
    line: int


@dataclass
class AnnotationTable:
    """Parsed CSV: samples after the multi-box policy, the class names, and the rejected rows."""

    samples: list[LocalizationSample]
    class_names: list[str]
    coordinates: str
    problems: list[RowProblem] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    line: int
    filename: str
    coords: tuple[float, float, float, float]
    class_name: str


def resolve_image_path(image_root: Path, filename: str) -> Path | None:
    """Path of ``filename`` in ``image_root`` or its ``images/`` subfolder, or None if absent."""
    for folder in (image_root, *(image_root / sub for sub in IMAGE_SUBDIRS)):
        candidate = folder / filename
        if candidate.is_file():
            return candidate
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _header_mapping(header: list[str]) -> dict[str, int]:
    names = [cell.strip().lower() for cell in header]
    mapping = {}
    for column, aliases in COLUMN_ALIASES.items():
        matches = [index for index, name in enumerate(names) if name in aliases]
        if matches:
            mapping[column] = matches[0]
    if len(mapping) == len(COLUMNS):
        return mapping
    logger.warning("header %s does not name all of %s; reading columns by position",
                   header, COLUMNS)
    return {column: index for index, column in enumerate(COLUMNS)}


def _read_rows(csv_path: Path, problems: list[RowProblem]) -> list[_Row]:
    rows = []
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        mapping = None
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if mapping is None:
                looks_like_header = len(cells) >= 5 and not all(_is_number(c) for c in cells[1:5])
                if looks_like_header:
                    mapping = _header_mapping(cells)
                    continue
                mapping = {column: index for index, column in enumerate(COLUMNS)}
            width = max(mapping.values()) + 1
            if len(cells) < width:
                problems.append(RowProblem(line, f"expected {width} columns, got {len(cells)}"))
                continue
            values = {column: cells[index].strip() for column, index in mapping.items()}
            bad = [f"{name}={values[name]!r}" for name in COLUMNS[1:5]
                   if not _is_number(values[name])]
            if bad:
                problems.append(RowProblem(line, "non-numeric coordinate " + ", ".join(bad)))
                continue
            if not values["filename"] or not values["class"]:
                problems.append(RowProblem(line, "empty filename or class"))
                continue
            coords = tuple(float(values[name]) for name in COLUMNS[1:5])
            rows.append(_Row(line, values["filename"], coords, values["class"]))
    return rows


def _image_size(path: Path) -> tuple[int, int] | None:
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError):
        return None


def _row_problem(row: _Row, size: tuple[int, int], normalized: bool) -> str | None:
    xmin, ymin, xmax, ymax = row.coords
    if xmin >= xmax or ymin >= ymax:
        return f"empty box: need xmin < xmax and ymin < ymax, got {row.coords}"
    limit_x, limit_y = (1.0, 1.0) if normalized else size
    if (min(xmin, ymin) < -TOLERANCE or xmax > limit_x + TOLERANCE
            or ymax > limit_y + TOLERANCE):
        frame = "[0, 1]" if normalized else f"the {size[0]}x{size[1]} image"
        return f"box {row.coords} lies outside {frame}"
    return None


def _apply_policy(samples: list[LocalizationSample], policy: str) -> list[LocalizationSample]:
    if policy == "per_row":
        return samples
    largest: dict[str, LocalizationSample] = {}
    for sample in samples:
        x1, y1, x2, y2 = sample.box
        best = largest.get(sample.filename)
        if best is None or (x2 - x1) * (y2 - y1) > (best.box[2] - best.box[0]) * (
                best.box[3] - best.box[1]):
            largest[sample.filename] = sample
    return list(largest.values())


def load_annotations(
    csv_path: str | Path,
    image_root: str | Path | None = None,
    *,
    coordinates: str = "auto",
    class_names: Sequence[str] | None = None,
    multi_box_policy: str = "largest",
    on_bad_row: str = "skip",
) -> AnnotationTable:
    """Read and validate a localization CSV.

    Args:
        csv_path: the CSV (header row optional; columns by header name or by position).
        image_root: folder holding the images (or an ``images/`` subfolder); default: CSV folder.
        coordinates: ``"pixel"``, ``"normalized"`` or ``"auto"`` (normalized when every
            coordinate lies in ``[0, 1]``).
        class_names: the allowed classes in index order; default: sorted names found in the file.
        multi_box_policy: ``"largest"`` keeps the largest box of each image (ties: first row),
            ``"per_row"`` makes one sample per row.
        on_bad_row: ``"skip"`` (log and drop) or ``"error"`` (raise AnnotationError).
    Returns:
        An :class:`AnnotationTable` in first-appearance order of the files.
    """
    for label, value, allowed in (("coordinates", coordinates, COORDINATE_MODES),
                                  ("multi_box_policy", multi_box_policy, MULTI_BOX_POLICIES),
                                  ("on_bad_row", on_bad_row, BAD_ROW_ACTIONS)):
        if value not in allowed:
            raise ValueError(f"{label} must be one of {list(allowed)}, got {value!r}")
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"annotation CSV not found: {csv_path}")
    image_root = Path(image_root) if image_root is not None else csv_path.parent

    problems: list[RowProblem] = []
    rows = _read_rows(csv_path, problems)
    if coordinates == "auto":
        values = [value for row in rows for value in row.coords]
        coordinates = "normalized" if values and max(values) <= 1.0 else "pixel"
        logger.info("%s: coordinates detected as %s", csv_path.name, coordinates)
    normalized = coordinates == "normalized"
    known_classes = list(class_names) if class_names is not None else sorted(
        {row.class_name for row in rows})
    class_index = {name: index for index, name in enumerate(known_classes)}

    sizes: dict[str, tuple[Path, tuple[int, int]] | None] = {}
    samples = []
    for row in rows:
        if row.filename not in sizes:
            path = resolve_image_path(image_root, row.filename)
            size = _image_size(path) if path is not None else None
            sizes[row.filename] = (path, size) if size is not None else None
        found = sizes[row.filename]
        if found is None:
            problems.append(RowProblem(row.line, f"image {row.filename!r} not found or "
                                                 f"unreadable under {image_root}"))
            continue
        if row.class_name not in class_index:
            problems.append(RowProblem(row.line, f"unknown class {row.class_name!r}; "
                                                 f"expected one of {known_classes}"))
            continue
        path, (width, height) = found
        reason = _row_problem(row, (width, height), normalized)
        if reason is not None:
            problems.append(RowProblem(row.line, reason))
            continue
        box = row.coords if normalized else (row.coords[0] / width, row.coords[1] / height,
                                             row.coords[2] / width, row.coords[3] / height)
        box = tuple(min(max(value, 0.0), 1.0) for value in box)
        samples.append(LocalizationSample(row.filename, path, box, class_index[row.class_name],
                                          (width, height), row.line))

    problems.sort(key=lambda problem: problem.line)
    if problems and on_bad_row == "error":
        raise AnnotationError(f"{csv_path}: {len(problems)} bad row(s)", problems)
    for problem in problems:
        logger.warning("%s: skipped %s", csv_path.name, problem)
    if not samples:
        raise AnnotationError(f"{csv_path}: no usable rows", problems)
    return AnnotationTable(_apply_policy(samples, multi_box_policy), known_classes,
                           coordinates, problems)


def load_filename_list(csv_path: str | Path) -> list[str]:
    """First column of a test-list CSV (one filename per row; a ``filename`` header is skipped)."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"file list not found: {csv_path}")
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        names = [cells[0].strip() for cells in csv.reader(handle) if cells and cells[0].strip()]
    if names and names[0].lower() in COLUMN_ALIASES["filename"]:
        names = names[1:]
    return names
