"""Whole-image inference at any size: resize or pad to what the model accepts, map back.

Input: an image ``uint8 (H, W, C)`` with the model's channel count, in displayed orientation.
Output: a float32 probability map ``(H, W)`` in the ORIGINAL image frame (bilinear resize).
"""

from __future__ import annotations

import cv2
import keras
import numpy as np

from unet.imaging import resize_image
from unet.models import size_divisor
from unet.padding import crop_to_shape, pad_to_multiple


def outputs_logits(model: keras.Model) -> bool:
    """True when the model's output layer produces logits (its name ends with "_logits")."""
    return model.layers[-1].name.endswith("_logits")


def _run(model: keras.Model, batch: np.ndarray) -> np.ndarray:
    output = keras.ops.convert_to_numpy(model(batch, training=False))
    if outputs_logits(model):
        output = 1.0 / (1.0 + np.exp(-output))
    return output[0, ..., 0].astype(np.float32)


def predict_probability(model: keras.Model, image: np.ndarray, max_side: int = 1024) -> np.ndarray:
    """Foreground probability ``(H, W)`` for one image of any size.

    Fixed-size models see the image resized to their input size (the unpadded classic U-Net:
    resized to its output size and reflect-padded by its margin). Models with a free input size
    see the image scaled down to ``max_side`` at most and padded to their size divisor.
    """
    image = np.asarray(image)
    channels = model.input_shape[-1]
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] != channels:
        raise ValueError(f"the model expects images with {channels} channels; got an array "
                         f"of shape {image.shape}")
    height, width = image.shape[:2]
    in_h, in_w = model.input_shape[1:3]
    out_h, out_w = model.output_shape[1:3]
    if in_h is not None and in_w is not None:
        resized = resize_image(image, out_h, out_w)
        margin_h, margin_w = (in_h - out_h) // 2, (in_w - out_w) // 2
        if margin_h or margin_w:
            resized = np.pad(resized, ((margin_h, margin_h), (margin_w, margin_w), (0, 0)),
                             mode="reflect")
        probability = _run(model, resized[None].astype(np.float32))
    else:
        scale = min(1.0, max_side / max(height, width))
        scaled_h, scaled_w = max(1, round(height * scale)), max(1, round(width * scale))
        scaled = resize_image(image, scaled_h, scaled_w)
        padded, padding = pad_to_multiple(scaled, size_divisor(model))
        probability = crop_to_shape(_run(model, padded[None].astype(np.float32)), padding)
    if probability.shape != (height, width):
        probability = cv2.resize(probability, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(probability, 0.0, 1.0)
