"""Command line of the face-mask sample: ``train``, ``evaluate``, ``predict``, ``submission``.

Flags are named as in the other ``samples/*.py`` scripts (``--dataset``, ``--weights``,
``--logs``, ``--epochs``, ``--set KEY=VALUE``, ...). Exit status 0 on success and 2 with a
one-line reason on bad arguments or input. Outputs under ``--logs``: ``localizer.keras`` +
``localizer.json`` (class names and the settings used), ``history.csv``, ``curves.png`` and
``tensorboard/``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from localization.annotations import (
    TEST_LIST_COLUMNS,
    load_annotations,
    load_filename_list,
    resolve_image_path,
)
from localization.config import LocalizerConfig, tiny_config
from localization.voc import find_voc_folder, load_voc_annotations
from vision_common.tensorflow_logs import quiet_tensorflow

# TensorFlow/Keras modules are imported inside the commands that need them: ``--help`` and
# argument errors answer at once, and quiet_tensorflow() runs before TensorFlow loads.
logger = logging.getLogger(__name__)
MODEL_FILE = "localizer.keras"


def _find_csv(dataset: Path, csv_name: str | None) -> Path:
    if csv_name:
        path = Path(csv_name) if Path(csv_name).is_absolute() else dataset / csv_name
        if not path.is_file():
            raise FileNotFoundError(f"CSV not found: {path}")
        return path
    if not dataset.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {dataset}")
    candidates = sorted(dataset.glob("*.csv"))
    if len(candidates) != 1:
        raise ValueError(f"{dataset} holds {len(candidates)} CSV files "
                         f"({', '.join(p.name for p in candidates) or 'none'}); name one with --csv")
    return candidates[0]


def _config(args) -> LocalizerConfig:
    config = tiny_config() if args.preset == "tiny" else LocalizerConfig()
    return config.override(args.set or [])


def _model_path(args) -> Path:
    if args.weights in ("last", None):
        path = Path(args.logs) / MODEL_FILE
        if not path.is_file():
            raise FileNotFoundError(f"--weights=last: no {MODEL_FILE} under {args.logs}; "
                                    "train first or pass --weights PATH")
        return path
    if args.weights in ("none", "imagenet"):
        raise ValueError(f"--weights={args.weights} gives an untrained model; "
                         "pass last or a .keras PATH")
    return Path(args.weights)


def _voc_folder(dataset: Path, fmt: str, csv_name: str | None) -> Path | None:
    """The folder of VOC XML files to read, or None to read a CSV (``--format auto|csv|voc``)."""
    if fmt == "csv" or (fmt == "auto" and csv_name):
        return None
    if not dataset.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {dataset}")
    folder = find_voc_folder(dataset)
    if fmt == "voc":
        if folder is None and not any(dataset.glob("*.xml")):
            raise FileNotFoundError(f"--format voc: no *.xml files in {dataset}/annotations, "
                                    f"{dataset}/Annotations or {dataset}")
        return folder or dataset
    # test.csv is the submission list (datasets/README.md), not annotations.
    if folder is not None and any(p.name != "test.csv" for p in dataset.glob("*.csv")):
        raise ValueError(f"{dataset} holds both *.csv and {folder.name}/*.xml annotations; "
                         "pass --format csv (or --csv NAME) or --format voc")
    return folder


def _load_table(args, config: LocalizerConfig, class_names=None):
    dataset = Path(args.dataset)
    options = {"class_names": class_names or config.CLASS_NAMES,
               "multi_box_policy": config.MULTI_BOX_POLICY, "on_bad_row": config.ON_BAD_ROW}
    voc_folder = _voc_folder(dataset, getattr(args, "format", "auto"), args.csv)
    if voc_folder is not None:
        return load_voc_annotations(voc_folder, dataset, **options)
    return load_annotations(_find_csv(dataset, args.csv), dataset,
                            coordinates=config.COORDINATES, **options)


def command_train(args) -> int:
    import keras

    from localization.augment import BoxAugmenter
    from localization.data import (
        build_dataset,
        compute_channel_stats,
        samples_to_arrays,
        stratified_split,
    )
    from localization.model import build_localizer, get_input_channels, get_input_size
    from localization.training import (
        build_callbacks,
        compile_localizer,
        load_localizer,
        save_localizer,
        save_training_curves,
    )

    config = _config(args)
    keras.utils.set_random_seed(config.SEED)
    table = _load_table(args, config)
    train_samples, val_samples = stratified_split(table.samples, config.VAL_FRACTION, config.SEED)
    if not val_samples:
        raise ValueError("the split left no validation images; add images or raise VAL_FRACTION")
    size = (config.INPUT_SIZE, config.INPUT_SIZE)
    train_arrays = samples_to_arrays(train_samples, size, config.CHANNELS)
    val_arrays = samples_to_arrays(val_samples, size, config.CHANNELS)
    mean, std = compute_channel_stats(train_arrays[0])
    class_names = table.class_names
    if args.weights in ("none", "imagenet"):
        model = build_localizer(num_classes=len(class_names), mean=mean, std=std,
                                backbone_weights="imagenet" if args.weights == "imagenet" else None,
                                **config.model_kwargs())
    else:
        model, saved_names = load_localizer(_model_path(args))
        if saved_names != class_names:
            raise ValueError(f"the model predicts {saved_names} but the CSV has {class_names}")
        if get_input_size(model) != size:
            raise ValueError(f"the model expects {get_input_size(model)} px, INPUT_SIZE is {size}")
        if get_input_channels(model) != config.CHANNELS:
            raise ValueError(f"the model expects {get_input_channels(model)} channels, CHANNELS "
                             f"is {config.CHANNELS}")
    compile_localizer(model, alpha=config.ALPHA, box_loss=config.BOX_LOSS,
                      class_weights=config.CLASS_WEIGHTS, backbone_lr=config.BACKBONE_LR,
                      class_head_lr=config.CLASS_HEAD_LR, box_head_lr=config.BOX_HEAD_LR,
                      weight_decay=config.WEIGHT_DECAY, jit_compile=config.JIT_COMPILE)
    augmenter = BoxAugmenter(seed=config.SEED, channels=config.CHANNELS) if config.AUGMENT \
        else None
    # An endless stream, an epoch of one pass unless --steps-per-epoch says otherwise: a new
    # order and new augmentations every epoch on both pipelines (a finite PyDataset has one).
    train_data = build_dataset(*train_arrays, config.BATCH_SIZE, augment=augmenter, shuffle=True,
                               repeat=True, seed=config.SEED)
    steps_per_epoch = args.steps_per_epoch or math.ceil(len(train_samples) / config.BATCH_SIZE)
    val_data = build_dataset(*val_arrays, config.BATCH_SIZE)
    logs = Path(args.logs)
    logs.mkdir(parents=True, exist_ok=True)
    print(f"classes: {class_names}; {len(train_samples)} train / {len(val_samples)} val samples; "
          f"mean={np.round(mean, 1).tolist()} std={np.round(std, 1).tolist()}")
    history = model.fit(train_data, validation_data=val_data, epochs=args.epochs,
                        steps_per_epoch=steps_per_epoch, verbose=1, shuffle=False,
                        callbacks=build_callbacks(logs, patience=config.PATIENCE,
                                                  tensorboard=config.TENSORBOARD))
    path = save_localizer(model, logs / MODEL_FILE, class_names,
                          {"config": config.to_dict(), "mean": mean, "std": std,
                           "csv": str(table.source), "trained_on": _trained_on(args, table)})
    curves = save_training_curves(history.history, logs / "curves.png")
    print(f"saved {path} and {curves}")
    return 0


def _metrics_table(metrics: dict) -> str:
    joint = "accuracy_at_iou50"
    lines = [f"{'class':24} {'images':>7} {'mean IoU':>9} {'accuracy':>9} {'acc@IoU.5':>10}"]
    rows = [*metrics["per_class"].items(), ("all", metrics)]
    for name, values in rows:
        cells = [f"{values[key]:.4f}" if values[key] is not None else "-"
                 for key in ("mean_iou", "accuracy", joint)]
        lines.append(f"{name:24} {values['images']:>7} {cells[0]:>9} {cells[1]:>9} {cells[2]:>10}")
    return "\n".join(lines)


def _trained_on(args, table) -> dict[str, str]:
    """What names the data a model saw: the dataset folder and the annotations read in it."""
    return {"dataset": str(Path(args.dataset).resolve()),
            "annotations": str(Path(table.source).resolve())}


def _evaluation_samples(args, table, config: LocalizerConfig, sidecar: dict) -> list:
    """The samples ``--split`` and ``--limit`` select; prints how many and what they are."""
    from localization.data import stratified_split

    samples = table.samples
    if args.split != "all":
        train, val = stratified_split(samples, config.VAL_FRACTION, config.SEED)
        samples = val if args.split == "val" else train
        if not samples:
            raise ValueError(f"--split {args.split}: the split of {len(table.samples)} images "
                             f"(VAL_FRACTION={config.VAL_FRACTION}) leaves none; use --split all")
    limited = bool(args.limit) and args.limit < len(samples)
    samples = samples[:args.limit] if limited else samples
    print(f"scored {len(samples)} images (split: {args.split}"
          f"{f', the first {args.limit} by --limit' if limited else ''})")
    if args.split == "all" and sidecar.get("trained_on") == _trained_on(args, table):
        print("note: the model was trained on this folder, so the score includes its training "
              "images; --split val scores only the held-out share")
    return samples


def command_evaluate(args) -> int:
    from localization.data import stratified_split
    from localization.inference import predict_images
    from localization.metrics import baseline_metrics, compute_localization_metrics
    from localization.training import load_localizer

    model_path = _model_path(args)
    model, class_names = load_localizer(model_path)
    sidecar = json.loads(model_path.with_suffix(".json").read_text())
    saved = sidecar.get("config", {})
    config = _config(args)
    config.override([f"{key}={value!r}" for key, value in saved.items()
                     if key in ("VAL_FRACTION", "SEED", "MULTI_BOX_POLICY", "COORDINATES")])
    config.override(args.set or [])
    table = _load_table(args, config, class_names)
    samples = _evaluation_samples(args, table, config, sidecar)
    predictions = predict_images(model, [s.path for s in samples])
    metrics = compute_localization_metrics(
        np.array([s.box for s in samples]), [s.class_index for s in samples],
        np.array([p.box for p in predictions]), [p.class_index for p in predictions], class_names)
    train_samples = stratified_split(table.samples, config.VAL_FRACTION, config.SEED)[0] \
        or table.samples
    baselines = baseline_metrics(np.array([s.box for s in train_samples]),
                                 [s.class_index for s in train_samples],
                                 np.array([s.box for s in samples]),
                                 [s.class_index for s in samples], class_names)
    metrics.update({"split": args.split, "images_scored": len(samples), "model": str(model_path),
                    "baselines": baselines})
    print(_metrics_table(metrics))
    majority, mean_box = baselines["majority_class"], baselines["mean_box"]
    print(f"baselines (from the {baselines['training_images']} training images of this folder's "
          f"split): always '{majority['class']}': accuracy {majority['accuracy']:.4f}; the mean "
          f"training box: mean IoU {mean_box['mean_iou']:.4f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(metrics, indent=2))
        print(f"wrote {args.out}")
    return 0


def command_predict(args) -> int:
    import cv2

    from localization.images import load_image_channels, to_display_rgb
    from localization.inference import list_images, predict_images
    from localization.model import get_input_channels
    from localization.training import load_localizer
    from localization.visualize import draw_localization

    model, class_names = load_localizer(_model_path(args))
    paths = list_images(args.image)
    truth = {}
    if args.dataset:
        table = _load_table(args, _config(args), class_names)
        truth = {s.path.resolve(): s for s in table.samples}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for prediction in predict_images(model, paths):
        image = to_display_rgb(load_image_channels(prediction.path, get_input_channels(model)))
        label = f"{class_names[prediction.class_index]} {prediction.score:.2f}"
        sample = truth.get(prediction.path.resolve())
        gt_box = gt_label = None
        if sample is not None:
            width, height = prediction.image_size
            gt_box = np.array(sample.box) * [width, height, width, height]
            gt_label = class_names[sample.class_index]
        drawn = draw_localization(image, prediction.pixel_box, label, gt_box, gt_label)
        target = out / f"{prediction.path.stem}.png"
        cv2.imwrite(str(target), np.ascontiguousarray(drawn[..., ::-1]))
        records.append({"image": str(prediction.path), "class": class_names[prediction.class_index],
                        "score": prediction.score, "box": prediction.pixel_box.round(1).tolist(),
                        "ground_truth": gt_label})
    (out / "predictions.json").write_text(json.dumps(records, indent=2))
    print(f"wrote {len(records)} PNGs and predictions.json to {out}")
    return 0


def _submission_inputs(args) -> tuple[list[str], list[Path | None], Path]:
    """Row names, their image paths (None: not found) and the folder searched.

    ``--test-csv`` (or ``DATASET/test.csv``) gives the names and their order, images looked up
    in ``--image``, ``--dataset`` or the CSV's folder (each with its ``images/``); a plain
    ``--image`` folder gives its image files in sorted file-name order.
    """
    from localization.inference import list_images

    if args.test_csv or (args.dataset and not args.image):
        test_csv = Path(args.test_csv) if args.test_csv else Path(args.dataset) / "test.csv"
        names = load_filename_list(test_csv)
        root = Path(args.image or args.dataset or test_csv.parent)
        if not root.is_dir():
            raise FileNotFoundError(f"image folder not found: {root}")
        return names, [resolve_image_path(root, name) for name in names], root
    if not args.image:
        raise ValueError("submission needs --image DIR (every image in it, by file name) or "
                         "--test-csv FILE (the file names and their order)")
    paths = list_images(args.image)
    return [path.name for path in paths], paths, Path(args.image)


# What PIL raises for a missing, truncated, non-image or decompression-bomb file.
IMAGE_READ_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def _predict_or_reason(model, paths: list[Path | None]) -> list:
    """A Prediction per path, or why there is none (the path is missing or unreadable)."""
    from localization.inference import predict_images

    def predict_one(path):
        if path is None:
            return "not found"
        try:
            return predict_images(model, [path])[0]
        except IMAGE_READ_ERRORS as error:
            return f"not a readable image ({' '.join(str(error).split())})"

    results = []
    for start in range(0, len(paths), 16):
        chunk = paths[start:start + 16]
        if None not in chunk:
            try:
                results.extend(predict_images(model, chunk))
                continue
            except IMAGE_READ_ERRORS:
                pass  # find which file it was, one at a time
        results.extend(predict_one(path) for path in chunk)
    return results


def command_submission(args) -> int:
    from localization.inference import write_submission
    from localization.training import load_localizer

    names, paths, root = _submission_inputs(args)
    if not names:
        raise ValueError("the submission has no rows")
    model, class_names = load_localizer(_model_path(args))
    results = _predict_or_reason(model, paths)
    errors = [(name, result) for name, result in zip(names, results, strict=True)
              if isinstance(result, str)]
    path = write_submission(args.out, names, [None if isinstance(result, str) else result
                                              for result in results], class_names)
    print(f"wrote {path} ({len(names)} rows, {len(errors)} error rows)")
    for name, reason in errors:
        print(f"error row {name}: {reason} (under {root})", file=sys.stderr)
    if errors:
        raise ValueError(f"{len(errors)} of {len(names)} image(s) could not be read "
                         f"({', '.join(name for name, _ in errors[:5])}"
                         f"{', ...' if len(errors) > 5 else ''}); "
                         f"their rows in {path} have an empty class and box")
    return 0


def command_export(args) -> int:
    from localization.export import export_localizer
    from localization.training import load_localizer

    if args.size is not None and len(args.size) not in (1, 2):
        raise ValueError(f"--size takes H or H W; got {len(args.size)} numbers")
    size = None if args.size is None else (args.size[0], args.size[-1])
    model, class_names = load_localizer(_model_path(args))
    try:
        path = export_localizer(model, args.out, args.format, size=size, quantize=args.int8,
                                class_names=class_names if args.format == "saved_model" else None)
    except ImportError as error:
        raise ValueError(str(error)) from None
    print(f"wrote {args.format} to {path} (classes: {', '.join(class_names)})")
    return 0


def build_parser(prog: str = "face_mask.py") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="One box + one class per image "
                                     "(face mask / no mask), from a CSV or a PASCAL VOC XML folder.")
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name, handler, help_text, dataset_required):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--dataset", required=dataset_required,
                         help="folder with the images (or images/) and the CSV, or VOC XML files "
                              "in annotations/")
        sub.add_argument("--csv", help="annotation CSV inside --dataset (default: the one *.csv)")
        sub.add_argument("--format", choices=("auto", "csv", "voc"), default="auto",
                         help="annotations: auto = VOC when DATASET/annotations/ holds *.xml "
                              "(Kaggle's face-mask set), else the CSV")
        sub.add_argument("--logs", default="logs/face_mask", help="training outputs folder")
        sub.add_argument("--set", action="append", metavar="KEY=VALUE",
                         help="override a LocalizerConfig field (repeatable)")
        sub.add_argument("--preset", choices=("default", "tiny"), default="default",
                         help="tiny: 32 px, narrow layers (smoke runs)")
        sub.add_argument("--verbose", action="store_true",
                         help="show TensorFlow's C++ log lines (start-up, graph optimizer)")
        sub.set_defaults(handler=handler)
        return sub

    train = add("train", command_train, "train on a stratified train split", True)
    train.add_argument("--weights", default="none", help="none | imagenet | last | PATH.keras")
    train.add_argument("--epochs", type=int, default=50)
    train.add_argument("--steps-per-epoch", type=int, default=None)
    evaluate = add("evaluate", command_evaluate, "metrics JSON + table", True)
    evaluate.add_argument("--weights", default="last", help="last | PATH.keras")
    evaluate.add_argument("--split", choices=("all", "val", "train"), default="all",
                          help="all: every image of --dataset (default); val / train: the "
                               "held-out / training share of the split train made, for the "
                               "folder the model was trained on")
    evaluate.add_argument("--limit", type=int, default=None, help="score the first N images")
    evaluate.add_argument("--out", help="metrics JSON path")
    predict = add("predict", command_predict, "PNGs with GT (green) and prediction (red)", False)
    predict.add_argument("--image", required=True, help="image file or folder")
    predict.add_argument("--weights", default="last", help="last | PATH.keras")
    predict.add_argument("--out", default="predictions", help="output folder")
    submission = add("submission", command_submission, "CSV with class and pixel box", False)
    submission.description = (
        "One row per image: filename,class,xmin,ymin,xmax,ymax (pixels of the original image). "
        "--image DIR: every image file of DIR, rows in sorted file-name order, named by file "
        "name. --test-csv FILE (or DATASET/test.csv): the file names and their order from its "
        f"header column ({', '.join(TEST_LIST_COLUMNS)}; any case) or one name per line, "
        "images looked up in --image, --dataset or the CSV's folder. An image that is missing "
        "or cannot be read gets an error row (its name, empty class and box), is named on "
        "stderr, and the command exits with status 2 after writing every row.")
    submission.add_argument("--image", help="folder of test images (or where --test-csv's "
                                            "files are)")
    submission.add_argument("--test-csv", help="file names to predict, in order "
                                               "(default with --dataset: DATASET/test.csv)")
    submission.add_argument("--weights", default="last", help="last | PATH.keras")
    submission.add_argument("--out", default="submission.csv")
    export = commands.add_parser("export", help="SavedModel, LiteRT or ONNX with the resizing, "
                                                "softmax and pixel box inside")
    export.add_argument("--weights", default="last", help="last | PATH.keras")
    export.add_argument("--logs", default="logs/face_mask", help="training outputs folder")
    export.add_argument("--format", choices=("saved_model", "tflite", "onnx"), required=True)
    export.add_argument("--out", required=True, help="SavedModel folder or .tflite/.onnx file")
    export.add_argument("--size", type=int, nargs="+", metavar="PX",
                        help="tflite: fixed input H [W] (default: the model's INPUT_SIZE)")
    export.add_argument("--int8", action="store_true",
                        help="tflite: dynamic-range int8 weights (about 4x smaller)")
    export.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's C++ log lines (start-up, graph optimizer)")
    export.set_defaults(handler=command_export)
    return parser


def main(argv: list[str] | None = None, prog: str = "face_mask.py") -> int:
    """Entry point; returns the exit status (2 with a one-line reason on bad input)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser(prog).parse_args(argv)
    quiet_tensorflow(args.verbose)
    try:
        return args.handler(args)
    except (ValueError, TypeError, OSError) as error:
        reason = " ".join(str(error).split())
        print(f"{prog}: error: {reason}", file=sys.stderr)
        return 2
