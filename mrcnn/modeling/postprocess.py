"""Turn the network's normalized detections into per-image results in original pixels."""

from __future__ import annotations

import numpy as np

from mrcnn.geometry.anchors import denorm_boxes, norm_boxes
from mrcnn.geometry.imaging import paste_masks


def unmold_detections(
    detections: np.ndarray,
    mrcnn_mask: np.ndarray,
    original_image_shape: tuple[int, ...],
    image_shape: tuple[int, ...],
    window: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One image's detections in the frame of the original image.

    detections: [N, (y1, x1, y2, x2, class_id, score)] normalized to the molded image, zero
    rows as padding; mrcnn_mask: [N, h, w, num_classes]; window: (y1, x1, y2, x2) pixels of the
    real image inside the molded one.
    Returns boxes int32[M, 4] (pixels, y2/x2 exclusive), class_ids int32[M], scores float32[M],
    masks bool[H, W, M] at the original size.
    """
    boxes, class_ids, scores, masks = unmold_boxes(detections, mrcnn_mask, original_image_shape,
                                                   image_shape, window)
    return boxes, class_ids, scores, paste_masks(masks, boxes, original_image_shape)


def unmold_boxes(
    detections: np.ndarray,
    mrcnn_mask: np.ndarray,
    original_image_shape: tuple[int, ...],
    image_shape: tuple[int, ...],
    window: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`unmold_detections` before pasting: the masks stay the head's float[M, h, w]."""
    zero_rows = np.where(detections[:, 4] == 0)[0]
    count = zero_rows[0] if zero_rows.shape[0] > 0 else detections.shape[0]
    boxes = detections[:count, :4]
    class_ids = detections[:count, 4].astype(np.int32)
    scores = detections[:count, 5].astype(np.float32)
    masks = mrcnn_mask[np.arange(count), :, :, class_ids]

    # Boxes are relative to the molded image: move them into the window, then to the original.
    wy1, wx1, wy2, wx2 = norm_boxes(np.asarray(window), image_shape[:2])
    shift = np.array([wy1, wx1, wy1, wx1])
    scale = np.array([wy2 - wy1, wx2 - wx1, wy2 - wy1, wx2 - wx1])
    boxes = denorm_boxes((boxes - shift) / scale, original_image_shape[:2])

    keep = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) > 0
    boxes, class_ids, scores, masks = boxes[keep], class_ids[keep], scores[keep], masks[keep]

    return boxes, class_ids, scores, masks
