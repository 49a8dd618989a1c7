"""The localizer learns a clearly separable generated task (benchmarks/localization_synthetic.py)."""

import importlib.util
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "localization_synthetic.py"


@pytest.mark.slow
def test_learns_generated_disks_vs_squares_to_iou_07_and_accuracy_09():
    """If this fails, a user training on easy data would get boxes or classes that are off."""
    spec = importlib.util.spec_from_file_location("localization_synthetic", BENCHMARK)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    metrics = benchmark.run(images=960, epochs=60, size=64)["val"]
    assert metrics["mean_iou"] > 0.7
    assert metrics["accuracy"] > 0.9
