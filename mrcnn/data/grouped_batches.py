"""Variable-size training batches for IMAGE_RESIZE_MODE "pad64" / "none", as torchvision makes them.

Each image keeps the size its resize mode gives it. Batches are formed within aspect-ratio groups
(torchvision's ``GroupedBatchSampler`` over ``create_aspect_ratio_groups``; with k=0 two groups:
wide, width/height >= 1, and tall) and every image of a batch is zero-padded at the bottom and
right to the batch's largest height and width, rounded up to a multiple of 64 (the coarsest FPN
stride: Matterport's pad64 rule). Padding only adds rows and columns after the image, so its
window and boxes keep their pixel coordinates; the image_meta's image_shape becomes the padded
shape. "square" and "crop" give every image IMAGE_SHAPE and are batched as before.
Numpy only: the ``tf.data`` pipeline groups with ``group_by_window``, the ``PyDataset`` loader
with :func:`group_stream`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

logger = logging.getLogger(__name__)

VARIABLE_SHAPE_MODES = ("pad64", "none")
# Batch heights and widths are multiples of this: 2**5 for P2..P5 plus P6's extra halving.
SIZE_MULTIPLE = 64
# Offset of image_shape (H, W, C) in compose_image_meta's vector.
META_IMAGE_SHAPE = slice(4, 7)


def uses_variable_shapes(config) -> bool:
    """True when IMAGE_RESIZE_MODE leaves image sizes free (batches padded per batch)."""
    return config.IMAGE_RESIZE_MODE in VARIABLE_SHAPE_MODES


def image_aspect_ratios(dataset) -> np.ndarray:
    """float[num_images] width / height of each image, in ``dataset.image_ids`` order.

    Read from ``image_info`` "height" / "width" where the loader stored them (no file is read);
    an image without them is loaded once to measure it.
    """
    ratios = []
    for image_id in dataset.image_ids:
        info = dataset.image_info[int(image_id)]
        height, width = info.get("height"), info.get("width")
        if not height or not width:
            height, width = np.shape(dataset.load_image(int(image_id)))[:2]
        ratios.append(float(width) / float(height))
    return np.asarray(ratios, dtype=np.float64)


def compute_aspect_groups(aspect_ratios: Sequence[float], k: int = 0) -> np.ndarray:
    """int[N] group of each aspect ratio (width / height), torchvision's quantization.

    Bin edges ``2 ** linspace(-1, 1, 2k + 1)`` (k = 0: the single edge 1.0, so group 0 is tall,
    1 is wide or square); ``np.digitize`` puts each ratio in its bin (2k + 2 groups).
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    edges = (2 ** np.linspace(-1, 1, 2 * k + 1)).tolist() if k > 0 else [1.0]
    return np.digitize(np.asarray(aspect_ratios, dtype=np.float64), edges).astype(np.int64)


def padded_batch_shape(shapes: Sequence[Sequence[int]],
                       multiple: int = SIZE_MULTIPLE) -> tuple[int, int]:
    """(height, width) every image of a batch is padded to: the largest of ``shapes`` (each
    (h, w, ...)) rounded up to a multiple of ``multiple``."""
    height = max(int(shape[0]) for shape in shapes)
    width = max(int(shape[1]) for shape in shapes)
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


def pad_ground_truth(ground_truth: tuple, height: int, width: int, full_masks: bool) -> tuple:
    """One image's (image, image_meta, class_ids, boxes, masks) padded to [height, width].

    The image (and the masks, when ``full_masks``: image-sized rather than mini masks) get zero
    rows/columns at the bottom and right; image_meta's image_shape becomes the padded shape.
    Window, boxes and class ids are unchanged.
    """
    image, image_meta, class_ids, boxes, masks = ground_truth
    h, w = image.shape[:2]
    if h > height or w > width:
        raise ValueError(f"cannot pad a {h}x{w} image to {height}x{width}")
    padding = [(0, height - h), (0, width - w)]
    image = np.pad(image, padding + [(0, 0)])
    if full_masks:
        masks = np.pad(masks, padding + [(0, 0)])
    image_meta = np.array(image_meta, copy=True)
    image_meta[META_IMAGE_SHAPE] = image.shape
    return image, image_meta, class_ids, boxes, masks


def groups_by_image_id(dataset, k: int = 0) -> np.ndarray:
    """int[max_image_id + 1]: the aspect group of each image of ``dataset`` (logged once)."""
    image_ids = np.asarray(dataset.image_ids, dtype=np.int64)
    groups = compute_aspect_groups(image_aspect_ratios(dataset), k)
    by_id = np.zeros([int(image_ids.max()) + 1], dtype=np.int64)
    by_id[image_ids] = groups
    counts = np.bincount(groups, minlength=2 * k + 2)
    logger.info("aspect-ratio groups (k=%d, tall to wide): %s images", k,
                " / ".join(str(int(c)) for c in counts))
    return by_id


def group_stream(stream: Iterable[tuple[int, int]], groups: np.ndarray,
                 batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(counter, image_id) elements -> batches (counters int64[B], image_ids int64[B]) whose
    images share an aspect group: torchvision's GroupedBatchSampler, as the ``tf.data``
    pipeline's ``group_by_window``. Each element waits in its group's buffer and a batch is
    emitted when a group has ``batch_size``; a finite stream drops each group's incomplete rest.

    groups: int[max_image_id + 1], the group of each image id.
    """
    waiting: dict[int, list[tuple[int, int]]] = {}
    for counter, image_id in stream:
        buffer = waiting.setdefault(int(groups[image_id]), [])
        buffer.append((counter, image_id))
        if len(buffer) == batch_size:
            counters, image_ids = np.asarray(buffer, dtype=np.int64).T
            buffer.clear()
            yield counters, image_ids
