"""Training input on the GPU machine's setup (issue 17 item 2): JAX with TensorFlow absent.

``py_loader_checks.py`` runs in a ``KERAS_BACKEND=jax`` subprocess with TensorFlow blocked: the
input ``MaskRCNN.train()`` makes there must be the ``PyDataset`` loader, its batches must be
``build_dataset``'s byte for byte (this process builds those with TensorFlow), and Keras must
iterate it with worker threads (``predict``, and ``fit`` over two epochs).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mrcnn.data.pipeline import build_dataset

ROOT = Path(__file__).resolve().parents[2]
CHECKS = Path(__file__).with_name("py_loader_checks.py")
# As in test_maskrcnn_backends: None in sys.modules["tensorflow"] makes every import of it fail.
WITHOUT_TENSORFLOW = ("import runpy, sys\n"
                      "sys.modules['tensorflow'] = None\n"
                      "sys.argv = [{script!r}, {folder!r}]\n"
                      "runpy.run_path({script!r}, run_name='__main__')\n")

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                                reason="jax is not installed (pip install -e '.[jax]')")


def _load_checks():
    spec = importlib.util.spec_from_file_location("py_loader_checks", CHECKS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checks = _load_checks()


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory) -> tuple[dict, Path]:
    """The checks' report on JAX without TensorFlow, and the folder of its batches."""
    folder = tmp_path_factory.mktemp("py_loader")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    command = ["-c", WITHOUT_TENSORFLOW.format(script=str(CHECKS), folder=str(folder))]
    process = subprocess.run([sys.executable, *command], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, f"loader checks failed:\n{process.stderr[-4000:]}"
    report = json.loads(process.stdout.strip().splitlines()[-1])
    assert "error" not in report, report["error"]
    return report, folder


def test_without_tensorflow_train_gets_the_pydataset_loader(jax_run):
    """On the GPU machine, train() would fail importing TensorFlow, or quietly pull it in."""
    report, _ = jax_run
    assert report["backend"] == "jax"
    assert not report["tensorflow_importable"] and not report["tensorflow_imported"]
    assert report["square_input"] == report["pad64_input"] == "TrainingBatches"


@pytest.mark.parametrize("mode", checks.MODES)
def test_batches_made_without_tensorflow_are_build_datasets_byte_for_byte(jax_run, mode):
    """A model trained on JAX would see other images, crops, flips or RPN targets than the
    same seed gives on TensorFlow: results could not be compared across backends."""
    _, folder = jax_run
    saved = np.load(folder / f"loader_{mode}.npz")
    dataset, config, augmentation = checks.make_inputs(mode)
    data = build_dataset(dataset, config, shuffle=False, augmentation=augmentation,
                         seed=checks.SEED)
    expected = list(data.take(checks.STEPS).as_numpy_iterator())
    assert sorted(saved.files) == sorted(f"{i}/{key}" for i in range(checks.STEPS)
                                         for key in expected[0])
    for i, batch in enumerate(expected):
        for key, value in batch.items():
            got = saved[f"{i}/{key}"]
            assert (got.dtype, got.shape) == (value.dtype, value.shape), (i, key)
            assert got.tobytes() == value.tobytes(), (i, key)


def test_keras_on_jax_iterates_the_loader_in_order_with_worker_threads(jax_run):
    """Keras's threads could reorder batches, or fit could stop after an epoch (an endless
    PyDataset resumes where the last epoch stopped)."""
    report, _ = jax_run
    assert report["predicted_image_ids"] == report["expected_image_ids"]
    assert report["max_mean_difference"] < 1e-3
    assert len(report["fit_losses"]) == 2
    assert all(math.isfinite(loss) for loss in report["fit_losses"])
