"""Kaggle run-length encoding of instance masks and the ``ImageId,EncodedPixels`` submission CSV.

Kaggle's convention (Data Science Bowl 2018 and most Kaggle segmentation contests): pixels are
numbered from top to bottom, then left to right (column-major), starting at 1; a mask is the
string ``"start length start length ..."`` with the runs sorted and not overlapping. Kaggle's
example: ``"1 3 10 5"`` is pixels 1, 2, 3, 10, 11, 12, 13, 14. An empty mask is ``""``.

Names and semantics follow Matterport's ``samples/nucleus/nucleus.py`` (``rle_encode``,
``rle_decode``, ``mask_to_rle``). COCO's RLE (run lengths only, no starts) is a different format:
see :mod:`mrcnn.data.datasets.annotations`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["SUBMISSION_HEADER", "mask_to_rle", "rle_decode", "rle_encode", "save_submission"]

SUBMISSION_HEADER = "ImageId,EncodedPixels"


def rle_encode(mask: np.ndarray) -> str:
    """Kaggle RLE of one mask [H, W] (any non-zero value is foreground)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"rle_encode expects one mask of shape [H, W], got shape {mask.shape}")
    # Column-major flattening; padding with 0 at both ends makes every run a +1/-1 pair.
    pixels = np.concatenate([[0], mask.T.ravel() != 0, [0]]).astype(np.int8)
    changes = np.flatnonzero(np.diff(pixels))
    starts, ends = changes[0::2], changes[1::2]
    runs = np.stack([starts + 1, ends - starts], axis=1)
    return " ".join(map(str, runs.ravel()))


def rle_decode(rle: str, shape: tuple[int, int]) -> np.ndarray:
    """bool[H, W] mask of a Kaggle RLE string; ValueError names what is wrong with the string."""
    height, width = (int(s) for s in shape)
    size = height * width
    try:
        values = np.array([int(token) for token in str(rle).split()], dtype=np.int64)
    except (ValueError, OverflowError):
        raise ValueError(f"RLE must be integers 'start length ...', got {str(rle)[:40]!r}") from None
    if len(values) % 2:
        raise ValueError(f"RLE needs start/length pairs, got {len(values)} numbers")
    starts, lengths = values[0::2] - 1, values[1::2]
    ends = starts + lengths
    if (starts < 0).any() or (lengths < 1).any():
        raise ValueError("RLE starts must be >= 1 (pixels count from 1) and lengths >= 1")
    if (starts[1:] < ends[:-1]).any():
        raise ValueError("RLE runs must be sorted and must not overlap")
    if len(ends) and ends[-1] > size:
        raise ValueError(f"RLE run ends at pixel {ends[-1]}, beyond the {height}x{width} mask")
    flat = np.zeros(size, dtype=bool)
    for start, end in zip(starts, ends, strict=True):
        flat[start:end] = True
    return flat.reshape(width, height).T


def mask_to_rle(image_id: str, masks: np.ndarray, scores: np.ndarray) -> str:
    """Submission lines ``image_id,rle`` of instance masks bool[H, W, N] with scores [N].

    Kaggle forbids a pixel in two instances: each overlapping pixel goes to the instance with the
    higher score (Matterport's comment says so; its code gave it to the lower one). Instances left
    empty are dropped. No instance at all gives ``"image_id,"``: the image's row with no pixels.
    Lines are in descending score order, joined by newlines.
    """
    masks, scores = np.asarray(masks), np.asarray(scores)
    if masks.ndim != 3 or masks.shape[-1] != len(scores):
        raise ValueError(f"expected masks [H, W, N] and N scores, got masks {masks.shape} and "
                         f"{len(scores)} scores")
    lines = []
    taken = np.zeros(masks.shape[:2], dtype=bool)
    for index in np.argsort(-scores, kind="stable"):
        mask = (masks[:, :, index] != 0) & ~taken
        taken |= mask
        if mask.any():
            lines.append(f"{image_id},{rle_encode(mask)}")
    return "\n".join(lines) if lines else f"{image_id},"


def save_submission(path: str | os.PathLike, lines: Iterable[str]) -> Path:
    """Write the submission CSV: the header, then the lines of :func:`mask_to_rle`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([SUBMISSION_HEADER, *lines]) + "\n")
    return path
