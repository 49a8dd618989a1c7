"""Named intermediates of the inference graph: what Matterport's ``run_graph`` and ``ancestor`` see.

Matterport's model was one static Keras graph, so ``keras_model.get_layer("ROI").output`` was a
symbolic tensor that ``run_graph`` evaluated. Our stages run eagerly (see
:meth:`mrcnn.modeling.network.MaskRCNNNetwork.inference_stages`), so a *name* stands for a tensor:

- ``keras_model.get_layer(name).output`` is a :class:`GraphTensor` for the graph stages
  (:data:`GRAPH_STAGES`: ``ROI``, ``rpn_class``, ``mrcnn_detection``, ...), and the layer's own
  KerasTensor for layers of the sub-models (``res4a_out``, ``fpn_p2``, ``mrcnn_class``, ...);
- ``ancestor(tensor, "ROI/pre_nms_anchors:0")`` walks :data:`STAGE_PARENTS` as Matterport walked
  the TensorFlow graph, and returns a :class:`GraphTensor` (or None);
- :func:`mrcnn.modeling.run_graph.run_stages` evaluates any mix of them for one batch and
  returns numpy arrays (on TensorFlow).

Every value has the batch axis first, in Matterport's frame: proposals and head outputs per ROI
``[B, N, ...]``, anchors ``[B, A, 4]`` normalized. The one exception is Matterport's own:
``ROI/rpn_non_max_suppression`` is the NMS output of the first image, 1-D indices into
``ROI/refined_anchors_clipped[0]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

_PYRAMID = tuple(f"fpn_p{level}" for level in range(2, 7))

# Each named tensor of inference -> the tensors it is computed from (Matterport's graph edges).
STAGE_PARENTS: dict[str, tuple[str, ...]] = {
    "input_image": (),
    "input_image_meta": (),
    "input_anchors": (),
    **{name: ("input_image",) for name in _PYRAMID},
    "rpn_class_logits": _PYRAMID,
    "rpn_class": ("rpn_class_logits",),
    "rpn_bbox": _PYRAMID,
    "ROI/pre_nms_anchors": ("rpn_class", "input_anchors"),
    "ROI/refined_anchors": ("ROI/pre_nms_anchors", "rpn_bbox"),
    "ROI/refined_anchors_clipped": ("ROI/refined_anchors",),
    "ROI/rpn_non_max_suppression": ("ROI/refined_anchors_clipped", "rpn_class"),
    "ROI": ("ROI/rpn_non_max_suppression", "ROI/refined_anchors_clipped"),
    "roi_align_classifier": ("ROI", "input_image_meta", *_PYRAMID[:4]),
    "mrcnn_class_logits": ("roi_align_classifier",),
    "mrcnn_class": ("mrcnn_class_logits",),
    "mrcnn_bbox": ("roi_align_classifier",),
    "mrcnn_detection": ("ROI", "mrcnn_class", "mrcnn_bbox", "input_image_meta"),
    "roi_align_mask": ("mrcnn_detection", "input_image_meta", *_PYRAMID[:4]),
    "mrcnn_mask": ("roi_align_mask",),
}

# Names that get_layer answers with a GraphStage: Matterport's layers that are no Keras layer
# with a symbolic output here (graph layers run eagerly, or concatenations of the RPN levels).
GRAPH_STAGES = frozenset({"input_image_meta", "input_anchors", "anchors", "rpn_class_logits",
                          "rpn_class", "rpn_bbox", "ROI", "roi_align_classifier",
                          "roi_align_mask", "mrcnn_detection"})
STAGE_ALIASES = {"anchors": "input_anchors"}


@dataclass(frozen=True)
class GraphTensor:
    """A named tensor of the inference graph (``stage`` is a key of :data:`STAGE_PARENTS`)."""

    stage: str

    @property
    def name(self) -> str:
        """The TensorFlow-style name Matterport's notebooks match, e.g. ``ROI/pre_nms_anchors:0``."""
        return f"{self.stage}:0"

    @property
    def op(self) -> _GraphOp:
        return _GraphOp(tuple(GraphTensor(parent) for parent in STAGE_PARENTS[self.stage]))


@dataclass(frozen=True)
class _GraphOp:
    inputs: tuple[GraphTensor, ...]


class GraphStage:
    """What ``get_layer`` returns for a name of :data:`GRAPH_STAGES`: ``.output`` is its tensor.

    Other attributes are those of the Keras layer behind the stage, where there is one
    (``get_layer("ROI").proposal_count``).
    """

    def __init__(self, name: str, layer: keras.layers.Layer | None = None):
        self.name = name
        self.layer = layer

    @property
    def output(self) -> GraphTensor:
        return GraphTensor(STAGE_ALIASES.get(self.name, self.name))

    def __getattr__(self, attribute: str) -> Any:
        layer = self.__dict__.get("layer")
        if layer is None:
            raise AttributeError(f"graph stage {self.__dict__.get('name')!r} has no attribute "
                                 f"{attribute!r}")
        return getattr(layer, attribute)

    def __repr__(self) -> str:
        return f"GraphStage({self.name!r})"


def ancestor(tensor: Any, name: str | re.Pattern, checked: list | None = None) -> Any:
    """The first ancestor of ``tensor`` whose name fully matches ``name``, else None.

    Matterport's search: depth first through ``tensor.op.inputs``; ``name`` may omit the
    ``_<n>`` suffixes of name scopes (``"ROI/refined_anchors:0"``). Tensors without ``.op``
    (KerasTensors of the sub-models) have no ancestors here.
    """
    checked = checked if checked is not None else []
    if len(checked) > 500:  # Matterport's bound on the search
        return None
    if isinstance(name, str):
        name = re.compile(name.replace("/", r"(\_\d+)*/"))
    op = getattr(tensor, "op", None)
    for parent in getattr(op, "inputs", ()):
        if parent in checked:
            continue
        if name.fullmatch(parent.name):
            return parent
        checked.append(parent)
        found = ancestor(parent, name, checked)
        if found is not None:
            return found
    return None


def find_trainable_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
    """The layer that holds the weights: unwraps TimeDistributed (and nested wrappers)."""
    while isinstance(layer, keras.layers.Wrapper):
        layer = layer.layer
    return layer


def array_summary(text: str, array: Any = None) -> str:
    """Matterport's ``log`` line: ``text`` padded to 25, then shape, min, max and dtype."""
    if array is None:
        return text
    array = np.asarray(array)
    text = text.ljust(25) + f"shape: {str(array.shape):20}  "
    if array.size:
        text += f"min: {array.min():10.5f}  max: {array.max():10.5f}"
    else:
        text += f"min: {'':10}  max: {'':10}"
    return text + f"  {array.dtype}"
