"""Does the localizer learn a clearly separable task? Generated disks vs squares, one per image.

Trains the small-CNN localizer on a generated dataset (train.csv + PNGs, the face-mask layout),
then reports validation mean IoU, accuracy and accuracy@IoU>=0.5. Prints a table and writes
``benchmarks/results/localization_synthetic.json``.

    python benchmarks/localization_synthetic.py [--images 960] [--epochs 60] [--size 64]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import keras

from localization.annotations import load_annotations
from localization.augment import BoxAugmenter
from localization.data import (
    build_dataset,
    compute_channel_stats,
    samples_to_arrays,
    stratified_split,
)
from localization.metrics import compute_localization_metrics
from localization.model import build_localizer
from localization.synthetic import write_synthetic_dataset
from localization.training import compile_localizer

RESULTS = Path(__file__).resolve().parent / "results" / "localization_synthetic.json"


def run(images: int = 960, epochs: int = 60, size: int = 64, seed: int = 0) -> dict:
    """Train on a fresh generated dataset; returns validation metrics and settings."""
    keras.utils.set_random_seed(seed)
    with tempfile.TemporaryDirectory() as folder:
        csv_path = write_synthetic_dataset(folder, count=images, size=(96, 80), seed=seed)
        table = load_annotations(csv_path)
        train, val = stratified_split(table.samples, 0.25, seed)
        train_arrays = samples_to_arrays(train, (size, size))
        val_arrays = samples_to_arrays(val, (size, size))
    mean, std = compute_channel_stats(train_arrays[0])
    model = build_localizer(num_classes=len(table.class_names), input_shape=(size, size, 3),
                            small_cnn_filters=(16, 32, 64), feature_dropout=0.0,
                            class_head_units=(128, 64), class_head_dropout=(0.2, 0.0),
                            box_head_units=(256, 128), box_head_dropout=(0.0, 0.0),
                            mean=mean, std=std)
    compile_localizer(model, backbone_lr=2e-3, class_head_lr=1e-3, box_head_lr=2e-3,
                      jit_compile=False)
    train_data = build_dataset(*train_arrays, 32, augment=BoxAugmenter(seed=seed), shuffle=True,
                               seed=seed)
    val_data = build_dataset(*val_arrays, 64)
    started = time.perf_counter()
    model.fit(train_data, validation_data=val_data, epochs=epochs, verbose=2, shuffle=False,
              callbacks=[keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=4),
                         keras.callbacks.EarlyStopping(patience=12, restore_best_weights=True)])
    seconds = time.perf_counter() - started
    outputs = model.predict(val_arrays[0].astype("float32"), verbose=0)
    metrics = compute_localization_metrics(val_arrays[1], val_arrays[2], outputs["box"],
                                           outputs["class"].argmax(axis=1), table.class_names)
    return {"task": "generated disks vs squares, one object per image",
            "images": images, "train_images": len(train), "val_images": len(val), "input_size": size,
            "epochs_max": epochs, "train_seconds": round(seconds, 1),
            "machine": f"{platform.processor() or platform.machine()}, CPU", "val": metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=960)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    result = run(args.images, args.epochs, args.size)
    metrics = result["val"]
    print(f"{'metric':20} {'value':>8}")
    for key in ("mean_iou", "accuracy", "accuracy_at_iou50"):
        print(f"{key:20} {metrics[key]:8.4f}")
    print(f"{'images (val)':20} {metrics['images']:8d}")
    print(f"{'train seconds':20} {result['train_seconds']:8.1f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
