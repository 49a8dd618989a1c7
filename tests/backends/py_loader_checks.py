"""The backend-neutral training input on whichever Keras backend this process runs.

``make_inputs(mode)`` gives the shapes dataset, config and augmentation that both sides use;
``check_loader(folder)`` makes the training input as ``MaskRCNN.train()`` would
(``as_training_input``: the ``PyDataset`` where TensorFlow is absent), saves its first batches
per resize mode as ``loader_<mode>.npz`` (the TensorFlow test compares them with
``build_dataset``'s), and lets Keras iterate it with worker threads: ``predict``, reporting
what the model saw, and ``fit`` over two epochs. Run as a script it prints that report as one
JSON line (``{"error": traceback}`` when a step failed)::

    KERAS_BACKEND=jax python tests/backends/py_loader_checks.py FOLDER
"""

from __future__ import annotations

import importlib.util
import json
import sys
import traceback
from pathlib import Path

import keras
import numpy as np

from mrcnn.config import tiny_config
from mrcnn.data.datasets.shapes import ShapesDataset
from mrcnn.data.py_loader import TrainingBatches
from mrcnn.engine.training_data import as_training_input

SEED = 5
MODES = ("square", "pad64")
# Batches saved for the byte comparison, and steps per epoch of the fit.
STEPS = 3
# (count, height, width) of each block of the pad64 dataset: wide, tall and square images.
MIXED_SIZES = ((3, 64, 128), (3, 128, 64), (2, 96, 96))


def make_inputs(mode: str):
    """(dataset, config, augmentation) of ``mode``: 64 px shapes for "square", images of three
    aspect ratios for "pad64"; a horizontal flip, so augmentation is part of what must match."""
    import albumentations as A

    dataset = ShapesDataset()
    for seed, (count, height, width) in enumerate(MIXED_SIZES if mode == "pad64"
                                                  else ((7, 64, 64),)):
        dataset.load_shapes(count, height, width, seed=seed)
    dataset.prepare()
    return dataset, tiny_config(IMAGE_RESIZE_MODE=mode), A.Compose([A.HorizontalFlip()])


class BatchSummary(keras.Model):
    """Per image: the image id from its meta and the mean of the molded image, through one
    trainable scale (so ``fit`` has something to train: the squared output is the loss)."""

    def __init__(self):
        super().__init__()
        self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

    def call(self, batch):
        mean = keras.ops.mean(batch["input_image"], axis=(1, 2, 3)) * self.scale
        return keras.ops.stack([batch["input_image_meta"][:, 0], mean], axis=1)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return keras.ops.mean(keras.ops.square(y_pred[:, 1]))


def check_loader(folder: Path) -> dict:
    report = {"backend": keras.backend.backend(),
              "tensorflow_importable": importlib.util.find_spec("tensorflow") is not None}
    for mode in MODES:
        dataset, config, augmentation = make_inputs(mode)
        loader = as_training_input(dataset, config, shuffle=False, augmentation=augmentation,
                                   seed=SEED)
        report[f"{mode}_input"] = type(loader).__name__
        np.savez(folder / f"loader_{mode}.npz",
                 **{f"{i}/{key}": value for i in range(STEPS) for key, value in loader[i].items()})
    report.update(_keras_iterations())
    report["tensorflow_imported"] = sys.modules.get("tensorflow") is not None
    return report


def _keras_iterations() -> dict:
    """What ``predict`` saw over 2 * STEPS batches built by 2 worker threads, against the
    loader's batches read directly; and the losses of a ``fit`` of 2 epochs of STEPS steps."""
    dataset, config, augmentation = make_inputs("square")
    options = dict(augmentation=augmentation, seed=SEED)
    direct = TrainingBatches(dataset, config, workers=1, **options)
    expected = [direct[i] for i in range(2 * STEPS)]
    model = BatchSummary()
    model(expected[0])  # built: predict reads no batch to build it
    seen = model.predict(TrainingBatches(dataset, config, workers=2, **options),
                         steps=2 * STEPS, verbose=0)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-6))
    history = model.fit(TrainingBatches(dataset, config, workers=2, **options), epochs=2,
                        steps_per_epoch=STEPS, shuffle=False, verbose=0)
    return {
        "predicted_image_ids": seen[:, 0].astype(int).tolist(),
        "expected_image_ids": np.concatenate(
            [b["input_image_meta"][:, 0] for b in expected]).astype(int).tolist(),
        "max_mean_difference": float(np.abs(seen[:, 1] - np.concatenate(
            [b["input_image"].mean(axis=(1, 2, 3)) for b in expected])).max()),
        "fit_losses": [float(loss) for loss in history.history["loss"]],
    }


def main(argv: list[str]) -> None:
    try:
        report = check_loader(Path(argv[0]))
    except Exception:  # reported so the test shows this traceback
        report = {"error": traceback.format_exc()}
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
