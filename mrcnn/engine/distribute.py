"""The tf.distribute strategy a Config asks for (replaces Matterport's ParallelModel).

``DISTRIBUTION_STRATEGY = "mirrored"`` replicates the model on ``GPU_COUNT`` local GPUs (on a
machine without GPUs, on ``GPU_COUNT`` logical CPU devices, which is how it is tested);
``"multi_worker"`` spans machines described by the ``TF_CONFIG`` environment variable. Each
replica takes ``IMAGES_PER_GPU`` images, so one step consumes ``BATCH_SIZE`` images (under
"multi_worker", ``IMAGES_PER_GPU`` times the replicas of the whole cluster: see input_config).
"""

from __future__ import annotations

import copy
import logging

import tensorflow as tf

from mrcnn.config import Config, ConfigError

logger = logging.getLogger(__name__)


def build_strategy(config: Config) -> tf.distribute.Strategy:
    """The strategy for ``config.DISTRIBUTION_STRATEGY`` (the default strategy for None)."""
    kind = config.DISTRIBUTION_STRATEGY
    if kind is None:
        return tf.distribute.get_strategy()
    if kind == "multi_worker":
        return _KerasMultiWorkerStrategy()
    if kind != "mirrored":
        raise ConfigError(f"DISTRIBUTION_STRATEGY={kind!r}; expected None, 'mirrored' or "
                          "'multi_worker'")
    return mirrored_strategy(config.GPU_COUNT)


def mirrored_strategy(gpu_count: int) -> tf.distribute.MirroredStrategy:
    """MirroredStrategy over ``gpu_count`` local GPUs (logical CPUs on a machine without)."""
    devices = _local_devices(gpu_count)
    logger.info("MirroredStrategy over %s", devices)
    return tf.distribute.MirroredStrategy(devices=devices)


def _local_devices(count: int) -> list[str]:
    """``count`` local GPUs, or ``count`` logical CPUs on a machine without GPUs."""
    gpus = tf.config.list_logical_devices("GPU")
    devices = gpus if gpus else tf.config.list_logical_devices("CPU")
    if len(devices) < count:
        kind = "GPUs" if gpus else "CPU devices (and no GPU)"
        raise ConfigError(f"GPU_COUNT={count} but this machine has {len(devices)} {kind}; set "
                          f"GPU_COUNT to at most {len(devices)}")
    return [device.name for device in devices[:count]]


def input_config(config: Config, strategy: tf.distribute.Strategy) -> Config:
    """The config whose BATCH_SIZE the training input is batched by: one global batch.

    tf.distribute splits each batch of a worker's dataset over the replicas of all workers
    (each worker builds the same batches and keeps its share). Under "multi_worker" the batch
    is therefore IMAGES_PER_GPU times ``num_replicas_in_sync``; BATCH_SIZE (IMAGES_PER_GPU x
    GPU_COUNT) would leave replicas short, or with no image at all. Other strategies: config.
    """
    if config.DISTRIBUTION_STRATEGY != "multi_worker":
        return config
    return copy.copy(config).override(GPU_COUNT=strategy.num_replicas_in_sync)


class _KerasMultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """MultiWorkerMirroredStrategy whose ``reduce`` accepts what Keras 3's ``fit`` passes it.

    Keras 3 (seen with 3.15 and TF 2.21) reduces the first input batch, a dict, to build the
    model (keras-team/keras#20329), and each step's scalar logs with ``axis=0``
    (tensorflow/tensorflow#72388). MirroredStrategy accepts both; this strategy raised on
    both, so ``fit`` failed before its first step. Here a nest is reduced leaf by leaf and a
    scalar across replicas only; everything else is the parent's.
    """

    def reduce(self, reduce_op, value, axis):
        if tf.nest.is_nested(value):
            return tf.nest.map_structure(lambda leaf: self.reduce(reduce_op, leaf, axis), value)
        local = self.experimental_local_results(value)[0]
        if axis is not None and getattr(local, "shape", None) is not None and \
                local.shape.rank == 0:
            axis = None
        return super().reduce(reduce_op, value, axis)
