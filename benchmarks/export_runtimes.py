"""Deployed Mask R-CNN R50-FPN at 1024 px on CPU: our runtimes against torchvision's ONNX.

    pip install -e ".[export]" torch==2.14.1 torchvision==0.29.1   # the peer: benchmark-only
    python benchmarks/export_runtimes.py [--repeats 5] [--threads 2] [--size 1024]

Side by side in one run, each case in its own subprocess (its own peak RSS), every runtime
pinned to the same thread count, random init, one image of the synthetic shapes, score
threshold 0 and 100 detections with masks pasted at full size:

- ours ``detect()`` (TensorFlow, the XLA-compiled trunk);
- ours SavedModel (``tf.saved_model.load``, ``serving_default``: molding and unmolding in the
  graph), in a process that imports nothing of ours;
- ours ONNX (tf2onnx opset 17) in onnxruntime's CPU provider;
- torchvision's ``maskrcnn_resnet50_fpn`` exported with ``torch.onnx`` (opset 17) and run in
  onnxruntime: what a CPU user of torchvision would deploy.

The models are exported first, each framework in its own process (not timed). LiteRT is listed but not run yet: the Mask R-CNN
converts to builtin ops for one fixed input size (``format="tflite"``, see the README), but this
benchmark has no LiteRT case.
Writes ``benchmarks/results/export_runtimes.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from maskrcnn_vs_torchvision import NUM_CLASSES, _our_config, _timed
from provenance import provenance, write_report
from subprocess_cases import run_cases

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "export_runtimes.json"
CASES = ("ours_detect", "ours_saved_model", "ours_onnx_onnxruntime",
         "torchvision_onnx_onnxruntime")


def _image(size: int):
    """uint8[size, size, 3]: bright rectangles on a dark field, as the shapes sample draws."""
    import numpy as np

    rng = np.random.default_rng(0)
    image = np.full((size, size, 3), 40, np.uint8)
    for _ in range(12):
        y, x = rng.integers(0, size - size // 8, 2)
        image[y:y + size // 10, x:x + size // 12] = rng.integers(120, 255, 3)
    return image


def _our_model(size: int):
    import mrcnn.model as modellib

    config = _our_config(size, "resnet50", DETECTION_MIN_CONFIDENCE=0.0,
                         DETECTION_MAX_INSTANCES=100)
    return modellib.MaskRCNN("inference", config, tempfile.mkdtemp())


def export_ours(work: Path, size: int) -> dict[str, float]:
    """Child process: write our weights, SavedModel and ONNX into ``work``; export seconds."""
    import keras

    keras.utils.set_random_seed(0)
    model = _our_model(size)
    model.save_weights(work / "ours.h5")
    seconds = {}
    for name, path in (("saved_model", work / "saved_model"), ("onnx", work / "ours.onnx")):
        start = time.perf_counter()
        model.export(path, format=name)
        seconds[name] = time.perf_counter() - start
    return seconds


def export_torchvision(work: Path, size: int) -> dict[str, float]:
    """Child process (torch and TensorFlow in one process can crash): torchvision's ONNX."""
    start = time.perf_counter()
    _export_torchvision(work / "torchvision.onnx", size)
    return {"torchvision_onnx": time.perf_counter() - start}


def _export_torchvision(path: Path, size: int) -> None:
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.detection.maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=NUM_CLASSES, min_size=size,
        max_size=size, box_score_thresh=0.0, box_detections_per_img=100).eval()
    image = torch.from_numpy(_image(size)).permute(2, 0, 1).float() / 255.0
    torch.onnx.export(model, ([image],), str(path), opset_version=17, dynamo=False,
                      input_names=["image"], output_names=["boxes", "labels", "scores", "masks"])


def run_case(name: str, work: Path, size: int, repeats: int, threads: int) -> dict:
    """Child process: pin threads, time one runtime on the exported model."""
    image = _image(size)
    if name.startswith("ours_") and name != "ours_onnx_onnxruntime":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        if name == "ours_detect":
            model = _our_model(size)
            model.load_weights(work / "ours.h5")
            times = _timed(lambda: model.detect([image]), repeats, warmup=2)
        else:  # a server that has only TensorFlow
            serve = tf.saved_model.load(str(work / "saved_model")).signatures["serving_default"]
            tensor = tf.constant(image)
            times = _timed(lambda: serve(image=tensor), repeats, warmup=2)
        versions = {"tensorflow": tf.__version__}
    else:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        if name == "ours_onnx_onnxruntime":
            session = ort.InferenceSession(str(work / "ours.onnx"), options,
                                           providers=["CPUExecutionProvider"])
            feed = {"image": image}
        else:
            session = ort.InferenceSession(str(work / "torchvision.onnx"), options,
                                           providers=["CPUExecutionProvider"])
            feed = {"image": (image.transpose(2, 0, 1) / 255.0).astype("float32")}
        times = _timed(lambda: session.run(None, feed), repeats, warmup=2)
        versions = {"onnxruntime": ort.__version__}
    ours = sorted(m for m in sys.modules if m.split(".")[0] in {"mrcnn", "unet", "localization"})
    return {"case": name, "median_s": statistics.median(times), "times_s": times,
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "imports_our_packages": bool(ours), **versions}


EXPORTS = {"export_ours": export_ours, "export_torchvision": export_torchvision}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.case in EXPORTS:
        print(json.dumps(EXPORTS[args.case](args.work, args.size)))
        return 0
    if args.case:
        print(json.dumps(run_case(args.case, args.work, args.size, args.repeats, args.threads)))
        return 0
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        print(f"exporting R50-FPN {args.size} px models ...", flush=True)
        export_s = {}
        for name in EXPORTS:
            done = subprocess.run([sys.executable, __file__, "--case", name, "--work", str(work),
                                   "--size", str(args.size)], capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{name}: failed\n{done.stderr[-3000:]}", file=sys.stderr)
                return 1
            export_s.update(json.loads(done.stdout.strip().splitlines()[-1]))
        sizes = {"saved_model_mib": sum(f.stat().st_size for f in (work / "saved_model").rglob("*")
                                        if f.is_file()) / 2**20,
                 "ours_onnx_mib": (work / "ours.onnx").stat().st_size / 2**20,
                 "torchvision_onnx_mib": (work / "torchvision.onnx").stat().st_size / 2**20}
        results = run_cases(CASES, lambda name: [
            sys.executable, __file__, "--case", name, "--work", str(work), "--size",
            str(args.size), "--repeats", str(args.repeats), "--threads", str(args.threads)],
            width=32)
    print(f"{'ours LiteRT':<32}{'not run: no LiteRT case in this benchmark yet':>10}")
    peer = results.get("torchvision_onnx_onnxruntime")
    ours = [results[n] for n in CASES[:3] if n in results]
    ratio = (min(c["median_s"] for c in ours) / peer["median_s"]) if peer and ours else None
    if ratio is not None:
        print(f"\nour best runtime / torchvision in onnxruntime: {ratio:.2f} (goal <= 0.8)")
    write_report(args.out, {"benchmark": "export_runtimes", "size": args.size,
                            "threads": args.threads, "repeats": args.repeats,
                            "export_s": export_s, "model_sizes": sizes, "cases": results,
                            "best_ours_over_torchvision_onnx": ratio,
                            "machine": provenance()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
