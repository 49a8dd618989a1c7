"""Matterport's notebooks, cell by cell, on this library (issue 12, item 3).

Each test runs one notebook's calls in order (samples/demo.ipynb, shapes/train_shapes.ipynb,
coco/inspect_data.ipynb, coco/inspect_model.ipynb, coco/inspect_weights.ipynb,
balloon/inspect_balloon_data.ipynb, balloon/inspect_balloon_model.ipynb), keeping the notebooks'
variable names, with only these substitutions: COCO is a tiny COCO-format dataset written
here, balloon a tiny VIA project, the weights files are tiny-config Matterport-layout ``.h5``
files saved here, step and image counts are 1-2, images 64 px (the tiny preset's sizes on the
samples' Config classes), and DETECTION_MIN_CONFIDENCE is 0 (untrained weights are never
confident: the detection cells would have nothing to show). Plots go to matplotlib's Agg
(tests/conftest.py). The call sequences follow Matterport's notebooks as stored in its
repository's history (root inspect_data/inspect_model/train_shapes.ipynb of the early layout,
samples/shapes/train_shapes.ipynb, samples/demo.ipynb, samples/coco/inspect_weights.ipynb) and
copies of samples/balloon/inspect_balloon_model.ipynb in forks; the train_shapes test is
marked slow.
Where a call cannot mean the same on Keras 3, the nearest working call is used and the
comment says "Keras 3:" (the README's "Coming from Matterport" lists them).
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
from pathlib import Path

import keras
import matplotlib.patches as patches
import matplotlib.pyplot as plt
import numpy as np
import pytest
import skimage.io
import tensorflow as tf
from PIL import Image, ImageDraw

import mrcnn.model as modellib
from mrcnn import utils, visualize
from mrcnn.config import Config, tiny_config
from mrcnn.data.datasets.shapes import ShapesDataset
from mrcnn.engine.weights import read_h5_weights
from mrcnn.model import log
from mrcnn.visualize import display_images

ROOT = Path(__file__).resolve().parents[2]
SIZE = 64
# COCO's 80 category ids (1..90 without the ten unused ones); the images use three of them.
COCO_IDS = [i for i in range(1, 91) if i not in {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}]
COCO_NAMES = {1: "person", 3: "car", 17: "cat"}
# Two images per split: (category id, polygon x1, y1, x2, y2, ...) per instance.
INSTANCES = [
    [(1, [6, 6, 30, 6, 30, 40, 6, 40]), (3, [36, 10, 58, 10, 58, 30, 36, 30])],
    [(17, [10, 30, 40, 30, 25, 8]), (1, [40, 20, 60, 20, 60, 44, 40, 44]),
     (3, [4, 4, 20, 4, 20, 16, 4, 16])],
]
HEADS = ["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask"]
# Layers whose arrays the tests compare with the .h5 file (mrcnn_bbox has no weights).
CHECKED_LAYERS = ["conv1", "res4a_branch2a", "fpn_p2", "rpn_conv_shared", "mrcnn_class_logits",
                  "mrcnn_bbox_fc", "mrcnn_mask"]


def sample(name: str):
    """samples/<name>.py as a module (the notebooks' ``import coco`` / ``import balloon``)."""
    spec = importlib.util.spec_from_file_location(f"sample_{name}", ROOT / "samples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny(base: type[Config]) -> type[Config]:
    """``base`` (a sample's Config class) at the tiny preset's sizes: the notebook's config on
    64 px images, 1-step epochs, every detection kept (the weights are untrained).

    DETECTION_MAX_INSTANCES stays Matterport's 100, above the tiny POST_NMS_ROIS_INFERENCE:
    the notebooks find the end of the detections at the first zero row.
    """
    preset = tiny_config(num_classes=base.NUM_CLASSES, name=base.NAME)
    sizes = {name: getattr(preset, name) for name in preset.field_names()
             if name not in ("NAME", "NUM_CLASSES", "DETECTION_MAX_INSTANCES")
             and not _same(getattr(preset, name), getattr(Config, name))}
    return type(base.__name__, (base,), {**sizes, "STEPS_PER_EPOCH": 1, "VALIDATION_STEPS": 1,
                                         "DETECTION_MIN_CONFIDENCE": 0.0})


def _same(a, b) -> bool:
    try:
        return bool(np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object)))
    except ValueError:
        return False


def draw(path: Path, polygons) -> None:
    """A 48x64 RGB image with each polygon filled in a bright colour on a dark background."""
    image = Image.new("RGB", (SIZE, 48), (30, 30, 30))
    canvas = ImageDraw.Draw(image)
    for k, points in enumerate(polygons):
        canvas.polygon(list(zip(points[::2], points[1::2], strict=True)),
                       fill=((200, 60, 60), (60, 200, 60), (60, 60, 200))[k % 3])
    image.save(path)


def write_coco(root: Path) -> Path:
    """Matterport's 2014 COCO layout: annotations/instances_{train,minival,val}2014.json,
    train2014/ and val2014/ (minival's images are in val2014/), the same two images in each."""
    (root / "annotations").mkdir(parents=True)
    for folder in ("train2014", "val2014"):
        (root / folder).mkdir()
    images, annotations = [], []
    for image_id, instances in enumerate(INSTANCES, start=1):
        name = f"COCO_val2014_{image_id:012d}.jpg"
        for folder in ("train2014", "val2014"):
            draw(root / folder / name, [points for _, points in instances])
        images.append({"id": image_id, "file_name": name, "height": 48, "width": SIZE})
        for category_id, points in instances:
            xs, ys = points[::2], points[1::2]
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": category_id,
                "iscrowd": 0, "segmentation": [points], "area": 1.0,
                "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]})
    categories = [{"id": i, "name": COCO_NAMES.get(i, f"category {i}")} for i in COCO_IDS]
    data = json.dumps({"images": images, "annotations": annotations, "categories": categories})
    for subset in ("train", "minival", "val"):
        (root / "annotations" / f"instances_{subset}2014.json").write_text(data)
    return root


def write_balloon(root: Path) -> Path:
    """Matterport's balloon layout: {train,val}/via_region_data.json (VIA 1.x) + images."""
    for subset in ("train", "val"):
        folder = root / subset
        folder.mkdir(parents=True)
        records = {}
        for k, instances in enumerate(INSTANCES):
            name = f"{subset}{k}.jpg"
            draw(folder / name, [points for _, points in instances])
            regions = {str(r): {"shape_attributes": {"name": "polygon",
                                                     "all_points_x": points[::2],
                                                     "all_points_y": points[1::2]},
                                "region_attributes": {}}
                       for r, (_, points) in enumerate(instances)}
            records[f"{name}1234"] = {"filename": name, "size": 1234, "regions": regions,
                                      "file_attributes": {}}
        (folder / "via_region_data.json").write_text(json.dumps(records))
    return root


def get_ax(rows=1, cols=1, size=16):
    """The notebooks' helper: an Axes (array) for the next plot."""
    _, ax = plt.subplots(rows, cols, figsize=(size * cols / 8, size * rows / 8))
    return ax


def layer_weights(model, name: str) -> list[np.ndarray]:
    return model.find_trainable_layer(model.keras_model.get_layer(name)).get_weights()


