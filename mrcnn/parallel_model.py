"""Matterport's ``mrcnn.parallel_model``: multi-GPU training, now through ``tf.distribute``.

Matterport's ``ParallelModel`` split each batch into per-GPU towers of one Keras 2 graph.
Keras 3 replicates a model with a distribution strategy instead; ``MaskRCNN`` does it itself
when the config sets ``DISTRIBUTION_STRATEGY = "mirrored"`` and ``GPU_COUNT`` (see
:mod:`mrcnn.engine.distribute`). ``ParallelModel(keras_model, gpu_count)`` remains for code that
calls it: it returns a copy of the model, with the same weights, built under a
``MirroredStrategy`` over ``gpu_count`` devices, so ``compile`` and ``fit`` run on all of them.
"""

from __future__ import annotations

import copy
import warnings

import keras

from mrcnn.engine.distribute import mirrored_strategy
from mrcnn.modeling.network import MaskRCNNNetwork

__all__ = ["ParallelModel"]


def ParallelModel(keras_model: keras.Model, gpu_count: int) -> keras.Model:  # noqa: N802
    """``keras_model`` replicated on ``gpu_count`` devices (MirroredStrategy), weights copied.

    Warns once per call that this replaces Matterport's towers. A MaskRCNNNetwork is rebuilt
    from its config with DISTRIBUTION_STRATEGY="mirrored" and GPU_COUNT=gpu_count; any other
    model is cloned (``keras.models.clone_model``).
    """
    warnings.warn(
        f"ParallelModel: Keras 3 has no per-GPU towers; the model is rebuilt under "
        f"tf.distribute.MirroredStrategy over {gpu_count} devices (for MaskRCNN, set "
        f"DISTRIBUTION_STRATEGY='mirrored' and GPU_COUNT={gpu_count} instead)",
        UserWarning, stacklevel=2)
    strategy = mirrored_strategy(int(gpu_count))
    with strategy.scope():
        if isinstance(keras_model, MaskRCNNNetwork):
            config = copy.copy(keras_model.config).override(DISTRIBUTION_STRATEGY="mirrored",
                                                            GPU_COUNT=int(gpu_count))
            replica = MaskRCNNNetwork(config)
        else:
            replica = keras.models.clone_model(keras_model)
    replica.set_weights(keras_model.get_weights())
    return replica
