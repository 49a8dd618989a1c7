"""README: face-mask training uses "early stopping that restores the best weights".

``samples/face_mask.py train`` is run on the generated dataset. From epoch 3 on, a callback
added next to the sample's own (``localization.training.build_callbacks``) makes the learning rate negative, so the
optimizer climbs the loss instead of descending it and the validation loss gets worse every
epoch: the best epoch is one of the first two, by construction. (A large positive learning
rate was tried first: the validation loss still fell for two epochs, so it proves nothing.) The model the command saves must hold that epoch's weights, and the
run must stop ``PATIENCE`` epochs after it instead of going on to ``--epochs``.
"""

import csv

import keras
import numpy as np
import pytest

from localization import cli, training
from localization.training import load_localizer

DIVERGE_FROM_EPOCH = 2  # 0-based: epochs 1 and 2 train normally, then gradient ascent
PATIENCE = 2
EPOCHS = 12


class _Diverge(keras.callbacks.Callback):
    """Gradient ascent from ``DIVERGE_FROM_EPOCH`` on, at 100 times the tiny preset's rate."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch >= DIVERGE_FROM_EPOCH:
            self.model.optimizer.learning_rate.assign(-1e-2)


class _Snapshots(keras.callbacks.Callback):
    """All weights (BatchNorm statistics included) at the end of every epoch."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([np.array(w) for w in self.model.get_weights()])


@pytest.fixture(scope="module")
def diverging_run(synthetic_dataset, tmp_path_factory):
    snapshots = _Snapshots()
    real_build_callbacks = training.build_callbacks

    def with_divergence(*args, **kwargs):
        return [*real_build_callbacks(*args, **kwargs), _Diverge(), snapshots]

    logs = tmp_path_factory.mktemp("early_stopping")
    with pytest.MonkeyPatch.context() as patch:
        # cli imports it when train runs
        patch.setattr(training, "build_callbacks", with_divergence)
        status = cli.main(["train", "--dataset", str(synthetic_dataset), "--logs", str(logs),
                           "--preset", "tiny", "--epochs", str(EPOCHS),
                           "--set", f"PATIENCE={PATIENCE}", "--set", "TENSORBOARD=False",
                           "--set", "AUGMENT=False"])
    assert status == 0
    with open(logs / "history.csv", newline="") as handle:
        val_loss = [float(row["val_loss"]) for row in csv.DictReader(handle)]
    return logs, snapshots.weights, val_loss


def test_saved_localizer_has_the_best_epochs_weights_not_the_last(diverging_run):
    """Users would get the diverged last epoch's model instead of the best one they saw."""
    logs, snapshots, val_loss = diverging_run
    best = int(np.argmin(val_loss))
    assert best < DIVERGE_FROM_EPOCH, val_loss
    assert val_loss[-1] > 1.5 * val_loss[best], val_loss  # the last epoch really is worse
    model, _ = load_localizer(logs / "localizer.keras")
    saved = model.get_weights()
    assert len(saved) == len(snapshots[best])
    for saved_array, best_array in zip(saved, snapshots[best], strict=True):
        np.testing.assert_array_equal(saved_array, best_array)
    last_gap = max(float(np.abs(s - w).max()) for s, w in zip(saved, snapshots[-1], strict=True))
    assert last_gap > 1e-3  # and they are not the last epoch's


def test_training_stops_patience_epochs_after_the_best(diverging_run):
    """Users would wait for every --epochs epoch although the model stopped improving."""
    _, snapshots, val_loss = diverging_run
    best = int(np.argmin(val_loss))
    assert len(val_loss) == len(snapshots) == best + 1 + PATIENCE < EPOCHS
