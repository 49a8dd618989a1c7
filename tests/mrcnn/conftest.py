"""Shared fixtures for the Mask R-CNN tests: one tiny model build per session."""

import pytest

from mrcnn.config import tiny_config


@pytest.fixture(scope="session")
def tiny_cfg():
    """The library's tiny preset (64 px images, narrow layers): builds in seconds."""
    return tiny_config(num_classes=4, name="tiny")


@pytest.fixture(scope="session")
def tiny_inference_model(tiny_cfg, tmp_path_factory):
    """A randomly initialized inference model (do not train it: other tests share it)."""
    from mrcnn import model as modellib

    return modellib.MaskRCNN("inference", tiny_cfg, tmp_path_factory.mktemp("logs"))
