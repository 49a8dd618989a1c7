"""Mask R-CNN configuration, field-for-field compatible with matterport/Mask_RCNN.

Subclass :class:`Config` and override class attributes, exactly as with Matterport's code::

    class ShapesConfig(Config):
        NAME = "shapes"
        NUM_CLASSES = 1 + 3

Fields marked *(new)* do not exist in Matterport; their defaults reproduce Matterport's behaviour.
"""

from __future__ import annotations

import ast
import logging
import re
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

RESIZE_MODES = ("none", "square", "pad64", "crop")
LOSS_NAMES = ("rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss", "mrcnn_mask_loss")
BACKBONES = ("resnet50", "resnet101")
DERIVED_FIELDS = ("BATCH_SIZE", "IMAGE_SHAPE", "IMAGE_META_SIZE")
# Residual blocks per stage (conv2..conv5) for each named backbone.
BACKBONE_STAGE_BLOCKS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3)}


DISTRIBUTION_STRATEGIES = (None, "mirrored", "multi_worker")
PRECISIONS = (None, "mixed_float16", "mixed_bfloat16")
OPTIMIZERS = ("sgd", "adamw")
LEARNING_RATE_SCHEDULES = ("constant", "step", "cosine")


class ConfigError(ValueError):
    """A Config field holds a value the model cannot work with."""


