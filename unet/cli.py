"""Command line of ``samples/person_segmentation.py``: train, evaluate, predict, submission,
remove-background (and make-synthetic for a demo dataset). Exit status 0 on success, 2 on bad
arguments or input with a one-line reason. Batch commands skip bad files and list them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from unet.config import SegmentationConfig, parse_setting
from unet.data import (
    check_samples,
    load_coco_persons,
    load_folder_pairs,
    load_kaggle_csv,
    split_samples,
)
from unet.imaging import ImageReadError, list_image_files, read_image
from unet.rle import encode_rle, validate_submission, write_submission
from unet.synthetic import make_synthetic_people

if TYPE_CHECKING:
    import keras

# TensorFlow/Keras (and scipy, via unet.postprocess) are imported inside the commands that need
# them: ``--help`` and argument errors answer at once; quiet_tensorflow() runs before TF loads.
logger = logging.getLogger(__name__)


class UsageError(ValueError):
    """Bad command-line input; reported as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage too by default)
        self.exit(2, f"error: {message}\n")


def quiet_tensorflow(verbose: bool = False) -> None:
    """Hide TensorFlow's C++ INFO/WARNING lines; call before TensorFlow is first imported.

    Sets ``TF_CPP_MIN_LOG_LEVEL=2`` (errors still print) unless the user set it or ``verbose``.
    """
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _add_verbose(parser):
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's C++ log lines (start-up, graph optimizer)")


def _add_common(parser, weights_default):
    _add_verbose(parser)
    parser.add_argument("--weights", default=weights_default,
                        help="none | imagenet | last | best | PATH to a .keras file")
    parser.add_argument("--logs", default="logs/person_segmentation",
                        help="run folder: config.json, checkpoints, history, curves")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting, e.g. --set ARCH=attention --set IMAGE_SIZE=128")


