"""Mask R-CNN R50-FPN on a GPU through Keras' JAX backend, torchvision's on the same GPU beside it.

    bash benchmarks/gpu_jax.sh                    # the GPU machine: carried wheels, then this
    KERAS_BACKEND=jax python benchmarks/gpu_jax.py --quick     # anywhere JAX runs (CPU too)

Each case runs in its own fresh interpreter (its own device memory), random init, timings are
medians after warm-up (``--repeats``), both frameworks on the first GPU (or the CPU, where there is
none). Cases at ``--size`` (1024) px:

- ``ours_detect_*``: ``detect()`` on one image, molding and unmolding on the host included
  (score threshold 0, 100 detections, masks pasted at full size), float32 and mixed_bfloat16;
- ``ours_network_*``: the jitted network alone on a molded batch of ``--batch`` (8) images,
  per image;
- ``torchvision_*``: ``maskrcnn_resnet50_fpn`` (same head sizes, frozen BatchNorm) on one image
  and on a batch, float32 and under ``torch.autocast(bfloat16)``, and one SGD training step
  on a batch of ``--batch`` images, in images/s.

- ``ours_train_batch_*``: one training step (Keras's JAX trainer) on a batch of ``--batch``
  images from the TensorFlow-free loader, per image, float32 and mixed_bfloat16.

Writes ``benchmarks/results/gpu_jax.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from maskrcnn_vs_torchvision import (  # noqa: E402
    TRAIN_CLASSES,
    _our_config,
    _shapes_image,
    _timed,
    _torchvision_model,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "gpu_jax.json"
PRECISIONS = {"f32": None, "bf16": "mixed_bfloat16"}


def _our_model(size: int, precision: str, batch: int):
    import mrcnn.model as modellib

    config = _our_config(size, "resnet50", IMAGES_PER_GPU=batch, DETECTION_MIN_CONFIDENCE=0.0,
                         DETECTION_MAX_INSTANCES=100, MIXED_PRECISION=PRECISIONS[precision])
    return modellib.MaskRCNN("inference", config, "/tmp/gpu_jax_logs")


def case_ours_detect(size: int, precision: str, repeats: int, batch: int) -> list[float]:
    model = _our_model(size, precision, batch=1)
    image = _shapes_image(size).load_image(0)
    return _timed(lambda: model.detect([image]), repeats, warmup=2)


def case_ours_network(size: int, precision: str, repeats: int, batch: int) -> list[float]:
    """The network on one molded batch (numpy out, so the device has finished), per image."""
    import numpy as np

    model = _our_model(size, precision, batch=batch)
    molded, metas, _ = model.mold_inputs([_shapes_image(size).load_image(0)] * batch)
    images, metas = np.stack(molded).astype(np.float32), np.stack(metas).astype(np.float32)
    anchors = model.get_anchors(images.shape[1:])
    times = _timed(lambda: model._predict_arrays(images, metas, anchors), repeats, warmup=2)
    return [t / batch for t in times]


def case_ours_train(size: int, precision: str, repeats: int, batch: int) -> list[float]:
    """One step of ``train()``'s (Keras's trainer on JAX: SGD, clipping, L2 decay, all layers)
    on a batch of ``batch`` images from the TensorFlow-free loader, seconds per image."""
    import mrcnn.model as modellib
    from mrcnn.data.py_loader import TrainingBatches

    config = _our_config(size, "resnet50", TRAIN_CLASSES, IMAGES_PER_GPU=batch,
                         MIXED_PRECISION=PRECISIONS[precision])
    model = modellib.MaskRCNN("training", config, "/tmp/gpu_jax_logs")
    model.set_trainable("all", verbose=0)
    model._compile(0.001)
    arrays = TrainingBatches(_shapes_image(size), config, shuffle=False, workers=1)[0]
    times = _timed(lambda: model.keras_model.train_on_batch(arrays, return_dict=True),
                   repeats, warmup=2)
    return [t / batch for t in times]


def _torch_device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _synchronized(step):
    import torch

    def run():
        step()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    return run


def case_torchvision_infer(size: int, precision: str, repeats: int, batch: int) -> list[float]:
    import contextlib

    import torch

    device = _torch_device()
    model = _torchvision_model(frozen_bn=True, size=size).eval().to(device)
    image = torch.from_numpy(_shapes_image(size).load_image(0)).permute(2, 0, 1).float() / 255
    images = [image.to(device)] * batch
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())

    def step():
        with torch.inference_mode(), autocast:
            model(images)

    return [t / batch for t in _timed(_synchronized(step), repeats, warmup=2)]


def case_torchvision_train(size: int, precision: str, repeats: int, batch: int) -> list[float]:
    """One SGD step on ``batch`` images, seconds per image."""
    import torch

    from mrcnn.geometry.boxes import extract_bboxes

    device = _torch_device()
    model = _torchvision_model(frozen_bn=True, size=size, num_classes=TRAIN_CLASSES)
    model = model.train().to(device)
    dataset = _shapes_image(size)
    image = (torch.from_numpy(dataset.load_image(0)).permute(2, 0, 1).float() / 255).to(device)
    masks, class_ids = dataset.load_mask(0)
    target = {"boxes": torch.tensor(extract_bboxes(masks)[:, [1, 0, 3, 2]],
                                    dtype=torch.float32, device=device),
              "labels": torch.tensor(class_ids, dtype=torch.int64, device=device),
              "masks": torch.from_numpy(masks.transpose(2, 0, 1).astype("uint8")).to(device)}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)

    def step():
        losses = model([image] * batch, [target] * batch)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()

    return [t / batch for t in _timed(_synchronized(step), repeats, warmup=2)]


CASES = {
    "ours_detect_f32": (case_ours_detect, "f32"),
    "ours_detect_bf16": (case_ours_detect, "bf16"),
    "ours_network_f32": (case_ours_network, "f32"),
    "ours_network_bf16": (case_ours_network, "bf16"),
    "torchvision_infer_1_f32": (lambda s, p, r, b: case_torchvision_infer(s, p, r, 1), "f32"),
    "torchvision_infer_1_bf16": (lambda s, p, r, b: case_torchvision_infer(s, p, r, 1), "bf16"),
    "torchvision_infer_batch_f32": (case_torchvision_infer, "f32"),
    "torchvision_infer_batch_bf16": (case_torchvision_infer, "bf16"),
    "ours_train_batch_f32": (case_ours_train, "f32"),
    "ours_train_batch_bf16": (case_ours_train, "bf16"),
    "torchvision_train_batch_f32": (case_torchvision_train, "f32"),
}
RATIOS = {  # (ours, torchvision): below 1 is ours faster
    "detect, 1 image, float32": ("ours_detect_f32", "torchvision_infer_1_f32"),
    "detect, 1 image, bfloat16": ("ours_detect_bf16", "torchvision_infer_1_bf16"),
    "network per image in a batch, float32": ("ours_network_f32", "torchvision_infer_batch_f32"),
    "network per image in a batch, bfloat16": ("ours_network_bf16",
                                               "torchvision_infer_batch_bf16"),
    "training step per image, float32": ("ours_train_batch_f32", "torchvision_train_batch_f32"),
}


def run_case(name: str, size: int, repeats: int, batch: int) -> None:
    """Child process: one case, its JSON on the last line."""
    function, precision = CASES[name]
    if name.startswith("torchvision"):
        import torch

        versions = {"torch": torch.__version__, "device": str(_torch_device())}
    else:
        import jax
        import keras

        versions = {"jax": jax.__version__, "keras": keras.__version__,
                    "backend": keras.backend.backend(), "device": str(jax.devices()[0])}
    times = function(size, precision, repeats, batch)
    print(json.dumps({"case": name, "median_s": statistics.median(times), "times_s": times,
                      **versions}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="256 px, batch 2, 2 repeats")
    parser.add_argument("--only", nargs="+", choices=sorted(CASES), help="these cases only")
    parser.add_argument("--timeout", type=int, default=240, help="seconds per case")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.size, args.batch, args.repeats = 256, 2, 2
    if args.case:
        run_case(args.case, args.size, args.repeats, args.batch)
        return 0
    environment = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"}
    results, failures = {}, {}
    print(f"{'case':<32}{'median ms/image':>16}   min-max")
    for name in args.only or CASES:
        command = [sys.executable, __file__, "--case", name, "--size", str(args.size),
                   "--batch", str(args.batch), "--repeats", str(args.repeats)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=environment,
                                  timeout=args.timeout)
        except subprocess.TimeoutExpired:
            failures[name] = f"timed out after {args.timeout} s"
            print(f"{name:<32}{'timed out':>16}", flush=True)
            continue
        if done.returncode != 0:
            failures[name] = done.stderr[-3000:]
            print(f"{name:<32}{'failed':>16}\n{done.stderr[-1500:]}", flush=True)
            continue
        results[name] = case = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{name:<32}{1000 * case['median_s']:>16.1f}   {1000 * min(case['times_s']):.1f}-"
              f"{1000 * max(case['times_s']):.1f}", flush=True)
    ratios = {label: results[a]["median_s"] / results[b]["median_s"]
              for label, (a, b) in RATIOS.items() if a in results and b in results}
    for label, value in ratios.items():
        print(f"ours / torchvision, {label:<40}{value:>6.2f}")
    if "torchvision_train_batch_f32" in results:
        print(f"torchvision training: "
              f"{1 / results['torchvision_train_batch_f32']['median_s']:.1f} images/s")
    from provenance import provenance, write_report

    write_report(args.out, {"benchmark": "gpu_jax", "size": args.size, "batch": args.batch,
                            "repeats": args.repeats, "cases": results, "failures": failures,
                            "ratios": ratios, "machine": provenance()})
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
