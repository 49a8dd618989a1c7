"""Settings of a person-segmentation run, overridable from the command line with ``--set``."""

from __future__ import annotations

import ast
import json
import logging
import os
from typing import Any

logger = logging.getLogger(__name__)


class SegmentationConfig:
    """UPPER_CASE fields with their defaults; ``override`` rejects unknown names."""

    # Architecture: classic | improved | residual | attention | unet++ | encoder.
    ARCH = "improved"
    # keras.applications encoder for ARCH="encoder": resnet50 | mobilenetv2 | efficientnetb0.
    ENCODER = "mobilenetv2"
    # Square side the images are resized to for training and inference (multiple of 2**DEPTH).
    IMAGE_SIZE = 256
    # Input channels: 3 (RGB), 1 (grey) or 4 (RGBA). Files are converted on loading.
    CHANNELS = 3
    # Poolings of the encoder (not used by ARCH="encoder", which has 5).
    DEPTH = 4
    # Filters of the first level, doubled at each level.
    BASE_FILTERS = 16
    # Dropout after each conv unit (None: 0 for classic, 0.1 otherwise).
    DROPOUT = None
    # Conv padding: "same", or "valid" for the unpadded classic U-Net (ARCH="classic" only).
    PADDING = "same"
    # U-Net++: one output per top-row node, trained jointly.
    DEEP_SUPERVISION = False
    # U-Net++ inference with deep supervision: "accurate" (mean of heads) or "fast" (one head).
    INFERENCE_MODE = "accurate"
    # "fast" mode: which head (1 = shallowest, pruned to depth 1; None = the last, deepest).
    INFERENCE_HEAD = None
    # Output logits instead of probabilities (the losses and metrics follow).
    LOGITS = False
    # Loss: bce | dice | bce_dice | weighted | edge | focal_tversky.
    LOSS = "bce_dice"
    LEARNING_RATE = 1e-3
    BATCH_SIZE = 8
    # Fraction of the dataset held out for validation (and the best-model choice).
    VAL_FRACTION = 0.2
    # Albumentations flip, scale/shift, brightness/contrast, blur on training batches.
    AUGMENT = True
    # Epochs without val Dice improvement before stopping.
    PATIENCE = 10
    # Probability above which a pixel is foreground.
    THRESHOLD = 0.5
    # Post-processing: drop components smaller than this many pixels (original resolution).
    MIN_COMPONENT_SIZE = 50
    # Post-processing: fill holes enclosed by the person.
    FILL_HOLES = True
    # COCO: drop persons smaller than this area in pixels; keep crowd regions or not.
    COCO_MIN_AREA = 0.0
    COCO_INCLUDE_CROWD = False
    # Run training steps eagerly (slower per step, no graph tracing: for tiny smoke runs).
    RUN_EAGERLY = False
    SEED = 0

    @classmethod
    def field_names(cls) -> list[str]:
        return [name for name in vars(cls) if name.isupper()]

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.field_names()}

    def override(self, **values: Any) -> SegmentationConfig:
        """Sets fields; raises ValueError for an unknown name, listing the valid ones."""
        for name, value in values.items():
            if name not in self.field_names():
                raise ValueError(
                    f"unknown setting {name!r}; valid settings: {', '.join(self.field_names())}"
                )
            setattr(self, name, value)
        return self

    def display(self) -> None:
        """Logs every field."""
        for name, value in self.to_dict().items():
            logger.info("%-20s %r", name, value)

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "w") as handle:
            json.dump(self.to_dict(), handle, indent=2)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SegmentationConfig:
        with open(path) as handle:
            return cls().override(**json.load(handle))


def parse_setting(text: str) -> tuple[str, Any]:
    """"KEY=VALUE" -> (KEY, Python literal, or the raw string when not a literal)."""
    if "=" not in text:
        raise ValueError(f"--set expects KEY=VALUE; got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return key.strip().upper(), value
