"""User errors in the three sample CLIs (Mask R-CNN shapes, face mask, person segmentation):
an invalid --set value or unknown key is rejected before any data is read, with exit status 2
and one line naming the field, the value and what is allowed (or the valid keys); no traceback.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from localization.cli import main as face_mask_main
from mrcnn.cli import main as mrcnn_main
from unet.cli import main as person_main

REPO = Path(__file__).resolve().parents[2]


def _shapes_spec():
    spec = importlib.util.spec_from_file_location("shapes_sample", REPO / "samples" / "shapes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SPEC


def run_shapes(argv):
    return mrcnn_main(_shapes_spec(), argv)


# Each CLI is pointed at a dataset that does not exist: a message about the setting proves the
# setting was checked first.
CLIS = {
    "shapes": (run_shapes, ["train", "--weights", "none"]),
    "face_mask": (face_mask_main, ["train", "--dataset", "/nonexistent/faces"]),
    "person_segmentation": (person_main, ["train", "--dataset", "/nonexistent/people"]),
}

BAD_VALUES = [
    ("shapes", "LEARNING_RATE", "-1"), ("shapes", "IMAGES_PER_GPU", "0"),
    ("shapes", "BACKBONE", "'resnet7'"), ("shapes", "IMAGE_RESIZE_MODE", "'stretch'"),
    ("face_mask", "BATCH_SIZE", "0"), ("face_mask", "BACKBONE", "'vgg'"),
    ("face_mask", "ALPHA", "7"), ("face_mask", "INPUT_SIZE", "-3"),
    ("face_mask", "COORDINATES", "'inches'"),
    ("person_segmentation", "BATCH_SIZE", "0"), ("person_segmentation", "ARCH", "'segnet'"),
    ("person_segmentation", "IMAGE_SIZE", "-3"), ("person_segmentation", "LEARNING_RATE", "'abc'"),
    ("person_segmentation", "THRESHOLD", "1.5"),
]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


@pytest.mark.parametrize(("cli", "field", "value"), BAD_VALUES)
def test_invalid_setting_exits_2_naming_field_value_and_rule(cli, field, value, tmp_path,
                                                             capsys):
    run, argv = CLIS[cli]
    status = run([*argv, "--logs", str(tmp_path), "--set", f"{field}={value}"])
    line = _one_line_error(capsys)
    assert status == 2
    assert field in line and value.strip("'") in line and "expected" in line, line


@pytest.mark.parametrize("cli", list(CLIS))
def test_unknown_setting_lists_the_valid_ones(cli, tmp_path, capsys):
    run, argv = CLIS[cli]
    status = run([*argv, "--logs", str(tmp_path), "--set", "LEARNIGN_RATE=0.1"])
    line = _one_line_error(capsys)
    assert status == 2 and "LEARNIGN_RATE" in line, line
    assert "BATCH_SIZE" in line or "IMAGES_PER_GPU" in line, line  # the valid keys are listed


@pytest.mark.parametrize("cli", list(CLIS))
def test_set_without_equals_sign_is_a_one_line_error(cli, tmp_path, capsys):
    run, argv = CLIS[cli]
    assert run([*argv, "--logs", str(tmp_path), "--set", "BATCH_SIZE"]) == 2
    assert "KEY=VALUE" in _one_line_error(capsys)


def test_real_process_exits_2_with_one_stderr_line_and_no_traceback(tmp_path):
    """As a shell user sees it (once, in a real process; the rest run in-process for speed)."""
    command = [sys.executable, str(REPO / "samples" / "shapes.py"), "train", "--logs", str(tmp_path),
               "--dataset", str(tmp_path / "missing"), "--set", "NO_SUCH_FIELD=1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin",
                                 "PYTHONPATH": str(REPO)})
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert "NO_SUCH_FIELD" in result.stderr
