"""The tiny Mask R-CNN trained on whichever Keras backend this process runs, from the same
Matterport ``.h5`` and the same seeded batches, so two backends' losses can be compared.

``write_start(folder)`` (TensorFlow) saves the starting weights as ``start.h5``.
``train_and_record(folder, tag)`` builds the training model here, loads ``start.h5`` by name
and trains in two stages as Matterport's samples do (``heads``, then ``all``), with
Matterport's L2 decay and gradient clipping; it returns every step's running losses and the
checkpoints written under ``folder/tag``. The ROI sampling has room for every candidate
(``ROOM_FOR_EVERY_ROI``), so which ROIs train does not depend on a backend's random stream.
Run as a script it prints that report as one JSON line (``{"error": traceback}`` on failure)::

    KERAS_BACKEND=jax python tests/backends/maskrcnn_training_checks.py FOLDER
"""

from __future__ import annotations

import importlib.util
import json
import sys
import traceback
from pathlib import Path

import keras

# Every anchor of the 64 px image becomes a proposal (no NMS suppression: threshold 1.0) and
# every proposal and GT box gets a ROI slot, positive or not: which ROIs train then depends on
# no top-k or NMS boundary, where float32 differences between two backends' kernels would flip
# a box in or out, nor on the backend's random stream. (Config allows at most
# POST_NMS_ROIS_TRAINING slots: the layer is widened after the model is built.)
ANCHORS = 1023
MAX_GT_INSTANCES = 8
EVERY_ANCHOR = dict(PRE_NMS_LIMIT=ANCHORS, POST_NMS_ROIS_TRAINING=ANCHORS, RPN_NMS_THRESHOLD=1.0,
                    TRAIN_ROIS_PER_IMAGE=200, MAX_GT_INSTANCES=MAX_GT_INSTANCES)
ROOM_FOR_EVERY_ROI = {"rois_per_image": ANCHORS + MAX_GT_INSTANCES, "positive_ratio": 1.0}
STAGES = (("heads", 1), ("all", 2))  # (layers, train until epoch)
LEARNING_RATE = 0.002  # small steps: float32 differences between kernels stay small
STEPS_PER_EPOCH = 3


def build_model(folder: Path, tag: str):
    from mrcnn import model as modellib
    from mrcnn.config import tiny_config

    keras.utils.set_random_seed(0)
    config = tiny_config(num_classes=4, name="backends", STEPS_PER_EPOCH=STEPS_PER_EPOCH,
                         VALIDATION_STEPS=1, **EVERY_ANCHOR)
    model = modellib.MaskRCNN("training", config, str(folder / tag))
    assert len(model.get_anchors(config.IMAGE_SHAPE)) == ANCHORS
    for name, value in ROOM_FOR_EVERY_ROI.items():
        setattr(model.keras_model.detection_targets, name, value)
    return model


def shapes(count: int, seed: int):
    from mrcnn.data.datasets.shapes import ShapesDataset

    dataset = ShapesDataset()
    dataset.load_shapes(count, 64, 64, seed=seed)
    dataset.prepare()
    return dataset


def write_start(folder: Path) -> None:
    build_model(folder, "start").save_weights(folder / "start.h5")


class StepLosses(keras.callbacks.Callback):
    """Every training step's logs (running means over the epoch), as floats."""

    def __init__(self):
        super().__init__()
        self.steps: list[dict[str, float]] = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append({name: float(value) for name, value in (logs or {}).items()})


def train_and_record(folder: Path, tag: str) -> dict:
    """Train as the module docstring says. The input is the TensorFlow-free loader on every
    backend: where TensorFlow is installed, ``train()`` would pick ``tf.data``, whose shuffle
    order the loader does not reproduce; where it is not, ``train()`` gets the datasets
    themselves and picks the loader, with the same seeds drawn in the same order."""
    from mrcnn.engine.training_data import as_training_input

    if keras.backend.backend() == "tensorflow":
        # Without it TensorFlow sums some gradients in thread order: two runs of one seed
        # differed by 1.2e-3 in a validation loss.
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    model = build_model(folder, tag)
    model.load_weights(str(folder / "start.h5"), by_name=True)
    train, val = shapes(8, seed=1), shapes(2, seed=2)
    recorder = StepLosses()
    histories = []
    keras.utils.set_random_seed(0)  # the input pipeline's seed
    tensorflow = importlib.util.find_spec("tensorflow") is not None
    for layers, epochs in STAGES:
        inputs = ((as_training_input(train, model.config, pipeline="pydataset"),
                   as_training_input(val, model.config, pipeline="pydataset"))
                  if tensorflow else (train, val))
        history = model.train(*inputs, LEARNING_RATE, epochs, layers,
                              custom_callbacks=[recorder])
        histories.append({name: [float(v) for v in values]
                          for name, values in history.history.items()})
    return {
        "backend": keras.backend.backend(),
        "tensorflow_importable": tensorflow,
        "steps": recorder.steps,
        "histories": histories,
        "checkpoints": sorted(str(p) for p in Path(model.log_dir).glob("*.h5")),
        "epoch": model.epoch,
    }


def main(argv: list[str]) -> None:
    try:
        report = train_and_record(Path(argv[0]), argv[1])
    except Exception:  # reported so the test shows this traceback
        report = {"error": traceback.format_exc()}
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
