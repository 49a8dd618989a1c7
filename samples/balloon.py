"""Mask R-CNN on Matterport's balloon dataset (VIA annotations), with the color-splash effect.

    python samples/balloon.py train --dataset datasets/balloon --weights coco --logs logs
    python samples/balloon.py evaluate --dataset datasets/balloon --weights last --out metrics.json
    python samples/balloon.py detect --image photo.jpg --weights last --out detections/
    python samples/balloon.py splash --image photo.jpg --weights last --out splash/
    python samples/balloon.py splash --video clip.mp4 --weights last --out splash/

Layout: ``DIR/{train,val}/*.jpg`` with ``via_region_data.json`` (VIA 1.x or 2.x) in each folder
(see datasets/README.md). Any VIA project works: ``--class-attribute NAME`` reads the class of
each region from that region attribute instead of treating every region as a balloon.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

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
from mrcnn.data.dataset import DatasetError
from mrcnn.data.datasets.via import ViaDataset


class BalloonConfig(Config):
    """Matterport's balloon settings: one class, 100 steps per epoch, confident detections."""

    NAME = "balloon"
    IMAGES_PER_GPU = 2
    NUM_CLASSES = 1 + 1
    STEPS_PER_EPOCH = 100
    DETECTION_MIN_CONFIDENCE = 0.9


class BalloonDataset(ViaDataset):
    """Matterport's ``BalloonDataset``: one class, ``balloon``, from source ``"balloon"``."""

    SOURCE = "balloon"

    def load_balloon(self, dataset_dir: str | Path, subset: str) -> None:
        """Register ``dataset_dir/subset`` ("train" or "val"), as Matterport's loader does."""
        if subset not in ("train", "val"):
            raise DatasetError(f"subset={subset!r}; expected 'train' or 'val'")
        self.load_via(dataset_dir, subset, class_names=["balloon"])


def load_dataset(args: argparse.Namespace, subset: str) -> ViaDataset:
    dataset = ViaDataset()
    class_names = None if args.class_attribute else ["balloon"]
    dataset.load_via(args.dataset, subset, class_attribute=args.class_attribute,
                     class_names=class_names)
    dataset.prepare()
    return dataset


def balloon_config(args: argparse.Namespace) -> Config:
    if not args.class_attribute:
        return BalloonConfig()
    # With a class attribute, the class count comes from the training annotations.
    names = load_dataset(args, "train").class_names
    return BalloonConfig().override(NUM_CLASSES=len(names))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--class-attribute", help="region attribute that names each region's class")


def color_splash(image: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """The image in grayscale except where any instance mask ([H, W, N] bool) is set."""
    gray = np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=-1)
    if masks.shape[-1] == 0:
        return gray
    return np.where(masks.any(axis=-1, keepdims=True), image, gray)


def splash(argv: list[str]) -> int:
    """Write the color splash of an image (PNG) or a video (AVI, Motion-JPEG)."""
    parser = argparse.ArgumentParser(prog="balloon.py splash", description=splash.__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", help="an image file")
    source.add_argument("--video", help="a video file OpenCV can read")
    parser.add_argument("--weights", default="last")
    parser.add_argument("--logs", default="logs")
    parser.add_argument("--out", default="splash")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--preset", choices=["tiny"])
    add_verbose_argument(parser)
    parser.add_argument("--dataset", default="datasets/balloon")
    add_arguments(parser)
    args = parser.parse_args(argv)
    quiet_tensorflow(args.verbose)
    args.command = "splash"
    try:
        import mrcnn.model as modellib

        config = make_config(SPEC, args)
        model = modellib.MaskRCNN("inference", config, args.logs)
        load_weights(model, args.weights, config)
        out_dir = Path(args.out)
        out_dir.mkdir(parents=True, exist_ok=True)
        if args.image:
            written = _splash_image(model, Path(args.image), out_dir)
        else:
            written = _splash_video(model, Path(args.video), out_dir)
    except (UsageError, ConfigError, DatasetError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"splash written to {written}")
    return 0


def _splash_image(model, path: Path, out_dir: Path) -> Path:
    from mrcnn.data.image_io import load_rgb_image

    image = load_rgb_image(path)
    result = model.detect([image])[0]
    target = out_dir / f"{path.stem}_splash.png"
    cv2.imwrite(str(target), color_splash(image, result["masks"])[..., ::-1])
    return target


def _splash_video(model, path: Path, out_dir: Path) -> Path:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise UsageError(f"--video {path}: OpenCV cannot read this file")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    target = out_dir / f"{path.stem}_splash.avi"
    writer = None
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            image = frame[..., ::-1]
            splashed = color_splash(image, model.detect([image])[0]["masks"])
            if writer is None:
                height, width = image.shape[:2]
                writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"MJPG"), fps,
                                         (width, height))
            writer.write(np.ascontiguousarray(splashed[..., ::-1]))
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if writer is None:
        raise UsageError(f"--video {path}: no frame could be read")
    return target


SPEC = SampleSpec(
    name="balloon",
    description=__doc__.splitlines()[0],
    make_config=balloon_config,
    load_dataset=load_dataset,
    default_dataset="datasets/balloon",
    add_arguments=add_arguments,
    # Matterport's balloon sample trains the heads only, from COCO weights.
    schedules={"heads": (("heads", 30, 1.0),),
               "matterport": (("heads", 30, 1.0), ("all", 40, 0.1))},
)

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "splash":
        sys.exit(splash(sys.argv[2:]))
    sys.exit(main(SPEC))
