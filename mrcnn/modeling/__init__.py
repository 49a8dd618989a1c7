"""The Mask R-CNN network, one stage per module, in the order data flows through it.

``backbone`` (ResNet) -> ``fpn`` -> ``rpn`` -> ``proposal`` -> ``detection_targets`` (training)
-> ``roi_align`` -> ``heads`` (classifier, box, mask) -> ``detection`` (inference); ``losses``
and ``box_ops`` (box math in ``keras.ops``) serve them; ``backend_ops`` runs crops and NMS on
TensorFlow's kernels, or on ``portable_ops`` (``keras.ops``, any backend); ``network`` wires
the stages into one Keras model from a ``Config``, and ``training_step`` is its training and
test step (TensorFlow, imported only to train); ``postprocess`` maps detections back to the
original image (numpy); ``tiling`` cuts large images into tiles and merges what the tiles saw
(numpy); ``inspection`` names the intermediates of inference and ``run_graph`` evaluates them
(Matterport's ``run_graph``, TensorFlow); ``matterport_layers`` and ``matterport_graph`` are
Matterport's layer constructors and graph functions over these stages (TensorFlow).

Inference (``network``, the stages it runs, ``postprocess``, ``tiling``, ``inspection``)
imports no TensorFlow at module level, so it runs on a machine with JAX and no TensorFlow.

May import: ``mrcnn.geometry`` and ``mrcnn.config``. Never ``data``, ``evaluation`` or ``engine``.
"""
