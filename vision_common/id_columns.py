"""The id column of a test list or sample submission CSV: which rows a submission must have."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence

__all__ = ["read_id_column"]


def read_id_column(path: str | os.PathLike, headers: Sequence[str],
                   image_suffixes: Sequence[str], *, column: str = "id",
                   entry: str = "an id") -> list[str]:
    """The ids, in order, of the CSV at ``path``.

    With a header row, the first column named as in ``headers`` (lower-case; the file's header
    in any case) is read and the other columns (an empty prediction, say) are ignored; without
    one, a single column of image file names (each ending in one of ``image_suffixes``).

    Args:
        path: the CSV (a UTF-8 byte-order mark is allowed; blank rows are skipped).
        headers: the accepted names of the id column, in order of preference.
        image_suffixes: lower-case file endings (``".png"``) that mark a header-less list.
        column, entry: how the error messages name the column ("id") and one value ("an id").

    Raises:
        ValueError: naming the file: it is empty, has no id column, or a row has no id.
    """
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = [cells for cells in csv.reader(handle) if any(cell.strip() for cell in cells)]
    if not rows:
        raise ValueError(f"{path}: empty file, expected {entry} per row")
    header = [cell.strip().lower() for cell in rows[0]]
    index = next((header.index(name) for name in headers if name in header), None)
    if index is None:
        if len(header) != 1 or not header[0].endswith(tuple(image_suffixes)):
            raise ValueError(f"{path}: the first row {rows[0]} names no {column} column; "
                             f"expected a header with one of {list(headers)} (any case), or "
                             "one image file name per row without a header")
        index, rows = 0, [[], *rows]
    ids = [cells[index].strip() if len(cells) > index else "" for cells in rows[1:]]
    if "" in ids:
        raise ValueError(f"{path}: {ids.count('')} row(s) without {entry}")
    return ids
