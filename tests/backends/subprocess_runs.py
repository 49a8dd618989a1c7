"""Running a checks script on a Keras backend in a subprocess, with packages blocked where asked
(TensorFlow, as on the GPU machine: JAX and PyTorch, no TensorFlow).

Each checks script prints one JSON report as its last line (``{"error": traceback}`` when a
step failed); :func:`run_checks` returns it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
# XLA's CPU compiler at full optimization spends most of a tiny model's run compiling.
FAST_XLA = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
# Runs the script with the blocked top-level packages hidden from Python's path finder before
# anything imports: ``import name`` raises ModuleNotFoundError, importlib.util.find_spec says
# None, and the name never enters sys.modules, as where the package is not installed. (None in
# sys.modules would block the import too, but Keras reads "tensorflow" in sys.modules as
# "TensorFlow is loaded" and then imports it.)
BLOCKING = ("import importlib.machinery, runpy, sys\n"
            "class Hidden:\n"
            "    @staticmethod\n"
            "    def find_spec(name, path=None, target=None):\n"
            "        if name.partition('.')[0] not in {blocked!r}:\n"
            "            return importlib.machinery.PathFinder.find_spec(name, path, target)\n"
            "sys.meta_path = [Hidden if finder is importlib.machinery.PathFinder else finder\n"
            "                 for finder in sys.meta_path]\n"
            "sys.argv = {argv!r}\n"
            "runpy.run_path({script!r}, run_name='__main__')\n")

# The backends besides TensorFlow, each skipped where its package is not installed.
INSTALL = {"jax": "pip install -e '.[jax]'", "torch": "pip install torch"}
BACKENDS = [pytest.param(backend, marks=pytest.mark.skipif(
    importlib.util.find_spec(backend) is None,
    reason=f"{backend} is not installed ({INSTALL[backend]})")) for backend in INSTALL]


def load_script(path: Path) -> ModuleType:
    """A checks script as a module (it is not in a package), for its TensorFlow side."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_checks(script: Path, args: list[str], backend: str, blocked: tuple[str, ...] = (),
               timeout: int = 600) -> dict:
    """``script args`` on ``KERAS_BACKEND=backend`` (JAX on the CPU), the ``blocked`` packages
    unimportable (``("tensorflow",)``: the GPU machine): its report, after checking that it ran,
    reported no error and ran on ``backend``."""
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu",
           "TF_CPP_MIN_LOG_LEVEL": "2", "XLA_FLAGS": FAST_XLA}
    argv = [str(script), *args]
    command = (["-c", BLOCKING.format(blocked=list(blocked), argv=argv, script=str(script))]
               if blocked else argv)
    process = subprocess.run([sys.executable, *command], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=timeout)
    assert process.returncode == 0, f"{script.name} on {backend} failed:\n{process.stderr[-4000:]}"
    report = json.loads(process.stdout.strip().splitlines()[-1])
    assert "error" not in report, report["error"]
    assert report.get("backend", backend) == backend
    return report
