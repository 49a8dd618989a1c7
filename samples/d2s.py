"""Mask R-CNN on MVTec D2S (densely segmented supermarket products, 60 classes, COCO format).

    python samples/d2s.py train --dataset datasets/d2s --weights coco --logs logs
    python samples/d2s.py evaluate --dataset datasets/d2s --weights last --out metrics.json
    python samples/d2s.py detect --image tray.jpg --weights last --out detections/

Layout: ``DIR/annotations/D2S_{training,validation,...}.json`` and ``DIR/images/*.jpg``
(see datasets/README.md). ``--train-subset``/``--val-subset`` pick other D2S files (e.g.
``augmented``, ``test_info``).
"""

from __future__ import annotations

import argparse
import sys

from mrcnn.cli import SampleSpec, main
from mrcnn.data.datasets.d2s import D2SConfig, D2SDataset


def load_dataset(args: argparse.Namespace, subset: str) -> D2SDataset:
    dataset = D2SDataset()
    dataset.load_d2s(args.dataset, args.train_subset if subset == "train" else args.val_subset)
    dataset.prepare()
    return dataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train-subset", default="train",
                        help="train, val, test or any D2S_<name>.json (default: train)")
    parser.add_argument("--val-subset", default="val", help="subset for validation/evaluation")


SPEC = SampleSpec(
    name="d2s",
    description=__doc__.splitlines()[0],
    make_config=lambda args: D2SConfig(),
    load_dataset=load_dataset,
    default_dataset="datasets/d2s",
    add_arguments=add_arguments,
    # Fine-tuning from COCO: heads first, then stage 4 and up, then all layers at LR/10.
    schedules={"matterport": (("heads", 10, 1.0), ("4+", 20, 1.0), ("all", 30, 0.1)),
               "heads": (("heads", 10, 1.0),)},
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
