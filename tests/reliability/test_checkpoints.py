"""Checkpoints survive crashes: atomic writes, truncated files passed over, optimizer state kept,
and a training process killed with SIGKILL resumes at the right epoch with --weights last."""

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from mrcnn.engine.training import (
    checkpoint_path,
    find_last,
    optimizer_state_path,
    restore_optimizer_state,
    save_optimizer_state,
)
from mrcnn.engine.weights import read_h5_weights, save_weights_h5

REPO = Path(__file__).resolve().parents[2]


def _dense_layers(seed: int) -> dict[str, keras.layers.Layer]:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="fc1"),
                              keras.layers.Dense(2, name="fc2")])
    return {layer.name: layer for layer in model.layers}


class _DiesWhileSaved:
    """A layer whose weights cannot be read: the writer fails half-way through the file."""

    name = "broken"

    @property
    def weights(self):
        raise RuntimeError("disk full")


def test_a_failed_checkpoint_write_leaves_the_previous_file_intact(tmp_path):
    """Users would notice: a crash while saving epoch N destroys checkpoint N too."""
    path = tmp_path / "mask_rcnn_tiny_0001.h5"
    save_weights_h5(_dense_layers(0), path)
    before = path.read_bytes()
    layers = {**_dense_layers(1), "broken": _DiesWhileSaved()}
    with pytest.raises(RuntimeError, match="disk full"):
        save_weights_h5(layers, path)
    assert path.read_bytes() == before
    assert set(read_h5_weights(path)) == {"fc1", "fc2"}


def _run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "logs" / "tiny20260102T0304"
    for epoch in (1, 2, 3):
        save_weights_h5(_dense_layers(epoch), checkpoint_path(run, "tiny", epoch))
    return run


def test_find_last_passes_over_a_truncated_checkpoint_with_a_warning(tmp_path, caplog):
    run = _run_dir(tmp_path)
    newest = checkpoint_path(run, "tiny", 3)
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    with caplog.at_level(logging.WARNING, logger="mrcnn.engine.training"):
        assert find_last(tmp_path / "logs", "tiny") == checkpoint_path(run, "tiny", 2)
    assert any(newest.name in r.getMessage() for r in caplog.records)


def test_find_last_with_no_readable_checkpoint_says_so(tmp_path):
    run = _run_dir(tmp_path)
    for epoch in (1, 2, 3):
        checkpoint_path(run, "tiny", epoch).write_bytes(b"\x89HDF\r\n")
    with pytest.raises(FileNotFoundError, match="no readable mask_rcnn_tiny_"):
        find_last(tmp_path / "logs", "tiny")


def _trained_optimizer(layers_seed: int = 0, learning_rate: float = 0.1):
    keras.utils.set_random_seed(layers_seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="fc")], name="net")
    model.compile(optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def test_optimizer_state_round_trips_without_the_learning_rate(tmp_path, caplog):
    """Users would notice: after a resume, momentum restarts from zero (a loss spike)."""
    model = _trained_optimizer()
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)
    model.fit(x, y, epochs=3, verbose=0)
    path = optimizer_state_path(tmp_path / "mask_rcnn_tiny_0003.h5")
    assert path.name == "mask_rcnn_tiny_0003.opt.npz"
    save_optimizer_state(model.optimizer, path)

    resumed = _trained_optimizer(learning_rate=0.01)
    assert restore_optimizer_state(resumed.optimizer, path)
    assert int(resumed.optimizer.iterations.numpy()) == 3
    assert float(resumed.optimizer.learning_rate.numpy()) == pytest.approx(0.01)
    for saved, restored in zip(model.optimizer.variables[2:], resumed.optimizer.variables[2:],
                               strict=True):
        np.testing.assert_array_equal(saved.numpy(), restored.numpy())
        assert np.abs(restored.numpy()).sum() > 0

    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5, name="fc")], name="net")
    other.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    other.optimizer.build(other.trainable_variables)
    with caplog.at_level(logging.WARNING, logger="mrcnn.engine.training"):
        assert not restore_optimizer_state(other.optimizer, path)
    assert "other trainable layers" in caplog.text


def _train_command(logs: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO / "samples" / "shapes.py"), "train", "--preset", "tiny",
            "--logs", str(logs), "--train-images", "8", "--val-images", "2",
            "--set", "STEPS_PER_EPOCH=60", "--set", "VALIDATION_STEPS=1", *extra]


@pytest.mark.slow
def test_sigkilled_training_resumes_from_the_last_complete_readable_epoch(tmp_path):
    """Kill a real training process mid-epoch, truncate its newest checkpoint (as a crash
    during a non-atomic copy would), restart with --weights last: it must resume from the
    newest readable epoch, with its optimizer state, and write the next checkpoints there."""
    logs = tmp_path / "logs"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    with open(tmp_path / "first.log", "w") as log:
        process = subprocess.Popen(_train_command(logs, "--weights", "none", "--epochs", "1000"),
                                   cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while not list(logs.glob("*/mask_rcnn_shapes_0002.h5")):
            assert process.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no second checkpoint within 180 s"
            time.sleep(0.05)
        time.sleep(0.6)  # into the next epoch (about 2 s each)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    (run,) = [d for d in logs.iterdir() if d.is_dir()]
    checkpoints = sorted(run.glob("mask_rcnn_shapes_*.h5"))
    newest = len(checkpoints)
    assert newest >= 2 and checkpoints[-1].name == f"mask_rcnn_shapes_{newest:04d}.h5"
    assert all(optimizer_state_path(c).is_file() for c in checkpoints)
    for checkpoint in checkpoints:
        read_h5_weights(checkpoint)  # every checkpoint left by the kill is complete
    checkpoints[-1].write_bytes(checkpoints[-1].read_bytes()[:4096])

    restart = subprocess.run(_train_command(logs, "--weights", "last", "--epochs", str(newest)),
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    output = restart.stdout + restart.stderr
    assert restart.returncode == 0, output[-3000:]
    assert f"ignoring checkpoint {checkpoints[-1]}" in output
    assert f"starting at epoch {newest - 1}" in output
    assert f"restored optimizer state from mask_rcnn_shapes_{newest - 1:04d}.opt.npz (step " \
           f"{60 * (newest - 1)})" in output
    assert f"Epoch {newest}/{newest}" in output and f"Epoch {newest - 1}/" not in output
    assert sorted(run.glob("mask_rcnn_shapes_*.h5")) == checkpoints  # same run, same names
    read_h5_weights(checkpoints[-1])  # rewritten whole
    assert [d for d in logs.iterdir() if d.is_dir()] == [run]