def assert_holds(model, weights_path, names) -> None:
    """The model's layers ``names`` hold exactly the arrays of the .h5 file."""
    saved = read_h5_weights(weights_path)
    for name in names:
        for got, want in zip(layer_weights(model, name), saved[name], strict=True):
            np.testing.assert_array_equal(got, want, err_msg=name)


def assert_drawn(fig, images: int = 1, boxes: int | None = None) -> None:
    """A display function drew into ``fig``: ``images`` image panels, at least ``boxes`` boxes."""
    assert sum(len(a.images) for a in fig.axes) >= images
    if boxes is not None:
        drawn = sum(isinstance(p, patches.Rectangle) for a in fig.axes for p in a.patches)
        assert drawn >= boxes


def release_weights(model, path: Path) -> Path:
    """Save ``model``'s weights as a Matterport-layout .h5, then change the model's weights,
    so that a notebook's load_weights that loads nothing fails the test."""
    model.save_weights(path)
    for layer in model.get_trainable_layers():
        layer.set_weights([w + 0.25 for w in layer.get_weights()])
    return path


@pytest.fixture(autouse=True)
def seeded():
    """The notebooks pick images with random / np.random: the same picks on every run."""
    keras.utils.set_random_seed(0)


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    """The COCO sample module and COCO_DIR, a tiny COCO-format dataset."""
    return sample("coco"), write_coco(tmp_path_factory.mktemp("coco"))


@pytest.fixture(scope="module")
def coco_model(coco, tmp_path_factory):
    """The COCO notebooks' inference model and COCO_MODEL_PATH, a Matterport-layout .h5.

    The file holds other weights than the model has when the notebooks get it, so a
    load_weights that loads nothing fails the tests.
    """
    coco_module, _ = coco
    root = tmp_path_factory.mktemp("coco_model")
    keras.utils.set_random_seed(0)

    class InferenceConfig(tiny(coco_module.CocoConfig)):
        GPU_COUNT = 1
        IMAGES_PER_GPU = 1

    model = modellib.MaskRCNN(mode="inference", model_dir=root / "logs",
                              config=InferenceConfig())
    yield model, release_weights(model, root / "mask_rcnn_coco.h5")
    plt.close("all")


# ------------------------------------------------------------------------------------------
# samples/demo.ipynb
def test_demo_notebook_detects_with_downloaded_coco_weights(coco_model, tmp_path,
                                                             monkeypatch):
    """demo.ipynb: weights -> model -> detect -> display_instances. A user would see no
    detections, wrong labels, or weights that were not the file's."""
    model, released = coco_model
    # No network: the "download" copies the test's .h5 (MRCNN_COCO_WEIGHTS).
    monkeypatch.setenv("MRCNN_COCO_WEIGHTS", str(released))
    COCO_MODEL_PATH = tmp_path / "mask_rcnn_coco.h5"  # noqa: N806
    if not COCO_MODEL_PATH.exists():
        utils.download_trained_weights(COCO_MODEL_PATH)
    assert COCO_MODEL_PATH.read_bytes() == released.read_bytes()
    IMAGE_DIR = tmp_path / "images"  # noqa: N806
    IMAGE_DIR.mkdir()
    draw(IMAGE_DIR / "street.jpg", [p for _, p in INSTANCES[1]])

    config = model.config
    config.display()
    assert config.BATCH_SIZE == 1 and config.NUM_CLASSES == 81

    model.load_weights(COCO_MODEL_PATH, by_name=True)
    assert_holds(model, COCO_MODEL_PATH, CHECKED_LAYERS)

    class_names = ["BG"] + [COCO_NAMES.get(i, f"category {i}") for i in COCO_IDS]
    # Load a random image from the images folder
    file_names = next(os.walk(IMAGE_DIR))[2]
    image = skimage.io.imread(os.path.join(IMAGE_DIR, random.choice(file_names)))

    results = model.detect([image], verbose=1)
    r = results[0]
    n = len(r["class_ids"])
    assert n > 0
    assert r["rois"].shape == (n, 4) and r["masks"].shape == image.shape[:2] + (n,)
    assert np.all((r["scores"] >= 0) & (r["scores"] <= 1))
    assert np.all((r["class_ids"] >= 1) & (r["class_ids"] < len(class_names)))
    fig = visualize.display_instances(image, r["rois"], r["masks"], r["class_ids"],
                                      class_names, r["scores"])
    assert_drawn(fig, boxes=n)
    labels = {t.get_text().rsplit(" ", 1)[0] for t in fig.axes[0].texts}
    assert labels == {class_names[c] for c in r["class_ids"]}


# ------------------------------------------------------------------------------------------
# samples/shapes/train_shapes.ipynb
@pytest.mark.slow
def test_train_shapes_notebook_trains_heads_then_all_and_detects(coco_model, tmp_path):
    """train_shapes.ipynb: COCO weights without the heads -> train heads -> train all ->
    find_last -> detect -> mAP. A user would see a crash, the heads loaded with the wrong
    class count, no checkpoint to continue from, or an mAP outside [0, 1].

    Slow (about 70-80 s on 2 CPU threads): it builds a training model and traces its train
    step twice (heads, then all layers, as the notebook does), then builds a second inference
    model; the default suite's 15-minute budget leaves it to ``-m slow``.
    """
    _, COCO_MODEL_PATH = coco_model  # noqa: N806
    MODEL_DIR = tmp_path / "logs"  # noqa: N806
    ShapesConfig = tiny(sample("shapes").ShapesConfig)  # noqa: N806
    config = ShapesConfig()
    config.display()

    dataset_train = ShapesDataset()
    dataset_train.load_shapes(8, config.IMAGE_SHAPE[0], config.IMAGE_SHAPE[1])
    dataset_train.prepare()
    dataset_val = ShapesDataset()
    dataset_val.load_shapes(8, config.IMAGE_SHAPE[0], config.IMAGE_SHAPE[1])
    dataset_val.prepare()

    image_ids = np.random.choice(dataset_train.image_ids, 4)
    for image_id in image_ids:
        image = dataset_train.load_image(image_id)
        mask, class_ids = dataset_train.load_mask(image_id)
        fig = visualize.display_top_masks(image, mask, class_ids, dataset_train.class_names)
        assert_drawn(fig, images=5)  # the image and one panel per class (up to 4)

    model = modellib.MaskRCNN(mode="training", config=config, model_dir=MODEL_DIR)
    init_with = "coco"
    if init_with == "coco":
        model.load_weights(COCO_MODEL_PATH, by_name=True,
                           exclude=["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox",
                                    "mrcnn_mask"])
    saved = read_h5_weights(COCO_MODEL_PATH)
    np.testing.assert_array_equal(layer_weights(model, "conv1")[0], saved["conv1"][0])
    assert layer_weights(model, "mrcnn_mask")[0].shape[-1] == 4  # 4 classes, not COCO's 81
    conv1 = layer_weights(model, "conv1")[0].copy()
    head = layer_weights(model, "mrcnn_class_logits")[0].copy()

    model.train(dataset_train, dataset_val, learning_rate=config.LEARNING_RATE, epochs=1,
                layers="heads")
    np.testing.assert_array_equal(layer_weights(model, "conv1")[0], conv1)  # frozen
    assert not np.array_equal(layer_weights(model, "mrcnn_class_logits")[0], head)
    model.train(dataset_train, dataset_val, learning_rate=config.LEARNING_RATE / 10, epochs=2,
                layers="all")
    assert not np.array_equal(layer_weights(model, "conv1")[0], conv1)

    class InferenceConfig(ShapesConfig):
        GPU_COUNT = 1
        IMAGES_PER_GPU = 1

    inference_config = InferenceConfig()
    model = modellib.MaskRCNN(mode="inference", config=inference_config, model_dir=MODEL_DIR)
    model_path = model.find_last()
    print("Loading weights from ", model_path)
    model.load_weights(model_path, by_name=True)
    assert Path(model_path).name == "mask_rcnn_shapes_0002.h5"
    assert_holds(model, model_path, ["conv1", "mrcnn_class_logits", "mrcnn_mask"])

    image_id = random.choice(dataset_val.image_ids)
    original_image, image_meta, gt_class_id, gt_bbox, gt_mask = modellib.load_image_gt(
        dataset_val, inference_config, image_id, use_mini_mask=False)
    log("original_image", original_image)
    log("image_meta", image_meta)
    log("gt_class_id", gt_class_id)
    log("gt_bbox", gt_bbox)
    log("gt_mask", gt_mask)
    assert original_image.shape == (SIZE, SIZE, 3)
    assert gt_mask.shape == (SIZE, SIZE, len(gt_class_id)) == (SIZE, SIZE, len(gt_bbox))
    fig = visualize.display_instances(original_image, gt_bbox, gt_mask, gt_class_id,
                                      dataset_train.class_names, figsize=(8, 8))
    assert_drawn(fig, boxes=len(gt_bbox))

    results = model.detect([original_image], verbose=1)
    r = results[0]
    ax = get_ax()
    visualize.display_instances(original_image, r["rois"], r["masks"], r["class_ids"],
                                dataset_val.class_names, r["scores"], ax=ax)
    assert_drawn(ax.figure, boxes=len(r["rois"]))

    # Compute VOC-style standard mAP @ IoU=0.5 (the notebook's 10 images -> 2)
    image_ids = np.random.choice(dataset_val.image_ids, 2)
    APs = []  # noqa: N806
    for image_id in image_ids:
        image, image_meta, gt_class_id, gt_bbox, gt_mask = modellib.load_image_gt(
            dataset_val, inference_config, image_id, use_mini_mask=False)
        molded_images = np.expand_dims(modellib.mold_image(image, inference_config), 0)
        assert molded_images.shape == (1, SIZE, SIZE, 3)
        results = model.detect([image], verbose=0)
        r = results[0]
        AP, precisions, recalls, overlaps = utils.compute_ap(  # noqa: N806
            gt_bbox, gt_class_id, gt_mask, r["rois"], r["class_ids"], r["scores"], r["masks"])
        APs.append(AP)
        assert overlaps.shape == (len(r["class_ids"]), len(gt_class_id))
    print("mAP: ", np.mean(APs))
    assert 0.0 <= np.mean(APs) <= 1.0


