"""The command line shared by every Mask R-CNN sample: ``train``, ``evaluate``, ``detect``,
``export``.

A sample script describes its dataset with a :class:`SampleSpec` and calls :func:`main`::

    python samples/shapes.py train --weights none --logs logs --epochs 4
    python samples/shapes.py evaluate --weights last --out metrics.json
    python samples/shapes.py detect --image photo.jpg --weights last --out detections/
    python samples/shapes.py export --weights last --format saved_model --out exported/

User errors (bad flags, missing files, invalid config values) exit with status 2 and one line.
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrcnn.config import Config, ConfigError, parse_override, tiny_config
from mrcnn.data.errors import DatasetError
from mrcnn.engine.json_files import write_json
from vision_common.tensorflow_logs import quiet_tensorflow

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".npy")
# `evaluate` scores every detection, as the COCO protocol and Matterport's samples/coco/coco.py
# (InferenceConfig) do: AP integrates precision over recall, so a score cut only loses recall.
# `--set DETECTION_MIN_CONFIDENCE=...` overrides it.
EVALUATE_MIN_CONFIDENCE = 0.0


# train's flags that set a Config field.
TRAIN_FLAG_FIELDS = {
    "steps_per_epoch": "STEPS_PER_EPOCH",
    "strategy": "DISTRIBUTION_STRATEGY",
    "optimizer": "OPTIMIZER",
    "lr_schedule": "LEARNING_RATE_SCHEDULE",
    "lr_steps": "LEARNING_RATE_STEPS",
    "warmup_steps": "WARMUP_STEPS",
    "repeat_factor_threshold": "REPEAT_FACTOR_THRESHOLD",
}


class UsageError(Exception):
    """A mistake in the user's command or inputs: reported in one line, exit status 2."""


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    """``--verbose``: let TensorFlow's own C++ log lines through (see :func:`quiet_tensorflow`)."""
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's C++ log lines (start-up, graph optimizer)")


@dataclass(frozen=True)
class SampleSpec:
    """What a sample script contributes to the common CLI.

    make_config(args): returns the training Config. load_dataset(args, subset) returns a
    prepared Dataset for subset "train" or "val". add_arguments adds dataset-specific flags.
    schedules: named training schedules, each a tuple of (layers, until epoch, learning-rate
    factor) stages; the first is the default, ``--schedule NAME`` picks another, and
    ``--layers``/``--epochs`` replace the schedule by one stage. augmentation: builds the
    training augmentation (an albumentations or imgaug augmenter), or None for none.
    """

    name: str
    description: str
    make_config: Callable[[argparse.Namespace], Config]
    load_dataset: Callable[[argparse.Namespace, str], Any]
    default_dataset: str | None = None
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    schedules: dict[str, tuple[tuple[str, int, float], ...]] = field(
        default_factory=lambda: {"heads": (("heads", 1, 1.0),)})
    augmentation: Callable[[], Any] | None = None


