"""Draw ground truth (green) and prediction (red) boxes with class labels on an RGB image."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

GT_COLOR = (0, 170, 0)
PRED_COLOR = (220, 0, 0)


def _draw_box(image: np.ndarray, box: Sequence[float], color, label: str, below: bool) -> None:
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    thickness = max(1, round(min(image.shape[:2]) / 200))
    cv2.rectangle(image, (x1, y1), (x2, y2), color, thickness)
    scale = max(0.3, min(image.shape[:2]) / 600)
    text_y = min(y2 + int(14 * scale) + 2, image.shape[0] - 2) if below else max(y1 - 4, 10)
    cv2.putText(image, label, (x1, text_y), cv2.FONT_HERSHEY_SIMPLEX, scale, color,
                thickness, cv2.LINE_AA)


def draw_localization(image: np.ndarray, pred_box: Sequence[float], pred_label: str,
                      gt_box: Sequence[float] | None = None,
                      gt_label: str | None = None) -> np.ndarray:
    """Return a copy of RGB uint8 ``image`` with boxes in pixel xyxy: GT green, prediction red."""
    canvas = np.ascontiguousarray(image.copy())
    if gt_box is not None:
        _draw_box(canvas, gt_box, GT_COLOR, f"GT {gt_label or ''}".strip(), below=True)
    _draw_box(canvas, pred_box, PRED_COLOR, pred_label, below=False)
    return canvas
