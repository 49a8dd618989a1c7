"""Mask R-CNN's training and test steps on TensorFlow: gradients, replicas, clipping.

:class:`mrcnn.modeling.network.MaskRCNNNetwork` delegates ``train_step`` and ``test_step`` here
on TensorFlow, importing this module only when it trains (inference on another backend never
imports TensorFlow; Keras's own trainer steps there). The losses are
:mod:`mrcnn.modeling.training_losses`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from mrcnn.modeling.training_losses import (
    decayed_variables,
    total_loss,
    update_trackers,
    weighted_loss_sum,
)


def train_step(network, data) -> dict[str, tf.Tensor]:
    """One optimizer step of ``network`` on one batch; the running means of the losses."""
    # Under tf.distribute the replicas' gradients are summed: each takes 1/replicas.
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    with tf.GradientTape() as tape:
        parts = network.compute_losses(data, training=True)
        losses = weighted_loss_sum(network, parts)
        scaled = network.optimizer.scale_loss(losses / tf.cast(replicas, losses.dtype))
    decay = network.weight_decay_loss()
    total = losses + decay
    variables = network.trainable_variables
    gradients = with_decay_gradients(network, tape.gradient(scaled, variables), variables,
                                      replicas)
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


def with_decay_gradients(network, gradients: list, variables: list, replicas: int) -> list:
    """Add the L2 decay's gradient, 2 * WEIGHT_DECAY * w / w.size, to each decayed weight's.

    The same gradients as differentiating the decay in the tape, without its second full
    set of them: there, every decay gradient depends on the weights only, so all of them were
    computed first and held through the backward pass (170 MiB at R50, 512 px). Here each one
    waits for its weight's loss gradient and is added to it at once.
    """
    decayed = {id(v) for v in decayed_variables(network)}
    result = []
    for gradient, variable in zip(gradients, variables, strict=True):
        if id(variable) in decayed:
            size = float(np.prod(variable.shape))
            factor = network.config.WEIGHT_DECAY * 2.0 / (size * replicas)
            if gradient is None:  # a weight the losses do not reach still decays
                gradient = network.optimizer.scale_loss(factor) * variable.value
            else:
                with tf.control_dependencies([gradient]):
                    gradient = gradient + network.optimizer.scale_loss(factor) * variable.value
        result.append(gradient)
    return result


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