def _add_dataset(parser):
    parser.add_argument("--dataset", default="datasets/person_segmentation")
    parser.add_argument("--format", choices=("folders", "kaggle", "coco"), default="folders")
    parser.add_argument("--images", default="images", help="image folder inside --dataset")
    parser.add_argument("--masks", default="masks", help="mask folder inside --dataset")
    parser.add_argument("--csv", default="train.csv", help="Kaggle RLE CSV (--format kaggle)")
    parser.add_argument("--annotations", help="COCO JSON (--format coco)")
    parser.add_argument("--limit", type=int, help="use at most N images")
    parser.add_argument("--split", choices=("val", "all"), default="val",
                        help="evaluate the held-out split or every image")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="person_segmentation.py", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = commands.add_parser("train", help="train a U-Net")
    _add_dataset(train)
    _add_common(train, "none")
    train.add_argument("--epochs", type=int, default=30)
    train.add_argument("--steps-per-epoch", type=int)
    train.add_argument("--layers", choices=("all", "heads"), default="all",
                       help="heads: freeze the keras.applications encoder")
    evaluate = commands.add_parser("evaluate", help="Dice/IoU/pixel accuracy, JSON + table")
    _add_dataset(evaluate)
    _add_common(evaluate, "best")
    evaluate.add_argument("--out", help="metrics JSON path")
    for name, text in (("predict", "mask PNGs"), ("submission", "Kaggle RLE CSV"),
                       ("remove-background", "RGBA cut-outs at the original size")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--image", required=True, help="an image file or a folder")
        _add_common(command, "best")
        command.add_argument("--out", help="output folder (submission: CSV path)")
    removal = commands.choices["remove-background"]
    removal.add_argument("--background", help="solid colour instead of transparency")
    removal.add_argument("--feather", type=float, default=0.0, help="soft edge sigma in px")
    removal.add_argument("--save-mask", action="store_true", help="also write the alpha PNG")
    synthetic = commands.add_parser("make-synthetic", help="write a generated demo dataset")
    synthetic.add_argument("--out", required=True)
    synthetic.add_argument("--count", type=int, default=64)
    synthetic.add_argument("--size", type=int, default=128)
    _add_verbose(synthetic)
    return parser


def load_config(args) -> SegmentationConfig:
    """Saved run config (if any) + ``--set`` overrides."""
    path = Path(args.logs) / "config.json"
    config = SegmentationConfig.load(path) if path.is_file() else SegmentationConfig()
    return config.override(**dict(parse_setting(text) for text in args.set))


def _under(root: Path, name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() or path.exists() else root / name


def load_samples(args, config):
    """Dataset records for ``--format``; bad files are reported and left out."""
    root = Path(args.dataset)
    if args.format == "folders":
        samples, skipped = load_folder_pairs(root, args.images, args.masks)
    elif args.format == "kaggle":
        samples, skipped = load_kaggle_csv(_under(root, args.csv), _under(root, args.images))
    else:
        if not args.annotations:
            raise UsageError("--format coco needs --annotations FILE.json")
        samples, skipped = load_coco_persons(
            _under(root, args.annotations), _under(root, args.images),
            min_area=config.COCO_MIN_AREA, include_crowd=config.COCO_INCLUDE_CROWD)
    samples = samples[: args.limit] if args.limit else samples
    samples, bad = check_samples(samples)
    report_skipped(skipped + bad)
    if not samples:
        raise UsageError(f"{root}: no usable image/mask pair")
    return samples


def report_skipped(skipped) -> None:
    for path, reason in skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)


def load_model(args, config) -> keras.Model:
    """The model named by ``--weights`` (a .keras file, last/best of --logs, or a new one)."""
    import keras

    import unet.losses
    import unet.metrics  # noqa: F401 (with unet.models: registers the saved custom objects)
    from unet.models import build_unet

    choice = args.weights
    if choice in ("none", "imagenet"):
        size = config.IMAGE_SIZE
        return build_unet(
            config.ARCH, (size, size, config.CHANNELS), depth=config.DEPTH,
            base_filters=config.BASE_FILTERS, dropout=config.DROPOUT, logits=config.LOGITS,
            padding=config.PADDING, deep_supervision=config.DEEP_SUPERVISION,
            encoder=config.ENCODER, encoder_weights=None if choice == "none" else "imagenet")
    path = Path(args.logs) / f"{choice}.keras" if choice in ("last", "best") else Path(choice)
    if not path.is_file():
        raise UsageError(f"weights file {path} not found")
    return keras.models.load_model(path)


def command_train(args) -> int:
    import keras

    from unet.models import set_input_normalization
    from unet.pipeline import compute_pixel_stats, make_dataset, steps_per_pass
    from unet.training import compile_model, completed_epochs, fit

    config = load_config(args)
    if args.weights == "imagenet" and config.ARCH != "encoder":
        raise UsageError("--weights imagenet needs --set ARCH=encoder")
    samples = load_samples(args, config)
    train_samples, val_samples = split_samples(samples, config.VAL_FRACTION, config.SEED)
    if not val_samples:
        raise UsageError("need at least 2 images to hold one out for validation")
    keras.utils.set_random_seed(config.SEED)
    model = load_model(args, config)
    initial_epoch = completed_epochs(args.logs) if args.weights == "last" else 0
    if args.weights == "none" and config.ARCH != "encoder":
        set_input_normalization(model, *compute_pixel_stats(train_samples, config.CHANNELS))
    if args.layers == "heads":
        if not any(layer.name == "encoder" for layer in model.layers):
            raise UsageError("--layers heads freezes a keras.applications encoder: it needs "
                             "--set ARCH=encoder")
        model.get_layer("encoder").trainable = False
    compile_model(model, config.LOSS, config.LEARNING_RATE, config.RUN_EAGERLY)
    Path(args.logs).mkdir(parents=True, exist_ok=True)
    config.save(Path(args.logs) / "config.json")
    # Repeated passes + explicit steps: Keras shows "N/N" and never runs out of input, also
    # when an unreadable file is skipped (which leaves the dataset's length unknown).
    datasets = [
        make_dataset(part, model.input_shape[1:3], config.BATCH_SIZE, channels=config.CHANNELS,
                     augment=config.AUGMENT and is_train, shuffle=is_train, repeat=True,
                     target_hw=model.output_shape[1:3] if len(model.outputs) == 1
                     else None, heads=len(model.outputs), seed=config.SEED)
        for part, is_train in ((train_samples, True), (val_samples, False))
    ]
    history = fit(model, *datasets, args.logs, args.epochs,
                  args.steps_per_epoch or steps_per_pass(len(train_samples), config.BATCH_SIZE),
                  steps_per_pass(len(val_samples), config.BATCH_SIZE),
                  patience=config.PATIENCE, initial_epoch=initial_epoch)
    best = max(value for key, values in history.history.items()
               if key.startswith("val_") and key.endswith("dice") for value in values)
    print(f"{'train images':<16}{len(train_samples)}\n{'val images':<16}{len(val_samples)}\n"
          f"{'best val Dice':<16}{best:.4f}\n{'checkpoints':<16}{args.logs}")
    return 0


def command_evaluate(args) -> int:
    from unet.inference import predict_probability
    from unet.metrics import SegmentationEvaluator
    from unet.models import build_inference_model
    from unet.postprocess import compute_alpha

    config = load_config(args)
    samples = load_samples(args, config)
    if args.split == "val":
        samples = split_samples(samples, config.VAL_FRACTION, config.SEED)[1] or samples
    model = build_inference_model(load_model(args, config), config.INFERENCE_MODE,
                                  config.INFERENCE_HEAD)
    raw, cleaned = SegmentationEvaluator(), SegmentationEvaluator()
    for sample in samples:
        image, target = sample.load(config.CHANNELS)
        probability = predict_probability(model, image)
        raw.add(probability > config.THRESHOLD, target, sample.name)
        mask = compute_alpha(probability, config.THRESHOLD, config.MIN_COMPONENT_SIZE,
                             config.FILL_HOLES) > 0
        cleaned.add(mask, target, sample.name)
    metrics = {**raw.summarize(), "postprocessed": cleaned.summarize(),
               "threshold": config.THRESHOLD, "split": args.split,
               "per_image_scores": raw.image_scores}
    print(f"{'metric':<16}{'per image':>10}{'dataset':>10}{'post-proc':>10}")
    for key in ("dice", "iou", "pixel_accuracy"):
        print(f"{key:<16}{metrics['per_image'][key]:>10.4f}{metrics['dataset'][key]:>10.4f}"
              f"{metrics['postprocessed']['per_image'][key]:>10.4f}")
    print(f"images: {metrics['images']}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(metrics, indent=2))
    return 0


def _input_files(path_text: str):
    path = Path(path_text)
    if path.is_dir():
        return list_image_files(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file or folder")
    return [path], []


def _for_each_image(args, handle_image) -> int:
    """Runs ``handle_image(path, image, alpha)`` per input file; bad files are skipped."""
    from unet.inference import predict_probability
    from unet.models import build_inference_model
    from unet.postprocess import compute_alpha

    config = load_config(args)
    files, skipped = _input_files(args.image)
    model = build_inference_model(load_model(args, config), config.INFERENCE_MODE,
                                  config.INFERENCE_HEAD)
    done = 0
    for path in files:
        try:
            image = read_image(path, config.CHANNELS)
        except ImageReadError as error:
            skipped.append((str(path), str(error).removeprefix(f"{path}: ")))
            continue
        probability = predict_probability(model, image)
        alpha = compute_alpha(probability, config.THRESHOLD, config.MIN_COMPONENT_SIZE,
                              config.FILL_HOLES, getattr(args, "feather", 0.0))
        handle_image(path, image, alpha)
        done += 1
    report_skipped(skipped)
    print(f"processed {done} image(s), skipped {len(skipped)}")
    return 0 if done else 2


def command_predict(args) -> int:
    out = Path(args.out or "predictions")
    out.mkdir(parents=True, exist_ok=True)
    return _for_each_image(args, lambda path, image, alpha: Image.fromarray(
        np.where(alpha > 127, 255, 0).astype(np.uint8)).save(out / f"{path.stem}_mask.png"))


def command_remove_background(args) -> int:
    from unet.postprocess import compose_cutout, parse_color

    out = Path(args.out or "cutouts")
    out.mkdir(parents=True, exist_ok=True)
    background = parse_color(args.background) if args.background else None

    def save(path, image, alpha):
        rgb = image if image.shape[-1] == 3 else read_image(path, 3)
        Image.fromarray(compose_cutout(rgb, alpha, background), "RGBA").save(
            out / f"{path.stem}.png")
        if args.save_mask:
            Image.fromarray(alpha).save(out / f"{path.stem}_alpha.png")

    return _for_each_image(args, save)


def command_submission(args) -> int:
    rows, shapes = [], {}

    def collect(path, image, alpha):
        rows.append((path.stem, encode_rle(alpha > 127)))
        shapes[path.stem] = alpha.shape

    status = _for_each_image(args, collect)
    out = Path(args.out or "submission.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_submission(out, rows)
    validate_submission(out, [image_id for image_id, _ in rows], shapes)
    print(f"wrote {len(rows)} rows to {out} (column-major, 1-indexed RLE)")
    return status


def command_make_synthetic(args) -> int:
    images, masks = make_synthetic_people(args.count, args.size, seed=0)
    root = Path(args.out)
    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for index, (image, mask) in enumerate(zip(images, masks, strict=True)):
        Image.fromarray(image).save(root / "images" / f"person_{index:04d}.png")
        Image.fromarray(mask * 255).save(root / "masks" / f"person_{index:04d}.png")
    print(f"wrote {args.count} image/mask pairs to {root}")
    return 0


COMMANDS = {"train": command_train, "evaluate": command_evaluate, "predict": command_predict,
            "submission": command_submission, "remove-background": command_remove_background,
            "make-synthetic": command_make_synthetic}


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    quiet_tensorflow(args.verbose)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError, ImageReadError) as error:
        print(f"error: {error}".splitlines()[0], file=sys.stderr)
        return 2
