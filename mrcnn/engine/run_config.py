"""The run folder's ``config.json``: the exact Config a training run used.

``MaskRCNN.train`` writes it beside the checkpoints (Matterport's field names, as
``Config.to_dict``); the sample CLIs read it back so that ``evaluate``, ``detect``, ``export`` and
``train --weights last`` rebuild the network the checkpoint was trained with.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mrcnn.config import DERIVED_FIELDS, Config, ConfigError
from mrcnn.engine.json_files import write_json

RUN_CONFIG_NAME = "config.json"

# Fields that decide the shapes of the network's weights: a checkpoint loads only into a model
# built with the same values.
ARCHITECTURE_FIELDS = (
    "BACKBONE",
    "BACKBONE_WIDTH",
    "BACKBONE_STAGE_BLOCKS",
    "TOP_DOWN_PYRAMID_SIZE",
    "RPN_CONV_SIZE",
    "RPN_ANCHOR_RATIOS",
    "RPN_ANCHOR_STRIDE",
    "MASK_HEAD_CONV_SIZE",
    "FPN_CLASSIF_FC_LAYERS_SIZE",
    "POOL_SIZE",
    "MASK_POOL_SIZE",
    "MASK_CLASS_AGNOSTIC",
    "NUM_CLASSES",
    "IMAGE_CHANNEL_COUNT",
)


def write_run_config(log_dir: str | os.PathLike, config: Config) -> Path:
    """Write ``log_dir/config.json`` atomically (a temporary file renamed into place)."""
    return write_json(Path(log_dir) / RUN_CONFIG_NAME, config.to_dict())


def read_run_config(path: str | os.PathLike) -> dict[str, Any]:
    """The configurable fields saved in a run's ``config.json`` (derived fields dropped).

    Raises ConfigError naming the file when it is not a JSON object of Config fields.
    """
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: not a readable run config ({error})") from error
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a JSON object of Config fields, "
                          f"got {type(values).__name__}")
    return {name: value for name, value in values.items() if name not in DERIVED_FIELDS}


def config_from_run(config_class: type[Config], path: str | os.PathLike) -> Config:
    """A ``config_class`` instance with every field as the run at ``path`` saved it.

    Fields whose default is a function (saved as its dotted name) keep the class's default.
    """
    saved = read_run_config(path)
    restorable = {name: value for name, value in saved.items()
                  if not callable(getattr(config_class, name, None))}
    try:
        return config_class.from_dict(restorable).validate()
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from error


def architecture_differences(saved: Config, requested: Config) -> list[str]:
    """``FIELD: saved -> requested`` for each architecture field whose values differ."""
    before, after = saved.to_dict(), requested.to_dict()
    return [f"{name}: {before[name]!r} -> {after[name]!r}"
            for name in ARCHITECTURE_FIELDS if before[name] != after[name]]
