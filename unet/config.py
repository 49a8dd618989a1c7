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
        return self.validate()

    def validate(self) -> SegmentationConfig:
        """Raise ValueError naming the first invalid field, its value and what is allowed."""
        from unet.encoders import ENCODERS
        from unet.losses import LOSS_NAMES
        from unet.models import ARCH_ALIASES, ARCHITECTURES, INFERENCE_MODES

        def positive_int(v):
            return isinstance(v, int) and not isinstance(v, bool) and v >= 1

        def number(v):
            return isinstance(v, (int, float)) and not isinstance(v, bool)

        rules = {
            "ARCH": (lambda v: v in ARCHITECTURES or v in ARCH_ALIASES,
                     f"one of {list(ARCHITECTURES)}"),
            "ENCODER": (lambda v: isinstance(v, str) and v.lower() in ENCODERS,
                        f"one of {sorted(ENCODERS)}"),
            "IMAGE_SIZE": (positive_int, "an integer >= 1"),
            "CHANNELS": (lambda v: v in (1, 3, 4) and not isinstance(v, bool), "1, 3 or 4"),
            "DEPTH": (lambda v: positive_int(v) and v <= 8, "an integer in 1..8"),
            "BASE_FILTERS": (positive_int, "an integer >= 1"),
            "DROPOUT": (lambda v: v is None or (number(v) and 0 <= v < 1), "None or in [0, 1)"),
            "PADDING": (lambda v: v in ("same", "valid"), "'same' or 'valid'"),
            "INFERENCE_MODE": (lambda v: v in INFERENCE_MODES, f"one of {list(INFERENCE_MODES)}"),
            "INFERENCE_HEAD": (lambda v: v is None or positive_int(v), "None or an integer >= 1"),
            "LOSS": (lambda v: v in LOSS_NAMES, f"one of {list(LOSS_NAMES)}"),
            "LEARNING_RATE": (lambda v: number(v) and v > 0, "a number > 0"),
            "BATCH_SIZE": (positive_int, "an integer >= 1"),
            "VAL_FRACTION": (lambda v: number(v) and 0 <= v < 1, "a number in [0, 1)"),
            "PATIENCE": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                         "an integer >= 0"),
            "THRESHOLD": (lambda v: number(v) and 0 < v < 1, "a number in (0, 1)"),
            "MIN_COMPONENT_SIZE": (lambda v: number(v) and v >= 0, "a number >= 0"),
            "COCO_MIN_AREA": (lambda v: number(v) and v >= 0, "a number >= 0"),
            "SEED": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
        }
        for name in ("DEEP_SUPERVISION", "LOGITS", "AUGMENT", "FILL_HOLES", "COCO_INCLUDE_CROWD",
                     "RUN_EAGERLY"):
            rules[name] = (lambda v: isinstance(v, bool), "True or False")
        for name, (ok, expected) in rules.items():
            value = getattr(self, name)
            if not ok(value):
                raise ValueError(f"setting {name}={value!r} is invalid: expected {expected}")
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
