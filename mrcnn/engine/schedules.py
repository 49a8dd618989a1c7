"""Learning-rate schedules by global step (detectron2's definitions) and the callback applying them.

``LEARNING_RATE_SCHEDULE``: ``constant`` (Matterport), ``step`` (times ``LEARNING_RATE_GAMMA`` at
each of ``LEARNING_RATE_STEPS``) or ``cosine`` (from the base rate to 0 at the last step of the
``train()`` call), each after an optional linear warmup over ``WARMUP_STEPS`` from
``WARMUP_FACTOR`` x the base rate. The step counts from the run's first epoch (epoch x
``STEPS_PER_EPOCH`` + batch), so a resumed run or a later stage continues the same curve.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from pathlib import Path

import keras

from mrcnn.config import Config
from vision_common.input_pipelines import tensorflow_installed


def learning_rate_at(config: Config, base: float, total_steps: int) -> Callable[[int], float]:
    """The learning rate as a function of the global step, for a ``train()`` call of
    ``total_steps`` (its last epoch x STEPS_PER_EPOCH)."""
    milestones = sorted(int(step) for step in config.LEARNING_RATE_STEPS)

    def rate(step: int) -> float:
        if config.LEARNING_RATE_SCHEDULE == "step":
            value = base * config.LEARNING_RATE_GAMMA ** bisect.bisect_right(milestones, step)
        elif config.LEARNING_RATE_SCHEDULE == "cosine":
            value = base * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
        else:
            value = base
        if step < config.WARMUP_STEPS:
            alpha = step / config.WARMUP_STEPS
            value *= config.WARMUP_FACTOR * (1.0 - alpha) + alpha
        return value

    return rate


def uses_schedule(config: Config) -> bool:
    """True unless the rate is Matterport's constant one."""
    return config.LEARNING_RATE_SCHEDULE != "constant" or config.WARMUP_STEPS > 0


class StepLearningRate(keras.callbacks.Callback):
    """Sets the optimizer's rate before every step and writes it to TensorBoard per step
    (``learning_rate`` in the run's ``train`` events)."""

    def __init__(self, rate: Callable[[int], float], steps_per_epoch: int, log_dir: str | Path):
        super().__init__()
        self.rate = rate
        self.steps_per_epoch = steps_per_epoch
        self.log_dir = Path(log_dir)
        self._epoch = 0
        self._writer = None

    def on_train_begin(self, logs=None):
        if tensorflow_installed():  # it writes the event files
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(str(self.log_dir / "train"))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        step = self._epoch * self.steps_per_epoch + batch
        value = self.rate(step)
        # JAX's trainer holds the variables' values outside them during an epoch: put them
        # back, so that its next step reads the new rate.
        getattr(self.model, "jax_state_sync", lambda: None)()
        optimizer = self.model.optimizer
        getattr(optimizer, "inner_optimizer", optimizer).learning_rate.assign(value)
        if self._writer is not None:
            import tensorflow as tf

            with self._writer.as_default():
                tf.summary.scalar("learning_rate", value, step=step)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
