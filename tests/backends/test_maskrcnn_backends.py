"""Mask R-CNN inference on JAX and PyTorch (issue 17): a Matterport-layout ``.h5`` written by
the TensorFlow build loads by name there, and ``detect()`` finds what TensorFlow found.

This process (TensorFlow) writes the weights and its detections; ``maskrcnn_checks.py`` runs
in a ``KERAS_BACKEND=jax`` or ``torch`` subprocess of this interpreter (so pytest run from an
environment with torch checks torch) and reports how its detections differ: once as here, and
once with TensorFlow unimportable, as on the GPU machine (JAX and PyTorch, no TensorFlow).
A backend that is not installed skips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.backends.subprocess_runs import load_script, run_checks

CHECKS = Path(__file__).with_name("maskrcnn_checks.py")

checks = load_script(CHECKS)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The TensorFlow reference: ``mask_rcnn.h5`` and ``detections.npz``."""
    folder = tmp_path_factory.mktemp("maskrcnn_backends")
    checks.write_reference(folder)
    return folder


@pytest.fixture(scope="module", params=[True, False],
                ids=["with_tensorflow", "without_tensorflow"])
def backend_report(folder, backend, request) -> dict:
    """The checks' report on ``backend``, TensorFlow installed or blocked
    (``tensorflow_blocked``)."""
    report = run_checks(CHECKS, [str(folder)], backend,
                        blocked=() if request.param else ("tensorflow",))
    return {**report, "tensorflow_blocked": not request.param}


def test_reference_has_detections_and_an_image_without(folder):
    """The comparison would prove little if TensorFlow detected nothing (or everything): the
    two images of shapes must give detections, the blank one none."""
    reference = np.load(folder / "detections.npz")
    counts = {name: len(reference[f"{name}/class_ids"]) for name in checks.IMAGE_NAMES}
    assert counts["square"] > 2 and counts["wide"] > 2 and counts["blank"] == 0, counts
    assert reference["wide/masks"].shape[:2] == (48, 100)


def test_tensorflow_is_unimportable_where_it_is_blocked(backend_report):
    """A block that did not take would leave the run without TensorFlow untested."""
    assert backend_report["tensorflow_importable"] is not backend_report["tensorflow_blocked"]


def test_matterport_h5_from_tensorflow_loads_by_name(backend_report):
    """``load_weights(by_name=True)`` on JAX or PyTorch would leave layers of the TensorFlow
    file unused."""
    assert backend_report["unused_layers"] == []


@pytest.mark.parametrize("image", checks.DETECTION_NAMES)
def test_backend_detects_what_tensorflow_detects(backend_report, image):
    """The backend's proposals, ROIAlign, per-class NMS or mask head would detect other
    instances than TensorFlow's kernels on the same weights and image (whole or in tiles):
    other counts or classes, boxes more than 1 px off, scores more than 1e-4 off, or masks
    overlapping less than 0.99 IoU."""
    report = backend_report["images"][image]
    assert report["found"] == report["expected"], report
    assert report["class_ids_equal"], report
    assert report["box_difference"] <= 1, report
    assert report["score_difference"] <= 1e-4, report
    assert report["mask_iou"] >= 0.99, report


@pytest.mark.parametrize("method", ["run_graph", "export"])
def test_tensorflow_only_methods_name_the_backend_they_need(backend, backend_report, method):
    """run_graph() and export() on JAX or PyTorch would fail deep inside TensorFlow (without
    TensorFlow, on its import) instead of saying they need ``KERAS_BACKEND=tensorflow``."""
    message = backend_report["refusals"][method]
    assert "needs the TensorFlow backend" in message and f"'{backend}'" in message, message
