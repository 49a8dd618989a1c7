"""Settings of the face-mask sample in one place, overridable with ``--set KEY=VALUE``."""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass


@dataclass
class LocalizerConfig:
    """Every field used by ``samples/face_mask.py``; by default a small CNN trained from scratch."""

    # Backbone: "small_cnn" (SMALL_CNN_FILTERS conv blocks, no pretrained weights), "resnet50" or
    # "mobilenetv2".
    BACKBONE: str = "small_cnn"
    # Pool an FPN neck over the last three feature maps (with "resnet50": a ResNet50-FPN).
    USE_FPN: bool = False
    # Square model input side in pixels; every image is resized to it.
    INPUT_SIZE: int = 256
    # Input channels (the U-Net's name): 3 = RGB (any file converted as before); 1 grey, 4
    # RGB+NIR / RGB-D / RGBA, any N >= 1: each file must have N bands (.npy for 2 or > 4).
    # With --weights imagenet, conv1 is adapted from the RGB weights (extra channels start at 0).
    CHANNELS: int = 3
    # Widths of the small CNN's conv blocks (each block divides the resolution by 4).
    SMALL_CNN_FILTERS: tuple = (32, 64, 128, 256)
    # FPN channel width.
    FPN_FILTERS: int = 256
    # Dropout after global pooling.
    FEATURE_DROPOUT: float = 0.5
    # Dense widths and dropout rates of the class head and of the box head.
    CLASS_HEAD_UNITS: tuple = (1024, 512, 256)
    CLASS_HEAD_DROPOUT: tuple = (0.5, 0.3, 0.0)
    BOX_HEAD_UNITS: tuple = (1024, 512, 256, 128)
    BOX_HEAD_DROPOUT: tuple = (0.5, 0.0, 0.0, 0.0)
    # Class names in index order; None takes the sorted names found in the CSV.
    CLASS_NAMES: tuple | None = None
    # CSV coordinates: "auto", "pixel" or "normalized".
    COORDINATES: str = "auto"
    # Several rows per image: "largest" box, or "per_row" (one sample per row).
    MULTI_BOX_POLICY: str = "largest"
    # Bad CSV rows: "skip" (reported, dropped) or "error" (stop with the list).
    ON_BAD_ROW: str = "skip"
    # Validation share of the stratified split and the seed of split, shuffling and init.
    VAL_FRACTION: float = 0.25
    SEED: int = 42
    BATCH_SIZE: int = 32
    # loss = ALPHA * box loss + (1 - ALPHA) * class-weighted cross entropy.
    ALPHA: float = 0.7
    # Box loss: "mse", "smooth_l1" or "giou".
    BOX_LOSS: str = "mse"
    # One weight per class (index order), e.g. (0.35, 0.65); None = unweighted.
    CLASS_WEIGHTS: tuple | None = None
    # AdamW learning rates per group, and decoupled weight decay.
    BACKBONE_LR: float = 1e-4
    CLASS_HEAD_LR: float = 1e-4
    BOX_HEAD_LR: float = 1e-3
    WEIGHT_DECAY: float = 1e-4
    # Early stopping patience (epochs without val_loss improvement; best weights restored).
    PATIENCE: int = 10
    # Box-aware albumentations augmentation of training images.
    AUGMENT: bool = True
    # XLA compilation ("auto", True, False); False starts faster on small CPU runs.
    JIT_COMPILE: bool | str = "auto"
    # Write TensorBoard logs under LOGS/tensorboard (needs the tensorboard package).
    TENSORBOARD: bool = True

    def override(self, assignments: list[str]) -> LocalizerConfig:
        """Apply ``KEY=VALUE`` strings (Python literals; bare words are strings) in place."""
        valid = {field.name for field in dataclasses.fields(self)}
        for assignment in assignments:
            key, separator, text = assignment.partition("=")
            key = key.strip()
            if not separator:
                raise ValueError(f"--set expects KEY=VALUE, got {assignment!r}")
            if key not in valid:
                raise ValueError(f"unknown setting {key!r}; valid: {', '.join(sorted(valid))}")
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                value = text
            if isinstance(value, list):
                value = tuple(value)
            setattr(self, key, value)
        return self.validate()

    def validate(self) -> LocalizerConfig:
        """Raise ValueError naming the first invalid field, its value and what is allowed."""
        from localization.backbones import BACKBONES
        from localization.losses import BOX_LOSSES

        def count(v, low):
            return isinstance(v, int) and not isinstance(v, bool) and v >= low

        def fraction(v, high=1.0):
            return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= high

        def positive(v):
            return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0

        def counts(v):
            return isinstance(v, tuple) and all(count(x, 1) for x in v)

        def rates(v):
            return isinstance(v, tuple) and all(fraction(x) and x < 1 for x in v)

        rules = {
            "BACKBONE": (lambda v: v in BACKBONES, f"one of {list(BACKBONES)}"),
            "INPUT_SIZE": (lambda v: count(v, 8), "an integer >= 8"),
            "CHANNELS": (lambda v: count(v, 1), "an integer >= 1"),
            "SMALL_CNN_FILTERS": (lambda v: counts(v) and len(v) > 0, "a tuple of integers >= 1"),
            "FPN_FILTERS": (lambda v: count(v, 1), "an integer >= 1"),
            "FEATURE_DROPOUT": (lambda v: fraction(v) and v < 1, "a number in [0, 1)"),
            "CLASS_HEAD_UNITS": (counts, "a tuple of integers >= 1"),
            "CLASS_HEAD_DROPOUT": (rates, "a tuple of numbers in [0, 1)"),
            "BOX_HEAD_UNITS": (counts, "a tuple of integers >= 1"),
            "BOX_HEAD_DROPOUT": (rates, "a tuple of numbers in [0, 1)"),
            "CLASS_NAMES": (lambda v: v is None or (isinstance(v, tuple) and len(v) >= 2 and all(
                isinstance(x, str) and x for x in v)), "None or a tuple of >= 2 names"),
            "COORDINATES": (lambda v: v in ("auto", "pixel", "normalized"),
                            "'auto', 'pixel' or 'normalized'"),
            "MULTI_BOX_POLICY": (lambda v: v in ("largest", "per_row"), "'largest' or 'per_row'"),
            "ON_BAD_ROW": (lambda v: v in ("skip", "error"), "'skip' or 'error'"),
            "VAL_FRACTION": (lambda v: fraction(v) and v < 1, "a number in [0, 1)"),
            "SEED": (lambda v: count(v, 0), "an integer >= 0"),
            "BATCH_SIZE": (lambda v: count(v, 1), "an integer >= 1"),
            "ALPHA": (fraction, "a number in [0, 1]"),
            "BOX_LOSS": (lambda v: v in BOX_LOSSES, f"one of {list(BOX_LOSSES)}"),
            "CLASS_WEIGHTS": (lambda v: v is None or (isinstance(v, tuple) and all(
                positive(x) for x in v)), "None or a tuple of numbers > 0"),
            "BACKBONE_LR": (positive, "a number > 0"),
            "CLASS_HEAD_LR": (positive, "a number > 0"),
            "BOX_HEAD_LR": (positive, "a number > 0"),
            "WEIGHT_DECAY": (lambda v: fraction(v, float("inf")), "a number >= 0"),
            "PATIENCE": (lambda v: count(v, 0), "an integer >= 0"),
            "USE_FPN": (lambda v: isinstance(v, bool), "True or False"),
            "AUGMENT": (lambda v: isinstance(v, bool), "True or False"),
            "TENSORBOARD": (lambda v: isinstance(v, bool), "True or False"),
            "JIT_COMPILE": (lambda v: v in (True, False, "auto"), "'auto', True or False"),
        }
        for name, (ok, expected) in rules.items():
            value = getattr(self, name)
            if not ok(value):
                raise ValueError(f"setting {name}={value!r} is invalid: expected {expected}")
        return self

    def model_kwargs(self) -> dict:
        """Arguments of ``build_localizer`` taken from this config."""
        return {
            "backbone": self.BACKBONE,
            "input_shape": (self.INPUT_SIZE, self.INPUT_SIZE, self.CHANNELS),
            "use_fpn": self.USE_FPN,
            "fpn_filters": self.FPN_FILTERS,
            "small_cnn_filters": tuple(self.SMALL_CNN_FILTERS),
            "feature_dropout": self.FEATURE_DROPOUT,
            "class_head_units": tuple(self.CLASS_HEAD_UNITS),
            "class_head_dropout": tuple(self.CLASS_HEAD_DROPOUT),
            "box_head_units": tuple(self.BOX_HEAD_UNITS),
            "box_head_dropout": tuple(self.BOX_HEAD_DROPOUT),
        }

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """One ``KEY = value`` line per field."""
        return "\n".join(f"{key:20} = {value!r}" for key, value in self.to_dict().items())


def tiny_config() -> LocalizerConfig:
    """32 px input and narrow layers: trains a step in about a second on 2 CPU cores."""
    return LocalizerConfig(INPUT_SIZE=32, SMALL_CNN_FILTERS=(8, 16), FPN_FILTERS=16,
                           FEATURE_DROPOUT=0.0, CLASS_HEAD_UNITS=(32, 16),
                           CLASS_HEAD_DROPOUT=(0.0, 0.0), BOX_HEAD_UNITS=(32, 16),
                           BOX_HEAD_DROPOUT=(0.0, 0.0), BATCH_SIZE=8, JIT_COMPILE=False)
