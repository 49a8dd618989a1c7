"""A saved localizer reloads in a fresh process as the README says; a bad file is a typed error."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import localization
from localization.cli import main

REPO = Path(__file__).resolve().parents[2]
# Run in a new interpreter, so nothing this test process registered helps. Plain Keras first:
# ``import localization`` comes before Keras loads, so registering must wait for it (a hook).
RELOAD = (
    "import sys\nimport numpy as np\npath, x, expected = sys.argv[1:]\n"
    "import localization\nimport keras\n"
    "for model in (keras.models.load_model(path), localization.load_model(path)):\n"
    "    assert type(model.optimizer).__name__ == 'HeadGroupAdamW', model.optimizer\n"
    "    assert model.compiled, 'the losses were not restored'\n"
    "    before, after = np.load(expected), model.predict(np.load(x), verbose=0)\n"
    "    print('max difference', max(np.abs(after[k] - before[k]).max() for k in before))\n"
)


@pytest.fixture(scope="module")
def saved(tiny_model, tmp_path_factory):
    """(model file, input .npy, predictions .npz): the compiled tiny localizer (custom box-corner
    layer, losses, IoU metric, per-head AdamW) and its predictions before saving."""
    root = tmp_path_factory.mktemp("saved_localizer")
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.save(root / "x.npy", x)
    np.savez(root / "y.npz", **tiny_model.predict(x, verbose=0))
    tiny_model.save(root / "localizer.keras")
    return root / "localizer.keras", root / "x.npy", root / "y.npz"


def test_saved_localizer_reloads_in_a_fresh_process(saved):
    """The README's reload lines, ``import localization`` then ``keras.models.load_model`` or
    ``localization.load_model``, must work in a user's new script (the import registered nothing
    before) and predict the same boxes and class scores."""
    result = subprocess.run([sys.executable, "-c", RELOAD, *map(str, saved)], cwd=REPO,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    differences = [float(line.split()[-1]) for line in result.stdout.splitlines()
                   if line.startswith("max difference")]
    assert len(differences) == 2 and max(differences) < 1e-5, result.stdout


@pytest.mark.parametrize("kind", ["missing", "truncated", "not a zip"])
def test_bad_model_file_is_a_typed_error_naming_it(saved, tmp_path, kind):
    """A broken download or a wrong file must say which file and why."""
    path = tmp_path / f"{kind.replace(' ', '_')}.keras"
    if kind == "truncated":
        path.write_bytes(saved[0].read_bytes()[: saved[0].stat().st_size // 2])
    elif kind == "not a zip":
        path.write_text("filename,xmin,ymin,xmax,ymax,class\n")
    with pytest.raises(localization.ModelFileError, match=str(path)):
        localization.load_model(path)


def test_cli_reports_a_truncated_model_in_one_line(saved, synthetic_dataset, tmp_path, capsys):
    """``evaluate --weights half.keras`` exits 2 naming the file, not with a traceback."""
    path = tmp_path / "half.keras"
    path.write_bytes(saved[0].read_bytes()[: saved[0].stat().st_size // 2])
    path.with_suffix(".json").write_text('{"class_names": ["disk", "square"]}')
    assert main(["evaluate", "--dataset", str(synthetic_dataset), "--weights", str(path)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and str(path) in error[0] and "truncated" in error[0]
