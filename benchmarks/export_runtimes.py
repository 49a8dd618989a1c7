"""Deployed Mask R-CNN R50-FPN at 1024 px on CPU: our runtimes against torchvision's ONNX.

    pip install -e ".[export]" torch==2.14.1 torchvision==0.29.1   # the peer: benchmark-only
    python benchmarks/export_runtimes.py [--repeats 5] [--threads 2] [--size 1024] [--only CASE,...]

Side by side in one run, each case in its own subprocess (its own peak RSS), every runtime
pinned to the same thread count, random init, one image of the synthetic shapes, score
threshold 0 and 100 detections with masks pasted at full size:

- ours ``detect()`` (TensorFlow, the XLA-compiled trunk);
- ours SavedModel (``tf.saved_model.load``, ``serving_default``: molding and unmolding in the
  graph), in a process that imports nothing of ours;
- ours ONNX (tf2onnx opset 17) in onnxruntime's CPU provider;
- ours LiteRT (``format="tflite"``, builtin ops only, fixed at the benchmark's size) in
  ``ai_edge_litert``'s interpreter (XNNPACK, ``num_threads`` = ``--threads``), float32 weights
  and dynamic-range int8 weights (``quantize=True``), in a process that imports nothing of ours;
- torchvision's ``maskrcnn_resnet50_fpn`` exported with ``torch.onnx`` (opset 17) and run in
  onnxruntime: what a CPU user of torchvision would deploy. Skipped, with the reason printed,
  where torch or torchvision is not installed.

The models are exported first (the same weights, written once as ``ours.h5``), each export in
its own process (timed, with its peak RSS, but not part of the latency). ``--only`` runs a
subset of the cases (and only the exports they need).
Writes ``benchmarks/results/export_runtimes.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import importlib.util
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
CASES = ("ours_detect", "ours_saved_model", "ours_onnx_onnxruntime", "ours_litert",
         "ours_litert_int8", "torchvision_onnx_onnxruntime")
LITERT_FILES = {"ours_litert": "ours.tflite", "ours_litert_int8": "ours_int8.tflite"}


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


def _peak_rss_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def export_ours(work: Path, size: int, cases: list[str]) -> dict:
    """Child process: write our weights (seed 0) into ``work``, and the SavedModel and ONNX
    where ``cases`` run them."""
    import keras

    keras.utils.set_random_seed(0)
    model = _our_model(size)
    model.save_weights(work / "ours.h5")
    seconds = {}
    for name, path, case in (("saved_model", work / "saved_model", "ours_saved_model"),
                             ("onnx", work / "ours.onnx", "ours_onnx_onnxruntime")):
        if case not in cases:
            continue
        start = time.perf_counter()
        model.export(path, format=name)
        seconds[name] = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mib": _peak_rss_mib()}


def _export_litert(work: Path, size: int, quantize: bool) -> dict:
    """Child process (one per file: its own conversion peak RSS): ours.h5 to LiteRT."""
    model = _our_model(size)
    model.load_weights(work / "ours.h5")
    name = "litert_int8" if quantize else "litert"
    start = time.perf_counter()
    model.export(work / LITERT_FILES["ours_" + name], format="tflite", size=(size, size),
                 quantize=quantize)
    return {"seconds": {name: time.perf_counter() - start}, "peak_rss_mib": _peak_rss_mib()}


def export_litert(work: Path, size: int, cases: list[str]) -> dict:
    return _export_litert(work, size, quantize=False)


def export_litert_int8(work: Path, size: int, cases: list[str]) -> dict:
    return _export_litert(work, size, quantize=True)


def export_torchvision(work: Path, size: int, cases: list[str]) -> dict:
    """Child process (torch and TensorFlow in one process can crash): torchvision's ONNX."""
    start = time.perf_counter()
    _export_torchvision(work / "torchvision.onnx", size)
    return {"seconds": {"torchvision_onnx": time.perf_counter() - start},
            "peak_rss_mib": _peak_rss_mib()}


