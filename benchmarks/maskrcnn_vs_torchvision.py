"""Mask R-CNN R50-FPN on CPU, ours against torchvision's, side by side in one run.

    pip install torch==2.14.1 torchvision==0.29.1     # the peer; benchmark-only, never a library dependency
    python benchmarks/maskrcnn_vs_torchvision.py [--repeats 5] [--threads 2] [--quick]

Every case runs in its own subprocess (fresh interpreter, both frameworks pinned to the same
thread count) so its peak RSS is its own. Timings are medians after warm-up, random init.
Cases: inference at 512x512 and 1024x1024 (batch 1, score threshold 0, 100 detections, masks
pasted at full size), ours with ResNet-101 too, ours without XLA (JIT_COMPILE=False), and both
in bfloat16 at 1024 (ours MIXED_PRECISION=mixed_bfloat16, torchvision under torch.autocast);
one training step at 512x512 (batch 1, SGD with
momentum, gradient clip 5; BatchNorm frozen for both, FrozenBatchNorm2d and our
FROZEN_BACKBONE_BN; ours also with Matterport's trained gamma/beta, torchvision's also with
trained BatchNorm) and at 1024x1024 with batch 2 (the same, without torchvision's trained
BatchNorm); our input
pipeline (decode, augment-free molding, RPN targets) in images/s at 512x512.
Writes ``benchmarks/results/maskrcnn_vs_torchvision.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

from provenance import provenance, write_report
from subprocess_cases import run_cases

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "maskrcnn_vs_torchvision.json"
NUM_CLASSES = 81  # inference: COCO-sized heads for both (torchvision's default is 91)
TRAIN_CLASSES = 4  # training: the synthetic shapes' background + 3 classes, for both


def _timed(step, repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def _shapes_image(size: int, seed: int = 0):
    from mrcnn.data.datasets.shapes import ShapesDataset

    dataset = ShapesDataset()
    dataset.load_shapes(4, size, size, seed=seed)
    dataset.prepare()
    return dataset


def _our_config(size: int, backbone: str, num_classes: int = NUM_CLASSES, **fields):
    from mrcnn.config import Config

    class BenchConfig(Config):
        NAME = "bench"
        GPU_COUNT = 1
        IMAGES_PER_GPU = 1

    return BenchConfig().override(BACKBONE=backbone, IMAGE_MIN_DIM=size, IMAGE_MAX_DIM=size,
                                  NUM_CLASSES=num_classes, **fields)


def case_ours_inference(size: int, backbone: str, repeats: int, **fields) -> list[float]:
    import mrcnn.model as modellib

    config = _our_config(size, backbone, DETECTION_MIN_CONFIDENCE=0.0,
                         DETECTION_MAX_INSTANCES=100, **fields)
    model = modellib.MaskRCNN("inference", config, "/tmp/bench_logs")
    image = _shapes_image(size).load_image(0)
    return _timed(lambda: model.detect([image]), repeats, warmup=2)


def case_ours_train(size: int, repeats: int, batch: int = 1, **fields) -> list[float]:
    import mrcnn.model as modellib
    from mrcnn.data.pipeline import build_dataset

    config = _our_config(size, "resnet50", TRAIN_CLASSES, IMAGES_PER_GPU=batch, **fields)
    model = modellib.MaskRCNN("training", config, "/tmp/bench_logs")
    model.set_trainable("all", verbose=0)
    model._compile(0.001)
    network = model.keras_model
    iterator = iter(build_dataset(_shapes_image(size), config, shuffle=False))
    network.make_train_function()
    train_function = network.train_function
    return _timed(lambda: train_function(iterator), repeats, warmup=2)


def case_ours_pipeline(size: int, repeats: int) -> list[float]:
    from mrcnn.data.pipeline import build_dataset

    config = _our_config(size, "resnet50", TRAIN_CLASSES)
    dataset = _shapes_image(size)
    iterator = iter(build_dataset(dataset, config, shuffle=True))
    batches = 20

    def run():
        for _ in range(batches):
            next(iterator)

    return [t / batches for t in _timed(run, repeats)]


def _torchvision_model(frozen_bn: bool, size: int, num_classes: int = NUM_CLASSES):
    import torch
    import torchvision
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops.misc import FrozenBatchNorm2d

    norm = FrozenBatchNorm2d if frozen_bn else torch.nn.BatchNorm2d
    backbone = _resnet_fpn_extractor(torchvision.models.resnet50(norm_layer=norm), 5)
    return torchvision.models.detection.MaskRCNN(
        backbone, num_classes=num_classes, min_size=size, max_size=size,
        box_score_thresh=0.0, box_detections_per_img=100)


def case_torchvision_inference(size: int, repeats: int, bfloat16: bool = False) -> list[float]:
    import contextlib

    import torch

    model = _torchvision_model(frozen_bn=True, size=size).eval()
    image = torch.from_numpy(_shapes_image(size).load_image(0)).permute(2, 0, 1).float() / 255
    precision = (torch.autocast("cpu", dtype=torch.bfloat16) if bfloat16
                 else contextlib.nullcontext())

    def step():
        with torch.inference_mode(), precision:
            model([image])

    return _timed(step, repeats, warmup=2)


def torchvision_train_step(size: int, frozen_bn: bool, batch: int = 1):
    """torchvision's training step on the synthetic shapes sample: model, SGD, one callable."""
    import torch

    model = _torchvision_model(frozen_bn=frozen_bn, size=size, num_classes=TRAIN_CLASSES).train()
    dataset = _shapes_image(size)
    image = torch.from_numpy(dataset.load_image(0)).permute(2, 0, 1).float() / 255
    masks, class_ids = dataset.load_mask(0)
    from mrcnn.geometry.boxes import extract_bboxes

    boxes = extract_bboxes(masks)[:, [1, 0, 3, 2]]  # (x1, y1, x2, y2)
    target = {"boxes": torch.tensor(boxes, dtype=torch.float32),
              "labels": torch.tensor(class_ids, dtype=torch.int64),
              "masks": torch.from_numpy(masks.transpose(2, 0, 1).astype("uint8"))}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)

    def step():
        losses = model([image] * batch, [target] * batch)
        total = sum(losses.values())
        optimizer.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()

    return step


