"""Fixtures shared by the backend checks."""

from __future__ import annotations

import pytest

from tests.backends.subprocess_runs import BACKENDS


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request) -> str:
    """A Keras backend besides TensorFlow that a checks subprocess runs on (skipped where its
    package is not installed)."""
    return request.param
