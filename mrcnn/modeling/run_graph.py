"""Evaluating named intermediates of inference on TensorFlow: Matterport's ``run_graph``.

The names are :mod:`mrcnn.modeling.inspection`'s (``GraphTensor``, stage names, the sub-models'
KerasTensors); :func:`run_stages` computes them for one batch and returns numpy arrays.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mrcnn.modeling.inspection import STAGE_ALIASES, GraphTensor


def run_stages(network, inputs: Mapping[str, np.ndarray],
               requests: Mapping[str, Any]) -> OrderedDict[str, np.ndarray]:
    """Evaluate the requested tensors for one batch: name -> numpy array, in request order.

    network: a MaskRCNNNetwork. inputs: ``input_image`` float32[B, H, W, C] (molded),
    ``input_image_meta`` [B, META] and ``input_anchors`` [A, 4] normalized. requests: name ->
    a GraphTensor, a KerasTensor of a sub-model's layer (``get_layer("res4a_out").output``), or
    a stage name.
    """
    tensors = {name: tf.constant(np.asarray(value, dtype=np.float32))
               for name, value in inputs.items()}
    stages = {**network.inference_stages(tensors), "input_image": tensors["input_image"],
              "input_image_meta": tensors["input_image_meta"],
              "input_anchors": tf.broadcast_to(tensors["input_anchors"],
                                               [tf.shape(tensors["input_image"])[0],
                                                *tensors["input_anchors"].shape])}
    owners = _layer_outputs(network)
    results: OrderedDict[str, np.ndarray] = OrderedDict()
    for name, tensor in requests.items():
        results[name] = np.asarray(_evaluate(name, tensor, network, stages, owners))
    return results


def _evaluate(name: str, tensor: Any, network, stages: dict, owners: dict):
    if isinstance(tensor, str):
        tensor = GraphTensor(STAGE_ALIASES.get(tensor, tensor))
    if isinstance(tensor, GraphTensor):
        if tensor.stage not in stages:
            raise ValueError(f"run_graph: {name!r} asks for {tensor.name}, not a tensor of "
                             f"inference; known: {sorted(stages)}")
        if tensor.stage == "ROI/rpn_non_max_suppression":  # Matterport's: image 0's NMS op
            kept = stages[tensor.stage][0]
            return tf.boolean_mask(kept, kept >= 0)
        return stages[tensor.stage]
    if id(tensor) not in owners:
        raise TypeError(f"run_graph: {name!r} is a {type(tensor).__name__}; expected "
                        "keras_model.get_layer(...).output, model.ancestor(...) or a stage name")
    part, layer = owners[id(tensor)]
    if layer.name in stages:
        return stages[layer.name]
    return _sub_model_output(part, tensor, network, stages, name)


def _sub_model_output(part: keras.Model, tensor, network, stages: dict, name: str):
    """A layer inside a sub-model, fed with what that sub-model receives during inference."""
    probe = keras.Model(part.inputs, tensor)
    if part is network.backbone:
        return probe(stages["input_image"], training=False)
    if part is network.fpn:
        return probe(network.backbone(stages["input_image"], training=False), training=False)
    pooled = {network.classifier_head: "roi_align_classifier",
              network.mask_head: "roi_align_mask"}.get(part)
    if pooled is None:
        raise ValueError(f"run_graph: {name!r} is inside {part.name}, which runs once per "
                         "pyramid level; ask for rpn_class, rpn_bbox or rpn_class_logits")
    rois = stages[pooled]
    flat = probe(tf.reshape(rois, [-1, *rois.shape[2:]]), training=False)
    return tf.reshape(flat, [tf.shape(rois)[0], tf.shape(rois)[1], *flat.shape[1:]])


def _layer_outputs(network) -> dict[int, tuple[keras.Model, keras.layers.Layer]]:
    """id(KerasTensor) -> (sub-model, layer) for every single-output layer of the sub-models."""
    owners = {}
    for part in network.parts:
        for layer in part.layers:
            output = layer.output
            if not isinstance(output, (list, tuple)):
                owners[id(output)] = (part, layer)
    return owners
