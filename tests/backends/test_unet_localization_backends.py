"""The U-Net and the localizer on every installed Keras backend (issue 17): they build, train
through their ``tf.data`` pipelines, predict, save and reload, and weights written on the suite's
backend predict the same elsewhere.

Keras picks its backend once, at import, and this suite imports it with TensorFlow. So this
process writes the reference weights and predictions, and each other backend runs
``backend_checks.py`` once, in a subprocess with ``KERAS_BACKEND`` set, for both packages.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import keras
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKS = Path(__file__).with_name("backend_checks.py")
# XLA's CPU compiler at full optimization spends most of a tiny model's run compiling.
FAST_XLA = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
INSTALL = {"tensorflow": "pip install -e '.[cpu]'", "jax": "pip install -e '.[jax]'",
           "torch": "pip install torch"}


def _load_checks():
    spec = importlib.util.spec_from_file_location("backend_checks", CHECKS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checks = _load_checks()


def _backend_param(backend: str):
    """The suite's own backend runs in this process (slow: tests/unet and tests/localization
    cover it); any other runs in a subprocess when its package is installed."""
    if backend == keras.backend.backend():
        return pytest.param(backend, marks=pytest.mark.slow)
    missing = importlib.util.find_spec(backend) is None
    reason = f"{backend} is not installed ({INSTALL[backend]})"
    return pytest.param(backend, marks=pytest.mark.skipif(missing, reason=reason))


BACKENDS = [_backend_param(backend) for backend in ("tensorflow", "jax", "torch")]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """``reports(backend)``: ``{package: report}`` from backend_checks, computed once."""
    folder = tmp_path_factory.mktemp("backends")
    for package in checks.PACKAGES:
        checks.write_reference(package, folder)

    @cache
    def run(backend: str) -> dict:
        if backend == keras.backend.backend():
            return {package: checks.check_package(package, folder) for package in checks.PACKAGES}
        env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu",
               "TF_CPP_MIN_LOG_LEVEL": "2", "XLA_FLAGS": FAST_XLA}
        process = subprocess.run([sys.executable, str(CHECKS), str(folder), *checks.PACKAGES],
                                 cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert process.returncode == 0, f"{backend} checks failed:\n{process.stderr[-4000:]}"
        return json.loads(process.stdout.strip().splitlines()[-1])

    return run


@pytest.fixture(params=checks.PACKAGES)
def package(request) -> str:
    return request.param


@pytest.fixture(params=BACKENDS)
def report(request, reports, package) -> dict:
    result = reports(request.param)[package]
    assert "error" not in result, result.get("error")
    assert result["backend"] == request.param
    return result


def test_weights_from_the_suite_backend_predict_the_same(report):
    """A model trained on TensorFlow and loaded on JAX (``load_weights`` of a ``.weights.h5``)
    would predict other masks or boxes than it did where it was trained."""
    assert report["reference_difference"] < 1e-4


def test_training_steps_change_the_model_with_finite_losses(report):
    """``fit`` on this backend would not train: NaN losses, or weights that never move (a
    backend whose train step drops the variable updates)."""
    losses = report["losses"]
    assert len(losses) == 3 and np.isfinite(losses).all(), losses
    assert len(set(losses)) > 1 and report["training_change"] > 0, report


def test_predictions_have_the_documented_shapes(report, package):
    """``predict`` would return maps or boxes of another shape than on TensorFlow, and
    ``unet.inference.predict_probability`` would not map back to the image's own size."""
    if package == "unet":
        assert report["prediction_shape"] == [checks.IMAGES, checks.SIZE, checks.SIZE, 1]
        assert report["probability_shape"] == [24, checks.SIZE]
    else:
        assert report["prediction_shape"] == [checks.IMAGES, 4 + 2]  # box + 2 class logits


def test_saved_keras_file_reloads_on_the_same_backend(report):
    """A ``.keras`` file saved on this backend would reload with other weights, or without the
    optimizer state that resuming training needs."""
    assert report["reload_difference"] < 1e-6
    assert report["reloaded_optimizer_steps"] == 3


def test_exporters_name_the_backend_they_need(report):
    """SavedModel/LiteRT/ONNX export on JAX would fail deep inside TensorFlow instead of saying
    it needs ``KERAS_BACKEND=tensorflow``."""
    if report["backend"] == "tensorflow":
        pytest.skip("the exporters run on TensorFlow (tests/*/test_export.py)")
    assert "needs the TensorFlow backend" in report["export_refusal"]
    assert repr(report["backend"]) in report["export_refusal"]
