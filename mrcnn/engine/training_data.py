"""The training input of ``MaskRCNN.train()``: a prepared Dataset as ``tf.data`` where
TensorFlow is installed, else as the backend-neutral ``PyDataset``; an input already made is
passed through; masks as numbers under a distribution strategy.

TensorFlow is imported only on the ``tf.data`` path, so this module imports without it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras

from mrcnn.config import Config
from vision_common.input_pipelines import resolve_pipeline

if TYPE_CHECKING:
    import tensorflow as tf


def as_training_input(
    data: Any,
    config: Config,
    pipeline: str | None = None,
    shuffle: bool = True,
    augmentation: Any = None,
    seed: int | None = None,
    no_augmentation_sources: Sequence[str] | None = None,
    repeat_factor_threshold: float = 0.0,
) -> Any:
    """Training batches for ``keras.Model.fit``, from a prepared mrcnn Dataset.

    pipeline: "tf.data" (:func:`mrcnn.data.pipeline.build_dataset`) or "pydataset"
    (:class:`mrcnn.data.py_loader.TrainingBatches`, no TensorFlow); None: "tf.data" where
    TensorFlow is installed, else "pydataset". Both are endless (pass ``steps_per_epoch`` and
    ``validation_steps`` to ``fit``) and give the same keys, dtypes and shapes, and the same
    sample for a stream position and image (only the image order differs). ``data`` that is
    already a ``tf.data.Dataset`` or a ``keras.utils.PyDataset`` is returned as it is. The
    other arguments are ``build_dataset``'s.
    """
    pipeline = resolve_pipeline(pipeline)
    if isinstance(data, keras.utils.PyDataset) or _is_tf_dataset(data):
        return data
    options = dict(shuffle=shuffle, augmentation=augmentation, seed=seed,
                   no_augmentation_sources=no_augmentation_sources,
                   repeat_factor_threshold=repeat_factor_threshold)
    if pipeline == "tf.data":
        return as_tf_dataset(data, config, **options)
    from mrcnn.data.py_loader import TrainingBatches

    return TrainingBatches(data, config, **options)


def as_tf_dataset(data: Any, config: Config, **kwargs) -> tf.data.Dataset:
    """``data`` if it is a tf.data.Dataset, else ``build_dataset(data, config, **kwargs)``."""
    import tensorflow as tf

    from mrcnn.data.pipeline import build_dataset

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
    import tensorflow as tf

    mask_dtype = tf.int32 if strategy_kind == "multi_worker" else tf.uint8
    return data.map(lambda batch: {**batch,
                                   "input_gt_masks": tf.cast(batch["input_gt_masks"], mask_dtype)})


def _is_tf_dataset(data: Any) -> bool:
    """True for a tf.data.Dataset (only possible once TensorFlow has been imported)."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(data, tf.data.Dataset)
