"""Quiet command lines: TensorFlow's C++ start-up INFO/WARNING lines hidden, errors kept."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator

# Lines of TensorFlow's C++ logging ("I0000 00:00:... port.cc:153] oneDNN custom operations are
# on ...") and absl's banner before them, by the lowest TF_CPP_MIN_LOG_LEVEL that hides them.
_HIDDEN_FROM_LEVEL = (
    (1, re.compile(r"I\d{4} ")),
    (1, re.compile(r"WARNING: All log messages before absl::InitializeLog\(\) is called")),
    # The second line of cpu_feature_guard's INFO message.
    (1, re.compile(r"To enable the following instructions: .*rebuild TensorFlow with")),
    (2, re.compile(r"W\d{4} ")),
)


def quiet_tensorflow(verbose: bool = False) -> None:
    """Hide TensorFlow's C++ INFO/WARNING lines; call before TensorFlow is first imported.

    Sets ``TF_CPP_MIN_LOG_LEVEL=2`` (errors still print) unless the user set it or ``verbose``.
    Level 2, not 1: grappler's cost model logs a WARNING per CropAndResize (ROIAlign) op because
    the number of boxes per pyramid level is only known at run time; it is harmless.
    TensorFlow 2.21 prints its start-up lines before absl's logging reads that level, on some
    CPUs only (oneDNN's notice), so the import itself runs with those lines filtered out of
    stderr; every other line it writes is passed on once the import is done.
    """
    if verbose:
        return
    level = int(os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2") or 0)
    if level >= 1 and "tensorflow" not in sys.modules and \
            not any(isinstance(f, _FilteredTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _FilteredTensorFlowImport(level))


class _FilteredTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, as the other finders would, and runs its import filtered."""

    def __init__(self, level: int) -> None:
        self.level = level

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _FilteredLoader(spec.loader, self.level)
        return spec


class _FilteredLoader(importlib.abc.Loader):
    """The real loader, its ``exec_module`` run with stderr filtered."""

    def __init__(self, loader: importlib.abc.Loader, level: int) -> None:
        self.loader = loader
        self.level = level

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        with _stderr_filtered(self.level):
            self.loader.exec_module(module)

    def __getattr__(self, name: str):  # resource readers and the like: the real loader's
        return getattr(self.loader, name)


@contextlib.contextmanager
def _stderr_filtered(level: int) -> Iterator[None]:
    """Send file descriptor 2 to a temporary file, then replay it without the hidden lines."""
    with tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        original = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(original, 2)
            os.close(original)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True):
                if not any(level >= lowest and pattern.match(line)
                           for lowest, pattern in _HIDDEN_FROM_LEVEL):
                    sys.stderr.write(line)
            sys.stderr.flush()
