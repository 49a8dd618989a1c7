"""Command line of ``samples/person_segmentation.py``: train, evaluate, predict, submission,
remove-background (and make-synthetic for a demo dataset). Exit status 0 on success, 2 on bad
arguments or input with a one-line reason. Batch commands skip bad files and list them.
"""

from __future__ import annotations

import argparse
import json
import logging
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
from unet.imaging import IMAGE_EXTENSIONS, ImageReadError, list_image_files, read_image
from unet.rle import (
    ID_HEADERS,
    encode_rle,
    load_submission_ids,
    validate_submission,
    write_submission,
)
from unet.synthetic import make_synthetic_people
from vision_common.tensorflow_logs import quiet_tensorflow

if TYPE_CHECKING:
    import keras

# TensorFlow/Keras (and scipy, via unet.postprocess) are imported inside the commands that need
# them: ``--help`` and argument errors answer at once; quiet_tensorflow() runs before TF loads.
logger = logging.getLogger(__name__)
# Written by train beside config.json: the data it read (see data_source), so that evaluate can
# say when --split all scores training images.
TRAINED_ON_FILE = "trained_on.json"


class UsageError(ValueError):
    """Bad command-line input; reported as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage too by default)
        self.exit(2, f"error: {message}\n")


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
    parser.add_argument("--split", choices=("all", "val", "train"), default="all",
                        help="evaluate: all = every image of --dataset (default); val / train "
                             "= the held-out / training share of the split train made, for "
                             "the folder the model was trained on")


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
        command.add_argument("--image", required=name != "submission",
                             help="an image file or a folder")
        _add_common(command, "best")
        command.add_argument("--out", help="output folder (submission: CSV path)")
    submission = commands.choices["submission"]
    submission.description = (
        "One row per image: id,rle_mask (column-major, 1-based RLE). --image DIR: every image "
        "file of DIR, rows in sorted file-name order, id = the file's stem. --test-csv FILE: "
        f"ids and their order from its id column ({', '.join(ID_HEADERS)}; any case), each "
        "found in --image DIR (default: the CSV's folder) by file name or stem. An image "
        "that is missing or cannot be read gets an error row (its id, an empty mask), is "
        "named on stderr, and the command exits with status 2 after writing every row.")
    submission.add_argument("--test-csv", help="ids to predict, in order (a sample "
                                               "submission or test list)")
    removal = commands.choices["remove-background"]
    removal.add_argument("--background", help="solid colour instead of transparency")
    removal.add_argument("--feather", type=float, default=0.0, help="soft edge sigma in px")
    removal.add_argument("--save-mask", action="store_true", help="also write the alpha PNG")
    export = commands.add_parser("export", help="SavedModel, LiteRT or ONNX with the resizing "
                                                "and sigmoid inside (unet/export.py)")
    _add_common(export, "best")
    export.add_argument("--format", choices=("saved_model", "tflite", "onnx"), required=True)
    export.add_argument("--out", required=True, help="SavedModel folder or .tflite/.onnx file")
    export.add_argument("--size", type=int, nargs="+", metavar="PX",
                        help="tflite: fixed input H [W] (default: the model's IMAGE_SIZE)")
    export.add_argument("--int8", action="store_true",
                        help="tflite: dynamic-range int8 weights (about 4x smaller)")
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


def data_source(args) -> dict[str, str]:
    """What names the data read: ``--format`` and the resolved folders / files of that format."""
    root = Path(args.dataset)
    names = {"folders": {"images": root / args.images, "masks": root / args.masks},
             "kaggle": {"csv": _under(root, args.csv), "images": _under(root, args.images)},
             "coco": {"annotations": _under(root, args.annotations or ""),
                      "images": _under(root, args.images)}}[args.format]
    return {"format": args.format, **{key: str(path.resolve()) for key, path in names.items()}}


def select_split(args, samples, config) -> list:
    """The samples ``--split`` names; prints how many, and a note when they include training
    images (``--split all`` on the data this run trained on)."""
    if args.split != "all":
        train, val = split_samples(samples, config.VAL_FRACTION, config.SEED)
        chosen = val if args.split == "val" else train
        if not chosen:
            raise UsageError(f"--split {args.split}: the split of {len(samples)} images "
                             f"(VAL_FRACTION={config.VAL_FRACTION}) leaves none; use --split all")
        samples = chosen
    print(f"scored {len(samples)} images (split: {args.split})")
    trained_on = Path(args.logs) / TRAINED_ON_FILE
    if (args.split == "all" and trained_on.is_file()
            and json.loads(trained_on.read_text()) == data_source(args)):
        print("note: the model was trained on this data, so the score includes its training "
              "images; --split val scores only the held-out share")
    return samples


def report_skipped(skipped) -> None:
    for path, reason in skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)


def load_model(args, config) -> keras.Model:
    """The model named by ``--weights`` (a .keras file, last/best of --logs, or a new one)."""
    from unet.models import build_unet
    from unet.saving import load_model as load_saved_model

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
    return load_saved_model(path)


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
    (Path(args.logs) / TRAINED_ON_FILE).write_text(json.dumps(data_source(args), indent=2))
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
    samples = select_split(args, load_samples(args, config), config)
    model = build_inference_model(load_model(args, config), config.INFERENCE_MODE,
                                  config.INFERENCE_HEAD)
    raw, cleaned = SegmentationEvaluator(), SegmentationEvaluator()
    # Trivial baselines a model must beat: every pixel person, every pixel background.
    baselines = {"all_foreground": SegmentationEvaluator(), "all_background": SegmentationEvaluator()}
    for sample in samples:
        image, target = sample.load(config.CHANNELS)
        probability = predict_probability(model, image)
        raw.add(probability > config.THRESHOLD, target, sample.name)
        mask = compute_alpha(probability, config.THRESHOLD, config.MIN_COMPONENT_SIZE,
                             config.FILL_HOLES) > 0
        cleaned.add(mask, target, sample.name)
        baselines["all_foreground"].add(np.ones(target.shape, bool), target, sample.name)
        baselines["all_background"].add(np.zeros(target.shape, bool), target, sample.name)
    metrics = {**raw.summarize(), "postprocessed": cleaned.summarize(),
               "baselines": {name: evaluator.summarize() for name, evaluator in baselines.items()},
               "threshold": config.THRESHOLD, "split": args.split, "images_scored": len(samples),
               "per_image_scores": raw.image_scores}
    print(f"{'metric':<16}{'per image':>10}{'dataset':>10}{'post-proc':>10}"
          f"{'all fg':>10}{'all bg':>10}")
    for key in ("dice", "iou", "pixel_accuracy"):
        print(f"{key:<16}{metrics['per_image'][key]:>10.4f}{metrics['dataset'][key]:>10.4f}"
              f"{metrics['postprocessed']['per_image'][key]:>10.4f}"
              + "".join(f"{metrics['baselines'][name]['per_image'][key]:>10.4f}"
                        for name in ("all_foreground", "all_background")))
    print(f"images: {metrics['images']} (all fg / all bg: the per-image scores of predicting "
          "every pixel person / background)")
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


def _predict_alphas(args, files):
    """Yields ``(path, image, alpha, None)`` per file, or ``(path, None, None, reason)`` for a
    file that is missing (``path`` None) or cannot be read."""
    from unet.inference import predict_probability
    from unet.models import build_inference_model
    from unet.postprocess import compute_alpha

    config = load_config(args)
    model = build_inference_model(load_model(args, config), config.INFERENCE_MODE,
                                  config.INFERENCE_HEAD)
    for path in files:
        if path is None:
            yield None, None, None, "no such image file"
            continue
        try:
            image = read_image(path, config.CHANNELS)
        except ImageReadError as error:
            yield path, None, None, str(error).removeprefix(f"{path}: ")
            continue
        probability = predict_probability(model, image)
        alpha = compute_alpha(probability, config.THRESHOLD, config.MIN_COMPONENT_SIZE,
                              config.FILL_HOLES, getattr(args, "feather", 0.0))
        yield path, image, alpha, None


def _for_each_image(args, handle_image) -> int:
    """Runs ``handle_image(path, image, alpha)`` per input file; bad files are skipped."""
    files, skipped = _input_files(args.image)
    done = 0
    for path, image, alpha, reason in _predict_alphas(args, files):
        if reason is not None:
            skipped.append((str(path), reason))
            continue
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


def _find_images(folder: Path, ids: list[str]) -> list[Path | None]:
    """Per id: ``folder/id`` if it is a file, else the one image file whose stem is the id."""
    by_stem: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            by_stem.setdefault(path.stem, []).append(path)
    found = []
    for image_id in ids:
        matches = [folder / image_id] if (folder / image_id).is_file() else by_stem.get(image_id, [])
        if len(matches) > 1:
            raise UsageError(f"{folder}: id {image_id!r} matches {len(matches)} files "
                             f"({', '.join(path.name for path in matches)})")
        found.append(matches[0] if matches else None)
    return found


def submission_inputs(args) -> tuple[list[str], list[Path | None]]:
    """Row ids and their image files (None: not found), in row order.

    ``--test-csv``: ids and order from the CSV, files in ``--image`` (default: the CSV's
    folder) by name or stem. A plain ``--image`` folder: its image files in sorted file-name
    order, each row named by the file's stem.
    """
    if args.test_csv:
        folder = Path(args.image) if args.image else Path(args.test_csv).parent
        if not folder.is_dir():
            raise UsageError(f"{folder}: not a folder (the images of --test-csv)")
        ids = load_submission_ids(args.test_csv)
        return ids, _find_images(folder, ids)
    if not args.image:
        raise UsageError("submission needs --image DIR (every image in it, by file stem) or "
                         "--test-csv FILE (the ids and their order)")
    files, skipped = _input_files(args.image)
    report_skipped(skipped)
    stems = [path.stem for path in files]
    twins = sorted({stem for stem in stems if stems.count(stem) > 1})
    if twins:
        raise UsageError(f"{args.image}: several files share the id {twins[0]!r} (ids are file "
                         "stems); rename them or pass --test-csv")
    return stems, files


def command_submission(args) -> int:
    ids, files = submission_inputs(args)
    out = Path(args.out or "submission.csv")
    rows, shapes, errors = [], {}, []
    for image_id, (path, _, alpha, reason) in zip(
            ids, _predict_alphas(args, files), strict=True):
        if reason is not None:
            errors.append(image_id)
            print(f"error row {image_id} ({path or 'no file'}): {reason}", file=sys.stderr)
            rows.append((image_id, ""))
            continue
        rows.append((image_id, encode_rle(alpha > 127)))
        shapes[image_id] = alpha.shape
    out.parent.mkdir(parents=True, exist_ok=True)
    write_submission(out, rows)
    validate_submission(out, ids, shapes)
    print(f"wrote {len(rows)} rows to {out} (column-major, 1-indexed RLE), "
          f"{len(errors)} error rows")
    if errors:
        raise UsageError(f"{len(errors)} of {len(rows)} image(s) could not be read "
                         f"({', '.join(errors[:5])}{', ...' if len(errors) > 5 else ''}); "
                         f"their rows in {out} have an empty mask")
    return 0


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


def command_export(args) -> int:
    from unet.export import export_model
    from unet.models import build_inference_model

    if args.weights in ("none", "imagenet"):
        raise UsageError(f"--weights {args.weights} gives an untrained model; pass best, last "
                         "or a .keras PATH")
    if args.size is not None and len(args.size) not in (1, 2):
        raise UsageError(f"--size takes H or H W; got {len(args.size)} numbers")
    size = None if args.size is None else (args.size[0], args.size[-1])
    config = load_config(args)
    model = build_inference_model(load_model(args, config), config.INFERENCE_MODE,
                                  config.INFERENCE_HEAD)
    try:
        path = export_model(model, args.out, args.format, threshold=config.THRESHOLD,
                            size=size, quantize=args.int8)
    except ImportError as error:
        raise UsageError(str(error)) from None
    print(f"wrote {args.format} to {path}")
    return 0


COMMANDS = {"train": command_train, "evaluate": command_evaluate, "predict": command_predict,
            "submission": command_submission, "remove-background": command_remove_background,
            "make-synthetic": command_make_synthetic, "export": command_export}


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