# ------------------------------------------------------------------------------------------
# samples/coco/inspect_data.ipynb and samples/balloon/inspect_balloon_data.ipynb
def inspect_data_cells(dataset, config) -> None:
    """The cells the two inspect-data notebooks share, in their order, after the dataset is
    loaded: samples, boxes, resizing, mini masks, anchors, the data generator's targets."""
    print(f"Image Count: {len(dataset.image_ids)}")
    print(f"Class Count: {dataset.num_classes}")
    for i, info in enumerate(dataset.class_info):
        print("{:3}. {:50}".format(i, info["name"]))

    # Display Samples
    image_ids = np.random.choice(dataset.image_ids, 4)
    for image_id in image_ids:
        image = dataset.load_image(image_id)
        mask, class_ids = dataset.load_mask(image_id)
        assert_drawn(visualize.display_top_masks(image, mask, class_ids, dataset.class_names),
                     images=5)

    # Bounding Boxes: computed from the masks
    image_id = random.choice(dataset.image_ids)
    image = dataset.load_image(image_id)
    mask, class_ids = dataset.load_mask(image_id)
    bbox = utils.extract_bboxes(mask)
    print("image_id ", image_id, dataset.image_reference(image_id))
    log("image", image)
    log("mask", mask)
    log("class_ids", class_ids)
    log("bbox", bbox)
    assert image.shape == (48, SIZE, 3) and mask.shape == (48, SIZE, len(class_ids))
    assert bbox.shape == (len(class_ids), 4)
    assert_drawn(visualize.display_instances(image, bbox, mask, class_ids, dataset.class_names),
                 boxes=len(bbox))

    # Resize Images
    image_id = np.random.choice(dataset.image_ids, 1)[0]
    image = dataset.load_image(image_id)
    mask, class_ids = dataset.load_mask(image_id)
    original_shape = image.shape
    image, window, scale, padding, _ = utils.resize_image(
        image, min_dim=config.IMAGE_MIN_DIM, max_dim=config.IMAGE_MAX_DIM,
        mode=config.IMAGE_RESIZE_MODE)
    mask = utils.resize_mask(mask, scale, padding)
    bbox = utils.extract_bboxes(mask)
    print("image_id: ", image_id, dataset.image_reference(image_id))
    print("Original shape: ", original_shape)
    log("image", image)
    log("mask", mask)
    log("class_ids", class_ids)
    log("bbox", bbox)
    assert image.shape == (SIZE, SIZE, 3) and mask.shape[:2] == (SIZE, SIZE)
    assert tuple(window) == (8, 0, 56, 64) and scale == 1.0  # 48x64 padded to a square
    assert np.all(bbox[:, 0] >= window[0]) and np.all(bbox[:, 2] <= window[2])
    assert_drawn(visualize.display_instances(image, bbox, mask, class_ids, dataset.class_names))

    # Mini Masks
    image_id = np.random.choice(dataset.image_ids, 1)[0]
    image, image_meta, class_ids, bbox, mask = modellib.load_image_gt(
        dataset, config, image_id, use_mini_mask=False)
    log("image", image)
    log("image_meta", image_meta)
    log("class_ids", class_ids)
    log("bbox", bbox)
    log("mask", mask)
    count = min(mask.shape[-1], 7)
    assert_drawn(display_images([image] + [mask[:, :, i] for i in range(count)]),
                 images=1 + count)
    assert_drawn(visualize.display_instances(image, bbox, mask, class_ids, dataset.class_names))
    full_mask = mask
    # Add augmentation and mask resizing.
    image, image_meta, class_ids, bbox, mask = modellib.load_image_gt(
        dataset, config, image_id, augment=True, use_mini_mask=True)
    log("mask", mask)
    assert mask.shape == tuple(config.MINI_MASK_SHAPE) + (len(class_ids),)
    display_images([image] + [mask[:, :, i] for i in range(min(mask.shape[-1], 7))])
    mask = utils.expand_mask(bbox, mask, image.shape)
    assert mask.shape == full_mask.shape
    assert_drawn(visualize.display_instances(image, bbox, mask, class_ids, dataset.class_names))

    # Anchors
    backbone_shapes = modellib.compute_backbone_shapes(config, config.IMAGE_SHAPE)
    anchors = utils.generate_pyramid_anchors(config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
                                             backbone_shapes, config.BACKBONE_STRIDES,
                                             config.RPN_ANCHOR_STRIDE)
    num_levels = len(backbone_shapes)
    anchors_per_cell = len(config.RPN_ANCHOR_RATIOS)
    print("Count: ", anchors.shape[0])
    print("Scales: ", config.RPN_ANCHOR_SCALES)
    print("ratios: ", config.RPN_ANCHOR_RATIOS)
    print("Anchors per Cell: ", anchors_per_cell)
    print("Levels: ", num_levels)
    anchors_per_level = []
    for level in range(num_levels):
        num_cells = backbone_shapes[level][0] * backbone_shapes[level][1]
        anchors_per_level.append(anchors_per_cell * num_cells // config.RPN_ANCHOR_STRIDE**2)
        print(f"Anchors in Level {level}: {anchors_per_level[level]}")
    assert sum(anchors_per_level) == anchors.shape[0] == 3 * (16**2 + 8**2 + 4**2 + 2**2 + 1)

    # Visualize anchors of one cell at the center of the feature map of each level
    image_id = np.random.choice(dataset.image_ids, 1)[0]
    image, image_meta, _, _, _ = modellib.load_image_gt(dataset, config, image_id)
    fig, ax = plt.subplots(1, figsize=(10, 10))
    ax.imshow(image)
    levels = len(backbone_shapes)
    for level in range(levels):
        colors = visualize.random_colors(levels)
        level_start = sum(anchors_per_level[:level])
        level_anchors = anchors[level_start:level_start + anchors_per_level[level]]
        print(f"Level {level}. Anchors: {level_anchors.shape[0]:6}  "
              f"Feature map Shape: {backbone_shapes[level]}")
        center_cell = backbone_shapes[level] // 2
        center_anchor = anchors_per_cell * (
            (center_cell[0] * backbone_shapes[level][1] / config.RPN_ANCHOR_STRIDE**2)
            + center_cell[1] / config.RPN_ANCHOR_STRIDE)
        level_center = int(center_anchor)
        for i, rect in enumerate(level_anchors[level_center:level_center + anchors_per_cell]):
            y1, x1, y2, x2 = rect
            p = patches.Rectangle((x1, y1), x2 - x1, y2 - y1, linewidth=2, facecolor="none",
                                  edgecolor=(i + 1) * np.array(colors[level]) / anchors_per_cell)
            ax.add_patch(p)
            # The centre cell's anchors are centred on that cell.
            stride = config.BACKBONE_STRIDES[level]
            np.testing.assert_allclose([(y1 + y2) / 2, (x1 + x2) / 2],
                                       np.asarray(center_cell) * stride, atol=1e-6)
    assert len(ax.patches) == levels * anchors_per_cell

    # Data Generator
    random_rois = 2000
    g = modellib.data_generator(dataset, config, shuffle=True, random_rois=random_rois,
                                batch_size=4, detection_targets=True)
    if random_rois:
        [normalized_images, image_meta, rpn_match, rpn_bbox, gt_class_ids, gt_boxes, gt_masks,
         rpn_rois, rois], [mrcnn_class_ids, mrcnn_bbox, mrcnn_mask] = next(g)
        log("rois", rois)
        log("mrcnn_class_ids", mrcnn_class_ids)
        log("mrcnn_bbox", mrcnn_bbox)
        log("mrcnn_mask", mrcnn_mask)
    log("gt_class_ids", gt_class_ids)
    log("gt_boxes", gt_boxes)
    log("gt_masks", gt_masks)
    log("rpn_match", rpn_match)
    log("rpn_bbox", rpn_bbox)
    image_id = modellib.parse_image_meta(image_meta)["image_id"][0]
    print("image_id: ", image_id, dataset.image_reference(image_id))
    assert normalized_images.shape == (4, SIZE, SIZE, 3) and rpn_rois.shape[:2] == (4, 2000)
    # Remove the last dim in mrcnn_class_ids. It's only added to satisfy Keras restriction on
    # target shape.
    mrcnn_class_ids = mrcnn_class_ids[:, :, 0]

    b = 0
    sample_image = modellib.unmold_image(normalized_images[b], config)
    assert sample_image.dtype == np.uint8 and sample_image.shape == (SIZE, SIZE, 3)
    indices = np.where(rpn_match[b] == 1)[0]
    refined_anchors = utils.apply_box_deltas(anchors[indices],
                                             rpn_bbox[b, :len(indices)] * config.RPN_BBOX_STD_DEV)
    log("anchors", anchors)
    log("refined_anchors", refined_anchors)
    positive_anchor_ids = np.where(rpn_match[b] == 1)[0]
    print(f"Positive anchors: {len(positive_anchor_ids)}")
    negative_anchor_ids = np.where(rpn_match[b] == -1)[0]
    print(f"Negative anchors: {len(negative_anchor_ids)}")
    neutral_anchor_ids = np.where(rpn_match[b] == 0)[0]
    print(f"Neutral anchors: {len(neutral_anchor_ids)}")
    assert len(positive_anchor_ids) > 0
    assert len(positive_anchor_ids) + len(negative_anchor_ids) <= config.RPN_TRAIN_ANCHORS_PER_IMAGE
    # The refined positive anchors are the ground-truth boxes they were matched to.
    gt = gt_boxes[b][gt_class_ids[b] > 0]
    best = utils.compute_overlaps(refined_anchors, gt.astype(np.float32)).max(axis=1)
    assert np.all(best > 0.95)
    # ROI breakdown by class
    for c, n in zip(dataset.class_names, np.bincount(mrcnn_class_ids[b].flatten()),
                    strict=False):
        if n:
            print(f"{c[:20]:23}: {n}")

    fig, ax = plt.subplots(1, figsize=(16, 16))
    visualize.draw_boxes(sample_image, boxes=anchors[positive_anchor_ids],
                         refined_boxes=refined_anchors, ax=ax)
    assert_drawn(fig, boxes=2 * len(positive_anchor_ids))
    assert_drawn(visualize.draw_boxes(sample_image, boxes=anchors[negative_anchor_ids]),
                 boxes=len(negative_anchor_ids))
    assert_drawn(visualize.draw_boxes(sample_image,
                                      boxes=anchors[np.random.choice(neutral_anchor_ids, 100)]),
                 boxes=100)

    # ROIs
    if random_rois:
        # Class aware bboxes
        bbox_specific = mrcnn_bbox[b, np.arange(mrcnn_bbox.shape[1]), mrcnn_class_ids[b], :]
        # Refined ROIs
        refined_rois = utils.apply_box_deltas(rois[b].astype(np.float32),
                                              bbox_specific[:, :4] * config.BBOX_STD_DEV)
        # Class aware masks
        mask_specific = mrcnn_mask[b, np.arange(mrcnn_mask.shape[1]), :, :, mrcnn_class_ids[b]]
        assert_drawn(visualize.draw_rois(sample_image, rois[b], refined_rois, mask_specific,
                                         mrcnn_class_ids[b], dataset.class_names))
        # Any repeated ROIs?
        rows = np.ascontiguousarray(rois[b]).view(
            np.dtype((np.void, rois.dtype.itemsize * rois.shape[-1])))
        _, idx = np.unique(rows, return_index=True)
        print(f"Unique ROIs: {len(idx)} out of {rois.shape[1]}")
        assert rois.shape[1] == config.TRAIN_ROIS_PER_IMAGE
        # Positive ROIs refine onto a ground-truth box.
        positive = mrcnn_class_ids[b] > 0
        assert positive.any()
        best = utils.compute_overlaps(refined_rois[positive], gt.astype(np.float32)).max(axis=1)
        assert np.all(best > 0.95)

    if random_rois:
        # Display ROIs and corresponding masks and bounding boxes
        ids = random.sample(range(rois.shape[1]), 8)
        images = []
        titles = []
        for i in ids:
            image = visualize.draw_box(sample_image.copy(), rois[b, i, :4].astype(np.int32),
                                       [255, 0, 0])
            image = visualize.draw_box(image, refined_rois[i].astype(np.int64), [0, 255, 0])
            images.append(image)
            titles.append(f"ROI {i}")
            images.append(mask_specific[i] * 255)
            titles.append(dataset.class_names[mrcnn_class_ids[b, i]][:20])
        assert_drawn(display_images(images, titles, cols=4, cmap="Blues", interpolation="none"),
                     images=16)

    # Check ratio of positive ROIs in a set of images.
    if random_rois:
        limit = 2
        temp_g = modellib.data_generator(dataset, config, shuffle=True, random_rois=10000,
                                         batch_size=1, detection_targets=True)
        total = 0
        for _ in range(limit):
            _, [ids, _, _] = next(temp_g)
            positive_rois = np.sum(ids[0] > 0)
            total += positive_rois
            print(f"{positive_rois:5} {positive_rois / ids.shape[1]:5.2f}")
        ratio = total / (limit * ids.shape[1])
        print(f"Average percent: {ratio:.2f}")
        assert 0 < ratio <= config.ROI_POSITIVE_RATIO + 1e-6
    plt.close("all")


def test_inspect_data_notebook_on_a_coco_dataset(coco):
    """inspect_data.ipynb on COCO-format files: a user would see wrong masks, boxes off the
    objects, misplaced anchors or training targets that do not point at the objects."""
    coco_module, COCO_DIR = coco  # noqa: N806
    config = tiny(coco_module.CocoConfig)()
    dataset = coco_module.CocoDataset()
    # Our default year is 2017; Matterport's was 2014.
    dataset.load_coco(COCO_DIR, "train", year="2014")
    dataset.prepare()
    assert dataset.num_classes == 81 and len(dataset.image_ids) == 2
    inspect_data_cells(dataset, config)


def test_inspect_balloon_data_notebook_on_a_via_project(tmp_path):
    """inspect_balloon_data.ipynb on a VIA project in Matterport's balloon layout."""
    balloon = sample("balloon")
    BALLOON_DIR = write_balloon(tmp_path / "balloon")  # noqa: N806
    config = tiny(balloon.BalloonConfig)()
    # Matterport: dataset = balloon.BalloonDataset(); dataset.load_balloon(BALLOON_DIR, "train")
    dataset = balloon.BalloonDataset()
    dataset.load_balloon(BALLOON_DIR, "train")
    dataset.prepare()
    assert dataset.class_names == ["BG", "balloon"] and len(dataset.image_ids) == 2
    inspect_data_cells(dataset, config)


# ------------------------------------------------------------------------------------------
# samples/coco/inspect_model.ipynb and samples/balloon/inspect_balloon_model.ipynb
def run_detection_cell(model, dataset, config):
    """The "Run Detection" cell, the first one both inspect-model notebooks run once the model
    has its weights; returns the notebook's variables the later cells use."""
    image_id = random.choice(dataset.image_ids)
    image, image_meta, gt_class_id, gt_bbox, gt_mask = modellib.load_image_gt(
        dataset, config, image_id, use_mini_mask=False)
    info = dataset.image_info[image_id]
    print("image ID: {}.{} ({}) {}".format(info["source"], info["id"], image_id,
                                           dataset.image_reference(image_id)))
    # Run object detection
    results = model.detect([image], verbose=1)
    ax = get_ax(1)
    r = results[0]
    visualize.display_instances(image, r["rois"], r["masks"], r["class_ids"],
                                dataset.class_names, r["scores"], ax=ax, title="Predictions")
    assert len(r["rois"]) > 0
    assert_drawn(ax.figure, boxes=len(r["rois"]))
    log("gt_class_id", gt_class_id)
    log("gt_bbox", gt_bbox)
    log("gt_mask", gt_mask)
    return image, gt_class_id, gt_bbox, gt_mask, r


def precision_recall_cells(model, dataset, config, gt_class_id, gt_bbox, gt_mask, r) -> None:
    """inspect_model.ipynb's "Precision-Recall" and "Compute mAP @ IoU=50 on Batch of Images"
    (inspect_balloon_model.ipynb goes from the detection to the colour splash instead)."""
    AP, precisions, recalls, overlaps = utils.compute_ap(  # noqa: N806
        gt_bbox, gt_class_id, gt_mask, r["rois"], r["class_ids"], r["scores"], r["masks"])
    assert 0.0 <= AP <= 1.0
    assert np.all((precisions >= 0) & (precisions <= 1)) and np.all(np.diff(recalls) >= 0)
    fig = visualize.plot_precision_recall(AP, precisions, recalls)
    assert fig.axes[0].get_title() == f"Precision-Recall Curve. AP@50 = {AP:.3f}"
    fig = visualize.plot_overlaps(gt_class_id, r["class_ids"], r["scores"], overlaps,
                                  dataset.class_names)
    assert overlaps.shape == (len(r["class_ids"]), len(gt_class_id))
    assert len(fig.axes[0].texts) == overlaps.size

    # Compute mAP @ IoU=50 on Batch of Images
    def compute_batch_ap(image_ids):
        APs = []  # noqa: N806
        for image_id in image_ids:
            image, image_meta, gt_class_id, gt_bbox, gt_mask = modellib.load_image_gt(
                dataset, config, image_id, use_mini_mask=False)
            results = model.detect([image], verbose=0)
            r = results[0]
            AP, precisions, recalls, overlaps = utils.compute_ap(  # noqa: N806
                gt_bbox, gt_class_id, gt_mask, r["rois"], r["class_ids"], r["scores"],
                r["masks"])
            APs.append(AP)
        return APs

    image_ids = np.random.choice(dataset.image_ids, 2)
    APs = compute_batch_ap(image_ids)  # noqa: N806
    print("mAP @ IoU=50: ", np.mean(APs))
    assert len(APs) == 2 and all(0.0 <= ap <= 1.0 for ap in APs)


def step_by_step_cells(model, dataset, config, image, gt_class_id, gt_bbox, gt_mask, r, *,
                       coco_notebook: bool) -> None:
    """The "Step by Step Prediction" cells both inspect-model notebooks end with: RPN targets
    and predictions, proposal classification, masks, activations (``r`` is the detection's).

    coco_notebook: also inspect_model.ipynb's cells that inspect_balloon_model.ipynb does not
    have (the RPN recall, the RPN delta histograms and the proposal coordinate scatter).
    """
    # Stage 1: Region Proposal Network -- RPN targets
    target_rpn_match, target_rpn_bbox = modellib.build_rpn_targets(
        image.shape, model.anchors, gt_class_id, gt_bbox, model.config)
    log("target_rpn_match", target_rpn_match)
    log("target_rpn_bbox", target_rpn_bbox)
    positive_anchor_ix = np.where(target_rpn_match[:] == 1)[0]
    negative_anchor_ix = np.where(target_rpn_match[:] == -1)[0]
    neutral_anchor_ix = np.where(target_rpn_match[:] == 0)[0]
    positive_anchors = model.anchors[positive_anchor_ix]
    negative_anchors = model.anchors[negative_anchor_ix]
    neutral_anchors = model.anchors[neutral_anchor_ix]
    log("positive_anchors", positive_anchors)
    log("negative_anchors", negative_anchors)
    log("neutral anchors", neutral_anchors)
    # Apply refinement deltas to positive anchors
    refined_anchors = utils.apply_box_deltas(
        positive_anchors,
        target_rpn_bbox[:positive_anchors.shape[0]] * model.config.RPN_BBOX_STD_DEV)
    log("refined_anchors", refined_anchors)
    assert model.anchors.shape == (1023, 4) and model.anchors.max() > 1  # pixels
    best = utils.compute_overlaps(refined_anchors, gt_bbox.astype(np.float32)).max(axis=1)
    assert len(positive_anchors) > 0 and np.all(best > 0.95)
    assert_drawn(visualize.draw_boxes(image, boxes=positive_anchors,
                                      refined_boxes=refined_anchors, ax=get_ax()))

    # RPN Predictions
    pillar = model.keras_model.get_layer("ROI").output  # node to start searching from
    # TF 1.4 and 1.9 introduce new versions of NMS. Search for all names to support TF 1.3~1.10
    nms_node = model.ancestor(pillar, "ROI/rpn_non_max_suppression:0")
    if nms_node is None:
        nms_node = model.ancestor(pillar, "ROI/rpn_non_max_suppression/NonMaxSuppressionV2:0")
    if nms_node is None:  # TF 1.9-1.10
        nms_node = model.ancestor(pillar, "ROI/rpn_non_max_suppression/NonMaxSuppressionV3:0")
    rpn = model.run_graph([image], [
        ("rpn_class", model.keras_model.get_layer("rpn_class").output),
        ("pre_nms_anchors", model.ancestor(pillar, "ROI/pre_nms_anchors:0")),
        ("refined_anchors", model.ancestor(pillar, "ROI/refined_anchors:0")),
        ("refined_anchors_clipped", model.ancestor(pillar, "ROI/refined_anchors_clipped:0")),
        ("post_nms_anchor_ix", nms_node),
        ("proposals", model.keras_model.get_layer("ROI").output),
    ])
    # Show top anchors by score (before refinement)
    limit = 100
    sorted_anchor_ids = np.argsort(rpn["rpn_class"][:, :, 1].flatten())[::-1]
    assert_drawn(visualize.draw_boxes(image, boxes=model.anchors[sorted_anchor_ids[:limit]],
                                      ax=get_ax()), boxes=limit)
    # Show top anchors with refinement. Then with clipping to image boundaries
    limit = 50
    ax = get_ax(1, 2)
    pre_nms_anchors = utils.denorm_boxes(rpn["pre_nms_anchors"][0], image.shape[:2])
    refined_anchors = utils.denorm_boxes(rpn["refined_anchors"][0], image.shape[:2])
    refined_anchors_clipped = utils.denorm_boxes(rpn["refined_anchors_clipped"][0],
                                                 image.shape[:2])
    visualize.draw_boxes(image, boxes=pre_nms_anchors[:limit],
                         refined_boxes=refined_anchors[:limit], ax=ax[0])
    visualize.draw_boxes(image, refined_boxes=refined_anchors_clipped[:limit], ax=ax[1])
    assert_drawn(ax[0].figure, images=2, boxes=3 * limit)
    assert refined_anchors_clipped.min() >= 0 and refined_anchors_clipped.max() <= SIZE
    # Show refined anchors after non-max suppression
    ixs = rpn["post_nms_anchor_ix"][:limit]
    assert_drawn(visualize.draw_boxes(image, refined_boxes=refined_anchors_clipped[ixs],
                                      ax=get_ax()), boxes=len(ixs))
    # Show final proposals (the refined anchors after NMS, normalized)
    h, w = config.IMAGE_SHAPE[:2]
    proposals = rpn["proposals"][0, :limit] * np.array([h, w, h, w])
    assert_drawn(visualize.draw_boxes(image, refined_boxes=proposals, ax=get_ax()))
    kept = np.asarray(rpn["post_nms_anchor_ix"])[:len(proposals)]
    np.testing.assert_allclose(proposals[:len(kept)],
                               utils.norm_boxes(refined_anchors_clipped[kept], (h, w))
                               * np.array([h, w, h, w]), atol=1.5)
    if coco_notebook:
        # Measure the RPN recall (percent of objects covered by anchors)
        iou_threshold = 0.7
        recall, positive_anchor_ids = utils.compute_recall(model.anchors, gt_bbox, iou_threshold)
        print(f"All Anchors ({model.anchors.shape[0]:5})       Recall: {recall:.3f}  Positive anchors: {len(positive_anchor_ids)}")
        assert 0.0 <= recall <= 1.0 and len(positive_anchor_ids) <= model.anchors.shape[0]
        recall, positive_anchor_ids = utils.compute_recall(rpn["refined_anchors"][0], gt_bbox,
                                                           iou_threshold)
        print(f"Refined Anchors ({rpn['refined_anchors'].shape[1]:5})   Recall: {recall:.3f}  Positive anchors: {len(positive_anchor_ids)}")
        assert 0.0 <= recall <= 1.0
        recall, positive_anchor_ids = utils.compute_recall(proposals, gt_bbox, iou_threshold)
        print(f"Post NMS Anchors ({proposals.shape[0]:5})  Recall: {recall:.3f}  Positive anchors: {len(positive_anchor_ids)}")
        assert 0.0 <= recall <= 1.0

    # Stage 2: Proposal Classification
    mrcnn = model.run_graph([image], [
        ("proposals", model.keras_model.get_layer("ROI").output),
        ("probs", model.keras_model.get_layer("mrcnn_class").output),
        ("deltas", model.keras_model.get_layer("mrcnn_bbox").output),
        ("masks", model.keras_model.get_layer("mrcnn_mask").output),
        ("detections", model.keras_model.get_layer("mrcnn_detection").output),
    ])
    # Get detection class IDs. Trim zero padding.
    det_class_ids = mrcnn["detections"][0, :, 4].astype(np.int32)
    det_count = np.where(det_class_ids == 0)[0][0]
    det_class_ids = det_class_ids[:det_count]
    detections = mrcnn["detections"][0, :det_count]
    print(f"{det_count} detections: {np.array(dataset.class_names)[det_class_ids]}")
    captions = [f"{dataset.class_names[int(c)]} {s:.3f}" if c > 0 else ""
                for c, s in zip(detections[:, 4], detections[:, 5], strict=True)]
    fig = visualize.draw_boxes(image, refined_boxes=utils.denorm_boxes(detections[:, :4],
                                                                       image.shape[:2]),
                               visibilities=[2] * len(detections), captions=captions,
                               title="Detections", ax=get_ax())
    assert det_count > 0 and len(fig.axes[0].texts) == det_count
    # The graph's detections are detect()'s (detect maps them back to the image's pixels).
    np.testing.assert_array_equal(np.sort(det_class_ids), np.sort(r["class_ids"]))

    # Step by Step Detection: proposals are normalized; scale them to image coordinates
    h, w = config.IMAGE_SHAPE[:2]
    proposals = np.around(mrcnn["proposals"][0] * np.array([h, w, h, w])).astype(np.int32)
    # Class ID, score, and mask per proposal
    roi_class_ids = np.argmax(mrcnn["probs"][0], axis=1)
    roi_scores = mrcnn["probs"][0, np.arange(roi_class_ids.shape[0]), roi_class_ids]
    roi_class_names = np.array(dataset.class_names)[roi_class_ids]
    roi_positive_ixs = np.where(roi_class_ids > 0)[0]
    print(f"{np.sum(np.any(proposals, axis=1))} Valid proposals out of {proposals.shape[0]}")
    print(f"{len(roi_positive_ixs)} Positive ROIs")
    print(list(zip(*np.unique(roi_class_names, return_counts=True), strict=True)))
    np.testing.assert_allclose(mrcnn["probs"][0].sum(axis=1), 1.0, atol=1e-5)
    # Display a random sample of proposals: background ones dotted, the rest with class/score
    limit = 200
    ixs = np.random.randint(0, proposals.shape[0], limit)
    captions = [f"{dataset.class_names[c]} {s:.3f}" if c > 0 else ""
                for c, s in zip(roi_class_ids[ixs], roi_scores[ixs], strict=True)]
    assert_drawn(visualize.draw_boxes(image, boxes=proposals[ixs],
                                      visibilities=np.where(roi_class_ids[ixs] > 0, 2, 1),
                                      captions=captions, title="ROIs Before Refinement",
                                      ax=get_ax()))
    # Apply Bounding Box Refinement: class-specific bounding box shifts
    roi_bbox_specific = mrcnn["deltas"][0, np.arange(proposals.shape[0]), roi_class_ids]
    log("roi_bbox_specific", roi_bbox_specific)
    refined_proposals = utils.apply_box_deltas(
        proposals, roi_bbox_specific * config.BBOX_STD_DEV).astype(np.int32)
    log("refined_proposals", refined_proposals)
    limit = 5
    ids = np.random.randint(0, len(roi_positive_ixs), limit)
    captions = [f"{dataset.class_names[c]} {s:.3f}" if c > 0 else ""
                for c, s in zip(roi_class_ids[roi_positive_ixs][ids],
                                roi_scores[roi_positive_ixs][ids], strict=True)]
    assert_drawn(visualize.draw_boxes(
        image, boxes=proposals[roi_positive_ixs][ids],
        refined_boxes=refined_proposals[roi_positive_ixs][ids],
        visibilities=np.where(roi_class_ids[roi_positive_ixs][ids] > 0, 1, 0),
        captions=captions, title="ROIs After Refinement", ax=get_ax()))
    # Filter Low Confidence Detections: remove boxes classified as background
    keep = np.where(roi_class_ids > 0)[0]
    print(f"Keep {keep.shape[0]} detections:\n{keep}")
    keep = np.intersect1d(keep, np.where(roi_scores >= config.DETECTION_MIN_CONFIDENCE)[0])
    print(f"Remove boxes below {config.DETECTION_MIN_CONFIDENCE} confidence. Keep {keep.shape[0]}:\n{keep}")
    # Per-Class Non-Max Suppression
    pre_nms_boxes = refined_proposals[keep]
    pre_nms_scores = roi_scores[keep]
    pre_nms_class_ids = roi_class_ids[keep]
    nms_keep = []
    for class_id in np.unique(pre_nms_class_ids):
        ixs = np.where(pre_nms_class_ids == class_id)[0]
        class_keep = utils.non_max_suppression(pre_nms_boxes[ixs], pre_nms_scores[ixs],
                                               config.DETECTION_NMS_THRESHOLD)
        class_keep = keep[ixs[class_keep]]
        nms_keep = np.union1d(nms_keep, class_keep)
        print(f"{dataset.class_names[class_id][:20]:22}: {keep[ixs]} -> {class_keep}")
    keep = np.intersect1d(keep, nms_keep).astype(np.int32)
    print(f"\nKept after per-class NMS: {keep.shape[0]}\n{keep}")
    # The numpy replay keeps the classes of the graph's detections.
    assert set(det_class_ids) <= set(roi_class_ids[keep])
    ixs = np.arange(len(keep))
    captions = [f"{dataset.class_names[c]} {s:.3f}" if c > 0 else ""
                for c, s in zip(roi_class_ids[keep][ixs], roi_scores[keep][ixs], strict=True)]
    assert_drawn(visualize.draw_boxes(
        image, boxes=proposals[keep][ixs], refined_boxes=refined_proposals[keep][ixs],
        visibilities=np.where(roi_class_ids[keep][ixs] > 0, 1, 0), captions=captions,
        title="Detections after NMS", ax=get_ax()))

    # Stage 3: Generating Masks -- ground truth, then predictions
    assert_drawn(display_images(np.transpose(gt_mask, [2, 0, 1]), cmap="Blues"),
                 images=gt_mask.shape[-1])
    mrcnn = model.run_graph([image], [
        ("detections", model.keras_model.get_layer("mrcnn_detection").output),
        ("masks", model.keras_model.get_layer("mrcnn_mask").output),
    ])
    det_class_ids = mrcnn["detections"][0, :, 4].astype(np.int32)
    det_count = np.where(det_class_ids == 0)[0][0]
    det_class_ids = det_class_ids[:det_count]
    print(f"{det_count} detections: {np.array(dataset.class_names)[det_class_ids]}")
    det_boxes = utils.denorm_boxes(mrcnn["detections"][0, :, :4], image.shape[:2])
    det_mask_specific = np.array([mrcnn["masks"][0, i, :, :, c]
                                  for i, c in enumerate(det_class_ids)])
    det_masks = np.array([utils.unmold_mask(m, det_boxes[i], image.shape)
                          for i, m in enumerate(det_mask_specific)])
    log("det_mask_specific", det_mask_specific)
    log("det_masks", det_masks)
    mask_size = 2 * config.MASK_POOL_SIZE
    assert det_mask_specific.shape == (det_count, mask_size, mask_size)
    assert det_masks.shape == (det_count,) + image.shape[:2] and det_masks.dtype == bool
    assert_drawn(display_images(det_mask_specific[:4] * 255, cmap="Blues",
                                interpolation="none"), images=min(det_count, 4))
    assert_drawn(display_images(det_masks[:4] * 255, cmap="Blues", interpolation="none"),
                 images=min(det_count, 4))

    # Visualize Activations (Keras 3: the notebook's tf.identity(...) around an .output is
    # dropped; the tiny ResNet has one block per stage, so res2a/res3a/res4a stand for
    # res2c/res3c/res4w)
    activations = model.run_graph([image], [
        ("input_image", model.keras_model.get_layer("input_image").output),
        ("res2c_out", model.keras_model.get_layer("res2a_out").output),
        ("res3c_out", model.keras_model.get_layer("res3a_out").output),
        ("res4w_out", model.keras_model.get_layer("res4a_out").output),
        ("rpn_bbox", model.keras_model.get_layer("rpn_bbox").output),
        ("roi", model.keras_model.get_layer("ROI").output),
    ])
    # Input image (normalized)
    unmolded = modellib.unmold_image(activations["input_image"][0], config)
    np.testing.assert_array_equal(unmolded, image)
    _ = plt.imshow(unmolded)
    # Backbone feature map
    assert_drawn(display_images(np.transpose(activations["res2c_out"][0, :, :, :4], [2, 0, 1]),
                                cols=4), images=4)
    assert activations["res2c_out"].shape[1:3] == (SIZE // 4, SIZE // 4)
    if not coco_notebook:
        plt.close("all")
        return
    # Histograms of RPN bounding box deltas
    plt.figure(figsize=(12, 3))
    for k, title in enumerate(("dy", "dx", "dw", "dh")):
        plt.subplot(1, 4, k + 1)
        plt.title(title)
        _ = plt.hist(activations["rpn_bbox"][0, :, k], 50)
    assert len(plt.gcf().axes) == 4
    # Distribution of y, x coordinates of generated proposals
    plt.figure(figsize=(10, 5))
    plt.subplot(1, 2, 1)
    plt.title("y1, x1")
    plt.scatter(activations["roi"][0, :, 0], activations["roi"][0, :, 1])
    plt.subplot(1, 2, 2)
    plt.title("y2, x2")
    plt.scatter(activations["roi"][0, :, 2], activations["roi"][0, :, 3])
    plt.show()
    assert 0.0 <= activations["roi"].min() and activations["roi"].max() <= 1.0
    plt.close("all")


def test_inspect_model_notebook_on_coco_weights(coco, coco_model):
    """inspect_model.ipynb with COCO weights on a COCO-format dataset: a user would see the
    notebook crash at a cell, or intermediate tensors that disagree with detect()."""
    coco_module, COCO_DIR = coco  # noqa: N806
    model, COCO_MODEL_PATH = coco_model  # noqa: N806
    config = model.config
    config.display()
    dataset = coco_module.CocoDataset()
    dataset.load_coco(COCO_DIR, "minival", year="2014")
    dataset.prepare()
    print(f"Images: {len(dataset.image_ids)}\nClasses: {dataset.class_names}")
    weights_path = COCO_MODEL_PATH
    print("Loading weights ", weights_path)
    model.load_weights(weights_path, by_name=True)
    assert_holds(model, weights_path, CHECKED_LAYERS)
    image, gt_class_id, gt_bbox, gt_mask, r = run_detection_cell(model, dataset, config)
    precision_recall_cells(model, dataset, config, gt_class_id, gt_bbox, gt_mask, r)
    step_by_step_cells(model, dataset, config, image, gt_class_id, gt_bbox, gt_mask, r,
                       coco_notebook=True)


def test_inspect_balloon_model_notebook_on_balloon_weights(tmp_path):
    """inspect_balloon_model.ipynb: the last balloon checkpoint (find_last) -> detection ->
    colour splash -> the step-by-step cells, on a VIA project; a user would see a crash, no
    checkpoint found, or a splash that is not the detections' pixels."""
    balloon = sample("balloon")
    MODEL_DIR = tmp_path / "logs"  # noqa: N806
    config = tiny(balloon.BalloonConfig)()
    BALLOON_DIR = write_balloon(tmp_path / "balloon")  # noqa: N806

    # Override the training configurations with a few changes for inferencing.
    class InferenceConfig(config.__class__):
        # Run detection on one image at a time
        GPU_COUNT = 1
        IMAGES_PER_GPU = 1

    config = InferenceConfig()
    config.display()
    DEVICE = "/cpu:0"  # noqa: N806
    # Matterport: dataset = balloon.BalloonDataset(); dataset.load_balloon(BALLOON_DIR, "val")
    dataset = balloon.BalloonDataset()
    dataset.load_balloon(BALLOON_DIR, "val")
    dataset.prepare()
    print(f"Images: {len(dataset.image_ids)}\nClasses: {dataset.class_names}")
    with tf.device(DEVICE):
        model = modellib.MaskRCNN(mode="inference", model_dir=MODEL_DIR, config=config)
    # A stand-in for a balloon training run's last checkpoint, where find_last looks: the
    # classifier calls every ROI a balloon (random weights on two classes mostly say
    # background, and nothing would be detected).
    logits = model.find_trainable_layer(model.keras_model.get_layer("mrcnn_class_logits"))
    kernel, bias = logits.get_weights()
    logits.set_weights([kernel, bias + np.array([0.0, 10.0], np.float32)])
    run = MODEL_DIR / "balloon20180101T0000"
    run.mkdir(parents=True)
    checkpoint = release_weights(model, run / "mask_rcnn_balloon_0030.h5")

    # Or, load the last model you trained
    weights_path = model.find_last()
    print("Loading weights ", weights_path)
    model.load_weights(weights_path, by_name=True)
    assert Path(weights_path) == checkpoint
    assert_holds(model, weights_path, CHECKED_LAYERS)

    image, gt_class_id, gt_bbox, gt_mask, r = run_detection_cell(model, dataset, config)
    # Color Splash (an illustration; balloon.py's splash command makes better images)
    splash = balloon.color_splash(image, r["masks"])
    assert_drawn(display_images([splash], cols=1))
    inside = r["masks"].any(axis=-1)
    assert inside.any()
    np.testing.assert_array_equal(splash[inside], image[inside])
    assert np.all(splash[~inside][:, 0] == splash[~inside][:, 1])  # grey outside

    step_by_step_cells(model, dataset, config, image, gt_class_id, gt_bbox, gt_mask, r,
                       coco_notebook=False)


# ------------------------------------------------------------------------------------------
# samples/coco/inspect_weights.ipynb
def test_inspect_weights_notebook_shows_the_files_weights(coco_model):
    """inspect_weights.ipynb: weight statistics and histograms of the loaded .h5. A user would
    see statistics of other weights than the file's, or layers missing from the plots."""
    model, COCO_MODEL_PATH = coco_model  # noqa: N806
    config = model.config
    if config.NAME == "coco":
        weights_path = COCO_MODEL_PATH
    print("Loading weights ", weights_path)
    model.load_weights(weights_path, by_name=True)

    # Review Weight Stats
    html = visualize.display_weight_stats(model)
    saved = read_h5_weights(weights_path)
    rows = html.count("<tr>") - 1
    assert rows == sum(len(arrays) for arrays in saved.values())
    kernel = saved["conv1"][0]
    assert f"{kernel.min():+9.4f}" in html and f"{kernel.max():+10.4f}" in html

    # Histograms of Weights
    LAYER_TYPES = ["Conv2D", "Dense", "Conv2DTranspose"]  # noqa: N806
    layers = model.get_trainable_layers()
    # Keras 3: the head's shared-FC convolutions are WholeInputConv2D (a Conv2D subclass),
    # so the notebook's class-name test leaves out mrcnn_class_conv1/2.
    layers = list(filter(lambda layer: layer.__class__.__name__ in LAYER_TYPES, layers))
    fig, ax = plt.subplots(len(layers), 2, figsize=(10, 3 * len(layers)),
                           gridspec_kw={"hspace": 1})
    for l, layer in enumerate(layers):  # noqa: E741
        weights = layer.get_weights()
        for w, weight in enumerate(weights):
            tensor = layer.weights[w]
            ax[l, w].set_title(tensor.name)
            _ = ax[l, w].hist(weight[w].flatten(), 50)
    names = {layer.name for layer in layers}
    assert {"conv1", "fpn_p2", "rpn_class_raw", "mrcnn_class_logits", "mrcnn_bbox_fc",
            "mrcnn_mask_deconv", "mrcnn_mask"} <= names
    assert sum(bool(a.patches) for a in fig.axes) == sum(len(layer.weights) for layer in layers)
    plt.close("all")
