"""Tiled detection on large scenes of small objects: ours against the whole image and sahi.

    pip install sahi                  # the peer: benchmark-only
    python benchmarks/tiled_inference.py [--scene-size 4096] [--scenes 2] [--quick]
    python benchmarks/tiled_inference.py --memory      # 8000x6000, ~500 instances: peak RSS

Trains a small Mask R-CNN (the shapes quickstart's network at 512 px) on 512 px scenes that
stand for crops of the large ones (``large_scenes.py``: squares, circles and triangles of
10-60 px, 25 per megapixel, never overlapping), or loads it with ``--weights``. Then, side by
side on the same large scenes, with 2 threads:

- whole image: ``detect()`` shrinking the scene to IMAGE_MAX_DIM (512), what users get today;
- ours tiled: ``detect(tile_size=512, tile_overlap=0.25)``, merged by mask IoS;
- sahi: ``get_sliced_prediction`` (512 px slices, overlap 0.25, GREEDYNMM on IOS 0.5, batches
  of 4 slices) driving the same model through a sahi ``DetectionModel`` wrapper.

COCO segm and bbox AP (pycocotools, up to 1000 detections per image since a scene holds
hundreds of objects), AP_small (area < 32^2 px), and seconds per megapixel of the detection
call alone (turning its result into COCO records is not timed). Writes
``benchmarks/results/tiled_inference.json`` and ``tiled_inference.png`` (a scene detected in
tiles, with a zoom on a tile corner where the seams are drawn).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from large_scenes import SceneDataset, ground_truth_rles, random_scene, render  # noqa: E402
from provenance import provenance, write_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TILE, OVERLAP = 512, 0.25


def scene_config(**overrides):
    """The shapes quickstart's network at 512 px, anchors and limits for many small objects."""
    from mrcnn.config import Config

    fields = dict(
        NAME="scenes", NUM_CLASSES=4, GPU_COUNT=1, IMAGES_PER_GPU=4, BACKBONE="resnet50",
        BACKBONE_WIDTH=16, BACKBONE_STAGE_BLOCKS=(1, 1, 1, 1), IMAGE_MIN_DIM=TILE,
        IMAGE_MAX_DIM=TILE, TOP_DOWN_PYRAMID_SIZE=64, RPN_CONV_SIZE=64, MASK_HEAD_CONV_SIZE=32,
        FPN_CLASSIF_FC_LAYERS_SIZE=256, RPN_ANCHOR_SCALES=(8, 16, 32, 64, 128),
        RPN_TRAIN_ANCHORS_PER_IMAGE=256, PRE_NMS_LIMIT=2000, POST_NMS_ROIS_TRAINING=500,
        POST_NMS_ROIS_INFERENCE=300, TRAIN_ROIS_PER_IMAGE=64, MAX_GT_INSTANCES=24,
        DETECTION_MAX_INSTANCES=100, DETECTION_MIN_CONFIDENCE=0.5, MINI_MASK_SHAPE=(28, 28),
        TRAIN_BN=True, LEARNING_RATE=0.02, STEPS_PER_EPOCH=100, VALIDATION_STEPS=2,
    )
    fields.update(overrides)
    return Config.from_dict(fields).validate()


def train(weights: Path, images: int, epochs: int, steps: int) -> float:
    """Train from scratch on ``images`` 512 px scenes; the last checkpoint is copied to
    ``weights``. Returns the training wall time."""
    import keras

    from mrcnn import model as modellib

    keras.utils.set_random_seed(0)
    data = SceneDataset()
    data.load_scenes(images, TILE, TILE, seed=0)
    data.prepare()
    logs = weights.parent / "tiled_inference_logs"
    model = modellib.MaskRCNN("training", scene_config(STEPS_PER_EPOCH=steps), str(logs))
    start = time.perf_counter()
    schedule = [0.02] * (epochs - 1) + [0.002]
    model.train(data, None, learning_rate=0.02, epochs=epochs, layers="all",
                custom_callbacks=[keras.callbacks.LearningRateScheduler(lambda e: schedule[e])])
    seconds = time.perf_counter() - start
    Path(model.find_last()).replace(weights)
    return seconds


def detector(weights: Path):
    from mrcnn import model as modellib

    model = modellib.MaskRCNN("inference", scene_config(), str(weights.parent / "logs"))
    model.load_weights(str(weights), by_name=True)
    return model