def case_torchvision_train(size: int, frozen_bn: bool, repeats: int, batch: int = 1) -> list[float]:
    return _timed(torchvision_train_step(size, frozen_bn, batch), repeats, warmup=2)


CASES = {
    "ours_infer_r50_512": lambda r: case_ours_inference(512, "resnet50", r),
    "torchvision_infer_r50_512": lambda r: case_torchvision_inference(512, r),
    "ours_infer_r50_1024": lambda r: case_ours_inference(1024, "resnet50", r),
    "torchvision_infer_r50_1024": lambda r: case_torchvision_inference(1024, r),
    "ours_infer_r50_1024_no_xla": lambda r: case_ours_inference(1024, "resnet50", r,
                                                                 JIT_COMPILE=False),
    "ours_infer_r101_1024": lambda r: case_ours_inference(1024, "resnet101", r),
    "ours_infer_r50_1024_bf16": lambda r: case_ours_inference(
        1024, "resnet50", r, MIXED_PRECISION="mixed_bfloat16"),
    "torchvision_infer_r50_1024_bf16": lambda r: case_torchvision_inference(1024, r, True),
    "ours_train_r50_512_frozen_bn": lambda r: case_ours_train(512, r, FROZEN_BACKBONE_BN=True),
    "ours_train_r50_512_matterport_bn": lambda r: case_ours_train(512, r),
    "torchvision_train_r50_512_frozen_bn": lambda r: case_torchvision_train(512, True, r),
    "torchvision_train_r50_512_bn": lambda r: case_torchvision_train(512, False, r),
    "ours_train_r50_1024_batch2_frozen_bn": lambda r: case_ours_train(
        1024, r, batch=2, FROZEN_BACKBONE_BN=True),
    "ours_train_r50_1024_batch2_matterport_bn": lambda r: case_ours_train(1024, r, batch=2),
    "torchvision_train_r50_1024_batch2_frozen_bn": lambda r: case_torchvision_train(
        1024, True, r, batch=2),
    "ours_pipeline_512_per_image": lambda r: case_ours_pipeline(512, r),
}
QUICK = ("ours_infer_r50_512", "torchvision_infer_r50_512", "ours_train_r50_512_frozen_bn",
         "torchvision_train_r50_512_frozen_bn", "ours_pipeline_512_per_image")
RATIOS = {
    "inference 512 (ours/torchvision)": ("ours_infer_r50_512", "torchvision_infer_r50_512"),
    "inference 1024 (ours/torchvision)": ("ours_infer_r50_1024", "torchvision_infer_r50_1024"),
    "inference 1024 bfloat16 (ours/torchvision)": ("ours_infer_r50_1024_bf16",
                                                   "torchvision_infer_r50_1024_bf16"),
    "train step 512 frozen BN (ours/torchvision)": ("ours_train_r50_512_frozen_bn",
                                                    "torchvision_train_r50_512_frozen_bn"),
    "train step 512 trained BN (ours Matterport's/torchvision)": (
        "ours_train_r50_512_matterport_bn", "torchvision_train_r50_512_bn"),
    "train step 1024 batch 2 frozen BN (ours/torchvision)": (
        "ours_train_r50_1024_batch2_frozen_bn", "torchvision_train_r50_1024_batch2_frozen_bn"),
    "pipeline time / train step time (ours)": ("ours_pipeline_512_per_image",
                                               "ours_train_r50_512_frozen_bn"),
}


def run_case(name: str, repeats: int, threads: int) -> None:
    """Child process: pin threads, run one case, print its JSON on the last line."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if name.startswith("torchvision"):
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(threads)
        versions = {"torch": torch.__version__}
    else:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        versions = {"tensorflow": tf.__version__}
    times = CASES[name](repeats)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"case": name, "median_s": statistics.median(times), "times_s": times,
                      "peak_rss_mib": round(peak_mib), **versions}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="512 px cases only")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.case:
        run_case(args.case, args.repeats, args.threads)
        return 0
    names = QUICK if args.quick else tuple(CASES)
    results = run_cases(names, lambda name: [
        sys.executable, __file__, "--case", name, "--repeats", str(args.repeats),
        "--threads", str(args.threads)])
    ratios = {label: results[a]["median_s"] / results[b]["median_s"]
              for label, (a, b) in RATIOS.items() if a in results and b in results}
    print()
    for label, value in ratios.items():
        print(f"{label:<48}{value:>8.2f}")
    report = {"benchmark": "maskrcnn_vs_torchvision", "threads": args.threads,
              "repeats": args.repeats, "cases": results, "ratios": ratios,
              "machine": provenance()}
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
