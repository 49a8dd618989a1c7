"""Mask R-CNN's training and test steps on TensorFlow: gradients, replicas, clipping.

:class:`mrcnn.modeling.network.MaskRCNNNetwork` delegates ``train_step`` and ``test_step`` here
on TensorFlow, importing this module only when it trains (inference on another backend never
imports TensorFlow; Keras's own trainer steps there). The losses are
:mod:`mrcnn.modeling.training_losses`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from mrcnn.modeling.training_losses import total_loss, update_trackers


def train_step(network, data) -> dict[str, tf.Tensor]:
    """One optimizer step of ``network`` on one batch; the running means of the losses."""
    with tf.GradientTape() as tape:
        parts = network.compute_losses(data, training=True)
        total, decay = total_loss(network, parts)
        # Under tf.distribute the replicas' gradients are summed: scale to their mean.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        scaled = network.optimizer.scale_loss(total / tf.cast(replicas, total.dtype))
    variables = network.trainable_variables
    gradients = tape.gradient(scaled, variables)
    pairs = [(g, v) for g, v in zip(gradients, variables, strict=True) if g is not None]
    if replicas > 1:
        pairs = _clip_across_replicas(network, pairs, replicas)
    network.optimizer.apply_gradients(pairs)
    results = update_trackers(network, total, decay, parts)
    results["learning_rate"] = tf.cast(network.optimizer.learning_rate, tf.float32)
    return results


def test_step(network, data) -> dict[str, tf.Tensor]:
    """The losses of one validation batch (inference-mode BatchNorm), as running means."""
    parts = network.compute_losses(data, training=False)
    total, decay = total_loss(network, parts)
    return update_trackers(network, total, decay, parts)


def _clip_across_replicas(network, pairs, replicas: int) -> list:
    """Clip the replicas' summed gradient by its global norm, as one device would.

    Keras clips each replica's part before summing them, which multiplies the effective
    clip norm by the replica count. Each replica returns 1/replicas of the clipped sum, so
    the optimizer's own cross-replica sum applies it once.
    """
    summed = tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.SUM, [g for g, _ in pairs])
    clip_norm = network.config.GRADIENT_CLIP_NORM
    if isinstance(network.optimizer, keras.optimizers.LossScaleOptimizer):
        clip_norm = clip_norm * network.optimizer.dynamic_scale  # gradients are still scaled
    clipped, _ = tf.clip_by_global_norm(summed, clip_norm)
    return [(g / replicas, v) for g, (_, v) in zip(clipped, pairs, strict=True)]
