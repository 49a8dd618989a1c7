"""Which device the Keras backend computes on, in words a user can check (shown by the web app)."""

from __future__ import annotations

from collections import Counter

import keras


def list_gpu_names() -> list[str]:
    """Names of the GPUs TensorFlow can use, e.g. ``["NVIDIA H200"]``; empty when it has none.

    ``tf.config.list_physical_devices("GPU")``, each named by ``get_device_details``'s
    ``device_name`` (its device id, ``/physical_device:GPU:0``, where the build gives no name).
    """
    import tensorflow as tf  # only here: the other Keras backends do not need it

    return [tf.config.experimental.get_device_details(gpu).get("device_name") or gpu.name
            for gpu in tf.config.list_physical_devices("GPU")]


def describe_device() -> str:
    """``"CPU"``, ``"NVIDIA H200"`` or ``"2 x NVIDIA A100-SXM4-80GB"`` (several kinds joined by
    ``", "``) for the TensorFlow backend; other Keras backends are not inspected and say so."""
    backend = keras.backend.backend()
    if backend != "tensorflow":
        return f"not reported for the {backend} backend"
    counts = Counter(list_gpu_names())
    if not counts:
        return "CPU"
    return ", ".join(name if count == 1 else f"{count} x {name}" for name, count in counts.items())
