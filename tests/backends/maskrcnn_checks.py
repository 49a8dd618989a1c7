"""The tiny Mask R-CNN on whichever Keras backend this process runs: Matterport ``.h5`` weights
written on TensorFlow, loaded by name here, detect what they detected there.

``write_reference(folder)`` (TensorFlow) builds the tiny inference model, tempers its random
heads (so scores spread out instead of saturating at 1.0 and boxes keep a size), saves them as
``mask_rcnn.h5`` (Matterport's layout) and the ``detect()`` results of ``detect_all()`` (the
images of ``make_images()``, and the wide one in tiles) as ``detections.npz``.
``check_detections(folder)`` builds the same model on this backend, loads the ``.h5`` with
``by_name=True``, detects and reports the differences, whether TensorFlow could be imported
here, and what ``run_graph`` and ``export`` (TensorFlow only still) say when called here.
Run as a script it prints that report as one JSON line (``{"error": traceback}`` when a step
failed)::

    KERAS_BACKEND=jax python tests/backends/maskrcnn_checks.py FOLDER
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
import traceback
from pathlib import Path

import keras
import numpy as np

# How much each randomly initialized output layer is scaled down: class logits near +-1 give
# probabilities that differ (no ties at 1.0), small deltas keep boxes near their anchors.
TEMPER = {"mrcnn_class_logits": 0.1, "mrcnn_bbox_fc": 0.1, "rpn_class_raw": 0.05,
          "rpn_bbox_pred": 0.1}
MIN_CONFIDENCE = 0.35
IMAGE_NAMES = ("square", "wide", "blank")
# detect_all()'s results: each image, and the wide one in tiles of TILE_SIZE px.
TILE_SIZE = 32
DETECTION_NAMES = (*IMAGE_NAMES, "wide_tiled")


def build_model():
    """The library's tiny inference model (pad64: the wide image molds to 64 x 192)."""
    from mrcnn import model as modellib
    from mrcnn.config import tiny_config

    keras.utils.set_random_seed(0)
    config = tiny_config(num_classes=4, name="backends", IMAGE_RESIZE_MODE="pad64",
                         DETECTION_MIN_CONFIDENCE=MIN_CONFIDENCE)
    return modellib.MaskRCNN("inference", config, tempfile.mkdtemp())


def make_images() -> list[np.ndarray]:
    """A 64 px square and a 48 x 100 image of coloured shapes, and a blank grey one."""
    from mrcnn.data.datasets.shapes import draw_shape, random_image

    rng = np.random.default_rng(3)
    images = []
    for height, width in ((64, 64), (48, 100)):
        background, shapes = random_image(rng, height, width)
        image = np.full((height, width, 3), background, np.uint8)
        for shape, color, dims in shapes:
            image = draw_shape(image, shape, dims, color)
        images.append(image)
    return [*images, np.full((64, 64, 3), 128, np.uint8)]


def detect_all(model) -> dict[str, dict]:
    """``detect()`` of each of ``make_images()`` and of the wide one in tiles, by name."""
    images = make_images()
    results = dict(zip(IMAGE_NAMES, model.detect(images), strict=True))
    results["wide_tiled"] = model.detect([images[1]], tile_size=TILE_SIZE)[0]
    return results


def _temper(model) -> None:
    for name, factor in TEMPER.items():
        layer = model.keras_model.get_layer(name)
        layer.set_weights([w * factor for w in layer.get_weights()])


def write_reference(folder: Path) -> dict[str, dict]:
    """Writes ``mask_rcnn.h5`` and ``detections.npz``; returns the detections."""
    model = build_model()
    _temper(model)
    model.save_weights(folder / "mask_rcnn.h5")
    results = detect_all(model)
    np.savez(folder / "detections.npz",
             **{f"{name}/{key}": np.asarray(value) for name, result in results.items()
                for key, value in result.items()})
    return results


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def compare(expected: dict, found: dict) -> dict:
    """One image's detections against the reference: counts, class ids and the largest
    differences of boxes (px), scores and masks (lowest IoU)."""
    report = {"expected": len(expected["class_ids"]), "found": len(found["class_ids"])}
    if report["expected"] != report["found"]:
        return report
    report["class_ids_equal"] = bool(np.array_equal(expected["class_ids"], found["class_ids"]))
    report["box_difference"] = int(np.abs(expected["rois"] - found["rois"]).max(initial=0))
    report["score_difference"] = float(np.abs(expected["scores"] - found["scores"]).max(initial=0))
    report["mask_iou"] = min([_mask_iou(expected["masks"][..., i], found["masks"][..., i])
                              for i in range(report["found"])], default=1.0)
    return report


def check_detections(folder: Path) -> dict:
    """Loads the reference ``.h5`` on this backend, detects, compares: the report."""
    model = build_model()
    loaded = model.load_weights(folder / "mask_rcnn.h5", by_name=True)
    reference = np.load(folder / "detections.npz")
    results = detect_all(model)
    return {
        "backend": keras.backend.backend(),
        "tensorflow_importable": importlib.util.find_spec("tensorflow") is not None,
        "unused_layers": list(loaded.unused),
        "refusals": _refusals(model, folder),
        "images": {name: compare({key: reference[f"{name}/{key}"] for key in result}, result)
                   for name, result in results.items()},
    }


def _refusals(model, folder: Path) -> dict[str, str]:
    """The errors that the TensorFlow-only methods raise on this backend ("ran" if none)."""
    calls = {"run_graph": lambda: model.run_graph(make_images()[:1], [("ROI", "ROI")]),
             "export": lambda: model.export(folder / "exported", "saved_model")}
    refusals = {}
    for name, call in calls.items():
        try:
            call()
            refusals[name] = "ran"
        except ValueError as error:
            refusals[name] = str(error)
    return refusals


def main(argv: list[str]) -> None:
    try:
        report = check_detections(Path(argv[0]))
    except Exception:  # reported so the test shows this traceback
        report = {"error": traceback.format_exc()}
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
