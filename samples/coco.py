"""Mask R-CNN on MS COCO instances (train2017 / val2017 in Matterport's folder layout).

    python samples/coco.py train --dataset datasets/coco --weights coco --logs logs
    python samples/coco.py evaluate --dataset datasets/coco --weights last --limit 500 --out metrics.json
    python samples/coco.py detect --image photo.jpg --weights coco --out detections/

Layout: ``DIR/annotations/instances_{train,val}{year}.json`` and ``DIR/{train,val}{year}/*.jpg``
(see datasets/README.md).

``evaluate`` follows the COCO protocol, as Matterport's ``samples/coco/coco.py`` does: every
detection is scored (``DETECTION_MIN_CONFIDENCE=0``; ``--set DETECTION_MIN_CONFIDENCE=0.5``
overrides it), against the annotation file's own records (areas, crowd regions, ids). Its bbox
stats equal pycocotools' COCOeval on that file and the ``--coco-results`` JSON; its segm stats
equal COCOeval on that JSON without the ``bbox`` fields (COCO's segm results format).
"""

from __future__ import annotations

import argparse
import sys

from mrcnn.cli import SampleSpec, main
from mrcnn.config import Config
from mrcnn.data.datasets.coco import CocoDataset


class CocoConfig(Config):
    """Matterport's COCO settings: 80 classes, 2 images per GPU at 1024 px."""

    NAME = "coco"
    IMAGES_PER_GPU = 2
    NUM_CLASSES = 1 + 80


def load_dataset(args: argparse.Namespace, subset: str) -> CocoDataset:
    dataset = CocoDataset()
    dataset.load_coco(args.dataset, subset, year=args.year)
    dataset.prepare()
    return dataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--year", default="2017", help="COCO release year (2014 or 2017)")


SPEC = SampleSpec(
    name="coco",
    description=__doc__.splitlines()[0],
    make_config=lambda args: CocoConfig(),
    load_dataset=load_dataset,
    default_dataset="datasets/coco",
    add_arguments=add_arguments,
    # Matterport's schedule: heads, then ResNet stage 4 and up, then everything at LR/10.
    schedules={"matterport": (("heads", 40, 1.0), ("4+", 120, 1.0), ("all", 160, 0.1)),
               "heads": (("heads", 40, 1.0),)},
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