def _rle_record(image_id: int, class_id: int, score: float, full_mask: np.ndarray) -> dict:
    from pycocotools import mask as coco_mask

    rle = coco_mask.encode(np.asfortranarray(full_mask.astype(np.uint8)))
    x, y, w, h = coco_mask.toBbox(rle).tolist()
    return {"image_id": image_id, "category_id": int(class_id), "score": float(score),
            "bbox": [x, y, w, h], "segmentation": rle}


def ours(model, image: np.ndarray, tiled: bool) -> dict:
    """``detect()``'s result, whole image or tiled."""
    if tiled:
        return model.detect([image], tile_size=TILE, tile_overlap=OVERLAP)[0]
    return model.detect([image])[0]


def our_records(result: dict, image_id: int) -> list[dict]:
    """COCO records of a ``detect()`` result (one full-size mask at a time)."""
    return [_rle_record(image_id, result["class_ids"][i], result["scores"][i],
                        result["masks"][:, :, i]) for i in range(len(result["class_ids"]))]


def sahi(model, image: np.ndarray):
    """sahi's slicing and merging, driving our model: its PredictionResult."""
    from sahi.predict import get_sliced_prediction

    return get_sliced_prediction(
        image, sahi_model(model), slice_height=TILE, slice_width=TILE,
        overlap_height_ratio=OVERLAP, overlap_width_ratio=OVERLAP, perform_standard_pred=False,
        postprocess_type="GREEDYNMM", postprocess_match_metric="IOS",
        postprocess_match_threshold=0.5, batch_size=model.config.BATCH_SIZE, verbose=0)


def sahi_records(result, image_id: int) -> list[dict]:
    """COCO records of sahi's merged predictions (polygons rasterized by pycocotools)."""
    from pycocotools import mask as coco_mask

    height, width = result.image_height, result.image_width
    records = []
    for prediction in result.object_prediction_list:
        polygons = [p for p in prediction.mask.segmentation if len(p) >= 6]
        if not polygons:
            continue
        rle = coco_mask.merge(coco_mask.frPyObjects(polygons, height, width))
        x, y, w, h = coco_mask.toBbox(rle).tolist()
        records.append({"image_id": image_id, "category_id": prediction.category.id,
                        "score": float(prediction.score.value), "bbox": [x, y, w, h],
                        "segmentation": rle})
    return records


def _sahi_model_class():
    from sahi.models.base import DetectionModel
    from sahi.prediction import ObjectPrediction

    class SahiMaskRCNNModel(DetectionModel):
        """Our MaskRCNN behind sahi's DetectionModel: the tiles' detections as sahi
        ObjectPredictions (boxes x-first, masks as polygons, as sahi's own wrappers do)."""

        def set_model(self, model, **kwargs) -> None:
            self.model = model
            self.category_mapping = {"1": "square", "2": "circle", "3": "triangle"}

        def perform_inference(self, image: np.ndarray) -> None:
            self._original_predictions = self.model.detect([image])

        def perform_batch_inference(self, images: list[np.ndarray]) -> None:
            self._original_predictions = self.model.detect(images)

        def _create_object_prediction_list_from_original_predictions(
                self, shift_amount_list=((0, 0),), full_shape_list=None) -> None:
            from sahi.utils.compatibility import fix_full_shape_list, fix_shift_amount_list
            from sahi.utils.cv import get_coco_segmentation_from_bool_mask

            shifts = fix_shift_amount_list(shift_amount_list)
            shapes = fix_full_shape_list(full_shape_list)
            per_image = []
            for index, r in enumerate(self._original_predictions):
                predictions = []
                for i, (y1, x1, y2, x2) in enumerate(r["rois"]):
                    class_id = int(r["class_ids"][i])
                    predictions.append(ObjectPrediction(
                        bbox=[int(x1), int(y1), int(x2), int(y2)], category_id=class_id,
                        category_name=self.category_mapping[str(class_id)],
                        segmentation=get_coco_segmentation_from_bool_mask(r["masks"][:, :, i]),
                        score=float(r["scores"][i]), shift_amount=list(shifts[index]),
                        full_shape=None if shapes is None else list(shapes[index])))
                per_image.append(predictions)
            self._object_prediction_list_per_image = per_image

    return SahiMaskRCNNModel


def sahi_model(model):
    """Our model as a sahi DetectionModel (the class is built on first use: sahi is optional),
    with our score floor, so both merges see the same detections."""
    return _sahi_model_class()(model=model, device="cpu",
                               confidence_threshold=model.config.DETECTION_MIN_CONFIDENCE)