class Config:
    """Base configuration. Every field is a class attribute; derived fields are set in __init__."""

    # Name the configuration (e.g. "coco", "shapes"). Used in log-dir and checkpoint names.
    NAME: str | None = None

    # Number of GPUs to use. Several GPUs are driven through tf.distribute, not ParallelModel.
    GPU_COUNT = 1

    # How training is spread over devices (tf.distribute): None = the default device;
    # "mirrored" = MirroredStrategy over GPU_COUNT local GPUs (or logical CPUs where no GPU);
    # "multi_worker" = MultiWorkerMirroredStrategy across machines (reads TF_CONFIG).
    DISTRIBUTION_STRATEGY: str | None = None

    # Mixed precision: None (float32), "mixed_float16" (GPUs; dynamic loss scaling) or
    # "mixed_bfloat16" (TPUs, recent CPUs and GPUs). Convolutions and dense layers compute in the
    # low precision; proposals, ROIAlign, targets, detection and losses stay in float32.
    MIXED_PRECISION: str | None = None

    # Compile inference's convolutional trunk (backbone, FPN and RPN head) with XLA: True, False,
    # or None = when computing in float32. On 2 CPU cores, float32 detect() at 1024 px took 2.1 s
    # instead of 2.35 s (one-off compilation: a few seconds per molded image shape, one shape
    # with "square" resizing); in bfloat16 XLA's convolutions were slower than oneDNN's (2.0 s
    # vs 0.8 s of graph time), hence None. Training is not compiled: its XLA gradient was slower.
    JIT_COMPILE: bool | None = None

    # Images per GPU. A 12GB GPU can typically handle 2 images of 1024x1024px.
    IMAGES_PER_GPU = 2

    # Training steps per epoch. Decoupled from the dataset size: TensorBoard and checkpoints are
    # written at the end of each epoch, so this sets how often that happens.
    STEPS_PER_EPOCH = 1000

    # Validation steps run at the end of every training epoch.
    VALIDATION_STEPS = 50

    # Backbone network: "resnet50", "resnet101", or a callable (then COMPUTE_BACKBONE_SHAPE too).
    BACKBONE: Any = "resnet101"

    # Only with a callable BACKBONE: returns the [N, (height, width)] feature map shapes.
    COMPUTE_BACKBONE_SHAPE = None

    # Strides of each pyramid level (P2..P6) relative to the input image.
    BACKBONE_STRIDES = [4, 8, 16, 32, 64]

    # (new) Width of the first bottleneck stage; later stages double it. Matterport: 64.
    BACKBONE_WIDTH = 64

    # (new) Residual blocks per stage (conv2..conv5); None takes the BACKBONE's standard counts.
    BACKBONE_STAGE_BLOCKS: tuple[int, int, int, int] | None = None

    # Size of the fully-connected layers in the classification graph.
    FPN_CLASSIF_FC_LAYERS_SIZE = 1024

    # Size of the top-down layers used to build the feature pyramid.
    TOP_DOWN_PYRAMID_SIZE = 256

    # (new) Filters of the shared RPN convolution. Matterport: 512.
    RPN_CONV_SIZE = 512

    # (new) Filters of the four mask-head convolutions. Matterport: 256.
    MASK_HEAD_CONV_SIZE = 256

    # Number of classification classes (including background).
    NUM_CLASSES = 1

    # Length of the square anchor side in pixels, one per pyramid level.
    RPN_ANCHOR_SCALES = (32, 64, 128, 256, 512)

    # Ratios (width/height) of anchors at each cell. 1 is square, 0.5 is wide.
    RPN_ANCHOR_RATIOS = [0.5, 1, 2]

    # Anchor stride: 1 makes an anchor at every backbone feature-map cell, 2 at every other cell.
    RPN_ANCHOR_STRIDE = 1

    # Non-max suppression threshold to filter RPN proposals. Increase for more proposals.
    RPN_NMS_THRESHOLD = 0.7

    # How many anchors per image to use for RPN training.
    RPN_TRAIN_ANCHORS_PER_IMAGE = 256

    # ROIs kept after tf.nn.top_k and before non-maximum suppression.
    PRE_NMS_LIMIT = 6000

    # ROIs kept after non-maximum suppression (training and inference).
    POST_NMS_ROIS_TRAINING = 2000
    POST_NMS_ROIS_INFERENCE = 1000

    # If enabled, instance masks are stored cropped to their box and resized to MINI_MASK_SHAPE,
    # which saves memory with large images.
    USE_MINI_MASK = True
    MINI_MASK_SHAPE = (56, 56)  # (height, width) of the mini-mask

    # Input image resizing: "none", "square" (pad to IMAGE_MAX_DIM x IMAGE_MAX_DIM), "pad64"
    # (pad width and height to multiples of 64), "crop" (random IMAGE_MIN_DIM crops; training only).
    # "none" and "pad64" train with batches grouped by aspect ratio, padded per batch.
    IMAGE_RESIZE_MODE = "square"
    IMAGE_MIN_DIM = 800
    IMAGE_MAX_DIM = 1024
    # Minimum scaling ratio, checked after IMAGE_MIN_DIM; 2 forces at least 2x upscaling.
    IMAGE_MIN_SCALE = 0
    # Number of color channels per image. RGB = 3, grayscale = 1, RGB-D = 4.
    IMAGE_CHANNEL_COUNT = 3

    # Image mean (RGB), subtracted from every pixel.
    MEAN_PIXEL = np.array([123.7, 116.8, 103.9])
    # Per-channel divisor applied after MEAN_PIXEL, or None (Matterport: no division; COCO and
    # ImageNet weights expect None). For 16-bit or float images set both to the data's
    # statistics (mrcnn.data.dataset.compute_pixel_statistics); values are kept as stored.
    PIXEL_STD = None

    # ROIs per image fed to the classifier/mask heads in training. The paper uses 512.
    TRAIN_ROIS_PER_IMAGE = 200

    # Fraction of positive ROIs used to train the classifier/mask heads.
    ROI_POSITIVE_RATIO = 0.33

    # Pooled ROIs
    POOL_SIZE = 7
    MASK_POOL_SIZE = 14

    # Shape of output mask. Changing it requires changing the mask head.
    MASK_SHAPE = [28, 28]

    # Maximum number of ground truth instances in one image.
    MAX_GT_INSTANCES = 100

    # Bounding box refinement standard deviation for RPN and final detections.
    RPN_BBOX_STD_DEV = np.array([0.1, 0.1, 0.2, 0.2])
    BBOX_STD_DEV = np.array([0.1, 0.1, 0.2, 0.2])

    # Max number of final detections
    DETECTION_MAX_INSTANCES = 100

    # Minimum probability to accept a detected instance; ROIs below it are skipped.
    DETECTION_MIN_CONFIDENCE = 0.7

    # Non-maximum suppression threshold for detection (per class).
    DETECTION_NMS_THRESHOLD = 0.3

    # Learning rate and momentum. The paper's 0.02 makes weights explode with this code base.
    LEARNING_RATE = 0.001
    LEARNING_MOMENTUM = 0.9

    # Learning-rate schedule by global step: "constant" (Matterport), "step" (times
    # LEARNING_RATE_GAMMA at each step in LEARNING_RATE_STEPS) or "cosine" (down to 0 at the last
    # step of the train() call), after a linear warmup over WARMUP_STEPS steps from
    # WARMUP_FACTOR x the rate (0 steps: no warmup). Logged per step to TensorBoard.
    LEARNING_RATE_SCHEDULE = "constant"
    LEARNING_RATE_STEPS: tuple = ()
    LEARNING_RATE_GAMMA = 0.1
    WARMUP_STEPS = 0
    WARMUP_FACTOR = 0.001

    # Repeat-factor sampling for long-tailed data (detectron2's, threshold t, e.g. 0.001 for
    # LVIS): images of classes seen in under a fraction t of the training images come up to
    # sqrt(t / fraction) times per epoch. 0: every image once per epoch (Matterport).
    REPEAT_FACTOR_THRESHOLD = 0.0

    # One mask for every class (torchvision's and detectron2's class-agnostic option) instead
    # of Matterport's one per class: `mrcnn_mask` has 1 output channel. Loading a per-class
    # .h5 then leaves `mrcnn_mask` at its initial weights, with a log line saying so.
    MASK_CLASS_AGNOSTIC = False

    # Classifier loss weight per class (NUM_CLASSES numbers, background first), e.g. higher for
    # rare classes; None: every class 1.0 (Matterport).
    CLASS_LOSS_WEIGHTS: tuple | None = None

    # "sgd": Matterport's SGD with LEARNING_MOMENTUM and WEIGHT_DECAY as an L2 term of the loss.
    # "adamw": AdamW, WEIGHT_DECAY as its decoupled decay (typically 0.05, with LEARNING_RATE
    # near 1e-4), BatchNorm and biases excluded; no L2 term in the loss.
    OPTIMIZER = "sgd"

    # Weight decay: with "sgd" an L2 term added to the loss (BatchNorm gamma/beta excluded),
    # with "adamw" the optimizer's decoupled decay.
    WEIGHT_DECAY = 0.0001

    # Loss weights for more precise optimization.
    LOSS_WEIGHTS = {
        "rpn_class_loss": 1.0,
        "rpn_bbox_loss": 1.0,
        "mrcnn_class_loss": 1.0,
        "mrcnn_bbox_loss": 1.0,
        "mrcnn_mask_loss": 1.0,
    }

    # Use RPN ROIs or externally generated ROIs for training the heads.
    USE_RPN_ROIS = True

    # Train or freeze batch normalization layers: None/True trains BN, False freezes it (default,
    # because batches are too small for good statistics).
    TRAIN_BN: bool | None = False

    # With TRAIN_BN = False, True also keeps the backbone's BatchNorm scale and shift (gamma,
    # beta) fixed, as torchvision's FrozenBatchNorm2d and detectron2's FrozenBN do; Matterport
    # trains them (False). The backward pass then keeps no BatchNorm inputs: an R50 training
    # step's peak RSS drops 21% at 1024 px, batch 2, and 9% at 512 px (benchmarks/README.md).
    FROZEN_BACKBONE_BN: bool = False

    # Gradient norm clipping
    GRADIENT_CLIP_NORM = 5.0

    def __init__(self) -> None:
        """Set the derived attributes (BATCH_SIZE, IMAGE_SHAPE, IMAGE_META_SIZE)."""
        self.BATCH_SIZE = self.IMAGES_PER_GPU * self.GPU_COUNT
        if self.IMAGE_RESIZE_MODE == "crop":
            side = self.IMAGE_MIN_DIM
        else:
            side = self.IMAGE_MAX_DIM
        self.IMAGE_SHAPE = np.array([side, side, self.IMAGE_CHANNEL_COUNT])
        # image_id(1) + original_image_shape(3) + image_shape(3) + window(4) + scale(1) + classes
        self.IMAGE_META_SIZE = 1 + 3 + 3 + 4 + 1 + self.NUM_CLASSES

    # ----------------------------------------------------------------------------------------
    # Introspection and serialization
    @classmethod
    def field_names(cls) -> list[str]:
        """Names of all configurable UPPER_CASE fields (derived ones excluded)."""
        return sorted(name for name in dir(cls) if name.isupper() and name not in DERIVED_FIELDS)

    def to_dict(self) -> dict[str, Any]:
        """All fields (derived included) as plain Python values, JSON-serializable."""
        out = {}
        for name in sorted(set(self.field_names()) | set(DERIVED_FIELDS)):
            value = getattr(self, name)
            if callable(value):
                value = f"{value.__module__}.{value.__qualname__}"
            out[name] = _to_plain(value)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        """A Config of this class with the given fields overridden (derived fields recomputed)."""
        config = cls.__new__(cls)
        valid = set(cls.field_names())
        unknown = sorted(set(values) - valid - set(DERIVED_FIELDS))
        if unknown:
            raise ConfigError(f"unknown Config field(s) {unknown}; valid fields: {sorted(valid)}")
        for name, value in values.items():
            if name in valid:
                setattr(config, name, _like_default(name, value, getattr(cls, name)))
        Config.__init__(config)
        return config

    def override(self, **values: Any) -> Config:
        """Set fields in place (``--set`` style), recompute derived fields, validate, return self."""
        valid = set(self.field_names())
        for name, value in values.items():
            if name not in valid:
                raise ConfigError(f"unknown Config field {name!r}; valid fields: {sorted(valid)}")
            setattr(self, name, _like_default(name, value, getattr(type(self), name)))
        Config.__init__(self)
        self.validate()
        return self

    def display(self) -> None:
        """Print every field, as Matterport's Config.display() does."""
        print("\nConfigurations:")
        for name, value in self.to_dict().items():
            print(f"{name:30} {value}")
        print("\n")

    # ----------------------------------------------------------------------------------------
    # Validation
    def validate(self) -> Config:
        """Check every field the model depends on; raise ConfigError naming field, value, rule."""
        _check(self.NAME is not None and str(self.NAME) != "", "NAME", self.NAME, "a non-empty name")
        if self.NAME is not None:
            _check(bool(re.fullmatch(r"[\w-]+", str(self.NAME))), "NAME", self.NAME,
                   "letters, digits, '_' or '-' (it becomes part of file names)")
        for name in ("GPU_COUNT", "IMAGES_PER_GPU", "STEPS_PER_EPOCH", "VALIDATION_STEPS",
                     "NUM_CLASSES", "RPN_ANCHOR_STRIDE", "RPN_TRAIN_ANCHORS_PER_IMAGE",
                     "PRE_NMS_LIMIT", "POST_NMS_ROIS_TRAINING", "POST_NMS_ROIS_INFERENCE",
                     "TRAIN_ROIS_PER_IMAGE", "POOL_SIZE", "MASK_POOL_SIZE", "MAX_GT_INSTANCES",
                     "DETECTION_MAX_INSTANCES", "FPN_CLASSIF_FC_LAYERS_SIZE",
                     "TOP_DOWN_PYRAMID_SIZE", "RPN_CONV_SIZE", "MASK_HEAD_CONV_SIZE",
                     "BACKBONE_WIDTH", "IMAGE_CHANNEL_COUNT"):
            value = getattr(self, name)
            _check(isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1,
                   name, value, "an integer >= 1")
        _check(self.NUM_CLASSES >= 2 or type(self) is Config, "NUM_CLASSES", self.NUM_CLASSES,
               ">= 2 (background + at least one class)")
        _check(self.DISTRIBUTION_STRATEGY in DISTRIBUTION_STRATEGIES, "DISTRIBUTION_STRATEGY",
               self.DISTRIBUTION_STRATEGY, f"one of {DISTRIBUTION_STRATEGIES}")
        _check(self.MIXED_PRECISION in PRECISIONS, "MIXED_PRECISION", self.MIXED_PRECISION,
               f"one of {PRECISIONS}")
        _check(callable(self.BACKBONE) or self.BACKBONE in BACKBONES, "BACKBONE", self.BACKBONE,
               f"one of {BACKBONES} or a callable")
        if callable(self.BACKBONE):
            _check(callable(self.COMPUTE_BACKBONE_SHAPE), "COMPUTE_BACKBONE_SHAPE",
                   self.COMPUTE_BACKBONE_SHAPE, "a callable when BACKBONE is a callable")
        if self.BACKBONE_STAGE_BLOCKS is not None:
            blocks = tuple(self.BACKBONE_STAGE_BLOCKS)
            _check(len(blocks) == 4 and all(int(b) >= 1 for b in blocks), "BACKBONE_STAGE_BLOCKS",
                   self.BACKBONE_STAGE_BLOCKS, "None or 4 integers >= 1")
        _check(self.IMAGE_RESIZE_MODE in RESIZE_MODES, "IMAGE_RESIZE_MODE", self.IMAGE_RESIZE_MODE,
               f"one of {RESIZE_MODES}")
        _check(0 < self.IMAGE_MIN_DIM <= self.IMAGE_MAX_DIM or self.IMAGE_RESIZE_MODE == "none",
               "IMAGE_MIN_DIM", self.IMAGE_MIN_DIM, f"> 0 and <= IMAGE_MAX_DIM ({self.IMAGE_MAX_DIM})")
        if self.IMAGE_RESIZE_MODE in ("square", "crop"):
            side = int(self.IMAGE_SHAPE[0])
            _check(side % 64 == 0, "IMAGE_MAX_DIM" if self.IMAGE_RESIZE_MODE == "square"
                   else "IMAGE_MIN_DIM", side, "a multiple of 64 (the backbone downsamples 6 times)")
        _check(len(self.BACKBONE_STRIDES) == 5, "BACKBONE_STRIDES", self.BACKBONE_STRIDES,
               "5 strides, one per pyramid level P2..P6")
        _check(len(self.RPN_ANCHOR_SCALES) == len(self.BACKBONE_STRIDES), "RPN_ANCHOR_SCALES",
               self.RPN_ANCHOR_SCALES, f"{len(self.BACKBONE_STRIDES)} scales, one per pyramid level")
        _check(len(self.RPN_ANCHOR_RATIOS) >= 1 and all(r > 0 for r in self.RPN_ANCHOR_RATIOS),
               "RPN_ANCHOR_RATIOS", self.RPN_ANCHOR_RATIOS, "a non-empty list of positive ratios")
        for name in ("RPN_NMS_THRESHOLD", "DETECTION_NMS_THRESHOLD", "DETECTION_MIN_CONFIDENCE"):
            value = getattr(self, name)
            _check(0.0 <= value <= 1.0, name, value, "a number in [0, 1]")
        _check(0.0 < self.ROI_POSITIVE_RATIO <= 1.0, "ROI_POSITIVE_RATIO", self.ROI_POSITIVE_RATIO,
               "a number in (0, 1]")
        _check(self.POST_NMS_ROIS_TRAINING <= self.PRE_NMS_LIMIT, "POST_NMS_ROIS_TRAINING",
               self.POST_NMS_ROIS_TRAINING, f"<= PRE_NMS_LIMIT ({self.PRE_NMS_LIMIT})")
        _check(self.TRAIN_ROIS_PER_IMAGE <= self.POST_NMS_ROIS_TRAINING, "TRAIN_ROIS_PER_IMAGE",
               self.TRAIN_ROIS_PER_IMAGE, f"<= POST_NMS_ROIS_TRAINING ({self.POST_NMS_ROIS_TRAINING})")
        _check(list(self.MASK_SHAPE) == [2 * self.MASK_POOL_SIZE] * 2, "MASK_SHAPE", self.MASK_SHAPE,
               f"[2*MASK_POOL_SIZE, 2*MASK_POOL_SIZE] = {[2 * self.MASK_POOL_SIZE] * 2} "
               "(the mask head upsamples its pooled input once)")
        _check(len(self.MINI_MASK_SHAPE) == 2 and min(self.MINI_MASK_SHAPE) >= 1, "MINI_MASK_SHAPE",
               self.MINI_MASK_SHAPE, "(height, width) with both >= 1")
        _check(len(np.ravel(self.MEAN_PIXEL)) == self.IMAGE_CHANNEL_COUNT, "MEAN_PIXEL",
               self.MEAN_PIXEL, f"one value per channel (IMAGE_CHANNEL_COUNT={self.IMAGE_CHANNEL_COUNT})")
        if self.PIXEL_STD is not None:
            std = np.ravel(np.asarray(self.PIXEL_STD, dtype=np.float64))
            _check(len(std) == self.IMAGE_CHANNEL_COUNT and bool(np.all(std > 0))
                   and bool(np.all(np.isfinite(std))), "PIXEL_STD", self.PIXEL_STD,
                   f"None or one positive number per channel (IMAGE_CHANNEL_COUNT="
                   f"{self.IMAGE_CHANNEL_COUNT})")
        for name in ("RPN_BBOX_STD_DEV", "BBOX_STD_DEV"):
            value = np.ravel(getattr(self, name))
            _check(value.shape == (4,) and bool(np.all(value > 0)), name, getattr(self, name),
                   "4 positive numbers")
        for name in ("LEARNING_RATE", "GRADIENT_CLIP_NORM"):
            value = getattr(self, name)
            _check(isinstance(value, (int, float)) and value > 0, name, value, "a number > 0")
        _check(0.0 <= self.LEARNING_MOMENTUM < 1.0, "LEARNING_MOMENTUM", self.LEARNING_MOMENTUM,
               "a number in [0, 1)")
        _check(self.WEIGHT_DECAY >= 0, "WEIGHT_DECAY", self.WEIGHT_DECAY, "a number >= 0")
        _check(self.OPTIMIZER in OPTIMIZERS, "OPTIMIZER", self.OPTIMIZER, f"one of {OPTIMIZERS}")
        _check(self.LEARNING_RATE_SCHEDULE in LEARNING_RATE_SCHEDULES, "LEARNING_RATE_SCHEDULE",
               self.LEARNING_RATE_SCHEDULE, f"one of {LEARNING_RATE_SCHEDULES}")
        steps = self.LEARNING_RATE_STEPS
        _check(isinstance(steps, (list, tuple)) and all(isinstance(k, int) and k > 0 for k in steps)
               and list(steps) == sorted(set(steps)), "LEARNING_RATE_STEPS", steps,
               "increasing step numbers > 0, e.g. (2000, 3000)")
        _check(self.LEARNING_RATE_SCHEDULE != "step" or len(steps) > 0, "LEARNING_RATE_STEPS",
               steps, "at least one step when LEARNING_RATE_SCHEDULE='step'")
        _check(isinstance(self.LEARNING_RATE_GAMMA, (int, float)) and
               0 < self.LEARNING_RATE_GAMMA <= 1, "LEARNING_RATE_GAMMA",
               self.LEARNING_RATE_GAMMA, "a number in (0, 1]")
        _check(isinstance(self.REPEAT_FACTOR_THRESHOLD, (int, float)) and
               0 <= self.REPEAT_FACTOR_THRESHOLD <= 1, "REPEAT_FACTOR_THRESHOLD",
               self.REPEAT_FACTOR_THRESHOLD, "a fraction in [0, 1] (0: off)")
        weights = self.CLASS_LOSS_WEIGHTS
        _check(weights is None or (isinstance(weights, (list, tuple)) and
                                   len(weights) == self.NUM_CLASSES and
                                   all(isinstance(w, (int, float)) and w > 0 for w in weights)),
               "CLASS_LOSS_WEIGHTS", weights,
               f"None or NUM_CLASSES={self.NUM_CLASSES} numbers > 0, background first")
        _check(isinstance(self.WARMUP_STEPS, int) and self.WARMUP_STEPS >= 0, "WARMUP_STEPS",
               self.WARMUP_STEPS, "a whole number >= 0")
        _check(isinstance(self.WARMUP_FACTOR, (int, float)) and 0 < self.WARMUP_FACTOR <= 1,
               "WARMUP_FACTOR", self.WARMUP_FACTOR, "a number in (0, 1]")
        _check(set(self.LOSS_WEIGHTS) == set(LOSS_NAMES), "LOSS_WEIGHTS", self.LOSS_WEIGHTS,
               f"a dict with exactly the keys {LOSS_NAMES}")
        _check(self.TRAIN_BN in (None, True, False), "TRAIN_BN", self.TRAIN_BN, "None, True or False")
        _check(self.FROZEN_BACKBONE_BN in (True, False), "FROZEN_BACKBONE_BN",
               self.FROZEN_BACKBONE_BN, "True or False")
        _check(not self.FROZEN_BACKBONE_BN or self.TRAIN_BN is False, "FROZEN_BACKBONE_BN",
               self.FROZEN_BACKBONE_BN, f"False with TRAIN_BN={self.TRAIN_BN} (a frozen "
               "BatchNorm uses its moving statistics: it needs TRAIN_BN = False)")
        _check(self.JIT_COMPILE in (None, True, False), "JIT_COMPILE", self.JIT_COMPILE,
               "None (compile when computing in float32), True or False")
        return self