def _torchvision_missing() -> str | None:
    """Why the torchvision case cannot run here, or None."""
    missing = [m for m in ("torch", "torchvision") if importlib.util.find_spec(m) is None]
    return f"{' and '.join(missing)} not installed" if missing else None


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
    extra = {}
    if name in LITERT_FILES:  # an app that has only the LiteRT interpreter
        import importlib.metadata

        from ai_edge_litert.interpreter import Interpreter

        runner = Interpreter(str(work / LITERT_FILES[name]),
                             num_threads=threads).get_signature_runner()
        extra["detections"] = int(runner(image=image)["scores"].shape[0])
        times = _timed(lambda: runner(image=image), repeats, warmup=2)
        versions = {"ai_edge_litert": importlib.metadata.version("ai-edge-litert")}
    elif name.startswith("ours_") and name != "ours_onnx_onnxruntime":
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
            "peak_rss_mib": _peak_rss_mib(), "imports_our_packages": bool(ours), **extra,
            **versions}


EXPORTS = {"export_ours": export_ours, "export_litert": export_litert,
           "export_litert_int8": export_litert_int8, "export_torchvision": export_torchvision}


def _exports_for(cases: list[str]) -> list[str]:
    """The export steps the cases need, in order (LiteRT converts the ours.h5 of export_ours)."""
    needed = ["export_ours"] if any(c.startswith("ours_") for c in cases) else []
    needed += [f"export_{c[len('ours_'):]}" for c in cases if c in LITERT_FILES]
    return needed + (["export_torchvision"] if "torchvision_onnx_onnxruntime" in cases else [])


def _mib(path: Path) -> float | None:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
    return path.stat().st_size / 2**20 if path.exists() else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--only", help="comma-separated cases to run (default all): "
                        + ",".join(CASES))
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cases = list(CASES) if not args.only else [c.strip() for c in args.only.split(",")]
    if args.case in EXPORTS:
        print(json.dumps(EXPORTS[args.case](args.work, args.size, cases)))
        return 0
    if args.case:
        print(json.dumps(run_case(args.case, args.work, args.size, args.repeats, args.threads)))
        return 0
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    skipped = {}
    if "torchvision_onnx_onnxruntime" in cases and _torchvision_missing():
        skipped["torchvision_onnx_onnxruntime"] = _torchvision_missing()
        cases.remove("torchvision_onnx_onnxruntime")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        print(f"exporting R50-FPN {args.size} px models ...", flush=True)
        export_s, export_rss = {}, {}
        for name in _exports_for(cases):
            done = subprocess.run([sys.executable, __file__, "--case", name, "--work", str(work),
                                   "--size", str(args.size), "--only", ",".join(cases)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{name}: failed\n{done.stderr[-3000:]}", file=sys.stderr)
                return 1
            step = json.loads(done.stdout.strip().splitlines()[-1])
            export_s.update(step["seconds"])
            export_rss[name] = step["peak_rss_mib"]
            print(f"  {name}: " + ", ".join(f"{k} {v:.0f} s" for k, v in step["seconds"].items())
                  + f", peak RSS {step['peak_rss_mib']} MiB", flush=True)
        sizes = {key: mib for key, path in (
            ("saved_model_mib", work / "saved_model"), ("ours_onnx_mib", work / "ours.onnx"),
            ("ours_litert_mib", work / LITERT_FILES["ours_litert"]),
            ("ours_litert_int8_mib", work / LITERT_FILES["ours_litert_int8"]),
            ("torchvision_onnx_mib", work / "torchvision.onnx")) if (mib := _mib(path))}
        results = run_cases(cases, lambda name: [
            sys.executable, __file__, "--case", name, "--work", str(work), "--size",
            str(args.size), "--repeats", str(args.repeats), "--threads", str(args.threads)],
            width=32)
    for name, why in skipped.items():
        print(f"{name:<32}skipped: {why}")
    peer = results.get("torchvision_onnx_onnxruntime")
    ours = {n: c for n, c in results.items() if n.startswith("ours_")}
    best = min(ours, key=lambda n: ours[n]["median_s"]) if ours else None
    ratio = ours[best]["median_s"] / peer["median_s"] if peer and best else None
    if ratio is not None:
        print(f"\nour best runtime ({best}) / torchvision in onnxruntime: {ratio:.2f} "
              "(goal <= 0.8)")
    write_report(args.out, {"benchmark": "export_runtimes", "size": args.size,
                            "threads": args.threads, "repeats": args.repeats,
                            "cases_selected": cases, "skipped": skipped,
                            "export_s": export_s, "export_peak_rss_mib": export_rss,
                            "model_sizes": sizes, "cases": results,
                            "best_ours": best, "best_ours_over_torchvision_onnx": ratio,
                            "machine": provenance()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
