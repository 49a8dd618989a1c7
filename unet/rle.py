"""Run-length encoding of binary masks and Kaggle submission CSVs.

Default convention (Kaggle Carvana/Airbus, Supervisely person): pixels numbered top to bottom,
then left to right (``order="F"``, column-major), starting at 1 (``index_base=1``); the string is
"start length start length ..."; an empty mask is the empty string. Example: the 3x3 mask
``[[0,1,1],[0,1,0],[1,1,0]]`` encodes to ``"3 5"`` (``order="C"``: ``"2 2 5 1 7 2"``).

A submission has one row per image id; the row of an image that could not be read (an error
row) has the id and an empty mask, as the format has no other way to leave a row blank.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence

import numpy as np

from unet.imaging import IMAGE_EXTENSIONS
from vision_common.id_columns import read_id_column

ORDERS = ("F", "C")
# Header names of the id column of a test list or sample submission (compared lower-case):
# Kaggle's ``id`` / ``ImageId`` / ``image_id``, or a file-name column.
ID_HEADERS = ("id", "imageid", "image_id", "img", "image", "filename", "file_name", "name")


def _check_order(order: str) -> None:
    if order not in ORDERS:
        raise ValueError(f"order must be 'F' (column-major) or 'C' (row-major); got {order!r}")


def encode_rle(mask: np.ndarray, order: str = "F", index_base: int = 1) -> str:
    """Encodes a binary ``(H, W)`` mask (any non-zero value is foreground)."""
    _check_order(order)
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"expected an (H, W) mask; got shape {mask.shape}")
    pixels = np.concatenate([[0], mask.ravel(order=order) != 0, [0]]).astype(np.int8)
    changes = np.flatnonzero(np.diff(pixels))
    starts, ends = changes[0::2], changes[1::2]
    runs = np.empty(2 * len(starts), dtype=np.int64)
    runs[0::2] = starts + index_base
    runs[1::2] = ends - starts
    return " ".join(map(str, runs))


def parse_rle(rle: str, size: int, index_base: int = 1) -> np.ndarray:
    """Validates an RLE string for ``size`` pixels; returns runs ``(N, 2)`` as 0-based starts.

    Raises ValueError unless: an even count of integers, lengths >= 1, starts >= index_base,
    runs sorted and non-overlapping, and inside the image.
    """
    text = "" if rle is None else str(rle).strip()
    if not text or text.lower() == "nan":
        return np.zeros((0, 2), dtype=np.int64)
    try:
        values = np.array([int(token) for token in text.split()], dtype=np.int64)
    except (ValueError, OverflowError):  # OverflowError: a number beyond int64
        raise ValueError(f"RLE must contain integers (below 2**63) only; got {text[:40]!r}") from None
    if len(values) % 2:
        raise ValueError(f"RLE needs start/length pairs; got {len(values)} numbers")
    runs = values.reshape(-1, 2).copy()
    runs[:, 0] -= index_base
    if (runs[:, 1] < 1).any():
        raise ValueError("RLE run lengths must be positive")
    if (runs[:, 0] < 0).any():
        raise ValueError(f"RLE starts must be >= {index_base}")
    ends = runs[:, 0] + runs[:, 1]
    if (runs[1:, 0] < ends[:-1]).any():
        raise ValueError("RLE runs must be sorted and must not overlap")
    if len(runs) and ends[-1] > size:
        raise ValueError(f"RLE run ends at pixel {ends[-1]} beyond the {size}-pixel image")
    return runs


def decode_rle(
    rle: str, shape: tuple[int, int], order: str = "F", index_base: int = 1
) -> np.ndarray:
    """Decodes an RLE string into a ``uint8`` mask of ``shape = (H, W)`` with values {0, 1}."""
    _check_order(order)
    height, width = shape
    flat = np.zeros(height * width, dtype=np.uint8)
    for start, length in parse_rle(rle, height * width, index_base):
        flat[start : start + length] = 1
    return flat.reshape((height, width), order=order)


def write_submission(
    path: str | os.PathLike,
    rows: Iterable[tuple[str, str]],
    header: Sequence[str] = ("id", "rle_mask"),
) -> int:
    """Writes ``(image_id, rle)`` rows to a CSV (empty masks as an empty field); returns the count."""
    count = 0
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for image_id, rle in rows:
            writer.writerow([image_id, rle])
            count += 1
    return count


def load_submission_ids(path: str | os.PathLike) -> list[str]:
    """Image ids, in order, from a test list or a sample submission CSV.

    With a header row, the first column named as in ``ID_HEADERS`` (any case) is read and the
    other columns (e.g. an empty ``rle_mask``) are ignored; without one, a single column of
    file names (each with an image extension). Raises ValueError naming the file otherwise.
    """
    return read_id_column(path, ID_HEADERS, IMAGE_EXTENSIONS)


def validate_submission(
    path: str | os.PathLike,
    expected_ids: Sequence[str],
    shapes: dict[str, tuple[int, int]],
    index_base: int = 1,
) -> None:
    """Checks a submission CSV: header, one row per expected id in order, valid RLE per row.

    ``shapes`` maps each id to its mask ``(H, W)``; an id without a shape (an error row) must
    have an empty mask. Raises ValueError naming the first problem.
    """
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows or len(rows[0]) != 2:
        raise ValueError(f"{path}: expected a 2-column header, got {rows[:1]}")
    body = rows[1:]
    ids = [row[0] for row in body]
    if ids != list(expected_ids):
        raise ValueError(
            f"{path}: {len(ids)} rows whose ids differ from the {len(expected_ids)} expected "
            f"(first expected {list(expected_ids)[:3]}, found {ids[:3]})"
        )
    for line, row in enumerate(body, start=2):
        if len(row) != 2:
            raise ValueError(f"{path}:{line}: expected 2 fields, got {len(row)}")
        if row[0] not in shapes:
            if row[1]:
                raise ValueError(f"{path}:{line} ({row[0]}): an error row must have an empty "
                                 "mask")
            continue
        height, width = shapes[row[0]]
        try:
            parse_rle(row[1], height * width, index_base)
        except ValueError as error:
            raise ValueError(f"{path}:{line} ({row[0]}): {error}") from None