def build_parser(spec: SampleSpec) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"{spec.name}.py", description=spec.description)
    commands = parser.add_subparsers(dest="command", required=True)
    for command in ("train", "evaluate", "detect", "export"):
        sub = commands.add_parser(command)
        sub.add_argument("--dataset", default=spec.default_dataset,
                         help="dataset root directory" + (" (detect: for class names only)"
                                                          if command == "detect" else ""))
        sub.add_argument("--weights", default="last" if command != "train" else "none",
                         help="coco | imagenet | last | best | none | PATH to an .h5 file "
                              "(best: the run's best checkpoint, kept by --map-every)")
        sub.add_argument("--logs", default="logs", help="logs and checkpoints directory")
        sub.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="override a Config field (repeatable), e.g. IMAGE_MAX_DIM=256")
        sub.add_argument("--preset", choices=["tiny"],
                         help="tiny: 64 px images and narrow layers, to check a pipeline in seconds")
        add_verbose_argument(sub)
        if command == "train":
            sub.add_argument("--schedule", choices=list(spec.schedules),
                             default=next(iter(spec.schedules)),
                             help="staged schedule: layers, epochs and LR per stage")
            sub.add_argument("--epochs", type=int, help="train until this epoch (one stage)")
            sub.add_argument("--steps-per-epoch", type=int)
            sub.add_argument("--layers", help="heads | 3+ | 4+ | 5+ | all | REGEX (one stage)")
            sub.add_argument("--map-every", type=int, default=0, metavar="N",
                             help="every N epochs, log mAP on validation images to TensorBoard")
            sub.add_argument("--map-images", type=int, default=20, metavar="K",
                             help="validation images used by --map-every (default 20)")
            sub.add_argument("--best-metric", default="segm_AP",
                             choices=["segm_AP", "bbox_AP", "mAP50", "mAP"],
                             help="with --map-every: keep mask_rcnn_<name>_best.h5 for the best "
                                  "value of this score (default COCO segm AP)")
            sub.add_argument("--strategy", choices=["mirrored", "multi_worker"],
                             help="tf.distribute: mirrored = GPU_COUNT local GPUs, "
                                  "multi_worker = the machines in TF_CONFIG")
            sub.add_argument("--optimizer", choices=["sgd", "adamw"],
                             help="sgd: Matterport's (default); adamw: decoupled WEIGHT_DECAY "
                                  "(Config.OPTIMIZER)")
            sub.add_argument("--lr-schedule", choices=["constant", "step", "cosine"],
                             help="constant (default), step (x0.1 at each --lr-steps) or cosine "
                                  "(to 0 at the last epoch); Config.LEARNING_RATE_SCHEDULE")
            sub.add_argument("--lr-steps", type=_step_list, metavar="S1,S2",
                             help="global steps where the step schedule lowers the LR")
            sub.add_argument("--warmup-steps", type=int, metavar="N",
                             help="linear LR warmup over the first N steps (Config.WARMUP_STEPS)")
            sub.add_argument("--repeat-factor-threshold", type=float, metavar="T",
                             help="oversample images of rare classes (detectron2's repeat "
                                  "factors; e.g. 0.001); Config.REPEAT_FACTOR_THRESHOLD")
            sub.add_argument("--seed", type=int, metavar="N",
                             help="seed every random draw (weights, sampling, augmentation): "
                                  "two CPU runs with the same seed give the same losses")
        if command == "evaluate":
            sub.add_argument("--limit", type=int, default=0, help="evaluate at most N images")
            sub.add_argument("--out", help="write the metrics JSON here")
            sub.add_argument("--coco-results", metavar="FILE",
                             help="also write the detections as COCO results JSON (RLE masks)")
        if command == "detect":
            sub.add_argument("--image", required=True, help="an image file or a directory")
            sub.add_argument("--out", default="detections", help="output directory for PNG + JSON")
            sub.add_argument("--tile", type=_positive_int, metavar="PX",
                             help="detect at full resolution in overlapping PX x PX tiles and "
                                  "merge them (for images much larger than IMAGE_MAX_DIM)")
            sub.add_argument("--tile-overlap", type=_overlap, default=0.25, metavar="F",
                             help="share of a tile its neighbours overlap (default 0.25)")
            sub.add_argument("--tile-whole-image", action="store_true",
                             help="with --tile: also detect on the whole image at "
                                  "IMAGE_MAX_DIM, for objects larger than a tile")
        if command == "export":
            sub.add_argument("--format", default="saved_model",
                             choices=["saved_model", "tflite", "onnx"],
                             help="saved_model: TF SavedModel (TF Serving), image in, "
                                  "detections out; onnx: the same graph for onnxruntime; "
                                  "tflite: LiteRT, builtin ops only, one fixed input size")
            sub.add_argument("--out", required=True,
                             help="output path (saved_model: a directory; tflite/onnx: a file)")
            sub.add_argument("--size", type=_positive_int, nargs="+", metavar="PX",
                             help="tflite: fixed input H [W] (default: the molded size, "
                                  "IMAGE_SHAPE)")
            sub.add_argument("--int8", action="store_true",
                             help="tflite: dynamic-range int8 weights (about 4x smaller)")
        if spec.add_arguments:
            spec.add_arguments(sub)
    return parser