def coco_scores(scenes: list[dict], records: list[dict]) -> dict[str, float]:
    """COCO AP (segm and bbox) with up to 1000 detections per image."""
    from pycocotools import mask as coco_mask
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations = [], []
    for image_id, scene in enumerate(scenes, start=1):
        images.append({"id": image_id, "height": scene["height"], "width": scene["width"]})
        for class_id, rle in scene["rles"]:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": class_id, "iscrowd": 0, "segmentation": rle,
                                "area": float(coco_mask.area(rle)),
                                "bbox": coco_mask.toBbox(rle).tolist()})
    gt = COCO()
    gt.dataset = {"images": images, "annotations": annotations,
                  "categories": [{"id": i, "name": n}
                                 for i, n in enumerate(("square", "circle", "triangle"), 1)]}
    scores = {}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        for iou_type in ("segm", "bbox"):
            if not records:
                scores.update({f"{iou_type}_AP": 0.0, f"{iou_type}_AP50": 0.0,
                               f"{iou_type}_AP_small": 0.0, f"{iou_type}_AP_medium": 0.0})
                continue
            detections = gt.loadRes([dict(r) for r in records])
            evaluator = COCOeval(gt, detections, iou_type)
            evaluator.params.maxDets = [10, 100, 1000]
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
            stats = evaluator.stats
            scores.update({f"{iou_type}_AP": stats[0], f"{iou_type}_AP50": stats[1],
                           f"{iou_type}_AP_small": stats[3], f"{iou_type}_AP_medium": stats[4]})
    return {k: round(float(v), 4) for k, v in scores.items()}


