"""Shared fixtures: one tiny compiled localizer and one generated dataset per test session."""

import numpy as np
import pytest

from localization import TINY_PRESET, build_localizer, compile_localizer
from localization.synthetic import write_synthetic_dataset


@pytest.fixture(scope="session")
def tiny_model():
    """Tiny small-CNN localizer (32 px, 2 classes), compiled with class weights, trained 0 steps."""
    model = build_localizer(num_classes=2, **TINY_PRESET)
    return compile_localizer(model, class_weights=(0.35, 0.65), jit_compile=False)


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory):
    """A 24-image generated dataset (64x48 px PNGs + train.csv with a header)."""
    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_dataset(root, count=24, size=(64, 48), seed=3)
    return root


@pytest.fixture()
def batch():
    """Eight random 32 px images with targets, as model inputs."""
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(8, 32, 32, 3)).astype("float32")
    corners = rng.uniform(0, 1, size=(8, 2, 2))
    boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
    return images, {"box": boxes.astype("float32"), "class": np.array([0, 1] * 4)}
