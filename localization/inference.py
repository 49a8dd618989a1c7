"""Predict boxes and classes for image files, and write the submission CSV.

Predicted boxes come out of the model normalized; here they are mapped back to each image's
original pixel size (``xyxy`` in pixels of the file as stored on disk). Files are read with the
model's channel count (:mod:`localization.images`); another count raises ImageChannelError.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from localization.annotations import IMAGE_SUFFIXES
from localization.boxes import denormalize_boxes
from localization.data import resize_image
from localization.images import load_image_channels
from localization.model import get_input_channels, get_input_size

SUBMISSION_COLUMNS = ("filename", "class", "xmin", "ymin", "xmax", "ymax")


@dataclass(frozen=True)
class Prediction:
    """One image's prediction: normalized and pixel xyxy boxes, class index and softmax score."""

    path: Path
    box: np.ndarray
    pixel_box: np.ndarray
    class_index: int
    score: float
    image_size: tuple[int, int]


def list_images(path: str | Path) -> list[Path]:
    """``path`` itself if it is a file, else the image files in the folder, sorted by name."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"no image or folder at {path}")
    images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ValueError(f"{path} holds no images (looked for {', '.join(IMAGE_SUFFIXES)})")
    return images


def predict_images(model: keras.Model, paths: Sequence[str | Path],
                   batch_size: int = 16) -> list[Prediction]:
    """Run the localizer on image files of any size (each resized to the model input)."""
    size = get_input_size(model)
    channels = get_input_channels(model)
    predictions = []
    for start in range(0, len(paths), batch_size):
        chunk = [Path(p) for p in paths[start:start + batch_size]]
        originals = [load_image_channels(p, channels) for p in chunk]
        batch = np.stack([resize_image(image, size) for image in originals]).astype("float32")
        outputs = model.predict_on_batch(batch)
        logits = np.asarray(outputs["class"], dtype=np.float64)
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        for path, image, box, probs in zip(chunk, originals, np.asarray(outputs["box"]),
                                           probabilities, strict=True):
            height, width = image.shape[:2]
            predictions.append(Prediction(path, box, denormalize_boxes(box, width, height),
                                          int(probs.argmax()), float(probs.max()),
                                          (width, height)))
    return predictions


def write_submission(path: str | Path, filenames: Sequence[str],
                     predictions: Sequence[Prediction | None], class_names: Sequence[str]) -> Path:
    """CSV ``filename,class,xmin,ymin,xmax,ymax``: one row per filename, in the given order.

    Boxes are integer pixels of the original image (rounded, clipped to the image). A ``None``
    prediction (the image could not be read) writes an error row: the filename, the rest empty.
    """
    if len(filenames) != len(predictions):
        raise ValueError(f"got {len(filenames)} filenames but {len(predictions)} predictions")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SUBMISSION_COLUMNS)
        for filename, prediction in zip(filenames, predictions, strict=True):
            if prediction is None:
                writer.writerow([filename] + [""] * (len(SUBMISSION_COLUMNS) - 1))
                continue
            width, height = prediction.image_size
            limits = np.array([width, height, width, height])
            box = np.clip(np.rint(prediction.pixel_box), 0, limits).astype(int)
            writer.writerow([filename, class_names[prediction.class_index], *box.tolist()])
    return path
