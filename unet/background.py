"""Background removal of one uploaded or loaded image: the core shared by the CLI and web app.

Input: encoded image bytes (PNG/JPEG/...); output: an RGBA cut-out ``(H, W, 4)`` uint8 and its
alpha ``(H, W)`` uint8, both at the ORIGINAL size in displayed orientation (EXIF applied).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import keras
import numpy as np
from PIL import Image

from unet.imaging import to_channels
from unet.inference import predict_probability
from unet.postprocess import compose_cutout, compute_alpha

# Uploads above this size are refused before decoding (rembg uses 50 MB too).
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
# Decoded images above this many pixels are refused (decompression bombs).
MAX_PIXELS = 40_000_000


@dataclass
class CutoutOptions:
    """Post-processing settings (see unet.postprocess.compute_alpha)."""

    threshold: float = 0.5
    min_size: int = 50
    fill_holes: bool = True
    feather: float = 0.0
    background: tuple[int, int, int] | None = None


def decode_upload(data: bytes, name: str = "upload") -> Image.Image:
    """Uploaded bytes as a displayed-orientation image, decoded only after the byte count and
    the header's pixel count passed (:func:`unet.uploads.load_upload`); ImageReadError names
    ``name``."""
    from unet.uploads import load_upload  # uploads reads this module's limits

    return load_upload(data, name)[1]


def cut_out(
    model: keras.Model, image: Image.Image, options: CutoutOptions | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(rgba (H, W, 4), alpha (H, W))`` for a PIL image, at its own size."""
    options = options or CutoutOptions()
    probability = predict_probability(model, to_channels(image, model.input_shape[-1]))
    alpha = compute_alpha(probability, options.threshold, options.min_size, options.fill_holes,
                          options.feather)
    return compose_cutout(to_channels(image, 3), alpha, options.background), alpha


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of an ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` uint8 array."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
