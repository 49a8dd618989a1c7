"""Mask R-CNN on synthetic shapes (squares, circles, triangles): the no-download quickstart.

    python samples/shapes.py train --weights none --logs logs/shapes
    python samples/shapes.py evaluate --weights last --logs logs/shapes --out metrics.json
    python samples/shapes.py generate --out shapes_images --count 8
    python samples/shapes.py detect --weights last --logs logs/shapes --image shapes_images

Trains from scratch on CPU in minutes: a narrow ResNet-50-style backbone (one block per stage),
128 px images and small anchors, so no pretrained weights are needed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

from mrcnn.cli import SampleSpec, main
from mrcnn.config import Config
from mrcnn.data.datasets.shapes import ShapesDataset

IMAGE_SIZE = 128


class ShapesConfig(Config):
    """Small images and a small network: trains from random init on 2 CPU cores."""

    NAME = "shapes"
    NUM_CLASSES = 1 + 3  # background + square, circle, triangle
    IMAGES_PER_GPU = 8
    IMAGE_MIN_DIM = IMAGE_SIZE
    IMAGE_MAX_DIM = IMAGE_SIZE
    BACKBONE = "resnet50"
    BACKBONE_WIDTH = 16  # stages of 16/32/64/128 bottleneck filters (ResNet-50 uses 64)
    BACKBONE_STAGE_BLOCKS = (1, 1, 1, 1)
    TOP_DOWN_PYRAMID_SIZE = 64
    RPN_CONV_SIZE = 64
    MASK_HEAD_CONV_SIZE = 32
    FPN_CLASSIF_FC_LAYERS_SIZE = 256
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)  # shapes are 20-60 px
    RPN_TRAIN_ANCHORS_PER_IMAGE = 128
    PRE_NMS_LIMIT = 1000
    POST_NMS_ROIS_TRAINING = 200
    POST_NMS_ROIS_INFERENCE = 100
    TRAIN_ROIS_PER_IMAGE = 32  # few objects per image: few ROIs suffice
    MAX_GT_INSTANCES = 8
    DETECTION_MAX_INSTANCES = 20
    MINI_MASK_SHAPE = (28, 28)
    TRAIN_BN = True  # from random init, BatchNorm must learn its statistics
    LEARNING_RATE = 0.02  # from scratch with trained BatchNorm, a larger step than Matterport's
    STEPS_PER_EPOCH = 150
    DETECTION_MIN_CONFIDENCE = 0.5
    VALIDATION_STEPS = 5


def load_dataset(args: argparse.Namespace, subset: str) -> ShapesDataset:
    count = args.train_images if subset == "train" else args.val_images
    dataset = ShapesDataset()
    dataset.load_shapes(count, IMAGE_SIZE, IMAGE_SIZE, seed=0 if subset == "train" else 1)
    dataset.prepare()
    return dataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train-images", type=int, default=500)
    parser.add_argument("--val-images", type=int, default=50)


def generate(argv: list[str]) -> int:
    """Write synthetic shape images as PNGs, for trying ``detect`` on files."""
    parser = argparse.ArgumentParser(prog="shapes.py generate")
    parser.add_argument("--out", required=True)
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args(argv)
    dataset = ShapesDataset()
    dataset.load_shapes(args.count, IMAGE_SIZE, IMAGE_SIZE, seed=args.seed)
    dataset.prepare()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for image_id in dataset.image_ids:
        image = dataset.load_image(image_id)
        cv2.imwrite(str(out / f"shapes_{image_id:03d}.png"), image[..., ::-1])
    print(f"wrote {args.count} images to {out}")
    return 0


SPEC = SampleSpec(
    name="shapes",
    description=__doc__.splitlines()[0],
    make_config=lambda args: ShapesConfig(),
    load_dataset=load_dataset,
    add_arguments=add_arguments,
    # All layers at LEARNING_RATE, then a tenth of it for the last three epochs.
    schedules={"scratch": (("all", 9, 1.0), ("all", 12, 0.1))},
)

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "generate":
        sys.exit(generate(sys.argv[2:]))
    sys.exit(main(SPEC))
