"""Mask R-CNN on DeepFashion2 garments: the 13 categories, or grouped into upper/lower.

    python samples/deepfashion2.py prepare --source datasets/deepfashion2 --out datasets/df2_split \\
        --max-images 20000 --seed 42
    python samples/deepfashion2.py train --dataset datasets/df2_split --classes upper_lower \\
        --weights coco --logs logs
    python samples/deepfashion2.py evaluate --dataset datasets/df2_split --classes upper_lower \\
        --weights last --out metrics.json
    python samples/deepfashion2.py detect --image person.jpg --classes upper_lower --weights last

Layout: ``DIR/{train,val}/image/*.jpg`` with ``DIR/{train,val}/annos/*.json`` (the official
release uses ``validation``: pass ``--val-subset validation``; see datasets/README.md).
"""

from __future__ import annotations

import argparse
import sys

from mrcnn.cli import SampleSpec, main
from mrcnn.config import Config
from mrcnn.data.datasets.deepfashion2 import (
    CATEGORY_NAMES,
    CLASS_SCHEMES,
    UPPER_LOWER_NAMES,
    DeepFashion2Dataset,
    prepare_split,
)


class DeepFashion2Config(Config):
    """Garment photos (mostly under 1000 px): 2 images per GPU at 1024 px, COCO fine-tuning."""

    NAME = "deepfashion2"
    IMAGES_PER_GPU = 2
    NUM_CLASSES = 1 + len(CATEGORY_NAMES)
    STEPS_PER_EPOCH = 1000
    DETECTION_MIN_CONFIDENCE = 0.7


def make_config(args: argparse.Namespace) -> Config:
    names = CATEGORY_NAMES if args.classes == "categories" else UPPER_LOWER_NAMES
    return DeepFashion2Config().override(NUM_CLASSES=1 + len(names))


def load_dataset(args: argparse.Namespace, subset: str) -> DeepFashion2Dataset:
    dataset = DeepFashion2Dataset()
    dataset.load_deepfashion2(args.dataset, subset if subset == "train" else args.val_subset,
                              class_scheme=args.classes, max_images=args.max_images)
    dataset.prepare()
    return dataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--classes", choices=CLASS_SCHEMES, default="categories",
                        help="categories: the 13 DeepFashion2 classes; upper_lower: upper, lower")
    parser.add_argument("--val-subset", default="val", help="folder used for validation")
    parser.add_argument("--max-images", type=int, help="load at most N images per subset")


def prepare(argv: list[str]) -> int:
    """Build a seeded train/val/test split (hard links or symlinks where possible)."""
    parser = argparse.ArgumentParser(prog="deepfashion2.py prepare", description=prepare.__doc__)
    parser.add_argument("--source", required=True, help="DeepFashion2 root (holds train/)")
    parser.add_argument("--out", required=True, help="output root for train/ val/ test/")
    parser.add_argument("--source-subset", default="train")
    parser.add_argument("--ratios", type=float, nargs=3, default=(0.8, 0.1, 0.1),
                        metavar=("TRAIN", "VAL", "TEST"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-images", type=int)
    parser.add_argument("--link", default="auto", help="auto | hardlink | symlink | copy")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        splits = prepare_split(args.source, args.out, ratios=args.ratios, seed=args.seed,
                               max_images=args.max_images, source_subset=args.source_subset,
                               link=args.link, overwrite=args.overwrite)
    except ValueError as error:  # DatasetError included
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(", ".join(f"{name}: {len(stems)} images" for name, stems in splits.items()))
    return 0


SPEC = SampleSpec(
    name="deepfashion2",
    description=__doc__.splitlines()[0],
    make_config=make_config,
    load_dataset=load_dataset,
    default_dataset="datasets/deepfashion2",
    add_arguments=add_arguments,
    # Transfer learning in three stages: heads, then stage 4 and up, then everything at LR/10.
    schedules={"matterport": (("heads", 10, 1.0), ("4+", 20, 1.0), ("all", 30, 0.1)),
               "heads": (("heads", 10, 1.0),)},
)

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "prepare":
        sys.exit(prepare(sys.argv[2:]))
    sys.exit(main(SPEC))
