"""Where a Mask R-CNN training step's memory goes: resident memory after each phase.

    python benchmarks/maskrcnn_train_memory.py [--size 512] [--batch 1]

The same training step as ``maskrcnn_vs_torchvision.py``'s ``ours_train_r50_<size>`` case
(R50-FPN, all layers, SGD, BatchNorm statistics frozen, Matterport's trained gamma/beta,
synthetic shapes), each variant in its own process: RSS after importing TensorFlow, after
building the network, after the optimizer's slots, after tracing the step, after its first
execution, after the timed steps, the peak (VmHWM), and how much of the RSS at the end is
file-backed (RssFile: pages of the frameworks' shared libraries, not allocations). Variants change one suspect at a time:
the tf.data pipeline one sample at a time (no parallel map, no prefetch), TRAIN_ROIS_PER_IMAGE
32 instead of 200 (the heads' activations), the heads preset (no backbone gradients or
momentum), glibc limited to 2 malloc arenas, oneDNN off, grappler's graph rewrites off, and
FROZEN_BACKBONE_BN (torchvision's FrozenBatchNorm2d) alone, with glibc's mmap threshold at
1 MiB, and without the L2 decay. Where torchvision is installed, its own step (the peer, with
FrozenBatchNorm2d) goes through the same phases. ``--only NAME ...`` runs some of them.
Writes ``benchmarks/results/maskrcnn_train_memory.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from maskrcnn_vs_torchvision import (
    TRAIN_CLASSES,
    _our_config,
    _shapes_image,
    torchvision_train_step,
)
from provenance import provenance, write_report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "maskrcnn_train_memory.json"
FILE_BACKED = "file-backed at the end (shared libraries' pages)"
VARIANTS = {
    "default": {},
    "pipeline: one sample at a time": {"serial_pipeline": True},
    "TRAIN_ROIS_PER_IMAGE=32 (of 200)": {"fields": {"TRAIN_ROIS_PER_IMAGE": 32}},
    "heads only (backbone frozen)": {"layers": "heads"},
    "MALLOC_ARENA_MAX=2 (glibc arenas)": {"env": {"MALLOC_ARENA_MAX": "2"}},
    "oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)": {"env": {"TF_ENABLE_ONEDNN_OPTS": "0"}},
    "grappler off (no graph rewrites)": {"grappler_off": True},
    "FROZEN_BACKBONE_BN=True (gamma/beta too)": {"fields": {"FROZEN_BACKBONE_BN": True}},
    "frozen BN + MALLOC_MMAP_THRESHOLD_=1 MiB": {
        "fields": {"FROZEN_BACKBONE_BN": True}, "env": {"MALLOC_MMAP_THRESHOLD_": str(2**20)}},
    "frozen BN + no L2 decay (WEIGHT_DECAY=0)": {
        "fields": {"FROZEN_BACKBONE_BN": True, "WEIGHT_DECAY": 0.0}},
    "torchvision (peer), FrozenBatchNorm2d": {"peer": True},
}


def _status_mib(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def run_variant(name: str, size: int, batch: int, steps: int, threads: int) -> dict:
    """Child process: one variant's RSS after each phase, in MiB."""
    if VARIANTS[name].get("peer"):
        return run_peer(size, batch, steps, threads)
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    phases = {"start": _status_mib("VmRSS")}
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    variant = VARIANTS[name]
    if variant.get("grappler_off"):
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    import mrcnn.model as modellib
    from mrcnn.data.pipeline import build_dataset

    phases["framework imported"] = _status_mib("VmRSS")
    config = _our_config(size, "resnet50", TRAIN_CLASSES, IMAGES_PER_GPU=batch,
                         **variant.get("fields", {}))
    model = modellib.MaskRCNN("training", config, "/tmp/bench_logs")
    model.set_trainable(variant.get("layers", "all"), verbose=0)
    phases["network built"] = _status_mib("VmRSS")
    model._compile(0.001)
    phases["optimizer slots"] = _status_mib("VmRSS")
    data = build_dataset(_shapes_image(size), config, shuffle=False)
    if variant.get("serial_pipeline"):
        data = data.unbatch().batch(config.BATCH_SIZE).prefetch(0)
        options = tf.data.Options()
        options.autotune.enabled = False
        data = data.with_options(options)
    iterator = iter(data)
    train_step = tf.function(model.keras_model.train_step, reduce_retracing=True)
    train_step.get_concrete_function(next(iterator))
    phases["step traced"] = _status_mib("VmRSS")
    train_step(next(iterator))
    phases["first step"] = _status_mib("VmRSS")
    for _ in range(steps):
        train_step(next(iterator))
    phases["after the steps"] = _status_mib("VmRSS")
    phases["peak (VmHWM)"] = _status_mib("VmHWM")
    phases[FILE_BACKED] = _status_mib("RssFile")
    return {name: round(value) for name, value in phases.items()}


def run_peer(size: int, batch: int, steps: int, threads: int) -> dict:
    """Child process: the same phases for torchvision's step (its optimizer state is lazy)."""
    phases = {"start": _status_mib("VmRSS")}
    import torch
    import torchvision  # noqa: F401  (its import is part of the framework's cost)

    torch.set_num_threads(threads)
    phases["framework imported"] = _status_mib("VmRSS")
    train_step = torchvision_train_step(size, frozen_bn=True, batch=batch)
    phases["network built"] = _status_mib("VmRSS")
    train_step()
    phases["first step"] = _status_mib("VmRSS")
    for _ in range(steps):
        train_step()
    phases["after the steps"] = _status_mib("VmRSS")
    phases["peak (VmHWM)"] = _status_mib("VmHWM")
    phases[FILE_BACKED] = _status_mib("RssFile")
    return {name: round(value) for name, value in phases.items()}


def _peer_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("torchvision") is not None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), metavar="VARIANT",
                        help="run these variants only")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.size, args.batch, args.steps,
                                     args.threads)))
        return 0
    results = {}
    for name in args.only or VARIANTS:
        if VARIANTS[name].get("peer") and not _peer_installed():
            print(f"{name}: skipped (pip install torch torchvision to compare)", file=sys.stderr)
            continue
        done = subprocess.run([sys.executable, __file__, "--variant", name, "--size",
                               str(args.size), "--batch", str(args.batch), "--steps",
                               str(args.steps), "--threads", str(args.threads)],
                              capture_output=True, text=True,
                              env={**os.environ, **VARIANTS[name].get("env", {})})
        if done.returncode != 0:
            print(f"{name}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    phases = list(dict.fromkeys(phase for values in results.values() for phase in values))
    print(f"RSS in MiB, R50-FPN training step at {args.size} px, batch {args.batch}")
    print(f"{'variant':<42}" + "".join(f"{phase[:14]:>16}" for phase in phases))
    for name, values in results.items():
        print(f"{name:<42}" + "".join(f"{values.get(phase, '-'):>16}" for phase in phases))
    write_report(args.out, {"benchmark": "maskrcnn_train_memory", "size": args.size,
                            "batch": args.batch, "steps": args.steps, "variants": results,
                            "machine": provenance()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
