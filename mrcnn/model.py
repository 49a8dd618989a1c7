"""``MaskRCNN``: Matterport's model API (train, detect, load_weights, find_last) on Keras 3.

    import mrcnn.model as modellib
    model = modellib.MaskRCNN(mode="training", config=config, model_dir="logs")
    model.load_weights(path, by_name=True, exclude=["mrcnn_class_logits", "mrcnn_bbox_fc",
                                                    "mrcnn_bbox", "mrcnn_mask"])
    model.train(dataset_train, dataset_val, learning_rate=config.LEARNING_RATE, epochs=2,
                layers="heads")
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mrcnn.config import Config, ConfigError
from mrcnn.data.head_targets import build_detection_targets, generate_random_rois
from mrcnn.engine import training
from mrcnn.engine.download import get_weights_path
from mrcnn.engine.run_config import write_run_config
from mrcnn.engine.weights import (
    LoadReport,
    assign_weights,
    read_h5_weights,
    save_weights_h5,
    weight_layers,
)
from mrcnn.geometry.anchors import anchors_for_image_shape, compute_backbone_shapes
from mrcnn.geometry.imaging import (
    compose_image_meta,
    crop_mask,
    mold_image,
    parse_image_meta,
    paste_masks,
    resize_image,
    unmold_image,
)
from mrcnn.modeling import inspection, tiling
from mrcnn.modeling.backbone import BatchNorm
from mrcnn.modeling.network import MaskRCNNNetwork
from mrcnn.modeling.postprocess import unmold_boxes, unmold_detections
from vision_common.first_conv import adapt_first_kernel

logger = logging.getLogger(__name__)

MODES = ("training", "inference")

# Matterport's names that run on TensorFlow (its graph functions and graph layers, and the
# Python-generator input over the tf.data pipeline's functions): imported when first used, so
# that importing this module for inference on another backend needs no TensorFlow.
TENSORFLOW_NAMES = {
    "mrcnn.data.generator": ("build_rpn_targets", "data_generator", "load_image_gt"),
    "mrcnn.modeling.matterport_layers": (
        "DetectionLayer", "DetectionTargetLayer", "ProposalLayer", "PyramidROIAlign"),
    "mrcnn.modeling.matterport_graph": (
        "apply_box_deltas_graph", "batch_pack_graph", "build_fpn_mask_graph", "build_rpn_model",
        "clip_boxes_graph", "conv_block", "denorm_boxes_graph", "detection_targets_graph",
        "fpn_classifier_graph", "identity_block", "log2_graph", "mrcnn_bbox_loss_graph",
        "mrcnn_class_loss_graph", "mrcnn_mask_loss_graph", "norm_boxes_graph", "overlaps_graph",
        "parse_image_meta_graph", "refine_detections_graph", "resnet_graph",
        "rpn_bbox_loss_graph", "rpn_class_loss_graph", "rpn_graph", "smooth_l1_loss",
        "trim_zeros_graph"),
}


def __getattr__(name: str) -> Any:
    """One of Matterport's TensorFlow names (:data:`TENSORFLOW_NAMES`), imported on first use."""
    module = next((module for module, names in TENSORFLOW_NAMES.items() if name in names), None)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def log(text: str, array: Any = None) -> None:
    """Print ``text`` and, for an array, its shape, min, max and dtype (Matterport's format)."""
    print(inspection.array_summary(text, array))


