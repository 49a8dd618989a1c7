"""The tf.distribute strategy a Config asks for (replaces Matterport's ParallelModel).

``DISTRIBUTION_STRATEGY = "mirrored"`` replicates the model on ``GPU_COUNT`` local GPUs (on a
machine without GPUs, on ``GPU_COUNT`` logical CPU devices, which is how it is tested);
``"multi_worker"`` spans machines described by the ``TF_CONFIG`` environment variable. Each
replica takes ``IMAGES_PER_GPU`` images, so one step consumes ``BATCH_SIZE`` images.
"""

from __future__ import annotations

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
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind != "mirrored":
        raise ConfigError(f"DISTRIBUTION_STRATEGY={kind!r}; expected None, 'mirrored' or "
                          "'multi_worker'")
    devices = _local_devices(config.GPU_COUNT)
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