def main(spec: SampleSpec, argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 2 user error)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser(spec).parse_args(argv)
    quiet_tensorflow(args.verbose)
    try:
        config = make_config(spec, args)
        if args.command == "train":
            run_train(spec, args, config)
        elif args.command == "evaluate":
            run_evaluate(spec, args, config)
        elif args.command == "export":
            run_export(args, config)
        else:
            run_detect(spec, args, config)
    except (UsageError, ConfigError, DatasetError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def make_config(spec: SampleSpec, args: argparse.Namespace) -> Config:
    """The sample's Config with ``--preset``, ``--set`` and the command's flags applied, validated.

    When ``--weights`` names a checkpoint (``last`` or a path) whose run folder holds the run's
    ``config.json``, that config is the base instead of the sample's: the flags still override
    it, except in a field that shapes the weights (a UsageError naming the fields).
    """
    requested = spec.make_config(args)
    explicit = _changed_fields(type(requested)(), requested)
    if args.preset == "tiny":
        preset = tiny_config(requested.NUM_CLASSES, requested.NAME)
        explicit |= _changed_fields(requested, preset)
        requested = preset
    overrides = dict(parse_override(text, requested) for text in args.set)
    for flag, name in TRAIN_FLAG_FIELDS.items():
        if getattr(args, flag, None) is not None:
            overrides[name] = getattr(args, flag)
    config = requested.override(**overrides)
    explicit |= set(overrides)

    run_file = _run_config_file(args.weights, args.logs, config.NAME)
    if run_file is not None:
        from mrcnn.engine.run_config import architecture_differences, config_from_run

        saved = config_from_run(type(config), run_file)
        rebuilt = copy.deepcopy(saved).override(
            **{name: getattr(config, name) for name in sorted(explicit)})
        changed = architecture_differences(saved, rebuilt)
        if changed:
            raise UsageError(
                f"--weights {args.weights}: its run was trained with another network "
                f"({run_file}); these flags change it: {'; '.join(changed)}. Drop them to use "
                "the checkpoint, or start a new run with --weights coco, imagenet or none")
        logger.info("config: %s (flags override it)", run_file)
        config = rebuilt

    defaults = {"IMAGES_PER_GPU": 1} if args.command != "train" else {}
    if args.command == "evaluate":
        defaults["DETECTION_MIN_CONFIDENCE"] = EVALUATE_MIN_CONFIDENCE
    return config.override(**{k: v for k, v in defaults.items() if k not in explicit})


def _changed_fields(before: Config, after: Config) -> set[str]:
    """Names of the configurable fields whose values differ between two configs."""
    old, new = before.to_dict(), after.to_dict()
    return {name for name in after.field_names() if old.get(name) != new[name]}


def _run_config_file(weights: str, logs: str, name: str) -> Path | None:
    """The ``config.json`` of the run a ``--weights`` checkpoint belongs to, if it has one."""
    from mrcnn.engine.run_config import RUN_CONFIG_NAME

    choice = weights.lower()
    if choice in ("none", "coco", "imagenet"):
        return None
    if choice in ("last", "best"):
        from mrcnn.engine.best_checkpoint import find_best
        from mrcnn.engine.training import find_last

        try:
            checkpoint = (find_last if choice == "last" else find_best)(logs, name)
        except FileNotFoundError:
            return None  # load_weights reports it, once the model is built
    else:
        checkpoint = Path(weights)
    candidate = checkpoint.parent / RUN_CONFIG_NAME
    return candidate if candidate.is_file() else None


def load_weights(model, weights: str, config: Config) -> None:
    """Apply ``--weights``: none, last, coco, imagenet or a path."""
    from mrcnn.engine.weights import WeightsFileError, WeightShapeMismatch

    choice = weights.lower()
    if choice == "none":
        return
    try:
        if choice == "last":
            path = model.find_last()
            model.load_weights(path)
        elif choice == "best":
            from mrcnn.engine.best_checkpoint import find_best

            model.load_weights(find_best(model.model_dir, config.NAME))
        elif choice in ("coco", "imagenet"):
            from mrcnn.engine.pretrained import load_pretrained

            load_pretrained(model, choice)
        else:
            if not Path(weights).is_file():
                raise UsageError(f"--weights {weights}: no such file (expected coco, imagenet, "
                                 "last, none or a path to an .h5 file)")
            model.load_weights(weights)
    except WeightShapeMismatch as error:
        fix = ("train again from coco or imagenet, which skips the mismatched heads"
               if choice in ("coco", "imagenet") else
               "the checkpoint was trained with other --preset/--set flags: pass the same ones "
               "(runs that keep a config.json beside their checkpoints rebuild it by themselves)")
        raise UsageError(f"--weights {weights}: {error.mismatch}; {fix}") from error
    except (WeightsFileError, FileNotFoundError) as error:
        raise UsageError(f"--weights {weights}: {error}") from error


def run_train(spec: SampleSpec, args: argparse.Namespace, config: Config) -> None:
    from mrcnn import model as modellib

    if args.seed is not None:
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(args.seed)
        tf.config.experimental.enable_op_determinism()
    train_set = _checked_classes(spec.load_dataset(args, "train"), config)
    val_set = _checked_classes(spec.load_dataset(args, "val"), config)
    model = modellib.MaskRCNN(mode="training", config=config, model_dir=args.logs)
    load_weights(model, args.weights, config)
    stages = spec.schedules[args.schedule]
    if args.epochs or args.layers:
        stages = ((args.layers or stages[-1][0], args.epochs or stages[-1][1], 1.0),)
    callbacks = []
    if args.map_every:
        from mrcnn.engine.callbacks import MeanAPCallback

        callbacks.append(MeanAPCallback(model, val_set, every=args.map_every,
                                        limit=args.map_images,
                                        best_metric=f"val_{args.best_metric}"))
    augmentation = spec.augmentation() if spec.augmentation else None
    for layers, epochs, lr_factor in stages:
        model.train(train_set, val_set, learning_rate=config.LEARNING_RATE * lr_factor,
                    epochs=epochs, layers=layers, custom_callbacks=callbacks,
                    augmentation=augmentation)
    print(f"checkpoints: {model.log_dir}")


def run_evaluate(spec: SampleSpec, args: argparse.Namespace, config: Config) -> None:
    from mrcnn import model as modellib
    from mrcnn.evaluation.evaluate import evaluate_dataset, format_metrics

    dataset = _checked_classes(spec.load_dataset(args, "val"), config)
    model = modellib.MaskRCNN(mode="inference", config=config, model_dir=args.logs)
    load_weights(model, args.weights, config)
    metrics = evaluate_dataset(model, dataset, limit=args.limit or None,
                               coco_results=args.coco_results)
    available = len(dataset.image_ids)
    metrics.update(split="val", images_scored=metrics["images"], images_available=available)
    limited = f", the first {metrics['images']} of {available} by --limit"
    print(f"scored {metrics['images']} images (split: the sample's val subset"
          f"{limited if metrics['images'] < available else ''})")
    print(format_metrics(metrics))
    if args.out:
        write_json(args.out, metrics)
        print(f"metrics written to {args.out}")


def run_detect(spec: SampleSpec, args: argparse.Namespace, config: Config) -> None:
    from mrcnn import model as modellib
    from mrcnn.data.image_io import load_image_channels
    from mrcnn.modeling.tiling import tile_grid
    from mrcnn.visualize import display_instances

    paths = _image_paths(args.image)
    model = modellib.MaskRCNN(mode="inference", config=config, model_dir=args.logs)
    load_weights(model, args.weights, config)
    class_names = _class_names(spec, args, config)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for path in paths:
        image = load_image_channels(path, config.IMAGE_CHANNEL_COUNT)
        if args.tile:
            result = model.detect([image], verbose=1, tile_size=args.tile,
                                  tile_overlap=args.tile_overlap,
                                  tile_whole_image=args.tile_whole_image)[0]
        else:
            result = model.detect([image])[0]
        png = out_dir / f"{path.stem}.png"
        display_instances(image, result["rois"], result["masks"], result["class_ids"], class_names,
                          result["scores"], title=path.name, save_path=str(png))
        records.append({
            "image": str(path),
            "png": str(png),
            "detections": [
                {"class_id": int(c), "class_name": class_names[int(c)], "score": float(s),
                 "box_y1x1y2x2": [int(v) for v in box]}
                for c, s, box in zip(result["class_ids"], result["scores"], result["rois"],
                                     strict=True)
            ],
        })
        tiles = (f" in {len(tile_grid(*image.shape[:2], args.tile, args.tile_overlap))} tiles "
                 f"of {args.tile} px" if args.tile else "")
        print(f"{path.name}: {len(result['class_ids'])} instances{tiles} -> {png}")
    write_json(out_dir / "detections.json", records)


def run_export(args: argparse.Namespace, config: Config) -> None:
    from mrcnn import model as modellib
    from mrcnn.export import ExportError, check_exportable
    from mrcnn.export.litert import plan_molding

    if args.size is not None and len(args.size) not in (1, 2):
        raise UsageError(f"export: --size takes H or H W; got {len(args.size)} numbers")
    if (args.size is not None or args.int8) and args.format != "tflite":
        raise UsageError("export: --size and --int8 apply to --format tflite only")
    size = None if args.size is None else (args.size[0], args.size[-1])
    try:
        check_exportable(config)  # before the model is built and its weights loaded
        if size is not None:
            plan_molding(config, size)  # a size the mode cannot take, before the build too
        model = modellib.MaskRCNN(mode="inference", config=config, model_dir=args.logs)
        load_weights(model, args.weights, config)
        path = model.export(args.out, format=args.format, size=size, quantize=args.int8)
    except ExportError as error:
        raise UsageError(f"export: {error}") from error
    print(f"{args.format} written to {path}")


def _step_list(text: str) -> tuple[int, ...]:
    """``--lr-steps 2000,3000`` -> (2000, 3000)."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected step numbers like 2000,3000, got {text!r}") from None


def _positive_int(text: str) -> int:
    """``--tile 1024`` -> 1024; zero, negatives and words are refused."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of pixels, got {text!r}")
    return value


