"""The U-Net's and the localizer's command lines on whichever Keras backend this process runs,
as a user on the GPU machine (JAX, no TensorFlow) would call them: make data, ``train`` two
epochs, ``evaluate``; and which input class their data functions pick here. Run as a script it
prints one JSON line ``{"unet": report, "localization": report, ...}`` (``{"error":
traceback}`` when a step failed)::

    KERAS_BACKEND=jax python tests/backends/cli_checks.py FOLDER
"""

from __future__ import annotations

import importlib.util
import json
import sys
import traceback
from pathlib import Path

import keras
import numpy as np

# Tiny models, 2 epochs: each command line runs in seconds on 2 CPU cores.
UNET_TRAIN = ["--epochs", "2", "--set", "IMAGE_SIZE=32", "--set", "DEPTH=2",
              "--set", "BASE_FILTERS=4", "--set", "BATCH_SIZE=4"]
LOCALIZER_TRAIN = ["--preset", "tiny", "--epochs", "2"]


def run_unet(folder: Path) -> dict:
    """person_segmentation.py make-synthetic, train and evaluate."""
    from unet.cli import main

    data, logs = folder / "people", folder / "unet_logs"
    codes = [main(["make-synthetic", "--out", str(data), "--count", "10", "--size", "48"]),
             main(["train", "--dataset", str(data), "--logs", str(logs), *UNET_TRAIN]),
             main(["evaluate", "--dataset", str(data), "--logs", str(logs), "--out",
                   str(folder / "unet_metrics.json")])]
    return _report(codes, logs, folder / "unet_metrics.json")


def run_localization(folder: Path) -> dict:
    """face_mask.py train and evaluate on a synthetic CSV dataset."""
    from localization.cli import main
    from localization.synthetic import write_synthetic_dataset

    data, logs = folder / "faces", folder / "localizer_logs"
    write_synthetic_dataset(data, count=24, size=(64, 48), seed=3)
    codes = [main(["train", "--dataset", str(data), "--logs", str(logs), *LOCALIZER_TRAIN]),
             main(["evaluate", "--dataset", str(data), "--logs", str(logs), "--preset", "tiny",
                   "--out", str(folder / "localizer_metrics.json")])]
    return _report(codes, logs, folder / "localizer_metrics.json")


def _report(codes: list[int], logs: Path, metrics: Path) -> dict:
    history = (logs / "history.csv").read_text().splitlines() if logs.is_dir() else []
    return {"exit_codes": codes,
            "files": sorted(path.name for path in logs.iterdir()) if logs.is_dir() else [],
            "epochs_recorded": max(len(history) - 1, 0),
            "metrics": json.loads(metrics.read_text()) if metrics.is_file() else None}


def input_classes() -> dict:
    """The class of what ``make_dataset`` / ``build_dataset`` return with the default
    pipeline, and the shapes of their first batch."""
    from localization.data import build_dataset
    from unet.data import SegmentationSample
    from unet.pipeline import make_dataset

    images = np.zeros((3, 8, 8, 3), np.uint8)
    localizer = build_dataset(images, np.full((3, 4), 0.5, np.float32), np.zeros(3, np.int32), 2)
    segmentation = make_dataset([SegmentationSample("a", "a.png", "a_mask.png")], (8, 8), 2)
    return {"localization_input": type(localizer).__name__,
            "unet_input": type(segmentation).__name__}


def main(argv: list[str]) -> int:
    folder = Path(argv[0])
    report: dict = {"backend": keras.backend.backend(),
                    "tensorflow_importable": importlib.util.find_spec("tensorflow") is not None}
    try:
        report.update(input_classes())
        report["unet"] = run_unet(folder)
        report["localization"] = run_localization(folder)
        report["tensorflow_imported"] = "tensorflow" in sys.modules
    except Exception:  # reported to the test, which fails with the traceback
        report = {"error": traceback.format_exc()}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
