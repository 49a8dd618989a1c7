"""A pretrained RGB network's first convolution, adapted to another input channel count."""

from __future__ import annotations

import numpy as np

__all__ = ["adapt_first_kernel"]


def adapt_first_kernel(kernel: np.ndarray, channels: int, *, reverse_rgb: bool = False) -> np.ndarray:
    """A ``(kh, kw, 3, filters)`` RGB kernel for ``channels`` input channels.

    - 1 channel: the sum over RGB (a grey image responds as its RGB copy did);
    - 2 channels: that sum for channel 0 (read as grey), zeros for channel 1;
    - N > 3 channels: the RGB kernels as they are, zeros for every extra channel, so the
      network answers as the RGB one whatever the extra channels hold (an extra channel equal
      to its mean pixel included) until training gives them weight.

    ``reverse_rgb`` first flips BGR-trained weights to read RGB.
    """
    kernel = np.asarray(kernel)
    if kernel.ndim != 4 or kernel.shape[2] != 3:
        raise ValueError(f"expected a (kh, kw, 3, filters) kernel; got shape {kernel.shape}")
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    if reverse_rgb:
        kernel = kernel[:, :, ::-1, :]
    if channels == 3:
        return np.array(kernel)
    grey = kernel.sum(axis=2, keepdims=True)
    if channels == 1:
        return grey
    first = grey if channels == 2 else kernel
    extra = np.zeros(kernel.shape[:2] + (channels - first.shape[2],) + kernel.shape[3:],
                     kernel.dtype)
    return np.concatenate([first, extra], axis=2)
