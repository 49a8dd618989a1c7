"""Mask R-CNN training on JAX and PyTorch (issue 17 item 1): from the same Matterport ``.h5``
and the same seeded batches, ``train()`` in two stages (``heads``, then ``all``) gives TensorFlow's losses
step by step, its validation losses and its checkpoints, also where TensorFlow is absent.

This process (TensorFlow) writes the starting weights; ``maskrcnn_training_checks.py`` trains
the reference in a TensorFlow subprocess, and in a ``KERAS_BACKEND=jax`` (or ``torch``) one, once
as it is and once with TensorFlow blocked.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from mrcnn.config import LOSS_NAMES
from tests.backends.subprocess_runs import load_script, run_checks

CHECKS = Path(__file__).with_name("maskrcnn_training_checks.py")
TRACKED = ("loss", *LOSS_NAMES, "weight_decay_loss")

checks = load_script(CHECKS)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("maskrcnn_training_backends")
    checks.write_start(folder)
    return folder


@pytest.fixture(scope="module")
def tensorflow_report(folder) -> dict:
    """The TensorFlow run, in a process that cannot import PyTorch: where PyTorch is installed
    and imported beside it, TensorFlow's own losses move by up to 3e-3 over the six steps
    (measured, with the same weights and batches), more than the backends differ by."""
    return run_checks(CHECKS, [str(folder), "tensorflow"], "tensorflow", blocked=("torch",),
                      timeout=900)


@pytest.fixture(scope="module", params=[True, False],
                ids=["with_tensorflow", "without_tensorflow"])
def backend_report(folder, backend, request) -> dict:
    """The run on ``backend``, TensorFlow installed or blocked (as on the GPU machine)."""
    tag = backend if request.param else f"{backend}_without_tensorflow"
    report = run_checks(CHECKS, [str(folder), tag], backend,
                        blocked=() if request.param else ("tensorflow",), timeout=900)
    assert report["tensorflow_importable"] is request.param
    return report


def test_every_training_step_gives_tensorflows_losses(tensorflow_report, backend_report):
    """A user moving a training run to JAX or PyTorch (for a GPU) must get the same run: each of
    the six steps' running losses, all five of Matterport's and the L2 decay, within 1e-3."""
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
