"""vision_common.tensorflow_logs: the CLIs hide TensorFlow's C++ start-up lines, keep the rest.

TensorFlow 2.21 prints "I0000 ... port.cc:153] oneDNN custom operations are on" on some CPUs
whatever TF_CPP_MIN_LOG_LEVEL says. A stand-in ``tensorflow`` package writes such lines to file
descriptor 2 on import (as its C++ code does), in a fresh interpreter, so the filter is checked
on every machine, also where the real TensorFlow stays silent.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINES = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
         "I0000 00:00:1796291496.107763    8210 port.cc:153] oneDNN custom operations are on.\n"
         "I0000 00:00:1796291496.1 cpu_feature_guard.cc:227] This TensorFlow binary is optimized.\n"
         "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow "
         "with the appropriate compiler flags.\n"
         "W0000 00:00:1796291496.1 cost_model.cc:12] a harmless grappler warning\n"
         "E0000 00:00:1796291496.2 kernel.cc:9] a real error\n"
         "a Python warning printed during the import\n")


def _import_fake_tensorflow(tmp_path: Path, setup: str, level: str | None) -> str:
    package = tmp_path / "tensorflow"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text(f"import os\nos.write(2, {LINES.encode()!r})\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(REPO)])
    code = f"{setup}\nimport sys\nimport tensorflow\nprint('after import', file=sys.stderr)\n"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stderr


QUIET = "from vision_common.tensorflow_logs import quiet_tensorflow\nquiet_tensorflow()"


@pytest.mark.parametrize("setup", [QUIET, f"import unet, localization\n{QUIET}"],
                         ids=["alone", "beside the packages' post-import hooks"])
def test_start_up_info_and_warnings_are_hidden_errors_and_other_output_kept(tmp_path, setup):
    """A user's first command would open on TensorFlow's C++ noise, or lose a real error."""
    stderr = _import_fake_tensorflow(tmp_path, setup, level=None)
    assert stderr == ("E0000 00:00:1796291496.2 kernel.cc:9] a real error\n"
                      "a Python warning printed during the import\nafter import\n")


def test_verbose_and_a_users_own_level_are_respected(tmp_path):
    """--verbose shows everything; a user's TF_CPP_MIN_LOG_LEVEL=1 still shows warnings."""
    verbose = _import_fake_tensorflow(
        tmp_path, QUIET.replace("quiet_tensorflow()", "quiet_tensorflow(verbose=True)"), None)
    assert verbose == LINES + "after import\n"
    level_1 = _import_fake_tensorflow(tmp_path, QUIET, level="1")
    assert "W0000" in level_1 and "I0000" not in level_1 and "absl::InitializeLog" not in level_1
