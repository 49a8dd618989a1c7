"""U-Net and localizer exports side by side: file size, latency and agreement with predict.

Builds the default-size models (U-Net "improved", 256 px, depth 4, 16 filters; small-CNN
localizer, 256 px), untrained (seed 0), exports each to SavedModel, LiteRT (float and
dynamic-range int8, fixed to the image size) and ONNX, and runs one 480x640 image through our
Python predict and every runtime on 2 threads. Agreement: U-Net max |probability difference| and,
for int8, the Dice of float vs int8 masks thresholded at the float map's median (the net is
untrained, so 0.5 would give an empty mask); localizer max box difference in pixels and whether
the class agrees. Prints a table and writes ``benchmarks/results/export_unet_localizer.json``.

    python benchmarks/export_unet_localizer.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import onnxruntime as ort
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

from localization.export import export_localizer
from localization.inference import predict_images
from localization.model import build_localizer
from unet.export import export_model
from unet.inference import predict_probability
from unet.models import build_unet

RESULTS = Path(__file__).resolve().parent / "results" / "export_unet_localizer.json"
THREADS = 2
IMAGE_HW = (480, 640)
FORMATS = (("saved_model", "saved_model", {}), ("tflite", "model.tflite", {"size": IMAGE_HW}),
           ("tflite_int8", "int8.tflite", {"size": IMAGE_HW, "quantize": True}),
           ("onnx", "model.onnx", {}))


def _latency_ms(function, repeats: int) -> float:
    function()  # warm-up: tracing, allocation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return round(1000 * float(np.median(times)), 1)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() \
        else path.stat().st_size


def _runners(folder: Path, export, model) -> dict:
    """Exports ``model`` in every format; returns name -> (callable(image) -> dict, size, s)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = THREADS, 1
    runners = {}
    for name, file_name, kwargs in FORMATS:
        fmt = "tflite" if name.startswith("tflite") else name
        start = time.perf_counter()
        path = export(model, folder / file_name, fmt, **kwargs)
        seconds = round(time.perf_counter() - start, 1)
        if fmt == "saved_model":
            signature = tf.saved_model.load(str(path)).signatures["serving_default"]
            run = lambda image, f=signature: {k: v.numpy() for k, v in f(image=image).items()}  # noqa: E731
        elif fmt == "tflite":
            run = Interpreter(model_path=str(path), num_threads=THREADS).get_signature_runner()
            run = lambda image, f=run: f(image=image)  # noqa: E731
        else:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            names = [output.name for output in session.get_outputs()]
            run = lambda image, s=session, n=names: dict(zip(n, s.run(None, {"image": image}),  # noqa: E731
                                                            strict=True))
        runners[name] = (run, _size(path), seconds)
    return runners


def bench_unet(folder: Path, image: np.ndarray, repeats: int) -> dict:
    keras.utils.set_random_seed(0)
    model = build_unet("improved", (256, 256, 3), depth=4, base_filters=16)
    reference = predict_probability(model, image)
    threshold = float(np.median(reference))
    rows = {"predict": {"latency_ms": _latency_ms(lambda: predict_probability(model, image),
                                                  repeats)}}
    runners = _runners(folder, export_model, model)
    dense = runners["tflite"][0](image)["probability"] > threshold
    for name, (run, size, seconds) in runners.items():
        probability = run(image)["probability"]
        row = {"latency_ms": _latency_ms(lambda r=run: r(image), repeats), "bytes": size,
               "export_s": seconds, "max_abs_diff": float(np.abs(probability - reference).max())}
        if name == "tflite_int8":
            mask = probability > threshold
            row["dice_vs_float"] = round(float(2 * (mask & dense).sum()
                                               / (mask.sum() + dense.sum())), 4)
        rows[name] = row
    return rows


def bench_localizer(folder: Path, image: np.ndarray, repeats: int) -> dict:
    keras.utils.set_random_seed(0)
    model = build_localizer(num_classes=2, input_shape=(256, 256, 3))
    path = folder / "image.png"
    Image.fromarray(image).save(path)
    (reference,) = predict_images(model, [path])
    rows = {"predict (reads the PNG)": {
        "latency_ms": _latency_ms(lambda: predict_images(model, [path]), repeats)}}
    for name, (run, size, seconds) in _runners(folder, export_localizer, model).items():
        outputs = run(image)
        rows[name] = {"latency_ms": _latency_ms(lambda r=run: r(image), repeats), "bytes": size,
                      "export_s": seconds,
                      "max_box_px_diff": float(np.abs(outputs["box"] - reference.pixel_box).max()),
                      "same_class": int(outputs["class_id"]) == reference.class_index}
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(THREADS)
    image = np.random.default_rng(0).integers(0, 256, (*IMAGE_HW, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as unet_dir, tempfile.TemporaryDirectory() as loc_dir:
        results = {"unet": bench_unet(Path(unet_dir), image, args.repeats),
                   "localizer": bench_localizer(Path(loc_dir), image, args.repeats)}
    for family, rows in results.items():
        print(f"\n{family} (480x640 input, {THREADS} threads)")
        for name, row in rows.items():
            cells = "  ".join(f"{key}={value}" for key, value in row.items())
            print(f"  {name:<24} {cells}")
    results["machine"] = {"python": platform.python_version(), "tensorflow": tf.__version__,
                          "onnxruntime": ort.__version__, "processor": platform.machine()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
