"""The Matterport ``Dataset`` API: a registry of classes and images from one or more sources.

Subclass it, register classes and images in a ``load_*`` method, override ``load_mask`` (and
optionally ``load_image`` / ``image_reference``), then call ``prepare()``::

    class BalloonDataset(Dataset):
        def load_balloon(self, dataset_dir, subset):
            self.add_class("balloon", 1, "balloon")
            self.add_image("balloon", image_id="a.jpg", path=".../a.jpg", polygons=[...])

        def load_mask(self, image_id):
            ...  # bool[H, W, N], int32[N]
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from mrcnn.data.errors import DatasetError
from mrcnn.data.image_io import load_image_channels

__all__ = ["Dataset", "DatasetError", "compute_pixel_statistics", "load_checked_image"]

logger = logging.getLogger(__name__)


class Dataset:
    """Base class for dataset classes. Image ids are the contiguous ints of ``image_ids``.

    ``image_channel_count`` is the channel count ``load_image`` returns: 3 (RGB, Matterport)
    unless set, e.g. ``dataset.image_channel_count = config.IMAGE_CHANNEL_COUNT`` for RGB-D or
    multispectral files (the training and evaluation pipelines check that the two agree).
    """

    image_channel_count: int = 3

    def __init__(self, class_map: dict | None = None) -> None:
        self._image_ids: np.ndarray = np.array([], dtype=np.int64)
        self.image_info: list[dict[str, Any]] = []
        # Background is always the first class.
        self.class_info: list[dict[str, Any]] = [{"source": "", "id": 0, "name": "BG"}]
        self.source_class_ids: dict[str, list[int]] = {}

    # ----------------------------------------------------------------------------------------
    # Registration
    def add_class(self, source: str, class_id: int, class_name: str) -> None:
        """Register a class of ``source`` with its id in that source (0 is reserved for BG)."""
        if "." in source:
            raise DatasetError(f"source name {source!r} cannot contain a dot")
        for info in self.class_info:
            if info["source"] == source and info["id"] == class_id:
                return  # already registered
        self.class_info.append({"source": source, "id": class_id, "name": class_name})

    def add_image(self, source: str, image_id: Any, path: str | Path | None, **kwargs: Any) -> None:
        """Register an image; extra keyword arguments are kept in ``image_info`` for loaders."""
        info = {"id": image_id, "source": source, "path": None if path is None else str(path)}
        info.update(kwargs)
        self.image_info.append(info)

    def image_reference(self, image_id: int) -> str:
        """A link or path that identifies the image (override to point to the source)."""
        return self.image_info[image_id].get("path") or str(self.image_info[image_id]["id"])

    def prepare(self, class_map: dict | None = None) -> None:
        """Build the contiguous ids and the source maps. Call after all add_* calls."""

        def clean_name(name: str) -> str:
            return ",".join(name.split(",")[:1])

        self.num_classes = len(self.class_info)
        self.class_ids = np.arange(self.num_classes)
        self.class_names = [clean_name(c["name"]) for c in self.class_info]
        self.num_images = len(self.image_info)
        self._image_ids = np.arange(self.num_images)

        self.class_from_source_map = {
            f"{info['source']}.{info['id']}": class_id
            for info, class_id in zip(self.class_info, self.class_ids, strict=True)
        }
        self.image_from_source_map = {
            f"{info['source']}.{info['id']}": image_id
            for info, image_id in zip(self.image_info, self.image_ids, strict=True)
        }
        self.sources = sorted({info["source"] for info in self.class_info})
        self.source_class_ids = {}
        for source in self.sources:
            # Background belongs to every source.
            self.source_class_ids[source] = [
                i for i, info in enumerate(self.class_info) if i == 0 or source == info["source"]
            ]

    # ----------------------------------------------------------------------------------------
    # Lookups
    @property
    def image_ids(self) -> np.ndarray:
        return self._image_ids

    def map_source_class_id(self, source_class_id: str) -> int:
        """Internal class id of a ``"source.id"`` string, e.g. ``"coco.12"`` -> 23."""
        return self.class_from_source_map[source_class_id]

    def get_source_class_id(self, class_id: int, source: str) -> int:
        """The id a class has in its own source."""
        info = self.class_info[class_id]
        if info["source"] != source:
            raise DatasetError(f"class {class_id} belongs to source {info['source']!r}, not {source!r}")
        return info["id"]

    def append_data(self, class_info: list[dict], image_info: list[dict]) -> None:
        """Matterport's (unfinished) external-id maps: ``external_to_class_id`` from each class's
        ``map`` list of (source, id) pairs and ``external_to_image_id`` from each image's
        ``ds`` and ``id``. ``class_info`` and ``image_info`` are unused, as in Matterport;
        entries without those keys are skipped (Matterport raised KeyError).
        """
        self.external_to_class_id = {f"{source}{source_id}": i
                                     for i, info in enumerate(self.class_info)
                                     for source, source_id in info.get("map", ())}
        self.external_to_image_id = {f"{info['ds']}{info['id']}": i
                                     for i, info in enumerate(self.image_info) if "ds" in info}

    def source_image_link(self, image_id: int) -> str | None:
        """Path or URL of the image file."""
        return self.image_info[image_id]["path"]

    def active_class_ids(self, image_id: int) -> np.ndarray:
        """int32[num_classes] with 1 for the classes of this image's source (and background)."""
        active = np.zeros(self.num_classes, dtype=np.int32)
        source = self.image_info[image_id]["source"]
        active[self.source_class_ids.get(source, list(range(self.num_classes)))] = 1
        return active

    # ----------------------------------------------------------------------------------------
    # Loading
    def load_image(self, image_id: int) -> np.ndarray:
        """[H, W, image_channel_count], values as stored in the file (no rescaling).

        With 3 channels, 8-bit files give uint8 RGB as in Matterport (grayscale replicated, an
        alpha channel dropped); 16-bit PNG/TIFF give uint16, float TIFF/.npy their float
        values, and TIFF pages or .npy stacks [H, W, N] their N channels (see
        :func:`mrcnn.data.image_io.load_image_channels`). MEAN_PIXEL and PIXEL_STD bring the
        values to the network's range when the image is molded.
        """
        return load_image_channels(self.image_info[image_id]["path"], self.image_channel_count)

    def load_mask(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """bool[H, W, N] instance masks and int32[N] class ids. Override in subclasses.

        The default returns no instances (a background-only image), which is a valid training
        sample: it teaches the RPN and the classifier what background looks like.
        """
        logger.warning(
            "load_mask() is not overridden in %s; image %s has no instances",
            type(self).__name__,
            image_id,
        )
        return np.empty([0, 0, 0], dtype=bool), np.empty([0], np.int32)


def load_checked_image(dataset: Dataset, image_id: int, channel_count: int) -> np.ndarray:
    """``dataset.load_image(image_id)``, checked to be [H, W, channel_count] of an int or float
    dtype: where the data meets the model, so that a wrong channel count is a DatasetError
    naming the file and both counts rather than a shape error inside TensorFlow."""
    image = dataset.load_image(image_id)
    info = dataset.image_info[image_id]
    try:
        where = info.get("path") or dataset.image_reference(image_id)
    except Exception:  # a broken image_reference must not hide the real error
        where = f"image_id {image_id}"
    if not isinstance(image, np.ndarray):
        raise DatasetError(f"image {image_id} ({where}): load_image returned a "
                           f"{type(image).__name__}, expected a numpy array "
                           f"[H, W, {channel_count}]")
    if image.ndim != 3 or min(image.shape[:2]) == 0 or image.dtype.kind not in "uif":
        raise DatasetError(f"image {image_id} ({where}): load_image returned "
                           f"{image.dtype}{list(image.shape)}, expected an integer or float "
                           f"array [H, W, {channel_count}]")
    if image.shape[2] != channel_count:
        hint = ""
        if getattr(dataset, "image_channel_count", channel_count) != channel_count:
            hint = (f"; set dataset.image_channel_count = {channel_count} (it is "
                    f"{dataset.image_channel_count})")
        raise DatasetError(f"image {image_id} ({where}) has {image.shape[2]} channel(s) but "
                           f"the config's IMAGE_CHANNEL_COUNT is {channel_count}{hint}")
    return image


def compute_pixel_statistics(dataset: Dataset, image_ids: Any = None
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation float64[C] over every pixel of the images
    (default: all): the MEAN_PIXEL and PIXEL_STD of 16-bit, float or many-channel data."""
    total = squares = None
    count = 0
    for image_id in dataset.image_ids if image_ids is None else image_ids:
        image = dataset.load_image(image_id)
        pixels = image.reshape(-1, image.shape[-1]).astype(np.float64)
        total = pixels.sum(axis=0) + (0 if total is None else total)
        squares = np.square(pixels).sum(axis=0) + (0 if squares is None else squares)
        count += len(pixels)
    if not count:
        raise DatasetError("compute_pixel_statistics: no pixels (the dataset has no images)")
    mean = total / count
    return mean, np.sqrt(np.maximum(squares / count - np.square(mean), 0.0))
