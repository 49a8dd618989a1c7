"""The ``tf.data`` input of ``MaskRCNN.train()``: a prepared Dataset batched, or a tf.data.Dataset
passed through, with masks as numbers under a distribution strategy."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from mrcnn.config import Config
from mrcnn.data.pipeline import build_dataset


def as_tf_dataset(data: Any, config: Config, **kwargs) -> tf.data.Dataset:
    """``data`` if it is a tf.data.Dataset, else ``build_dataset(data, config, **kwargs)``."""
    if isinstance(data, tf.data.Dataset):
        return data
    if not hasattr(data, "image_ids") or not hasattr(data, "load_mask"):
        raise TypeError(f"expected a prepared mrcnn Dataset or a tf.data.Dataset, got "
                        f"{type(data).__name__}")
    if len(data.image_ids) == 0:
        raise ValueError(f"{type(data).__name__} has no images (did you call prepare()?)")
    return build_dataset(data, config, **kwargs)


def for_replicas(data: tf.data.Dataset, strategy_kind: str) -> tf.data.Dataset:
    """Masks as numbers: Keras averages a first batch over replicas, which bool cannot do.

    strategy_kind: Config.DISTRIBUTION_STRATEGY; collective ops (``"multi_worker"``) reduce
    no 8-bit type, so masks become int32 there and uint8 elsewhere.
    """
    mask_dtype = tf.int32 if strategy_kind == "multi_worker" else tf.uint8
    return data.map(lambda batch: {**batch,
                                   "input_gt_masks": tf.cast(batch["input_gt_masks"], mask_dtype)})
