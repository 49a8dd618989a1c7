"""Compiling and fitting a U-Net: checkpoints, best model by val Dice, curves, resumption.

Files written under ``logs_dir``: ``best.keras`` (highest val Dice), ``last.keras`` (every
epoch), ``history.csv``, ``training_curves.png`` and ``tensorboard/`` (where TensorFlow is
installed: Keras writes TensorBoard's event files with it).
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import keras
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from unet.losses import get_loss  # noqa: E402
from unet.metrics import DiceScore, IoUScore  # noqa: E402
from vision_common.input_pipelines import tensorflow_installed  # noqa: E402

logger = logging.getLogger(__name__)


def compile_model(model: keras.Model, loss: str = "bce_dice", learning_rate: float = 1e-3,
                  run_eagerly: bool = False) -> keras.Model:
    """Compiles with one loss and Dice/IoU metrics per output (logits detected by layer name).

    The train step is XLA-compiled on JAX only: JAX without ``jit`` dispatches (and compiles)
    every op on its own, while TensorFlow's graph without XLA starts faster on CPU.
    """
    heads = len(model.outputs)
    logits = [output_name.endswith("_logits") for output_name in model.output_names]
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=[get_loss(loss, from_logits=flag) for flag in logits] if heads > 1
        else get_loss(loss, from_logits=logits[0]),
        metrics=[[DiceScore(from_logits=flag), IoUScore(from_logits=flag)] for flag in logits]
        if heads > 1 else [DiceScore(from_logits=logits[0]), IoUScore(from_logits=logits[0])],
        run_eagerly=run_eagerly,
        jit_compile=keras.backend.backend() == "jax" and not run_eagerly,
    )
    return model


def monitored_metric(model: keras.Model) -> str:
    """``val_dice``, or the last head's val Dice for deep-supervision models."""
    if len(model.outputs) == 1:
        return "val_dice"
    return f"val_{model.output_names[-1]}_dice"


def completed_epochs(logs_dir: str | os.PathLike) -> int:
    """Epochs recorded in ``history.csv`` (0 when absent), to resume the epoch counter."""
    path = Path(logs_dir) / "history.csv"
    if not path.is_file():
        return 0
    with open(path, newline="") as handle:
        return max(0, sum(1 for _ in csv.reader(handle)) - 1)


def fit(
    model: keras.Model,
    train_data,
    val_data,
    logs_dir: str | os.PathLike,
    epochs: int,
    steps_per_epoch: int | None = None,
    validation_steps: int | None = None,
    patience: int = 10,
    initial_epoch: int = 0,
    verbose: int | str = "auto",
) -> keras.callbacks.History:
    """Trains with TensorBoard, best/last checkpoints, early stopping on val Dice, CSV history.

    Repeated datasets (``make_dataset(repeat=True)``) need ``steps_per_epoch`` and
    ``validation_steps`` (``steps_per_pass``); finite ones may leave them ``None``.
    """
    logs_dir = Path(logs_dir)
    logs_dir.mkdir(parents=True, exist_ok=True)
    monitor = monitored_metric(model)
    callbacks = [
        keras.callbacks.ModelCheckpoint(logs_dir / "best.keras", monitor=monitor, mode="max",
                                        save_best_only=True),
        keras.callbacks.ModelCheckpoint(logs_dir / "last.keras"),
        keras.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=patience,
                                      restore_best_weights=True),
        keras.callbacks.CSVLogger(logs_dir / "history.csv", append=initial_epoch > 0),
    ]
    if tensorflow_installed():
        callbacks.append(keras.callbacks.TensorBoard(logs_dir / "tensorboard", write_graph=False))
    else:
        logger.info("no TensorBoard logs: Keras writes them with TensorFlow, not installed here")
    history = model.fit(
        train_data, validation_data=val_data, epochs=initial_epoch + epochs,
        initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch,
        validation_steps=validation_steps, callbacks=callbacks, verbose=verbose,
        shuffle=False,  # make_dataset shuffles; Keras would warn and ignore it
    )
    save_training_curves(logs_dir / "history.csv", logs_dir / "training_curves.png")
    return history


def save_training_curves(history_csv: str | os.PathLike, out_png: str | os.PathLike) -> None:
    """Plots every loss and Dice column of ``history.csv`` against the epoch into a PNG."""
    with open(history_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{history_csv}: no epochs recorded")
    epochs = [int(row["epoch"]) + 1 for row in rows]
    figure, (loss_axis, dice_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for column in rows[0]:
        values = [float(row[column]) for row in rows]
        if column.endswith("loss"):
            loss_axis.plot(epochs, values, label=column)
        elif column.endswith("dice"):
            dice_axis.plot(epochs, values, label=column)
    for axis, title in ((loss_axis, "loss"), (dice_axis, "Dice (per image, threshold 0.5)")):
        axis.set_xlabel("epoch")
        axis.set_title(title)
        axis.legend()
    figure.tight_layout()
    figure.savefig(out_png, dpi=100)
    plt.close(figure)