class MaskRCNN:
    """Mask R-CNN with Matterport's interface. The Keras model is ``self.keras_model``.

    mode: "training" or "inference" (both build the same weights; the mode says what the
    object is for, as in Matterport). config: a Config subclass instance. model_dir: where
    training runs write their logs and checkpoints.
    """

    def __init__(self, mode: str, config: Config, model_dir: str | os.PathLike):
        if mode not in MODES:
            raise ValueError(f"mode={mode!r}; expected one of {MODES}")
        if not isinstance(config, Config):
            raise TypeError(f"config must be a mrcnn.config.Config, got {type(config).__name__}")
        config.validate()
        self.mode = mode
        self.config = config
        self.model_dir = Path(model_dir)
        self.strategy = _build_strategy(config)
        self.keras_model = self.build(mode, config)
        self._layers = weight_layers(self.keras_model.parts)
        # TensorFlow traces prediction into one graph; other backends run the Keras model's
        # own compiled predict step (predict_on_batch: jax.jit on JAX).
        self._predict = None
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            self._predict = tf.function(self._predict_batch, reduce_retracing=True)
        self.epoch = 0
        self.set_log_dir()

    def build(self, mode: str, config: Config) -> MaskRCNNNetwork:
        """The Keras model (one network for both modes), under this model's strategy."""
        if mode not in MODES:
            raise ValueError(f"mode={mode!r}; expected one of {MODES}")
        with self._strategy_scope():
            return MaskRCNNNetwork(config)

    def _strategy_scope(self) -> contextlib.AbstractContextManager:
        """The tf.distribute strategy's scope on TensorFlow; no scope on other backends."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    # ----------------------------------------------------------------------------------------
    # Logs, checkpoints and weights
    def set_log_dir(self, model_path: str | os.PathLike | None = None) -> None:
        """Start a new log dir, or continue the run (and epoch count) of ``model_path``."""
        self.epoch = 0
        self.log_dir = training.new_log_dir(self.model_dir, self.config.NAME)
        if model_path is not None:
            parsed = training.parse_checkpoint(model_path)
            if parsed is not None:
                self.log_dir, self.epoch = parsed
        # Matterport's template, e.g. logs/shapes20261123T1200/mask_rcnn_shapes_{epoch:04d}.h5
        self.checkpoint_path = str(
            self.log_dir / f"mask_rcnn_{self.config.NAME.lower()}_{{epoch:04d}}.h5"
        )

    def find_last(self) -> str:
        """Path of the last checkpoint of the newest run of this config's NAME under model_dir."""
        return str(training.find_last(self.model_dir, self.config.NAME))

    def load_weights(
        self,
        filepath: str | os.PathLike,
        by_name: bool = False,
        exclude: Sequence[str] | None = None,
        skip_mismatch: bool = False,
    ) -> LoadReport:
        """Load an ``.h5`` file (Matterport's or ours) by layer name; returns what was loaded.

        exclude: layer names (or full-match regexes) to skip, e.g. the heads when the class count
        differs. Weights are always matched by name: ``by_name`` is accepted for compatibility
        (Matterport's by_name=False matched by position, which only worked for its own files).
        A shape mismatch raises WeightsFileError naming the layer and both shapes unless
        ``skip_mismatch``. Loading one of our checkpoints continues its run's epoch count.
        """
        file_layers = read_h5_weights(filepath)
        exclude = list(exclude or ())
        mask_arrays = file_layers.get("mrcnn_mask")
        if self.config.MASK_CLASS_AGNOSTIC and mask_arrays and mask_arrays[0].shape[-1] != 1:
            logger.warning("%s: its mrcnn_mask predicts %d per-class masks; MASK_CLASS_AGNOSTIC "
                           "keeps this model's one-mask layer at its initial weights",
                           Path(filepath).name, mask_arrays[0].shape[-1])
            exclude.append("mrcnn_mask")
        adapted = self._adapt_first_conv(file_layers)
        report = assign_weights(self._layers, file_layers, Path(filepath).name, exclude,
                                skip_mismatch)
        report.adapted.extend(adapted)
        if not report.loaded:
            raise ValueError(
                f"{filepath}: no layer of the file matches this model's layer names "
                f"(file layers: {report.unused[:8]}...)"
            )
        logger.info("loaded weights from %s: %s", filepath, report)
        self.set_log_dir(filepath)
        return report

    def _adapt_first_conv(self, file_layers: dict[str, list[np.ndarray]]) -> list[str]:
        """A 3-channel file's ``conv1`` kernel, adapted in place to IMAGE_CHANNEL_COUNT
        (:func:`vision_common.first_conv.adapt_first_kernel`); the report line, if any."""
        channels = int(self.config.IMAGE_CHANNEL_COUNT)
        arrays = file_layers.get("conv1")
        if channels == 3 or not arrays or arrays[0].ndim != 4 or arrays[0].shape[2] != 3:
            return []
        file_layers["conv1"] = [adapt_first_kernel(arrays[0], channels), *arrays[1:]]
        return [f"conv1 adapted from 3 to {channels} channels"]

    def get_imagenet_weights(self) -> str:
        """Path of the ResNet-50 ImageNet weights Matterport uses (downloaded once, cached)."""
        return str(get_weights_path("imagenet_resnet50_matterport"))

    def save_weights(self, filepath: str | os.PathLike) -> None:
        """Save all weights in Matterport's ``.h5`` layout (atomic write)."""
        save_weights_h5(self._layers, filepath)

    def get_trainable_layers(self) -> list[keras.layers.Layer]:
        """Layers with weights that are currently trainable."""
        return [layer for layer in self._layers.values() if layer.trainable]

    def set_trainable(self, layer_regex: str, keras_model: keras.Model | None = None,
                      indent: int = 0, verbose: int = 1) -> list[str]:
        """Train the layers whose names fully match ``layer_regex`` (or a preset), freeze others.

        keras_model and indent were Matterport's recursion into sub-models; every layer of
        this model is considered whatever they are.
        """
        fixed = ()
        if self.config.FROZEN_BACKBONE_BN:
            fixed = [layer.name for layer in weight_layers([self.keras_model.backbone]).values()
                     if isinstance(layer, keras.layers.BatchNormalization)]
        names = training.set_trainable(self._layers, training.layer_regex(layer_regex), fixed)
        if verbose:
            logger.info("training %d layers matching %r", len(names), layer_regex)
        return names

    # ----------------------------------------------------------------------------------------
    # Training
    def train(
        self,
        train_dataset: Any,
        val_dataset: Any,
        learning_rate: float,
        epochs: int,
        layers: str,
        augmentation: Any = None,
        custom_callbacks: Sequence[keras.callbacks.Callback] | None = None,
        no_augmentation_sources: Sequence[str] | None = None,
    ) -> keras.callbacks.History:
        """Train until epoch ``epochs`` (cumulative, as in Matterport: a second call continues).

        train_dataset / val_dataset: mrcnn Dataset objects (prepared), or tf.data datasets or
        ``keras.utils.PyDataset`` s that yield the batches of
        :func:`mrcnn.data.pipeline.build_dataset`. layers: heads, 3+, 4+, 5+, all or a regex.
        augmentation: an albumentations pipeline (or an imgaug augmenter).
        Any Keras backend: TensorFlow trains with its own step and a tf.data input; JAX and
        PyTorch through Keras's trainers, with tf.data where TensorFlow is installed and
        :class:`mrcnn.data.py_loader.TrainingBatches` where it is not.
        """
        from mrcnn.engine.schedules import StepLearningRate, learning_rate_at, uses_schedule
        from mrcnn.engine.training_data import as_training_input, for_replicas

        if self.mode != "training":
            raise ValueError("train() needs a model created with mode='training'")
        if epochs <= self.epoch:
            logger.warning("epochs=%d: the model is already at epoch %d; nothing to do",
                           epochs, self.epoch)
        self.set_trainable(layers)
        data_config = self.config
        if self.strategy is not None:
            from mrcnn.engine.distribute import input_config

            data_config = input_config(self.config, self.strategy)
        train_data = as_training_input(train_dataset, data_config, shuffle=True,
                                       augmentation=augmentation,
                                       no_augmentation_sources=no_augmentation_sources,
                                       repeat_factor_threshold=self.config.REPEAT_FACTOR_THRESHOLD)
        val_data = None
        if val_dataset is not None:
            val_data = as_training_input(val_dataset, data_config, shuffle=True)

        kind = self.config.DISTRIBUTION_STRATEGY
        if kind is not None:
            train_data, val_data = (for_replicas(d, kind) if d is not None else None
                                    for d in (train_data, val_data))
        write_run_config(self.log_dir, self.config)  # evaluate/detect/export rebuild it
        callbacks = [
            training.SkippedSamplesReport(),  # first: its count reaches TensorBoard's logs
            *training.tensorboard(self.log_dir),
            training.CheckpointCallback(self.keras_model, self.log_dir, self.config.NAME),
            training.StopOnNonFiniteLoss(self.log_dir),
            *(custom_callbacks or []),
        ]
        if isinstance(learning_rate, (int, float)) and uses_schedule(self.config):
            rate = learning_rate_at(self.config, float(learning_rate),
                                    epochs * self.config.STEPS_PER_EPOCH)
            callbacks.insert(1, StepLearningRate(rate, self.config.STEPS_PER_EPOCH, self.log_dir))
        # A fresh optimizer per call, as in Matterport; losses are recomputed from their parts
        # every step, so nothing accumulates across calls.
        with self._strategy_scope():
            self._compile(learning_rate)
        logger.info("starting at epoch %d, LR=%s, checkpoints in %s", self.epoch, learning_rate,
                    self.log_dir)
        history = self.keras_model.fit(
            train_data,
            initial_epoch=self.epoch,
            epochs=epochs,
            steps_per_epoch=self.config.STEPS_PER_EPOCH,
            validation_data=val_data,
            validation_steps=self.config.VALIDATION_STEPS if val_data is not None else None,
            callbacks=callbacks,
            verbose="auto",
            shuffle=False,  # build_dataset already shuffles
        )
        self.epoch = max(self.epoch, epochs)
        return history

    def compile(self, learning_rate: float, momentum: float) -> None:
        """Matterport's compile: SGD with ``momentum`` and GRADIENT_CLIP_NORM, under the strategy.

        The losses and the L2 weight decay are computed by the network's ``train_step`` (not
        added to the Keras model as in Matterport); ``train`` calls this itself.
        """
        with self._strategy_scope():
            self._compile(learning_rate, momentum)

    def _compile(self, learning_rate: float, momentum: float | None = None) -> None:
        """A fresh optimizer (Config.OPTIMIZER) with Matterport's clipping, slots built eagerly."""
        # One norm over all gradients, as Keras 2's clipnorm (Matterport) computed it. Over
        # several replicas the network clips their summed gradient itself.
        replicas = self.strategy.num_replicas_in_sync if self.strategy is not None else 1
        clipnorm = self.config.GRADIENT_CLIP_NORM if replicas == 1 else None
        if self.config.OPTIMIZER == "adamw":
            optimizer = keras.optimizers.AdamW(learning_rate=learning_rate,
                                               weight_decay=self.config.WEIGHT_DECAY,
                                               global_clipnorm=clipnorm)
            optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
        else:
            optimizer = keras.optimizers.SGD(
                learning_rate=learning_rate,
                momentum=self.config.LEARNING_MOMENTUM if momentum is None else momentum,
                global_clipnorm=clipnorm)
        if self.config.MIXED_PRECISION == "mixed_float16":
            # Dynamic loss scaling keeps float16 gradients from underflowing; steps with
            # non-finite gradients are skipped and the scale lowered.
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        self.keras_model.compile(optimizer=optimizer)
        # Creating the momentum slots here, not inside the first traced step, saves a second
        # trace of the whole training graph.
        self.keras_model.optimizer.build(self.keras_model.trainable_variables)

    # ----------------------------------------------------------------------------------------
    # Inference
    def get_anchors(self, image_shape: Sequence[int]) -> np.ndarray:
        """Normalized anchors [A, 4] for a molded image of ``image_shape``.

        As in Matterport, ``self.anchors`` keeps the latest anchors in pixels (the inspection
        notebooks draw them).
        """
        self.anchors = anchors_for_image_shape(self.config, image_shape, normalized=False)
        return anchors_for_image_shape(self.config, image_shape)

    def unmold_detections(self, detections: np.ndarray, mrcnn_mask: np.ndarray,
                          original_image_shape: Sequence[int], image_shape: Sequence[int],
                          window: Sequence[int]) -> tuple:
        """One image's raw detections -> (boxes, class_ids, scores, masks) in original pixels."""
        return unmold_detections(detections, mrcnn_mask, tuple(original_image_shape),
                                 tuple(image_shape), np.asarray(window))

    def detect_molded(self, molded_images: Sequence[np.ndarray],
                      image_metas: Sequence[np.ndarray], verbose: int = 0) -> list[dict]:
        """detect() for images molded already (e.g. ``mold_image(load_image_gt(...)[0])``).

        Results are in the molded images' pixels (window = the whole image), as in Matterport.
        """
        molded = np.stack([np.asarray(image, dtype=np.float32) for image in molded_images])
        anchors = self.get_anchors(molded.shape[1:])
        results = []
        for start in range(0, len(molded), self.config.BATCH_SIZE):
            chunk = slice(start, start + self.config.BATCH_SIZE)
            detections, masks = self._predict_arrays(
                molded[chunk], np.stack(image_metas[chunk]).astype(np.float32), anchors)
            for row, mask in zip(detections, masks, strict=True):
                shape = molded.shape[1:]
                rois, class_ids, scores, full = self.unmold_detections(
                    row, mask, shape, shape, (0, 0, shape[0], shape[1]))
                results.append({"rois": rois, "class_ids": class_ids, "scores": scores,
                                "masks": full})
        if verbose:
            logger.info("detected %s instances in %d molded images",
                        [len(r["class_ids"]) for r in results], len(results))
        return results

    # ----------------------------------------------------------------------------------------
    # Inspection (Matterport's inspect_model notebook)
    def run_graph(self, images: Sequence[np.ndarray], outputs: Sequence[tuple[str, Any]],
                  image_metas: Sequence[np.ndarray] | None = None) -> OrderedDict:
        """Compute intermediate tensors of inference for ``images``: name -> numpy array.

        outputs: (name, tensor) pairs, the tensor from ``self.keras_model.get_layer(n).output``
        (``ROI``, ``rpn_class``, ``rpn_bbox``, ``mrcnn_class``, ``mrcnn_bbox``, ``mrcnn_mask``,
        ``mrcnn_detection``, ``roi_align_classifier``, ``fpn_p2``, ``res4a_out``, ...),
        ``self.ancestor(...)`` or a stage name. image_metas: when given, ``images`` are molded
        already (e.g. from ``load_image_gt`` + ``mold_image``). Values have the batch axis first
        and Matterport's frames (see :mod:`mrcnn.modeling.inspection`); each is logged.
        """
        _require_tensorflow("run_graph()")
        from mrcnn.modeling.run_graph import run_stages

        outputs = OrderedDict(outputs)
        missing = [name for name, tensor in outputs.items() if tensor is None]
        if missing:
            raise ValueError(f"run_graph: no tensor for {missing} (ancestor() found none?)")
        if image_metas is None:
            molded, image_metas, _ = self.mold_inputs(images)
        else:
            molded = images
        molded = np.stack([np.asarray(image, dtype=np.float32) for image in molded])
        inputs = {"input_image": molded, "input_image_meta": np.stack(image_metas),
                  "input_anchors": self.get_anchors(molded.shape[1:])}
        results = run_stages(self.keras_model, inputs, outputs)
        for name, value in results.items():
            log(name, value)
        return results

    def ancestor(self, tensor: Any, name: str, checked: list | None = None) -> Any:
        """The ancestor of ``tensor`` named ``name`` (e.g. ``"ROI/refined_anchors:0"``), or None."""
        return inspection.ancestor(tensor, name, checked)

    def find_trainable_layer(self, layer: keras.layers.Layer) -> keras.layers.Layer:
        """The layer that holds the weights of ``layer`` (unwraps TimeDistributed)."""
        return inspection.find_trainable_layer(layer)

    def mold_inputs(self, images: Sequence[np.ndarray]):
        """Resize and normalize images: (molded_images, image_metas, windows), Matterport-style.

        Each molded image equals Matterport's bit for bit (float32; see ``resize_image`` and
        ``mold_image``); the three are lists, one entry per image, since images may mold to
        different shapes. Raises ConfigError for IMAGE_RESIZE_MODE="crop", which is random.
        """
        if self.config.IMAGE_RESIZE_MODE == "crop":
            # Matterport's Config: "crop ... Can be used in training only"; its nucleus sample
            # detects with an inference config that sets "pad64" instead.
            raise ConfigError(
                "IMAGE_RESIZE_MODE='crop' takes a random IMAGE_MIN_DIM x IMAGE_MIN_DIM crop and "
                "is for training only: detect() would see a random part of each image. Detect "
                "with IMAGE_RESIZE_MODE='pad64' (keeps IMAGE_MIN_DIM and IMAGE_MIN_SCALE, as "
                "Matterport's nucleus sample does) or 'square' (--set IMAGE_RESIZE_MODE=pad64)"
            )
        molded, metas, windows = [], [], []
        for image in images:
            resized, window, scale, _, _ = resize_image(
                image,
                min_dim=self.config.IMAGE_MIN_DIM,
                min_scale=self.config.IMAGE_MIN_SCALE,
                max_dim=self.config.IMAGE_MAX_DIM,
                mode=self.config.IMAGE_RESIZE_MODE,
            )
            molded.append(mold_image(resized, self.config))
            metas.append(compose_image_meta(0, image.shape, resized.shape, window, scale,
                                            np.zeros([self.config.NUM_CLASSES], dtype=np.int32)))
            windows.append(window)
        return molded, metas, windows

    def detect(self, images: Sequence[np.ndarray], verbose: int = 0, *,
               tile_size: int | None = None, tile_overlap: float = 0.25,
               tile_whole_image: bool = False, tile_merge_threshold: float = 0.5,
               ) -> list[dict[str, Any]]:
        """Detect instances in any number of images of any sizes.

        images: uint8 [H, W, IMAGE_CHANNEL_COUNT] arrays. A grayscale [H, W] image is
        repeated to RGB as Matterport's ``load_image`` does (or given its channel axis when
        IMAGE_CHANNEL_COUNT=1); RGBA loses its alpha channel.
        Returns one dict per image: rois int32[N, (y1, x1, y2, x2)] pixels, class_ids int32[N],
        scores float32[N], masks bool[H, W, N] at the image's original size.

        tile_size: detect at full resolution in overlapping ``tile_size`` squares (neighbours
        sharing ``tile_overlap`` of a tile) and merge what the tiles saw (instances of one
        class whose masks overlap by ``tile_merge_threshold`` of the smaller one become one;
        see :mod:`mrcnn.modeling.tiling`); ``tile_whole_image`` adds a pass over the whole
        image at IMAGE_MAX_DIM for objects larger than a tile. Then ``masks`` is an
        :class:`~mrcnn.modeling.tiling.InstanceMasks`: ``masks[:, :, i]`` is bool[H, W] as
        usual, but only the crops inside each box are held.
        Raises ConfigError when IMAGE_RESIZE_MODE is "crop" (random crops: training only).
        """
        images = [_check_image(image, index, self.config.IMAGE_CHANNEL_COUNT)
                  for index, image in enumerate(images)]
        if tile_size is not None:
            tiling.check_tiling(tile_size, tile_overlap)  # before any work
            if tile_size > self.config.IMAGE_MAX_DIM:
                logger.warning("tile_size %d > IMAGE_MAX_DIM %d: each tile is shrunk to "
                               "IMAGE_MAX_DIM; tile_size=%d keeps full resolution", tile_size,
                               self.config.IMAGE_MAX_DIM, self.config.IMAGE_MAX_DIM)
            results = [self._detect_tiled(image, tile_size, tile_overlap, tile_whole_image,
                                          tile_merge_threshold, verbose) for image in images]
        else:
            results = []
            for image, (rois, class_ids, scores, masks) in zip(
                    images, self._detect_unpasted(images), strict=True):
                results.append({"rois": rois, "class_ids": class_ids, "scores": scores,
                                "masks": paste_masks(masks, rois, image.shape)})
        if verbose:
            logger.info("detected %s instances in %d images",
                        [len(r["class_ids"]) for r in results], len(images))
        return results

    def _detect_unpasted(self, images: Sequence[np.ndarray]) -> list[tuple]:
        """Per image (rois, class_ids, scores, masks float[N, h, w]): detect() before pasting."""
        molded, metas, windows = self.mold_inputs(images)
        results: list[tuple | None] = [None] * len(images)
        # Images that mold to the same shape run together, BATCH_SIZE at a time.
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(molded):
            by_shape.setdefault(image.shape, []).append(index)
        for shape, indices in by_shape.items():
            anchors = self.get_anchors(shape)
            for start in range(0, len(indices), self.config.BATCH_SIZE):
                chunk = indices[start:start + self.config.BATCH_SIZE]
                detections, masks = self._predict_arrays(
                    np.stack([molded[i] for i in chunk]).astype(np.float32),
                    np.stack([metas[i] for i in chunk]).astype(np.float32),
                    anchors,
                )
                for row, index in enumerate(chunk):
                    results[index] = unmold_boxes(detections[row], masks[row],
                                                  images[index].shape, shape, windows[index])
        return results

    def _detect_tiled(self, image: np.ndarray, tile_size: int, overlap: float,
                      whole_image: bool, merge_threshold: float, verbose: int) -> dict[str, Any]:
        """detect() of one image in tiles, merged: see :mod:`mrcnn.modeling.tiling`."""
        tiles = tiling.tile_grid(image.shape[0], image.shape[1], tile_size, overlap)
        instances: list[tiling.Instance] = []
        batch = self.config.BATCH_SIZE
        for start in range(0, len(tiles), batch):
            if verbose:
                logger.info("tiles %d-%d of %d", start + 1, min(start + batch, len(tiles)),
                            len(tiles))
            chunk = tiles[start:start + batch]
            crops = [image[y1:y2, x1:x2] for y1, x1, y2, x2 in chunk]
            for source, (y1, x1, _, _), crop, detected in zip(
                    range(start, start + len(chunk)), chunk, crops, self._detect_unpasted(crops),
                    strict=True):
                instances.extend(_instances(detected, crop.shape, (y1, x1), source))
        if whole_image:
            instances.extend(_instances(self._detect_unpasted([image])[0], image.shape, (0, 0),
                                        source=len(tiles)))
        merged = tiling.merge_instances(instances, merge_threshold)
        return {
            "rois": np.array([i.box for i in merged], dtype=np.int32).reshape(-1, 4),
            "class_ids": np.array([i.class_id for i in merged], dtype=np.int32),
            "scores": np.array([i.score for i in merged], dtype=np.float32),
            "masks": tiling.InstanceMasks(image.shape[0], image.shape[1],
                                          [i.box for i in merged], [i.mask for i in merged]),
        }

    def export(self, path: str | os.PathLike, format: str = "saved_model", *,
               size: tuple[int, int] | None = None, quantize: bool = False) -> Path:
        """Export this inference model with molding, anchors and unmolding inside the graph.

        format: "saved_model" (signatures ``serving_default``: ``image`` uint8[H, W, C], and
        ``serving_image_bytes``: ``image_bytes`` string), returning what ``detect()`` returns
        with ``masks`` uint8[H, W, N]; see :mod:`mrcnn.export.saved_model`. "onnx": the same
        graph for onnxruntime (one ``image`` input; :mod:`mrcnn.export.onnx`), path a file
        such as ``model.onnx``. "tflite": LiteRT, builtin ops only, for one fixed input
        ``size`` (H, W; default IMAGE_SHAPE), ``quantize``: int8 weights
        (:mod:`mrcnn.export.litert`). Returns the path.
        Raises ExportError (a ValueError) for a training-mode model or an unexportable config.
        """
        _require_tensorflow(f"{format} export")
        from mrcnn.export import export_model

        return export_model(self.keras_model, self.config, path, format, mode=self.mode,
                            size=size, quantize=quantize)

    def _predict_arrays(self, images: np.ndarray, image_metas: np.ndarray,
                        anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(detections [B, D, 6], masks [B, D, h, w, C]) for one molded batch, as numpy."""
        if self._predict is not None:
            import tensorflow as tf

            detections, masks = self._predict(tf.constant(images), tf.constant(image_metas),
                                              tf.constant(anchors))
            return detections.numpy(), masks.numpy()
        outputs = self.keras_model.predict_on_batch(
            {"input_image": images, "input_image_meta": image_metas, "input_anchors": anchors})
        return np.asarray(outputs["detections"]), np.asarray(outputs["masks"])

    def _predict_batch(self, images, image_metas, anchors):
        outputs = self.keras_model(
            {"input_image": images, "input_image_meta": image_metas, "input_anchors": anchors},
            training=False,
        )
        return outputs["detections"], outputs["masks"]


def _build_strategy(config: Config) -> Any:
    """The tf.distribute strategy ``config`` asks for on TensorFlow (the default strategy for
    None); None on other backends, where DISTRIBUTION_STRATEGY raises ValueError."""
    if keras.backend.backend() != "tensorflow":
        if config.DISTRIBUTION_STRATEGY is not None:
            _require_tensorflow(f"DISTRIBUTION_STRATEGY={config.DISTRIBUTION_STRATEGY!r}")
        return None
    from mrcnn.engine.distribute import build_strategy

    return build_strategy(config)


def _require_tensorflow(what: str) -> None:
    """Raise ValueError when Keras runs on another backend: ``what`` is TensorFlow-only still
    (issue 17); elsewhere MaskRCNN builds, loads weights and detects."""
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ValueError(f"{what} needs the TensorFlow backend; Keras runs on {backend!r} "
                         "(rerun with KERAS_BACKEND=tensorflow; on this backend MaskRCNN "
                         "builds, loads weights and detects)")


def _check_image(image: Any, index: int, channels: int) -> np.ndarray:
    """Validate one detect() input and bring it to [H, W, channels] (its dtype kept)."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"detect(): image {index} is a {type(image).__name__}; expected a numpy array")
    if image.dtype.kind not in "uif":
        raise TypeError(f"detect(): image {index} has dtype {image.dtype}; expected integer or "
                        "float values (uint8, uint16, float32, ...)")
    if image.ndim == 2 and channels in (1, 3):
        # Grayscale: Matterport's load_image repeats it to RGB (skimage.color.gray2rgb).
        image = image[:, :, None] if channels == 1 else np.stack([image] * 3, axis=-1)
    if image.ndim != 3 or image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"detect(): image {index} has shape {image.shape}; expected "
                         f"[H, W, {channels}] (IMAGE_CHANNEL_COUNT)")
    if channels == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if image.shape[2] != channels:
        raise ValueError(f"detect(): image {index} has {image.shape[2]} channels; the config "
                         f"expects IMAGE_CHANNEL_COUNT={channels}")
    return image


# Matterport's public names (mrcnn/model.py): those defined or re-exported above, and
# TENSORFLOW_NAMES.
__all__ = [
    "MODES", "BatchNorm", "MaskRCNN", "build_detection_targets", "compose_image_meta",
    "compute_backbone_shapes", "generate_random_rois", "log", "mold_image", "parse_image_meta",
    "unmold_image",
]
__all__ += [name for names in TENSORFLOW_NAMES.values() for name in names]


def _instances(detected: tuple, shape: Sequence[int], origin: tuple[int, int],
               source: int) -> list[tiling.Instance]:
    """One image's unpasted detections as tiling Instances, shifted by ``origin`` (y, x)."""
    rois, class_ids, scores, masks = detected
    out = []
    for roi, class_id, score, mask in zip(rois, class_ids, scores, masks, strict=True):
        cropped = crop_mask(mask, roi, shape)
        if cropped is not None:
            (y1, x1, y2, x2), pasted = cropped
            box = (y1 + origin[0], x1 + origin[1], y2 + origin[0], x2 + origin[1])
            out.append(tiling.Instance(box, pasted, int(class_id), float(score), source))
    return out
