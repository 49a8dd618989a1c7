"""A pretrained RGB network's first convolution, adapted to another input channel count."""

from __future__ import annotations

import numpy as np

__all__ = ["adapt_first_kernel", "copy_weights_adapting_first_conv"]


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


def copy_weights_adapting_first_conv(source, target, first_conv: str, *,
                                     reverse_rgb: bool = False) -> None:
    """Copies a 3-channel Keras model's weights into ``target``, the same architecture built for
    another input channel count; ``first_conv``'s kernel goes through :func:`adapt_first_kernel`.

    Weighted layers are matched by position (auto-generated names differ between two builds).
    """
    channels = int(target.input_shape[-1])
    source_layers = [layer for layer in source.layers if layer.weights]
    target_layers = [layer for layer in target.layers if layer.weights]
    if len(source_layers) != len(target_layers):
        raise ValueError(f"{source.name} has {len(source_layers)} weighted layers but "
                         f"{target.name} has {len(target_layers)}; expected the same architecture")
    for source_layer, layer in zip(source_layers, target_layers, strict=True):
        values = source_layer.get_weights()
        if layer.name == first_conv:
            values[0] = adapt_first_kernel(values[0], channels, reverse_rgb=reverse_rgb)
        layer.set_weights(values)