def tiny_config(num_classes: int = 4, name: str = "tiny", **overrides: Any) -> Config:
    """A preset that builds in seconds on 2 CPU cores: 64 px images, narrow layers, few ROIs.

    Used by the tests and by anyone who wants to check a pipeline end to end before a real run.
    """
    fields = dict(
        NAME=name,
        NUM_CLASSES=num_classes,
        GPU_COUNT=1,
        IMAGES_PER_GPU=2,
        BACKBONE="resnet50",
        BACKBONE_WIDTH=8,
        BACKBONE_STAGE_BLOCKS=(1, 1, 1, 1),
        IMAGE_MIN_DIM=64,
        IMAGE_MAX_DIM=64,
        RPN_ANCHOR_SCALES=(8, 16, 32, 64, 128),
        TOP_DOWN_PYRAMID_SIZE=32,
        RPN_CONV_SIZE=32,
        MASK_HEAD_CONV_SIZE=16,
        FPN_CLASSIF_FC_LAYERS_SIZE=64,
        RPN_TRAIN_ANCHORS_PER_IMAGE=64,
        PRE_NMS_LIMIT=500,
        POST_NMS_ROIS_TRAINING=100,
        POST_NMS_ROIS_INFERENCE=50,
        TRAIN_ROIS_PER_IMAGE=16,
        MAX_GT_INSTANCES=8,
        DETECTION_MAX_INSTANCES=10,
        MINI_MASK_SHAPE=(28, 28),
        STEPS_PER_EPOCH=5,
        VALIDATION_STEPS=2,
    )
    fields.update(overrides)
    config = Config.from_dict(fields)
    return config.validate()


def parse_override(text: str, config: Config) -> tuple[str, Any]:
    """Parse one ``KEY=VALUE`` from ``--set``; VALUE is a Python literal (bare words are strings)."""
    if "=" not in text:
        raise ConfigError(f"--set expects KEY=VALUE, got {text!r}")
    key, raw = (part.strip() for part in text.split("=", 1))
    if key not in config.field_names():
        raise ConfigError(f"unknown Config field {key!r}; valid fields: {config.field_names()}")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return key, value


def _check(ok: bool, field: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"Config.{field} = {value!r} is invalid: expected {expected}")


def _to_plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    return value


def _like_default(name: str, value: Any, default: Any) -> Any:
    """Give a parsed value the container type of the field's default (arrays stay arrays)."""
    if isinstance(default, np.ndarray):
        return np.array(value, dtype=default.dtype)
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(value)
    return value