def picture(model, scene: dict, path: Path) -> None:
    """The scene detected in tiles (left) and a zoom on a corner where four tiles meet, with
    the tile borders drawn (right): the scene dimmed, each merged instance filled in one colour
    and outlined, so an object on a seam shows as one instance."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mrcnn.modeling.tiling import tile_grid

    image = render(scene)
    r = model.detect([image], tile_size=TILE, tile_overlap=OVERLAP)[0]
    import cv2

    overlay = (image // 2).astype(np.uint8)  # the scene dimmed, the instances in full colour
    rng = np.random.default_rng(0)
    for i in range(len(r["class_ids"])):
        (y1, x1, y2, x2), crop = r["masks"].crop(i)
        color = tuple(int(c) for c in rng.integers(80, 256, size=3))
        region = overlay[y1:y2, x1:x2]
        region[crop] = color
        contours, _ = cv2.findContours(crop.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE, offset=(x1, y1))
        cv2.drawContours(overlay, contours, -1, (255, 255, 255), 2)
    tiles = tile_grid(image.shape[0], image.shape[1], TILE, OVERLAP)
    corner_y, corner_x = sorted({t[0] for t in tiles})[1], sorted({t[1] for t in tiles})[1]
    half = 256
    y0, x0 = max(0, corner_y - half // 2), max(0, corner_x - half // 2)
    fig, (left, right) = plt.subplots(1, 2, figsize=(16, 8.4))
    left.imshow(overlay)
    left.set_title(f"{image.shape[1]}x{image.shape[0]} scene: {len(r['class_ids'])} instances "
                   f"from {len(tiles)} tiles of {TILE} px", fontsize=11)
    left.add_patch(plt.Rectangle((x0, y0), 2 * half, 2 * half, fill=False, color="w", lw=1.5))
    right.imshow(overlay[y0:y0 + 2 * half, x0:x0 + 2 * half],
                 extent=(x0, x0 + 2 * half, y0 + 2 * half, y0))
    for ty1, tx1, ty2, tx2 in tiles:
        right.add_patch(plt.Rectangle((tx1, ty1), tx2 - tx1, ty2 - ty1, fill=False,
                                      color="w", lw=1, ls="--"))
    right.set_xlim(x0, x0 + 2 * half)
    right.set_ylim(y0 + 2 * half, y0)
    right.set_title("zoom: tile borders dashed; each instance one colour, outlined", fontsize=11)
    for axis in (left, right):
        axis.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def memory_case(weights: Path, height: int, width: int, count: int) -> dict:
    """One fresh process: tiled detect on a height x width scene of ``count`` shapes."""
    scene = random_scene(np.random.default_rng(7), height, width, count)
    image = render(scene)
    model = detector(weights)
    start = time.perf_counter()
    r = model.detect([image], tile_size=TILE, tile_overlap=OVERLAP)[0]
    seconds = time.perf_counter() - start
    return {"image": [height, width], "shapes": len(scene["shapes"]),
            "instances": len(r["class_ids"]), "detect_s": round(seconds, 1),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene-size", type=int, default=4096)
    parser.add_argument("--scenes", type=int, default=2)
    parser.add_argument("--train-images", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--steps-per-epoch", type=int, default=100)
    parser.add_argument("--weights", type=Path, default=RESULTS / "tiled_inference_model.h5",
                        help="trained once and reused (delete it to retrain)")
    parser.add_argument("--quick", action="store_true",
                        help="one 2048 px scene, a short training: checks the script runs")
    parser.add_argument("--memory", action="store_true",
                        help="only the 8000x6000, 500-shape case, in a fresh process")
    parser.add_argument("--memory-case", nargs=3, type=int, metavar=("H", "W", "N"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "tiled_inference.json")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    if args.memory_case:
        print(json.dumps(memory_case(args.weights, *args.memory_case)))
        return 0
    if args.quick:
        args.scene_size, args.scenes = 2048, 1
        args.train_images, args.epochs, args.steps_per_epoch = 40, 2, 10
        args.weights = args.weights.with_name("tiled_inference_model_quick.h5")
        args.out = args.out.with_name("tiled_inference_quick.json")

    train_s = None
    if not args.weights.is_file():
        print(f"training on {args.train_images} {TILE} px scenes, {args.epochs} x "
              f"{args.steps_per_epoch} steps ...", flush=True)
        train_s = train(args.weights, args.train_images, args.epochs, args.steps_per_epoch)
        print(f"trained in {train_s:.0f} s -> {args.weights}", flush=True)
    if args.memory:
        command = [sys.executable, __file__, "--weights", str(args.weights), "--threads",
                   str(args.threads), "--memory-case", "6000", "8000", "500"]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        case = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps(case))
        write_report(RESULTS / "tiled_inference_memory.json",
                     {"benchmark": "tiled_inference_memory", **case, **provenance()})
        return 0

    model = detector(args.weights)
    size = args.scene_size
    rng = np.random.default_rng(100)
    per_scene = int(25 * size * size / 1e6)
    scenes = [random_scene(rng, size, size, per_scene) for _ in range(args.scenes)]
    for scene in scenes:
        scene["rles"] = ground_truth_rles(scene)
    images = [render(scene) for scene in scenes]
    model.detect([images[0][:TILE, :TILE]] * model.config.BATCH_SIZE)  # trace before timing
    model.detect([images[0][:TILE, :TILE]])
    methods = {  # (the timed call, its result as COCO records: not timed)
        "whole image (shrunk to 512)": (lambda im: ours(model, im, tiled=False), our_records),
        "ours tiled (512, overlap 0.25)": (lambda im: ours(model, im, tiled=True), our_records),
        "sahi sliced (512, overlap 0.25)": (lambda im: sahi(model, im), sahi_records),
    }
    megapixels = sum(im.shape[0] * im.shape[1] for im in images) / 1e6
    rows = {}
    print(f"{len(scenes)} scenes of {size}x{size} px, {sum(len(s['rles']) for s in scenes)} "
          f"objects", flush=True)
    print(f"{'method':<34}{'segm AP':>9}{'AP_small':>10}{'bbox AP':>9}{'s / MP':>9}")
    for name, (run, to_records) in methods.items():
        seconds, records = 0.0, []
        for image_id, image in enumerate(images, start=1):
            start = time.perf_counter()
            result = run(image)
            seconds += time.perf_counter() - start
            records += to_records(result, image_id)
        rows[name] = {**coco_scores(scenes, records), "detections": len(records),
                      "seconds": round(seconds, 1),
                      "s_per_megapixel": round(seconds / megapixels, 3)}
        row = rows[name]
        print(f"{name:<34}{row['segm_AP']:>9.3f}{row['segm_AP_small']:>10.3f}"
              f"{row['bbox_AP']:>9.3f}{row['s_per_megapixel']:>9.3f}", flush=True)
    png = args.out.with_suffix(".png")
    picture(model, scenes[0], png)
    print(f"picture -> {png}")
    write_report(args.out, {
        "benchmark": "tiled_inference", "scene_size": size, "scenes": len(scenes),
        "objects": sum(len(s["rles"]) for s in scenes), "tile": TILE, "overlap": OVERLAP,
        "train_s": None if train_s is None else round(train_s, 1), "rows": rows,
        **provenance()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
