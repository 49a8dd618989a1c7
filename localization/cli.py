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
import os
import sys
from pathlib import Path

import numpy as np

from localization.annotations import load_annotations, load_filename_list, resolve_image_path
from localization.config import LocalizerConfig, tiny_config

# TensorFlow/Keras modules are imported inside the commands that need them: ``--help`` and
# argument errors answer at once, and quiet_tensorflow() runs before TensorFlow loads.
logger = logging.getLogger(__name__)
MODEL_FILE = "localizer.keras"


def quiet_tensorflow(verbose: bool = False) -> None:
    """Hide TensorFlow's C++ INFO/WARNING lines; call before TensorFlow is first imported.

    Sets ``TF_CPP_MIN_LOG_LEVEL=2`` (errors still print) unless the user set it or ``verbose``.
    """
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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


def _load_table(args, config: LocalizerConfig, class_names=None):
    dataset = Path(args.dataset)
    return load_annotations(
        _find_csv(dataset, args.csv), dataset, coordinates=config.COORDINATES,
        class_names=class_names or config.CLASS_NAMES, multi_box_policy=config.MULTI_BOX_POLICY,
        on_bad_row=config.ON_BAD_ROW,
    )


def command_train(args) -> int:
    import keras

    from localization.augment import BoxAugmenter
    from localization.data import (
        build_dataset,
        compute_channel_stats,
        samples_to_arrays,
        stratified_split,
    )
    from localization.model import build_localizer, get_input_size
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
    train_arrays = samples_to_arrays(train_samples, size)
    val_arrays = samples_to_arrays(val_samples, size)
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
    compile_localizer(model, alpha=config.ALPHA, box_loss=config.BOX_LOSS,
                      class_weights=config.CLASS_WEIGHTS, backbone_lr=config.BACKBONE_LR,
                      class_head_lr=config.CLASS_HEAD_LR, box_head_lr=config.BOX_HEAD_LR,
                      weight_decay=config.WEIGHT_DECAY, jit_compile=config.JIT_COMPILE)
    augmenter = BoxAugmenter(seed=config.SEED) if config.AUGMENT else None
    repeat = args.steps_per_epoch is not None
    train_data = build_dataset(*train_arrays, config.BATCH_SIZE, augment=augmenter, shuffle=True,
                               repeat=repeat, seed=config.SEED)
    val_data = build_dataset(*val_arrays, config.BATCH_SIZE)
    logs = Path(args.logs)
    logs.mkdir(parents=True, exist_ok=True)
    print(f"classes: {class_names}; {len(train_samples)} train / {len(val_samples)} val samples; "
          f"mean={np.round(mean, 1).tolist()} std={np.round(std, 1).tolist()}")
    history = model.fit(train_data, validation_data=val_data, epochs=args.epochs,
                        steps_per_epoch=args.steps_per_epoch, verbose=1, shuffle=False,
                        callbacks=build_callbacks(logs, patience=config.PATIENCE,
                                                  tensorboard=config.TENSORBOARD))
    path = save_localizer(model, logs / MODEL_FILE, class_names,
                          {"config": config.to_dict(), "mean": mean, "std": std,
                           "csv": str(_find_csv(Path(args.dataset), args.csv))})
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


def command_evaluate(args) -> int:
    from localization.data import stratified_split
    from localization.inference import predict_images
    from localization.metrics import compute_localization_metrics
    from localization.training import load_localizer

    model_path = _model_path(args)
    model, class_names = load_localizer(model_path)
    saved = json.loads(model_path.with_suffix(".json").read_text()).get("config", {})
    config = _config(args)
    config.override([f"{key}={value!r}" for key, value in saved.items()
                     if key in ("VAL_FRACTION", "SEED", "MULTI_BOX_POLICY", "COORDINATES")])
    config.override(args.set or [])
    table = _load_table(args, config, class_names)
    samples = table.samples
    if args.split == "val":
        samples = stratified_split(samples, config.VAL_FRACTION, config.SEED)[1]
    if args.limit:
        samples = samples[:args.limit]
    predictions = predict_images(model, [s.path for s in samples])
    metrics = compute_localization_metrics(
        np.array([s.box for s in samples]), [s.class_index for s in samples],
        np.array([p.box for p in predictions]), [p.class_index for p in predictions], class_names)
    metrics.update({"split": args.split, "model": str(model_path)})
    print(_metrics_table(metrics))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(metrics, indent=2))
        print(f"wrote {args.out}")
    return 0


def command_predict(args) -> int:
    import cv2

    from localization.inference import list_images, predict_images
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
        image = cv2.imread(str(prediction.path), cv2.IMREAD_COLOR)[..., ::-1]
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


def command_submission(args) -> int:
    from localization.inference import predict_images, write_submission
    from localization.training import load_localizer

    model, class_names = load_localizer(_model_path(args))
    dataset = Path(args.dataset)
    test_csv = Path(args.test_csv) if args.test_csv else dataset / "test.csv"
    filenames = load_filename_list(test_csv)
    if not filenames:
        raise ValueError(f"{test_csv} lists no filenames")
    paths = [resolve_image_path(dataset, name) for name in filenames]
    missing = [name for name, path in zip(filenames, paths, strict=True) if path is None]
    if missing:
        raise FileNotFoundError(f"{len(missing)} test image(s) not found under {dataset}: "
                                f"{', '.join(missing[:5])}")
    predictions = predict_images(model, paths)
    path = write_submission(args.out, filenames, predictions, class_names)
    print(f"wrote {path} ({len(filenames)} rows)")
    return 0


def build_parser(prog: str = "face_mask.py") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="One box + one class per image "
                                     "(face mask / no mask), from a CSV.")
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name, handler, help_text, dataset_required):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--dataset", required=dataset_required,
                         help="folder with the images (or images/) and the CSV")
        sub.add_argument("--csv", help="annotation CSV inside --dataset (default: the one *.csv)")
        sub.add_argument("--logs", default="logs/face_mask", help="training outputs folder")
        sub.add_argument("--set", action="append", metavar="KEY=VALUE",
                         help="override a LocalizerConfig field (repeatable)")
        sub.add_argument("--preset", choices=("default", "tiny"), default="default",
                         help="tiny: 32 px, narrow layers (smoke runs)")
        sub.add_argument("--verbose", action="store_true",
                         help="show TensorFlow's C++ log lines (start-up, graph optimizer)")
        sub.set_defaults(handler=handler)
        return sub

    train = add("train", command_train, "train on the CSV's stratified train split", True)
    train.add_argument("--weights", default="none", help="none | imagenet | last | PATH.keras")
    train.add_argument("--epochs", type=int, default=50)
    train.add_argument("--steps-per-epoch", type=int, default=None)
    evaluate = add("evaluate", command_evaluate, "metrics JSON + table", True)
    evaluate.add_argument("--weights", default="last", help="last | PATH.keras")
    evaluate.add_argument("--split", choices=("val", "all"), default="val")
    evaluate.add_argument("--limit", type=int, default=None)
    evaluate.add_argument("--out", help="metrics JSON path")
    predict = add("predict", command_predict, "PNGs with GT (green) and prediction (red)", False)
    predict.add_argument("--image", required=True, help="image file or folder")
    predict.add_argument("--weights", default="last", help="last | PATH.keras")
    predict.add_argument("--out", default="predictions", help="output folder")
    submission = add("submission", command_submission, "CSV with class and pixel box", True)
    submission.add_argument("--test-csv", help="filenames to predict (default: DATASET/test.csv)")
    submission.add_argument("--weights", default="last", help="last | PATH.keras")
    submission.add_argument("--out", default="submission.csv")
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
