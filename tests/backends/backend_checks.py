"""The U-Net and localizer on whichever Keras backend this process runs: build, train, predict,
save and reload, and predictions from weights another backend wrote.

``write_reference(package, folder)`` (any backend) writes ``PACKAGE.weights.h5`` and the
predictions ``PACKAGE.npy`` on ``make_data``'s images. ``check_package(package, folder)`` builds
the same tiny model, loads those weights, compares predictions, trains 3 steps through the
package's ``tf.data`` pipeline, predicts, saves a ``.keras`` file and reloads it (optimizer
included). Run as a script, it checks
every package named and prints one JSON line ``{package: report}`` (a failed package reports
``{"error": traceback}``)::

    KERAS_BACKEND=jax python tests/backends/backend_checks.py FOLDER unet localization
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import cv2
import keras
import numpy as np

PACKAGES = ("unet", "localization")
SIZE = 32  # image side: every tiny model builds and trains in seconds on 2 CPU cores
IMAGES = 8


def build_model(package: str) -> keras.Model:
    """The package's tiny model, compiled with its own losses, metrics and optimizer."""
    keras.utils.set_random_seed(0)
    if package == "unet":
        from unet.models import build_unet
        from unet.training import compile_model

        return compile_model(build_unet("attention", (SIZE, SIZE, 3), depth=1, base_filters=8,
                                        dropout=0.0))
    from localization.model import TINY_PRESET, build_localizer
    from localization.training import compile_localizer

    return compile_localizer(build_localizer(**TINY_PRESET))


def make_data(package: str) -> tuple[np.ndarray, object]:
    """``IMAGES`` float32 images ``[N, SIZE, SIZE, 3]`` (0..255) and their targets."""
    rng = np.random.default_rng(0)
    if package == "unet":
        from unet.synthetic import make_synthetic_people

        images, masks = make_synthetic_people(IMAGES, SIZE)
        return images.astype(np.float32), masks[..., None].astype(np.float32)
    from localization.synthetic import SYNTHETIC_CLASSES, draw_synthetic_sample

    samples = [draw_synthetic_sample(rng, SIZE, SIZE) for _ in range(IMAGES)]
    boxes = np.array([box for _, box, _ in samples], np.float32) / SIZE
    classes = np.array([SYNTHETIC_CLASSES.index(name) for *_, name in samples], np.int32)
    return np.stack([image for image, *_ in samples]).astype(np.float32), (boxes, classes)


def _predict(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """Predictions as one float32 array (the localizer's box and class logits side by side)."""
    output = model.predict_on_batch(images)
    if isinstance(output, dict):
        return np.concatenate([np.asarray(output["box"]), np.asarray(output["class"])], axis=-1)
    return np.asarray(output)


def write_reference(package: str, folder: Path) -> None:
    """Weights of a freshly built model and its predictions on ``make_data``'s images."""
    model = build_model(package)
    images, _ = make_data(package)
    model.save_weights(folder / f"{package}.weights.h5")
    np.save(folder / f"{package}.npy", _predict(model, images))


def _training_data(package: str, images: np.ndarray, targets, folder: Path):
    """Endless 4-image batches from the package's own ``tf.data`` input pipeline."""
    if package == "localization":
        from localization.data import build_dataset

        return build_dataset(images.astype(np.uint8), *targets, batch_size=4, repeat=True)
    from unet.data import SegmentationSample
    from unet.pipeline import make_dataset

    folder.mkdir(exist_ok=True)
    samples = []
    for index, (image, mask) in enumerate(zip(images, targets, strict=True)):
        image_path, mask_path = folder / f"image{index}.png", folder / f"mask{index}.png"
        cv2.imwrite(str(image_path), image[..., ::-1].astype(np.uint8))
        cv2.imwrite(str(mask_path), (mask[..., 0] * 255).astype(np.uint8))
        samples.append(SegmentationSample(f"image{index}", str(image_path), str(mask_path)))
    return make_dataset(samples, (SIZE, SIZE), batch_size=4, repeat=True)


def _save_and_reload(package: str, model: keras.Model, path: Path) -> keras.Model:
    """Writes ``model`` as a user would and reads it back with its optimizer state."""
    if package == "unet":
        from unet.saving import load_model

        model.save(path)
        return load_model(path)
    from localization.training import load_localizer, save_localizer

    save_localizer(model, path, ["disk", "square"])
    return load_localizer(path, compile=True)[0]


def check_package(package: str, folder: Path) -> dict:
    """Runs every check on this process's backend; returns numbers for the tests to judge."""
    backend = keras.backend.backend()
    images, targets = make_data(package)
    model = build_model(package)
    model.load_weights(folder / f"{package}.weights.h5")
    before = _predict(model, images)
    data = _training_data(package, images, targets, folder / f"{package}-{backend}")
    history = model.fit(data, epochs=3, steps_per_epoch=1, shuffle=False, verbose=0).history
    after = _predict(model, images)
    reloaded = _save_and_reload(package, model, folder / f"{package}-{backend}.keras")
    report = {
        "backend": backend,
        "reference_difference": float(np.abs(before - np.load(folder / f"{package}.npy")).max()),
        "losses": [float(value) for value in history["loss"]],
        "training_change": float(np.abs(after - before).max()),
        "prediction_shape": list(after.shape),
        "reload_difference": float(np.abs(_predict(reloaded, images) - after).max()),
        "reloaded_optimizer_steps": int(keras.ops.convert_to_numpy(reloaded.optimizer.iterations)),
    }
    if package == "unet":
        from unet.inference import predict_probability

        report["probability_shape"] = list(predict_probability(model, images[0][:24]).shape)
    if backend != "tensorflow":
        report["export_refusal"] = _export_refusal(package, model, folder / f"{package}.onnx")
    return report


def _export_refusal(package: str, model: keras.Model, path: Path) -> str:
    """The error the package's ONNX exporter raises on this (non-TensorFlow) backend."""
    if package == "unet":
        from unet.export import export_model
    else:
        from localization.export import export_localizer as export_model
    try:
        export_model(model, path, "onnx")
    except ValueError as error:
        return str(error)
    return "exported"


def main(argv: list[str]) -> None:
    folder, packages = Path(argv[0]), argv[1:]
    reports = {}
    for package in packages:
        try:
            reports[package] = check_package(package, folder)
        except Exception:  # reported per package so the tests show this traceback
            reports[package] = {"error": traceback.format_exc()}
    print(json.dumps(reports))


if __name__ == "__main__":
    main(sys.argv[1:])