def _overlap(text: str) -> float:
    """``--tile-overlap 0.25`` -> 0.25, in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a share of a tile in [0, 1), got {text!r}")
    return value


def _checked_classes(dataset, config: Config):
    """The dataset, if its class count fits the config; else a user error saying the fix."""
    if dataset.num_classes != config.NUM_CLASSES:
        raise UsageError(f"the dataset has {dataset.num_classes} classes (background included) "
                         f"but NUM_CLASSES={config.NUM_CLASSES}; pass --set "
                         f"NUM_CLASSES={dataset.num_classes}")
    return dataset


def _class_names(spec: SampleSpec, args: argparse.Namespace, config: Config) -> list[str]:
    """Class names from the validation dataset when it is available, else generic names."""
    try:
        return list(spec.load_dataset(args, "val").class_names)
    except (UsageError, DatasetError, FileNotFoundError, OSError):
        return ["BG"] + [f"class_{i}" for i in range(1, config.NUM_CLASSES)]


def _image_paths(location: str) -> list[Path]:
    path = Path(location)
    if path.is_dir():
        paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise UsageError(f"--image {location}: the directory holds no image "
                             f"({', '.join(IMAGE_SUFFIXES)})")
        return paths
    if not path.is_file():
        raise UsageError(f"--image {location}: no such file or directory")
    return [path]
