"""Determinism: with a fixed --seed, two CPU training runs of the tiny preset are identical."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mrcnn.engine.training import find_last
from mrcnn.engine.weights import read_h5_weights

REPO = Path(__file__).resolve().parents[2]


def _train(logs: Path, seed: int) -> tuple[dict[str, list[float]], dict[str, list[np.ndarray]]]:
    """Run the shapes CLI (tiny preset, 2 epochs of 3 steps) in a fresh process; return the
    per-epoch losses TensorBoard recorded and the last checkpoint's weights."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    command = [sys.executable, str(REPO / "samples" / "shapes.py"), "train", "--preset", "tiny",
               "--weights", "none", "--logs", str(logs), "--epochs", "2",
               "--steps-per-epoch", "3", "--seed", str(seed)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    checkpoint = Path(find_last(logs, "shapes"))
    losses = {}
    for subdir in ("train", "validation"):
        events = EventAccumulator(str(checkpoint.parent / subdir))
        events.Reload()
        for tag in events.Tags()["tensors"]:
            if tag.endswith("loss"):
                losses[f"{subdir}/{tag}"] = [float(tf.make_ndarray(e.tensor_proto))
                                             for e in events.Tensors(tag)]
    return losses, read_h5_weights(checkpoint)


# Three CLI trainings in fresh processes, ~90 s on 2 cores: run with `make test-slow`.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("determinism")
    return {name: _train(root / name, seed)
            for name, seed in (("first", 7), ("again", 7), ("other", 8))}


def test_same_seed_gives_the_same_losses_and_weights(runs):
    """Users would notice: a rerun to check a change cannot tell the change from noise."""
    (losses, weights), (losses_again, weights_again) = runs["first"], runs["again"]
    assert "train/epoch_loss" in losses and "validation/epoch_loss" in losses
    assert len(losses["train/epoch_loss"]) == 2
    assert losses == losses_again
    assert weights.keys() == weights_again.keys()
    for name, arrays in weights.items():
        for array, again in zip(arrays, weights_again[name], strict=True):
            np.testing.assert_array_equal(array, again, err_msg=name)


def test_another_seed_gives_other_losses(runs):
    """The seed reaches the run: otherwise "same losses" above would prove nothing."""
    assert runs["first"][0]["train/epoch_loss"] != runs["other"][0]["train/epoch_loss"]
