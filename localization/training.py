"""Compile, callbacks, learning curves, and saving a localizer with its class names.

A trained localizer is two files: ``NAME.keras`` (architecture, weights, input mean/std,
optimizer) and ``NAME.json`` (class names and training settings), written side by side.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import keras

from localization.losses import build_localization_losses
from localization.metrics import MeanBoxIoU
from localization.optimizer import build_optimizer
from localization.saving import load_model
from vision_common.input_pipelines import tensorflow_installed

logger = logging.getLogger(__name__)


def compile_localizer(
    model: keras.Model,
    *,
    alpha: float = 0.7,
    box_loss: str = "mse",
    class_weights: Sequence[float] | None = None,
    smooth_l1_beta: float = 0.1,
    backbone_lr: float = 1e-4,
    class_head_lr: float = 1e-4,
    box_head_lr: float = 1e-3,
    weight_decay: float = 1e-4,
    jit_compile: bool | str = "auto",
) -> keras.Model:
    """Compile with ``alpha * box_loss + (1 - alpha) * weighted CE`` and per-group AdamW.

    Logged metrics: ``loss``, ``box_loss``, ``class_loss``, ``box_iou``, ``class_accuracy``.
    ``jit_compile=False`` skips XLA, which saves seconds of compile time on small CPU runs.
    """
    losses, loss_weights = build_localization_losses(alpha, box_loss, class_weights,
                                                     smooth_l1_beta)
    model.compile(
        optimizer=build_optimizer(backbone_lr, class_head_lr, box_head_lr, weight_decay),
        loss=losses,
        loss_weights=loss_weights,
        metrics={"box": [MeanBoxIoU(name="iou")],
                 "class": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]},
        jit_compile=jit_compile,
    )
    return model


def build_callbacks(logs_dir: str | Path, *, patience: int = 10, monitor: str = "val_loss",
                    tensorboard: bool = True) -> list[keras.callbacks.Callback]:
    """Early stopping (best weights restored), CSV history and TensorBoard logs (where
    TensorFlow is installed: Keras writes TensorBoard's event files with it)."""
    logs_dir = Path(logs_dir)
    callbacks = [
        keras.callbacks.EarlyStopping(monitor=monitor, patience=patience,
                                      restore_best_weights=True, verbose=1),
        keras.callbacks.CSVLogger(str(logs_dir / "history.csv")),
    ]
    if tensorboard and not tensorflow_installed():
        logger.info("no TensorBoard logs: Keras writes them with TensorFlow, not installed here")
    elif tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(logs_dir / "tensorboard")))
    return callbacks


def save_training_curves(history: dict[str, list[float]], path: str | Path) -> Path:
    """Plot train/val curves of every logged quantity into one PNG; returns the path."""
    from matplotlib.figure import Figure

    names = sorted(name for name in history if not name.startswith("val_")
                   and name != "learning_rate")
    figure = Figure(figsize=(4 * max(len(names), 1), 3.2))
    for index, name in enumerate(names, start=1):
        axis = figure.add_subplot(1, len(names), index)
        axis.plot(history[name], label="train")
        if f"val_{name}" in history:
            axis.plot(history[f"val_{name}"], label="val")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.legend()
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    return path


def save_localizer(model: keras.Model, path: str | Path, class_names: Sequence[str],
                   metadata: dict | None = None) -> Path:
    """Write ``path`` (``.keras``) and its ``.json`` sidecar with the class names."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"model path must end with .keras, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    sidecar = {"class_names": list(class_names), **(metadata or {})}
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2))
    return path


def load_localizer(path: str | Path, compile: bool = False) -> tuple[keras.Model, list[str]]:
    """Load a ``.keras`` localizer and the class names from its sidecar.

    Raises:
        ModelFileError: the model file is missing, truncated or not a ``.keras`` archive.
        FileNotFoundError: the ``.json`` sidecar is missing.
    """
    path = Path(path)
    model = load_model(path, compile=compile)
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        raise FileNotFoundError(f"class-name sidecar not found next to the model: {sidecar}")
    class_names = json.loads(sidecar.read_text())["class_names"]
    predicted = model.output["class"].shape[-1]
    if len(class_names) != predicted:
        raise ValueError(f"{sidecar} lists {len(class_names)} classes but the model predicts "
                         f"{predicted}")
    return model, class_names
