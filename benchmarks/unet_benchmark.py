"""U-Net benchmark on CPU: inference images/s at 256 and 512 px, and Dice on held-out data.

    python benchmarks/unet_benchmark.py [--threads 2] [--out benchmarks/results/unet_benchmark.json]

Speed: improved and attention U-Nets (depth 4, 16 base filters: the sample's defaults), random
weights, batch 1 and 4, after two warm-up calls; latency p50/p95 per batch. Quality: each model
trains from scratch on generated "people" (unet.synthetic) and is scored on a held-out split
with per-image hard Dice at threshold 0.5 (empty-mask rule: both empty -> 1).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

ARCHS = ("improved", "attention")


def measure_speed(arch: str, size: int, batch: int, repeats: int) -> dict:
    from unet import build_unet

    model = build_unet(arch, (size, size, 3), depth=4, base_filters=16)
    images = np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype("float32")
    for _ in range(2):
        model.predict_on_batch(images)
    latencies = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_on_batch(images)
        latencies.append(time.perf_counter() - start)
    latencies = np.array(latencies)
    return {"arch": arch, "size": size, "batch": batch, "params": model.count_params(),
            "images_per_s": round(batch * repeats / latencies.sum(), 2),
            "latency_p50_ms": round(1000 * float(np.percentile(latencies, 50)), 1),
            "latency_p95_ms": round(1000 * float(np.percentile(latencies, 95)), 1)}


def measure_quality(arch: str, count: int, size: int, epochs: int) -> dict:
    import keras

    from unet import SegmentationEvaluator, build_unet
    from unet.synthetic import make_synthetic_people
    from unet.training import compile_model

    keras.utils.set_random_seed(0)
    images, masks = make_synthetic_people(count, size, seed=42)
    held_out = count // 5
    train_x, train_y = images[held_out:].astype("float32"), masks[held_out:, ..., None]
    model = build_unet(arch, (size, size, 3), depth=3, base_filters=16)
    compile_model(model, "bce_dice", 3e-3)
    start = time.perf_counter()
    model.fit(train_x, train_y.astype("float32"), batch_size=16, epochs=epochs, verbose=0)
    train_seconds = time.perf_counter() - start
    probabilities = model.predict(images[:held_out].astype("float32"), verbose=0)
    evaluator = SegmentationEvaluator()
    for probability, target in zip(probabilities, masks[:held_out], strict=True):
        evaluator.add(probability[..., 0] > 0.5, target)
    summary = evaluator.summarize()
    return {"arch": arch, "image_size": size, "train_images": count - held_out,
            "held_out_images": held_out, "epochs": epochs,
            "train_seconds": round(train_seconds, 1),
            "held_out_dice_per_image": round(summary["per_image"]["dice"], 4),
            "held_out_iou_per_image": round(summary["per_image"]["iou"], 4),
            "held_out_dice_dataset": round(summary["dataset"]["dice"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--count", type=int, default=320, help="generated images (20% held out)")
    parser.add_argument("--train-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--out", default="benchmarks/results/unet_benchmark.json")
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    speed = [measure_speed(arch, size, batch, args.repeats)
             for arch in ARCHS for size in (256, 512) for batch in (1, 4)]
    print(f"{'arch':<11}{'size':>6}{'batch':>7}{'params':>10}{'img/s':>9}{'p50 ms':>9}"
          f"{'p95 ms':>9}")
    for row in speed:
        print(f"{row['arch']:<11}{row['size']:>6}{row['batch']:>7}{row['params']:>10}"
              f"{row['images_per_s']:>9}{row['latency_p50_ms']:>9}{row['latency_p95_ms']:>9}")
    quality = [measure_quality(arch, args.count, args.train_size, args.epochs) for arch in ARCHS]
    print(f"\n{'arch':<11}{'train s':>9}{'Dice/img':>10}{'IoU/img':>9}{'Dice ds':>9}")
    for row in quality:
        print(f"{row['arch']:<11}{row['train_seconds']:>9}{row['held_out_dice_per_image']:>10}"
              f"{row['held_out_iou_per_image']:>9}{row['held_out_dice_dataset']:>9}")
    result = {"device": f"CPU ({platform.processor() or platform.machine()}), "
                        f"{args.threads} threads", "tensorflow": tf.__version__,
              "speed": speed, "quality": quality}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
