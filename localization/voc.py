"""Read a folder of PASCAL VOC XML files (one per image) into localization samples.

The layout of Kaggle's face-mask set (andrewmvd/face-mask-detection): ``annotations/*.xml``
beside ``images/*.png``; VOC's own ``Annotations/`` + ``JPEGImages/`` works too. Each file is
``<annotation>`` with ``<filename>``, ``<size><width><height>`` and one ``<object>`` per box:
``<name>`` (the class) and ``<bndbox><xmin><ymin><xmax><ymax>``; ``<difficult>``,
``<truncated>``, ``<pose>`` and other elements are ignored (difficult objects are kept).

VOC boxes are 1-based inclusive pixel indices (``xmin=1, xmax=W`` is the full width); they are
read as the pixel-corner box ``(xmin - 1, ymin - 1, xmax, ymax)``, as detectron2 reads VOC, and
a ``0`` written by 0-based tools is taken as the image edge. The boxes then go through the same
validation and multi-box policy as a CSV (:func:`localization.annotations.build_table`): the
CSV row ``f.png,xmin-1,ymin-1,xmax,ymax,class`` gives the same sample.

A bad file (not well-formed XML, no ``<object>``, ``<size>`` that is not a positive integer or
not the image's size) or object (no ``<name>``/``<bndbox>``, a coordinate missing or not a
number, an empty box, a box outside the image) is reported by file name and object number; the
rest of the folder loads. A missing or zero ``<size>`` is taken from the image file.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from localization.annotations import (
    IMAGE_SUFFIXES,
    AnnotationRow,
    AnnotationTable,
    RowProblem,
    build_table,
    check_options,
    resolve_image_path,
)

# Folders of a dataset searched for VOC XML files, in this order.
VOC_SUBDIRS = ("annotations", "Annotations")
BOX_TAGS = ("xmin", "ymin", "xmax", "ymax")


class _Bad(ValueError):
    """One problem of a VOC file (object 0) or of one of its objects."""

    def __init__(self, reason: str, obj: int = 0):
        super().__init__(reason)
        self.obj = obj


def find_voc_folder(dataset: str | Path) -> Path | None:
    """``dataset/annotations`` (or ``Annotations``) if it holds ``*.xml`` files, else None."""
    for name in VOC_SUBDIRS:
        folder = Path(dataset) / name
        if folder.is_dir() and any(folder.glob("*.xml")):
            return folder
    return None


def _text(parent: ET.Element, path: str) -> str | None:
    element = parent.find(path)
    return element.text.strip() if element is not None and element.text else None


def _stated_size(root: ET.Element) -> tuple[int, int] | None:
    values = []
    for tag in ("width", "height"):
        text = _text(root, f"size/{tag}")
        try:
            value = int(float(text)) if text is not None else 0
        except (ValueError, OverflowError):
            raise _Bad(f"<size><{tag}> is {text!r}, expected a positive integer") from None
        if value < 0:
            raise _Bad(f"<size><{tag}> is {text!r}, expected a positive integer")
        values.append(value)
    return (values[0], values[1]) if min(values) > 0 else None  # 0 or absent: from the image


def _object_row(obj: ET.Element, number: int, filename: str, file: str,
                size: tuple[int, int] | None) -> AnnotationRow:
    name = _text(obj, "name")
    if not name:
        raise _Bad("no <name> (the class)", number)
    if obj.find("bndbox") is None:
        raise _Bad("no <bndbox>", number)
    coords = []
    for tag in BOX_TAGS:
        text = _text(obj, f"bndbox/{tag}")
        if text is None:
            raise _Bad(f"<bndbox><{tag}> missing", number)
        try:
            coords.append(float(text))
        except ValueError:
            raise _Bad(f"<bndbox><{tag}> is {text!r}, expected a number", number) from None
    xmin, ymin, xmax, ymax = coords
    corners = (max(xmin - 1, 0.0) if xmin >= 0 else xmin,
               max(ymin - 1, 0.0) if ymin >= 0 else ymin, xmax, ymax)
    return AnnotationRow(number, filename, corners, name, file, size)


def _image_name(root: ET.Element, xml_path: Path, image_root: Path) -> str:
    """``<filename>`` if that file exists, else an image with the XML file's stem."""
    stated = _text(root, "filename")
    if stated and resolve_image_path(image_root, stated) is not None:
        return stated
    for suffix in IMAGE_SUFFIXES:
        for candidate in (xml_path.stem + suffix, xml_path.stem + suffix.upper()):
            if resolve_image_path(image_root, candidate) is not None:
                return candidate
    return stated or xml_path.stem  # reported as not found by build_table


def parse_voc_file(xml_path: Path, image_root: Path,
                   problems: list[RowProblem]) -> list[AnnotationRow]:
    """Rows of one VOC file; its problems are appended to ``problems`` (nothing raises)."""
    rows = []
    try:
        try:
            root = ET.parse(xml_path).getroot()
        except ET.ParseError as error:
            raise _Bad(f"not well-formed XML ({error})") from None
        if root.tag != "annotation":
            raise _Bad(f"root element is <{root.tag}>, expected <annotation>")
        objects = root.findall("object")
        if not objects:
            raise _Bad("no <object>")
        filename = _image_name(root, xml_path, image_root)
        size = _stated_size(root)
        for number, obj in enumerate(objects, start=1):
            try:
                rows.append(_object_row(obj, number, filename, xml_path.name, size))
            except _Bad as bad:
                problems.append(RowProblem(bad.obj, str(bad), xml_path.name))
    except _Bad as bad:
        problems.append(RowProblem(bad.obj, str(bad), xml_path.name))
    except OSError as error:
        problems.append(RowProblem(0, f"unreadable ({error.strerror or error})", xml_path.name))
    return rows


def load_voc_annotations(
    xml_dir: str | Path,
    image_root: str | Path | None = None,
    *,
    class_names: Sequence[str] | None = None,
    multi_box_policy: str = "largest",
    on_bad_row: str = "skip",
) -> AnnotationTable:
    """Read and validate every ``*.xml`` of ``xml_dir`` (in sorted file-name order).

    Args:
        xml_dir: the folder of VOC files (a dataset's ``annotations/``).
        image_root: folder holding the images (or ``images/``, ``JPEGImages/``); default: the
            parent of ``xml_dir``.
        class_names, multi_box_policy, on_bad_row: as for
            :func:`localization.annotations.load_annotations` (problems are per file/object).
    Returns:
        An :class:`AnnotationTable` with pixel coordinates and ``source = xml_dir``.
    """
    check_options(multi_box_policy=multi_box_policy, on_bad_row=on_bad_row)
    xml_dir = Path(xml_dir)
    if not xml_dir.is_dir():
        raise FileNotFoundError(f"VOC annotation folder not found: {xml_dir}")
    files = sorted(xml_dir.glob("*.xml"))
    if not files:
        raise FileNotFoundError(f"{xml_dir} holds no *.xml files")
    image_root = Path(image_root) if image_root is not None else xml_dir.parent
    problems: list[RowProblem] = []
    rows = [row for path in files for row in parse_voc_file(path, image_root, problems)]
    return build_table(xml_dir, rows, problems, image_root, coordinates="pixel",
                       class_names=class_names, multi_box_policy=multi_box_policy,
                       on_bad_row=on_bad_row)
