"""Mask R-CNN inference on JAX (issue 17 item 1): a Matterport-layout ``.h5`` written by the
TensorFlow build loads by name there, and ``detect()`` finds what TensorFlow found.

This process (TensorFlow) writes the weights and its detections; ``maskrcnn_checks.py`` runs
in a ``KERAS_BACKEND=jax`` subprocess and reports how its detections differ: once as here, and
once with TensorFlow unimportable, as on the GPU machine (JAX and PyTorch, no TensorFlow).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKS = Path(__file__).with_name("maskrcnn_checks.py")
# XLA's CPU compiler at full optimization spends most of a tiny model's run compiling.
FAST_XLA = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
# Runs the checks script with None in sys.modules["tensorflow"] before anything imports: every
# ``import tensorflow`` then raises ImportError and importlib.util.find_spec says it is absent.
WITHOUT_TENSORFLOW = ("import runpy, sys\n"
                      "sys.modules['tensorflow'] = None\n"
                      "sys.argv = [{script!r}, {folder!r}]\n"
                      "runpy.run_path({script!r}, run_name='__main__')\n")

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                                reason="jax is not installed (pip install -e '.[jax]')")


def _load_checks():
    spec = importlib.util.spec_from_file_location("maskrcnn_checks", CHECKS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checks = _load_checks()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The TensorFlow reference: ``mask_rcnn.h5`` and ``detections.npz``."""
    folder = tmp_path_factory.mktemp("maskrcnn_backends")
    checks.write_reference(folder)
    return folder


@pytest.fixture(scope="module", params=[True, False],
                ids=["with_tensorflow", "without_tensorflow"])
def jax_report(folder, request) -> dict:
    """The checks' report on JAX, TensorFlow installed or blocked (``tensorflow_blocked``)."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "TF_CPP_MIN_LOG_LEVEL": "2", "XLA_FLAGS": FAST_XLA}
    command = ([str(CHECKS), str(folder)] if request.param else
               ["-c", WITHOUT_TENSORFLOW.format(script=str(CHECKS), folder=str(folder))])
    process = subprocess.run([sys.executable, *command], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, f"jax checks failed:\n{process.stderr[-4000:]}"
    report = json.loads(process.stdout.strip().splitlines()[-1])
    assert "error" not in report, report["error"]
    assert report["backend"] == "jax"
    return {**report, "tensorflow_blocked": not request.param}


def test_reference_has_detections_and_an_image_without(folder):
    """The comparison would prove little if TensorFlow detected nothing (or everything): the
    two images of shapes must give detections, the blank one none."""
    reference = np.load(folder / "detections.npz")
    counts = {name: len(reference[f"{name}/class_ids"]) for name in checks.IMAGE_NAMES}
    assert counts["square"] > 2 and counts["wide"] > 2 and counts["blank"] == 0, counts
    assert reference["wide/masks"].shape[:2] == (48, 100)


def test_tensorflow_is_unimportable_where_it_is_blocked(jax_report):
    """A block that did not take would leave the run without TensorFlow untested."""
    assert jax_report["tensorflow_importable"] is not jax_report["tensorflow_blocked"]


def test_matterport_h5_from_tensorflow_loads_by_name_on_jax(jax_report):
    """``load_weights(by_name=True)`` on JAX would leave layers of the TensorFlow file unused."""
    assert jax_report["unused_layers"] == []


@pytest.mark.parametrize("image", checks.DETECTION_NAMES)
def test_jax_detects_what_tensorflow_detects(jax_report, image):
    """JAX's proposals, ROIAlign, per-class NMS or mask head would detect other instances than
    TensorFlow's kernels on the same weights and image (whole or in tiles): other counts or
    classes, boxes more than 1 px off, scores more than 1e-4 off, or masks overlapping less
    than 0.99 IoU."""
    report = jax_report["images"][image]
    assert report["found"] == report["expected"], report
    assert report["class_ids_equal"], report
    assert report["box_difference"] <= 1, report
    assert report["score_difference"] <= 1e-4, report
    assert report["mask_iou"] >= 0.99, report


@pytest.mark.parametrize("method", ["train", "run_graph", "export"])
def test_tensorflow_only_methods_name_the_backend_they_need(jax_report, method):
    """train(), run_graph() and export() on JAX would fail deep inside TensorFlow (or train
    with the wrong step; without TensorFlow, on its import) instead of saying they need
    ``KERAS_BACKEND=tensorflow``."""
    message = jax_report["refusals"][method]
    assert "needs the TensorFlow backend" in message and "'jax'" in message, message
