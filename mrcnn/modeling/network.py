"""The Mask R-CNN network: builds every stage from a Config and runs training and inference.

This is the one place that reads the Config; it passes explicit arguments to the layers.
Training losses (:mod:`mrcnn.modeling.training_losses`) are reported under Matterport's names.
TensorFlow trains through its own step (:mod:`mrcnn.modeling.training_step`, imported when the
network trains: inference imports no TensorFlow on another backend); JAX and PyTorch through
Keras's trainers, with ``call`` giving a training batch's losses and ``compute_loss`` their sum.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
from keras import ops

from mrcnn.config import BACKBONE_STAGE_BLOCKS, LOSS_NAMES, Config
from mrcnn.geometry.anchors import anchors_for_image_shape
from mrcnn.modeling import box_ops, inspection, training_losses
from mrcnn.modeling.backbone import build_resnet
from mrcnn.modeling.detection import DetectionLayer
from mrcnn.modeling.fpn import build_fpn
from mrcnn.modeling.heads import build_classifier_head, build_mask_head
from mrcnn.modeling.proposal import ProposalLayer
from mrcnn.modeling.roi_align import PyramidROIAlign
from mrcnn.modeling.rpn import build_rpn_model, run_rpn

# Offset into the image_meta vector (see mrcnn.geometry.imaging.compose_image_meta).
META_WINDOW = slice(7, 11)


class MaskRCNNNetwork(keras.Model):
    """Backbone + FPN + RPN + proposal + ROIAlign + heads, for training and inference.

    Inference input (``call``): a dict with ``input_image`` float32[B, H, W, C] (molded),
    ``input_image_meta`` float32[B, IMAGE_META_SIZE] and ``input_anchors`` float32[A, 4]
    (normalized). Output: ``detections`` [B, D, (y1, x1, y2, x2, class_id, score)] normalized and
    ``masks`` [B, D, mask_h, mask_w, NUM_CLASSES] probabilities.

    Training input (``train_step``): the batches of :func:`mrcnn.data.pipeline.build_dataset`
    (their height and width may change from batch to batch: one trace serves every shape on
    TensorFlow; JAX compiles each shape once). ``call`` on such a batch (it has
    ``input_gt_class_ids``) returns its five losses, which Keras's trainers on JAX and PyTorch
    hand to ``compute_loss``.
    """

    def __init__(self, config: Config, **kwargs):
        super().__init__(name=kwargs.pop("name", "mask_rcnn"), **kwargs)
        self.config = config
        frozen_bn = config.TRAIN_BN is False
        depth = config.TOP_DOWN_PYRAMID_SIZE
        with dtype_policy(config.MIXED_PRECISION or "float32"):
            self.backbone = self._build_backbone(config, frozen_bn)
            self.fpn = build_fpn(self._backbone_channels, depth)
            self.rpn = build_rpn_model(len(config.RPN_ANCHOR_RATIOS), depth,
                                       config.RPN_CONV_SIZE, config.RPN_ANCHOR_STRIDE)
            self.classifier_head = build_classifier_head(
                config.NUM_CLASSES, config.POOL_SIZE, depth, config.FPN_CLASSIF_FC_LAYERS_SIZE,
                frozen_bn
            )
            self.mask_head = build_mask_head(
                config.NUM_CLASSES, config.MASK_POOL_SIZE, depth, config.MASK_HEAD_CONV_SIZE,
                frozen_bn, class_agnostic=config.MASK_CLASS_AGNOSTIC
            )
        # Everything below computes in float32 whatever the policy of the convolutional parts.
        self.roi_align_classifier = PyramidROIAlign(
            (config.POOL_SIZE, config.POOL_SIZE), name="roi_align_classifier"
        )
        self.roi_align_mask = PyramidROIAlign(
            (config.MASK_POOL_SIZE, config.MASK_POOL_SIZE), name="roi_align_mask"
        )
        proposal_args = dict(nms_threshold=config.RPN_NMS_THRESHOLD,
                             pre_nms_limit=config.PRE_NMS_LIMIT,
                             rpn_bbox_std_dev=np.ravel(config.RPN_BBOX_STD_DEV).tolist())
        self.training_proposals = ProposalLayer(config.POST_NMS_ROIS_TRAINING,
                                                name="ROI_training", **proposal_args)
        self.inference_proposals = ProposalLayer(config.POST_NMS_ROIS_INFERENCE, name="ROI",
                                                 **proposal_args)
        self.detection_targets = _build_detection_targets(config)
        self.detection = DetectionLayer(
            config.DETECTION_MAX_INSTANCES, config.DETECTION_MIN_CONFIDENCE,
            config.DETECTION_NMS_THRESHOLD, np.ravel(config.BBOX_STD_DEV).tolist(),
            name="mrcnn_detection",
        )
        # "square" / "crop" training images all have IMAGE_SHAPE, so their anchors are one
        # constant (not a weight); "pad64" / "none" batches carry their own (input_anchors).
        self.training_anchors = ops.convert_to_tensor(
            anchors_for_image_shape(config, config.IMAGE_SHAPE))
        # Inference's trunk, XLA-compiled when asked on TensorFlow: it has static shapes; the
        # graph stages after it (top-k, NMS, dynamic gathers) do not compile there. Other
        # backends compile the whole prediction (MaskRCNN.detect).
        jit_compile = keras.backend.backend() == "tensorflow" and (
            config.MIXED_PRECISION is None if config.JIT_COMPILE is None else config.JIT_COMPILE)
        self._inference_trunk = self._trunk_outputs
        if jit_compile:
            import tensorflow as tf

            self._inference_trunk = tf.function(self._trunk_outputs, jit_compile=True)
        self.loss_weights = {name: float(config.LOSS_WEIGHTS[name]) for name in LOSS_NAMES}
        self.class_loss_weights = (None if config.CLASS_LOSS_WEIGHTS is None else
                                   ops.convert_to_tensor(config.CLASS_LOSS_WEIGHTS, "float32"))
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("loss", *LOSS_NAMES, "weight_decay_loss")}
        # Every weight-bearing part is a functional model built above, and the graph layers
        # hold no weights: the whole network is built (Keras checks this before distributing).
        for layer in (self.roi_align_classifier, self.roi_align_mask, self.training_proposals,
                      self.inference_proposals, self.detection_targets, self.detection):
            layer.built = True
        self.built = True

    # ----------------------------------------------------------------------------------------
    # Construction helpers
    def _build_backbone(self, config: Config, frozen_bn: bool) -> keras.Model:
        if callable(config.BACKBONE):
            image = keras.Input(shape=(None, None, config.IMAGE_CHANNEL_COUNT), name="input_image")
            features = list(config.BACKBONE(image, stage5=True, train_bn=not frozen_bn))[-4:]
            model = keras.Model(image, features, name="backbone")
        else:
            blocks = config.BACKBONE_STAGE_BLOCKS or BACKBONE_STAGE_BLOCKS[config.BACKBONE]
            model = build_resnet(blocks, config.BACKBONE_WIDTH, config.IMAGE_CHANNEL_COUNT,
                                 frozen_bn, name="backbone")
        self._backbone_channels = tuple(int(t.shape[-1]) for t in model.outputs)
        return model

    @property
    def parts(self) -> list[keras.Model]:
        """The weight-bearing sub-models, in the order their weights appear in checkpoints."""
        return [self.backbone, self.fpn, self.rpn, self.classifier_head, self.mask_head]

    @property
    def metrics(self):
        return list(self.trackers.values())

    # ----------------------------------------------------------------------------------------
    # Shared stages
    def _trunk_outputs(self, images, training):
        """Backbone, FPN and RPN: (pyramid [P2..P6], (rpn_logits, rpn_probs, rpn_deltas))."""
        pyramid = self.fpn(self.backbone(images, training=training), training=training)
        return pyramid, _float32(run_rpn(self.rpn, pyramid))

    def _classify(self, rois, image_shape, feature_maps, training):
        """(pooled [B, N, pool, pool, depth], (logits [B, N, C], probs, deltas [B, N, C, 4]))."""
        pooled = self.roi_align_classifier(rois, image_shape, feature_maps)
        count = ops.shape(rois)[1]
        flat = ops.reshape(pooled, (-1, *pooled.shape[2:]))
        logits, probs, deltas = _float32(self.classifier_head(flat, training=training))
        num_classes = self.config.NUM_CLASSES
        return pooled, (ops.reshape(logits, (-1, count, num_classes)),
                        ops.reshape(probs, (-1, count, num_classes)),
                        ops.reshape(deltas, (-1, count, num_classes, 4)))

    def _segment(self, rois, image_shape, feature_maps, training):
        """(pooled [B, N, mask_pool, mask_pool, depth], masks [B, N, h, w, C] probabilities)."""
        pooled = self.roi_align_mask(rois, image_shape, feature_maps)
        masks = ops.cast(self.mask_head(ops.reshape(pooled, (-1, *pooled.shape[2:])),
                                        training=training), "float32")
        return pooled, ops.reshape(masks, (-1, ops.shape(rois)[1], *masks.shape[1:]))

    # ----------------------------------------------------------------------------------------
    # Inference
    def call(self, inputs, training=False):
        if "input_gt_class_ids" in inputs:  # a training batch: its losses
            return self.compute_losses(inputs, training)
        stages = self.inference_stages(inputs)
        return {"detections": stages["mrcnn_detection"], "masks": stages["mrcnn_mask"]}

    def inference_stages(self, inputs) -> dict[str, Any]:
        """Every named intermediate of inference, keyed by Matterport's layer/tensor names.

        Takes the inputs of ``call``. Returns ``fpn_p2`` .. ``fpn_p6``, ``rpn_class_logits``,
        ``rpn_class``, ``rpn_bbox`` [B, A, ...], ``ROI`` (proposals) with the ProposalLayer's
        own stages as ``ROI/<stage>`` (see :meth:`ProposalLayer.stages`),
        ``roi_align_classifier``, ``mrcnn_class_logits``, ``mrcnn_class``, ``mrcnn_bbox`` (per
        proposal), ``mrcnn_detection``, ``roi_align_mask`` and ``mrcnn_mask`` (per detection).
        """
        images = inputs["input_image"]
        image_shape = _image_size(images)
        pyramid, (rpn_logits, rpn_probs, rpn_deltas) = self._inference_trunk(images,
                                                                              training=False)
        proposal_stages = self.inference_proposals.stages(rpn_probs, rpn_deltas,
                                                          inputs["input_anchors"])
        rois = proposal_stages["proposals"]
        pooled, (logits, probs, deltas) = self._classify(rois, image_shape, pyramid[:4],
                                                         training=False)
        windows = box_ops.norm_boxes(inputs["input_image_meta"][:, META_WINDOW], image_shape)
        detections = self.detection(rois, probs, deltas, windows)
        pooled_masks, masks = self._segment(detections[..., :4], image_shape, pyramid[:4],
                                            training=False)
        return {
            **{f"fpn_p{level + 2}": p for level, p in enumerate(pyramid)},
            "rpn_class_logits": rpn_logits, "rpn_class": rpn_probs, "rpn_bbox": rpn_deltas,
            **{f"ROI/{name}": t for name, t in proposal_stages.items() if name != "proposals"},
            "ROI": rois, "roi_align_classifier": pooled, "mrcnn_class_logits": logits,
            "mrcnn_class": probs, "mrcnn_bbox": deltas, "mrcnn_detection": detections,
            "roi_align_mask": pooled_masks, "mrcnn_mask": masks,
        }

    def get_layer(self, name=None, index=None):
        """A layer by name, searched through the sub-models too (Matterport's flat namespace).

        The graph stages that Matterport exposed as layers but that run eagerly here (``ROI``,
        ``rpn_class``, ``mrcnn_detection``, ...) come back as a
        :class:`mrcnn.modeling.inspection.GraphStage`, whose ``.output`` names the stage for
        ``MaskRCNN.run_graph``.
        """
        if name is None or index is not None:
            return super().get_layer(name, index)
        if name in inspection.GRAPH_STAGES:
            layer = next((layer for layer in self.layers if layer.name == name), None)
            return inspection.GraphStage(name, layer)
        for model in (self, *self.parts):
            found = next((layer for layer in model.layers if layer.name == name), None)
            if found is not None:
                return found
        raise ValueError(f"no layer named {name!r} in {self.name} or its sub-models "
                         f"{[part.name for part in self.parts]}")

    # ----------------------------------------------------------------------------------------
    # Training
    def compute_losses(self, batch, training: bool) -> dict[str, Any]:
        """The five unweighted losses for one training batch (Matterport's names)."""
        return training_losses.compute_losses(self, batch, training)

    def weight_decay_loss(self) -> Any:
        """Matterport's L2 weight decay over the trainable weights (0 with OPTIMIZER="adamw")."""
        return training_losses.weight_decay_loss(self)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Keras's trainers (JAX, PyTorch): ``y_pred`` is ``call``'s five losses of batch ``x``;
        the total, with the running means of every loss updated."""
        total, decay = training_losses.total_loss(self, y_pred)
        training_losses.update_trackers(self, total, decay, y_pred)
        return total

    def train_step(self, *args):
        """TensorFlow: :func:`mrcnn.modeling.training_step.train_step` (replica-aware clipping);
        other backends: Keras's own step (on JAX it takes and returns the training state)."""
        if keras.backend.backend() != "tensorflow":
            return super().train_step(*args)
        from mrcnn.modeling import training_step

        return training_step.train_step(self, *args)

    def test_step(self, *args):
        if keras.backend.backend() != "tensorflow":
            return super().test_step(*args)
        from mrcnn.modeling import training_step

        return training_step.test_step(self, *args)

    @contextlib.contextmanager
    def traced_without_xla(self) -> Iterator[None]:
        """Inference traced as plain TensorFlow ops, no XLA cluster: what graph converters
        (tf2onnx, the LiteRT converter) need, as they cannot look inside one."""
        compiled, self._inference_trunk = self._inference_trunk, self._trunk_outputs
        try:
            yield
        finally:
            self._inference_trunk = compiled


def _build_detection_targets(config: Config) -> keras.layers.Layer:
    """Training's DetectionTargetLayer from ``config``."""
    from mrcnn.modeling.detection_targets import DetectionTargetLayer

    return DetectionTargetLayer(
        config.TRAIN_ROIS_PER_IMAGE, config.ROI_POSITIVE_RATIO,
        np.ravel(config.BBOX_STD_DEV).tolist(), config.MASK_SHAPE, config.USE_MINI_MASK,
        name="proposal_targets",
    )


@contextlib.contextmanager
def dtype_policy(name: str):
    """Build layers under the Keras dtype policy ``name``, restoring the global one after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _image_size(images):
    """int32[2]: (height, width) of a batch of images, static where the shape is."""
    return ops.stack([ops.cast(size, "int32") for size in ops.shape(images)[1:3]])


def _float32(tensors) -> tuple:
    return tuple(ops.cast(t, "float32") for t in tensors)
