"""Training input on the GPU machine's setup (issue 17 item 2): JAX with TensorFlow absent.

``py_loader_checks.py`` runs in a ``KERAS_BACKEND=jax`` subprocess with TensorFlow blocked: the
input ``MaskRCNN.train()`` makes there must be the ``PyDataset`` loader, its batches must be
``build_dataset``'s byte for byte (this process builds those with TensorFlow), and Keras must
iterate it with worker threads (``predict``, and ``fit`` over two epochs).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from mrcnn.data.pipeline import build_dataset
from tests.backends.subprocess_runs import load_script, run_checks

CHECKS = Path(__file__).with_name("py_loader_checks.py")

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                                reason="jax is not installed (pip install -e '.[jax]')")

checks = load_script(CHECKS)


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory) -> tuple[dict, Path]:
    """The checks' report on JAX without TensorFlow, and the folder of its batches."""
    folder = tmp_path_factory.mktemp("py_loader")
    report = run_checks(CHECKS, [str(folder)], "jax", blocked=("tensorflow",), timeout=300)
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
