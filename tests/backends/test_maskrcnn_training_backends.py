"""Mask R-CNN training on JAX and PyTorch (issue 17 item 1): from the same Matterport ``.h5`` and the same
seeded batches, ``train()`` in two stages (``heads``, then ``all``) gives TensorFlow's losses
step by step, its validation losses and its checkpoints, also where TensorFlow is absent.

This process (TensorFlow) writes the starting weights and trains the reference;
``maskrcnn_training_checks.py`` trains in a ``KERAS_BACKEND=jax`` (or ``torch``) subprocess, once
as it is and once with TensorFlow blocked.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from mrcnn.config import LOSS_NAMES

ROOT = Path(__file__).resolve().parents[2]
CHECKS = Path(__file__).with_name("maskrcnn_training_checks.py")
# XLA's CPU compiler at full optimization spends most of a tiny model's run compiling.
FAST_XLA = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
TRACKED = ("loss", *LOSS_NAMES, "weight_decay_loss")
# Runs the checks script with None in sys.modules["tensorflow"] before anything imports: every
# ``import tensorflow`` then raises ImportError and importlib.util.find_spec says it is absent.
WITHOUT_TENSORFLOW = ("import runpy, sys\n"
                      "sys.modules['tensorflow'] = None\n"
                      "sys.argv = [{script!r}, {folder!r}, {tag!r}]\n"
                      "runpy.run_path({script!r}, run_name='__main__')\n")

# The backends besides TensorFlow, each skipped where its package is not installed.
INSTALL = {"jax": "pip install -e '.[jax]'", "torch": "pip install torch"}
BACKENDS = [pytest.param(backend, marks=pytest.mark.skipif(
    importlib.util.find_spec(backend) is None,
    reason=f"{backend} is not installed ({INSTALL[backend]})")) for backend in INSTALL]


def _load_checks():
    spec = importlib.util.spec_from_file_location("maskrcnn_training_checks", CHECKS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checks = _load_checks()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("maskrcnn_training_backends")
    checks.write_start(folder)
    return folder


@pytest.fixture(scope="module")
def tensorflow_report(folder) -> dict:
    return checks.train_and_record(folder, "tensorflow")


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request) -> str:
    """The Keras backend that the subprocess trains on."""
    return request.param


@pytest.fixture(scope="module", params=[True, False],
                ids=["with_tensorflow", "without_tensorflow"])
def backend_report(folder, backend, request) -> dict:
    """The run on ``backend``, TensorFlow installed or blocked (as on the GPU machine)."""
    tag = backend if request.param else f"{backend}_without_tensorflow"
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu",
           "TF_CPP_MIN_LOG_LEVEL": "2", "XLA_FLAGS": FAST_XLA}
    command = ([str(CHECKS), str(folder), tag] if request.param else
               ["-c", WITHOUT_TENSORFLOW.format(script=str(CHECKS), folder=str(folder), tag=tag)])
    process = subprocess.run([sys.executable, *command], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=900)
    assert process.returncode == 0, f"{backend} training failed:\n{process.stderr[-4000:]}"
    report = json.loads(process.stdout.strip().splitlines()[-1])
    assert "error" not in report, report["error"]
    assert report["backend"] == backend
    assert report["tensorflow_importable"] is request.param
    return report


def test_every_training_step_gives_tensorflows_losses(tensorflow_report, backend_report):
    """A user moving a training run to JAX or PyTorch (for a GPU) must get the same run: each of the six
    steps' running losses, all five of Matterport's and the L2 decay, within 1e-3."""
    expected, found = tensorflow_report["steps"], backend_report["steps"]
    assert len(expected) == len(found) == 2 * checks.STEPS_PER_EPOCH
    for step, (want, got) in enumerate(zip(expected, found, strict=True)):
        for name in TRACKED:
            assert got[name] == pytest.approx(want[name], rel=1e-3, abs=1e-6), (step, name)
    # The comparison means something: the model learned, and every loss had terms.
    assert expected[-1]["loss"] != expected[0]["loss"]
    assert all(expected[0][name] > 0 for name in LOSS_NAMES), expected[0]


def test_validation_losses_match_tensorflow(tensorflow_report, backend_report):
    """The val_ curves TensorBoard shows come out the same (inference-mode BatchNorm)."""
    for want, got in zip(tensorflow_report["histories"], backend_report["histories"], strict=True):
        for name in TRACKED:
            assert got[f"val_{name}"] == pytest.approx(want[f"val_{name}"], rel=1e-3, abs=1e-6)


def _weights(path: str) -> dict[str, np.ndarray]:
    """Every array of a Matterport-layout ``.h5``, by its path (layer/layer/weight:0)."""
    arrays = {}

    def keep(name, item) -> None:  # visititems stops at the first call that returns a value
        if isinstance(item, h5py.Dataset):
            arrays[name] = item[()]

    with h5py.File(path, "r") as weights:
        weights.visititems(keep)
    return arrays


def test_checkpoints_per_epoch_hold_tensorflows_weights(folder, tensorflow_report, backend_report):
    """Each epoch writes a Matterport-layout checkpoint, and it loads back on TensorFlow
    with the weights TensorFlow's own run reached (SGD, clipping and decay the same)."""
    assert backend_report["epoch"] == 2
    assert [Path(p).name for p in backend_report["checkpoints"]] == \
        [Path(p).name for p in tensorflow_report["checkpoints"]]
    expected = _weights(tensorflow_report["checkpoints"][-1])
    found = _weights(backend_report["checkpoints"][-1])
    assert found.keys() == expected.keys()
    start = _weights(str(folder / "start.h5"))
    moved = [name for name in expected if not np.array_equal(expected[name], start[name])]
    assert moved, "training changed no weight"
    # Each weight within 1% of its array's largest update: float32 drift over six steps is
    # about 1e-3 of it, a wrong gradient, clip or decay moves weights by the whole update.
    for name in expected:
        scale = max(float(np.abs(expected[name] - start[name]).max()), 1e-6)
        np.testing.assert_allclose(found[name], expected[name], rtol=0,
                                   atol=1e-2 * scale + 1e-6, err_msg=name)


def test_heads_stage_leaves_the_backbone_as_loaded(folder, backend_report):
    """``layers="heads"`` trains the heads only: after its epoch the ResNet weights are
    still the loaded ones, and the heads' are not."""
    start = _weights(str(folder / "start.h5"))
    after_heads = _weights(backend_report["checkpoints"][0])
    backbone = [name for name in start if name.split("/")[0].startswith(("res", "bn", "conv1"))]
    heads = [name for name in start if name.split("/")[0].startswith(("mrcnn_", "rpn_"))]
    assert backbone and heads
    assert all(np.array_equal(after_heads[name], start[name]) for name in backbone)
    assert any(not np.array_equal(after_heads[name], start[name]) for name in heads)
