"""Parse a one-box-per-row CSV ``filename,xmin,ymin,xmax,ymax,class`` into localization samples.

(PASCAL VOC XML folders are read by :mod:`localization.voc` through the same validation and
multi-box policy, so the same boxes give the same samples in either format.)

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
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import UnidentifiedImageError

from localization.images import ARRAY_SUFFIX, read_image_size
from vision_common.id_columns import read_id_column

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
# Subfolders searched (after the dataset folder itself) for an annotated filename
# (``JPEGImages/`` is PASCAL VOC's own layout).
IMAGE_SUBDIRS = ("images", "JPEGImages")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ARRAY_SUFFIX)
TOLERANCE = 1e-6


@dataclass(frozen=True)
class RowProblem:
    """One rejected annotation and why.

    CSV: ``line`` is the 1-based line number. VOC: ``file`` is the XML file's name and ``line``
    the 1-based number of the ``<object>`` in it (0: the file as a whole).
    """

    line: int
    reason: str
    file: str = ""

    def __str__(self) -> str:
        if not self.file:
            return f"line {self.line}: {self.reason}"
        return f"{self.file}{f' object {self.line}' if self.line else ''}: {self.reason}"


class AnnotationError(ValueError):
    """The annotations cannot be used; ``problems`` lists the offending rows or files."""

    def __init__(self, message: str, problems: Sequence[RowProblem] = ()):
        self.problems = list(problems)
        details = "; ".join(str(problem) for problem in self.problems[:20])
        more = f" (+{len(self.problems) - 20} more)" if len(self.problems) > 20 else ""
        super().__init__(f"{message}: {details}{more}" if details else message)


@dataclass(frozen=True)
class LocalizationSample:
    """One training target: an image, its box and its class.

    ``box`` is normalized xyxy in ``[0, 1]``; ``image_size`` is the original ``(width, height)``;
    ``line`` is where it was annotated (CSV line, or the object's number in its VOC file).
    """

    filename: str
    path: Path
    box: tuple[float, float, float, float]
    class_index: int
    image_size: tuple[int, int]
    line: int


@dataclass
class AnnotationTable:
    """Parsed annotations: samples after the multi-box policy, class names, rejected rows.

    ``source`` is the CSV file or the folder of VOC XML files read.
    """

    samples: list[LocalizationSample]
    class_names: list[str]
    coordinates: str
    problems: list[RowProblem] = field(default_factory=list)
    source: Path | None = None


@dataclass(frozen=True)
class AnnotationRow:
    """One box as written in a file, before validation against its image.

    ``coords`` is xyxy in the file's frame (pixels, or normalized); ``stated_size`` is the image
    ``(width, height)`` the file claims (VOC ``<size>``), checked against the image when given.
    """

    line: int
    filename: str
    coords: tuple[float, float, float, float]
    class_name: str
    file: str = ""
    stated_size: tuple[int, int] | None = None


def resolve_image_path(image_root: Path, filename: str) -> Path | None:
    """Path of ``filename`` in ``image_root`` or its ``images/`` (``JPEGImages/``) subfolder,
    or None if absent."""
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


def _read_rows(csv_path: Path, problems: list[RowProblem]) -> list[AnnotationRow]:
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
            rows.append(AnnotationRow(line, values["filename"], coords, values["class"]))
    return rows


def _image_size(path: Path) -> tuple[int, int] | None:
    try:
        return read_image_size(path)
    except (OSError, ValueError, UnidentifiedImageError):
        return None


def _row_problem(row: AnnotationRow, size: tuple[int, int], normalized: bool) -> str | None:
    xmin, ymin, xmax, ymax = row.coords
    if not all(math.isfinite(value) for value in row.coords):
        return f"non-finite coordinate in {row.coords}"
    if row.stated_size is not None and tuple(row.stated_size) != tuple(size):
        stated = "x".join(map(str, row.stated_size))
        return f"<size> says {stated} but the image is {size[0]}x{size[1]}"
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


def check_options(**options: str) -> None:
    """Raise ValueError unless each of ``coordinates``/``multi_box_policy``/``on_bad_row`` given
    has an allowed value."""
    allowed = {"coordinates": COORDINATE_MODES, "multi_box_policy": MULTI_BOX_POLICIES,
               "on_bad_row": BAD_ROW_ACTIONS}
    for label, value in options.items():
        if value not in allowed[label]:
            raise ValueError(f"{label} must be one of {list(allowed[label])}, got {value!r}")


def build_table(
    source: Path,
    rows: Sequence[AnnotationRow],
    problems: list[RowProblem],
    image_root: Path,
    *,
    coordinates: str,
    class_names: Sequence[str] | None,
    multi_box_policy: str,
    on_bad_row: str,
) -> AnnotationTable:
    """Validate parsed rows against their images and apply the multi-box policy.

    ``coordinates`` is ``"pixel"`` or ``"normalized"``; ``problems`` holds what the parser
    already rejected and receives the rows rejected here (see :func:`load_annotations`).
    """
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
        reason = None
        if found is None:
            reason = f"image {row.filename!r} not found or unreadable under {image_root}"
        elif row.class_name not in class_index:
            reason = f"unknown class {row.class_name!r}; expected one of {known_classes}"
        else:
            reason = _row_problem(row, found[1], normalized)
        if reason is not None:
            problems.append(RowProblem(row.line, reason, row.file))
            continue
        path, (width, height) = found
        box = row.coords if normalized else (row.coords[0] / width, row.coords[1] / height,
                                             row.coords[2] / width, row.coords[3] / height)
        box = tuple(min(max(value, 0.0), 1.0) for value in box)
        samples.append(LocalizationSample(row.filename, path, box, class_index[row.class_name],
                                          (width, height), row.line))

    problems.sort(key=lambda problem: (problem.file, problem.line))
    unit = "row" if source.is_file() else "object"  # a CSV, or a folder of VOC files
    if problems and on_bad_row == "error":
        raise AnnotationError(f"{source}: {len(problems)} bad {unit}(s)", problems)
    for problem in problems:
        logger.warning("%s: skipped %s", source.name, problem)
    if not samples:
        raise AnnotationError(f"{source}: no usable {unit}s", problems)
    return AnnotationTable(_apply_policy(samples, multi_box_policy), known_classes,
                           coordinates, problems, source)


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
    check_options(coordinates=coordinates, multi_box_policy=multi_box_policy,
                  on_bad_row=on_bad_row)
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
    return build_table(csv_path, rows, problems, image_root, coordinates=coordinates,
                       class_names=class_names, multi_box_policy=multi_box_policy,
                       on_bad_row=on_bad_row)


# Header names of the id column in test lists and sample submissions (compared lower-case):
# ``filename`` (Roboflow), ``id``/``ImageId``/``image_id`` (Kaggle sample submissions), ...
TEST_LIST_COLUMNS = (*COLUMN_ALIASES["filename"], "file_name", "imageid", "id", "img")


def load_filename_list(csv_path: str | Path) -> list[str]:
    """Image file names, in order, from a test-list CSV or a sample submission.

    With a header row, the first column named as in ``TEST_LIST_COLUMNS`` is read (other
    columns, such as an empty prediction, are ignored); without one, a single column of file
    names (each with an image extension). Raises ValueError naming the file otherwise.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"file list not found: {csv_path}")
    return read_id_column(csv_path, TEST_LIST_COLUMNS, IMAGE_SUFFIXES, column="file",
                          entry="a file name")
