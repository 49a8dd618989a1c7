"""A saved U-Net reloads in a fresh process as the README says; a bad file is a typed error."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import unet
from unet import DiceScore, build_unet, get_loss, set_input_normalization
from unet.cli import main

REPO = Path(__file__).resolve().parents[2]
# Run in a new interpreter, so nothing this test process registered helps. Plain Keras first:
# ``import unet`` comes before Keras loads, so registering must wait for Keras (an import hook).
RELOAD = (
    "import sys\nimport numpy as np\npath, x, expected = sys.argv[1:]\n"
    "import unet\nimport keras\n"
    "for model in (keras.models.load_model(path), unet.load_model(path)):\n"
    "    assert type(model.loss).__name__ == 'CombinedLoss', model.loss\n"
    "    difference = np.abs(model.predict(np.load(x), verbose=0) - np.load(expected)).max()\n"
    "    print('max difference', difference)\n"
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(model file, input .npy, prediction .npy): a compiled attention U-Net with its custom
    normalization layer, loss and metric, and its prediction before saving."""
    root = tmp_path_factory.mktemp("saved_unet")
    model = build_unet("attention", input_shape=(32, 32, 3), depth=2, base_filters=4)
    set_input_normalization(model, [120.0, 110.0, 100.0], [50.0, 55.0, 60.0])
    model.compile("adam", loss=get_loss("bce_dice"), metrics=[DiceScore()])
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.save(root / "x.npy", x)
    np.save(root / "y.npy", model.predict(x, verbose=0))
    model.save(root / "u.keras")
    return root / "u.keras", root / "x.npy", root / "y.npy"


def test_saved_unet_reloads_in_a_fresh_process(saved):
    """The README's reload lines, ``import unet`` then ``keras.models.load_model`` or
    ``unet.load_model``, must work in a user's new script (they failed with "could not be
    deserialized" when the import registered nothing) and predict what the model did."""
    result = subprocess.run([sys.executable, "-c", RELOAD, *map(str, saved)], cwd=REPO,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    differences = [float(line.split()[-1]) for line in result.stdout.splitlines()
                   if line.startswith("max difference")]
    assert len(differences) == 2 and max(differences) < 1e-5, result.stdout


def _truncated(path: Path, target: Path) -> Path:
    target.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return target


@pytest.mark.parametrize("kind", ["missing", "truncated", "not a zip", "weights only"])
def test_bad_model_file_is_a_typed_error_naming_it(saved, tmp_path, kind):
    """A broken download or a wrong file must say which file and why, not raise zipfile's or
    h5py's error from deep inside Keras."""
    path = {"missing": lambda: tmp_path / "absent.keras",
            "truncated": lambda: _truncated(saved[0], tmp_path / "half.keras"),
            "not a zip": lambda: _write(tmp_path / "photo.keras", b"\x89PNG\r\n\x1a\n" * 8),
            "weights only": lambda: _write(tmp_path / "u.weights.h5", b"\x89HDF\r\n")}[kind]()
    with pytest.raises(unet.ModelFileError, match=str(path)):
        unet.load_model(path)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_cli_reports_a_truncated_model_in_one_line(saved, tmp_path, capsys):
    """``evaluate --weights half.keras`` exits 2 with the file's name, not a traceback."""
    path = _truncated(saved[0], tmp_path / "half.keras")
    (tmp_path / "people" / "images").mkdir(parents=True)
    (tmp_path / "people" / "masks").mkdir()
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "people" / "images" / "a.png")
    Image.new("L", (32, 32)).save(tmp_path / "people" / "masks" / "a.png")
    assert main(["evaluate", "--dataset", str(tmp_path / "people"), "--logs", str(tmp_path),
                 "--weights", str(path)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and str(path) in error[0] and "truncated" in error[0]
