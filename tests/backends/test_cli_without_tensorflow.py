"""The U-Net and the localizer on the GPU machine's setup (issue 17 item 3): JAX or PyTorch
with TensorFlow absent. ``cli_checks.py`` runs their command lines there (train, evaluate), in a
subprocess on each installed backend with TensorFlow hidden from the import system.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backends.subprocess_runs import run_checks

CHECKS = Path(__file__).with_name("cli_checks.py")


@pytest.fixture(scope="module")
def report(tmp_path_factory, backend) -> dict:
    return run_checks(CHECKS, [str(tmp_path_factory.mktemp("cli"))], backend,
                      blocked=("tensorflow",), timeout=600)


def test_without_tensorflow_the_data_functions_give_pydatasets(report):
    """On the GPU machine ``make_dataset`` / ``build_dataset`` would fail importing
    TensorFlow (their ``tf.data`` pipelines), or TensorFlow would be pulled in after all."""
    assert not report["tensorflow_importable"] and not report["tensorflow_imported"]
    assert report["unet_input"] == "SegmentationBatches"
    assert report["localization_input"] == "LocalizationBatches"


@pytest.mark.parametrize("package", ["unet", "localization"])
def test_train_and_evaluate_run_and_write_their_files(report, package):
    """``train`` would stop (TensorBoard's writer, a tf.data pipeline) or write no model, and
    ``evaluate`` would not score it, on a machine with JAX and no TensorFlow."""
    result = report[package]
    assert result["exit_codes"] == [0] * len(result["exit_codes"]), result
    assert result["epochs_recorded"] == 2
    model_files = {"unet": {"best.keras", "last.keras"}, "localization": {"localizer.keras"}}
    assert model_files[package] <= set(result["files"]), result["files"]
    assert not any(name.startswith("tensorboard") for name in result["files"])
    assert result["metrics"], "evaluate wrote no metrics"
