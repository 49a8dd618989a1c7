"""Which training input to build: ``tf.data`` where TensorFlow is installed, else a
``keras.utils.PyDataset`` (JAX or PyTorch alone, as on the GPU machine). Imports no TensorFlow."""

from __future__ import annotations

import importlib.util

# The training inputs mrcnn, unet and localization can build.
INPUT_PIPELINES = ("tf.data", "pydataset")


def tensorflow_installed() -> bool:
    """Whether TensorFlow can be imported here (without importing it)."""
    return importlib.util.find_spec("tensorflow") is not None


def resolve_pipeline(pipeline: str | None) -> str:
    """``pipeline`` checked, or for None "tf.data" where TensorFlow is installed, else
    "pydataset"."""
    if pipeline is not None and pipeline not in INPUT_PIPELINES:
        raise ValueError(f"pipeline={pipeline!r}; expected one of {INPUT_PIPELINES} or None")
    if pipeline is None:
        return "tf.data" if tensorflow_installed() else "pydataset"
    if pipeline == "tf.data" and not tensorflow_installed():
        raise ValueError("pipeline='tf.data' needs TensorFlow, which is not installed; use "
                         "pipeline='pydataset' (or None)")
    return pipeline
