"""Mask R-CNN on the Kaggle Data Science Bowl 2018 nuclei, with a Kaggle submission CSV.

    python samples/nucleus.py train --dataset datasets/nucleus --subset train --weights imagenet
    python samples/nucleus.py evaluate --dataset datasets/nucleus --weights last --out metrics.json
    python samples/nucleus.py detect --dataset datasets/nucleus --subset stage1_test --weights last
    python samples/nucleus.py detect --image cells.png --weights last --out detections/

Layout: ``DIR/stage1_train/<id>/images/<id>.png`` with ``DIR/stage1_train/<id>/masks/*.png``
(one PNG per nucleus) and ``DIR/stage1_test/<id>/images/<id>.png`` (see datasets/README.md).
``--subset train`` trains on stage1_train without Matterport's 25 validation images
(``stage1_train``: on all of it); ``evaluate`` uses those 25. Training takes random 512 px
crops of 2x upscaled images; inference runs on whole images (2x, padded to multiples of 64).

``detect --subset NAME`` is Matterport's: ``OUT/submit.csv`` (``ImageId,EncodedPixels``, one
row per nucleus, overlaps removed, ``<id>,`` for an image without detections) and one PNG per
image. ``detect --image`` is the detect of every sample (PNG + JSON per image).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mrcnn.cli import (
    SampleSpec,
    UsageError,
    add_verbose_argument,
    load_weights,
    main,
    make_config,
    quiet_tensorflow,
)
from mrcnn.config import Config, ConfigError
from mrcnn.data.datasets.kaggle_rle import mask_to_rle, save_submission
from mrcnn.data.datasets.nucleus import (
    SUBSETS,
    NucleusConfig,
    NucleusDataset,
    NucleusInferenceConfig,
    build_augmentation,
)
from mrcnn.data.errors import DatasetError


def nucleus_config(args: argparse.Namespace) -> Config:
    return NucleusConfig() if args.command == "train" else NucleusInferenceConfig()


def load_subset(dataset_dir: str, subset: str) -> NucleusDataset:
    dataset = NucleusDataset()
    dataset.load_nucleus(dataset_dir, subset)
    dataset.prepare()
    return dataset


def load_dataset(args: argparse.Namespace, subset: str) -> NucleusDataset:
    return load_subset(args.dataset, args.subset if subset == "train" else "val")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subset", choices=["train", "stage1_train"], default="train",
                        help="training images: stage1_train without the 25 validation ids "
                             "(train, default) or all of it (stage1_train)")


def submit(argv: Sequence[str]) -> int:
    """Detect nuclei on a subset; write OUT/submit.csv and one PNG per image."""
    parser = argparse.ArgumentParser(prog="nucleus.py detect", description=submit.__doc__)
    parser.add_argument("--dataset", default=SPEC.default_dataset)
    parser.add_argument("--subset", choices=SUBSETS, default="stage1_test")
    parser.add_argument("--weights", default="last")
    parser.add_argument("--logs", default="logs")
    parser.add_argument("--out", default="results/nucleus")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--preset", choices=["tiny"])
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    quiet_tensorflow(args.verbose)
    args.command = "detect"
    try:
        import mrcnn.model as modellib
        from mrcnn.visualize import display_instances

        config = make_config(SPEC, args)
        dataset = load_subset(args.dataset, args.subset)
        model = modellib.MaskRCNN("inference", config, args.logs)
        load_weights(model, args.weights, config)
        out_dir = Path(args.out)
        out_dir.mkdir(parents=True, exist_ok=True)
        lines = []
        for image_id in dataset.image_ids:
            image = dataset.load_image(image_id)
            result = model.detect([image])[0]
            name = dataset.image_info[image_id]["id"]
            lines.append(mask_to_rle(name, result["masks"], result["scores"]))
            # Matterport draws outlines only: boxes and filled masks hide the small nuclei.
            display_instances(image, result["rois"], result["masks"], result["class_ids"],
                              dataset.class_names, result["scores"], title=name,
                              show_bbox=False, show_mask=False,
                              save_path=str(out_dir / f"{name}.png"))
        csv = save_submission(out_dir / "submit.csv", lines)
    except (UsageError, ConfigError, DatasetError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"submission for {dataset.num_images} images written to {csv}")
    return 0


def run(argv: Sequence[str] | None = None) -> int:
    """The command line: ``detect`` without ``--image`` writes the submission."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["detect"] and not any(a.split("=")[0] == "--image" for a in argv):
        return submit(argv[1:])
    return main(SPEC, argv)


SPEC = SampleSpec(
    name="nucleus",
    description=__doc__.splitlines()[0],
    make_config=nucleus_config,
    load_dataset=load_dataset,
    default_dataset="datasets/nucleus",
    add_arguments=add_arguments,
    # Matterport's schedule (from ImageNet weights): heads, then all layers at the same LR.
    schedules={"matterport": (("heads", 20, 1.0), ("all", 40, 1.0)),
               "heads": (("heads", 20, 1.0),)},
    augmentation=build_augmentation,
)

if __name__ == "__main__":
    sys.exit(run())
