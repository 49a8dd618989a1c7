"""Fast learning test: a tiny localizer trained for ~10 s must find and name held-out objects.

Training goes through the user's path (generated PNGs + face-mask CSV -> ``load_annotations`` ->
``samples_to_arrays`` -> ``compile_localizer`` -> ``fit``). The held-out images are drawn in
memory by the same generator with another seed, and their truth (pixel boxes from the generator,
normalized here) and the IoU below are computed independently of the library, so a bug in CSV
parsing, box normalization, losses, optimizer or model shows up as a missed threshold.

Measured on 2 CPU cores, held-out metrics (seeds 0, 1, 2; ``LEARNING_TEST_SEED`` picks one):
    trained:          mean IoU 0.73-0.76, accuracy 1.00, accuracy@IoU>=0.5 0.93-0.97
    shuffled labels:  mean IoU 0.26-0.30, accuracy 0.43-0.53, accuracy@IoU>=0.5 0.06-0.07
                      (the control test below)
    by hand, seed 0:  box loss weight 0 -> IoU 0.09; targets with x/y swapped -> IoU 0.29;
                      heads frozen (lr 1e-12) -> IoU 0.46 (accuracy stays 1.00: the backbone
                      alone separates red from blue); class loss weight 0 -> accuracy 0.46;
                      untrained -> IoU 0.10; always the mean training box -> IoU 0.30.
The module takes about 22 s (two 10 s trainings).
"""

import math
import os

import keras
import numpy as np
import pytest

from localization.annotations import load_annotations
from localization.data import (
    build_dataset,
    compute_channel_stats,
    resize_image,
    samples_to_arrays,
)
from localization.model import build_localizer
from localization.synthetic import draw_synthetic_sample, write_synthetic_dataset
from localization.training import compile_localizer

SEED = int(os.environ.get("LEARNING_TEST_SEED", "0"))
IMAGE_SIZE = (80, 56)  # (width, height): not square, so an x/y mix-up in normalization shows
INPUT_SIZE = 32
TRAIN_IMAGES = 384
HELD_OUT_IMAGES = 256
EPOCHS = 30
LEARNING_RATE = 5e-3
# Thresholds, with the margins measured above: trained runs clear them, the controls do not.
MIN_IOU = 0.6
MIN_ACCURACY = 0.95
MIN_ACCURACY_AT_IOU50 = 0.75
MIN_IOU_GAIN_OVER_MEAN_BOX = 0.25


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of matching ``[N, 4]`` xyxy boxes, written out independently of localization.boxes."""
    width = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    height = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = width * height
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a + area_b - inter)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Train arrays read back from a generated CSV + PNGs, and in-memory held-out truth."""
    root = tmp_path_factory.mktemp("learning")
    table = load_annotations(write_synthetic_dataset(root, TRAIN_IMAGES, IMAGE_SIZE,
                                                     seed=1000 + SEED))
    train = samples_to_arrays(table.samples, (INPUT_SIZE, INPUT_SIZE))
    rng = np.random.default_rng(2000 + SEED)
    images, boxes, classes = [], [], []
    width, height = IMAGE_SIZE
    for _ in range(HELD_OUT_IMAGES):
        image, (xmin, ymin, xmax, ymax), name = draw_synthetic_sample(rng, width, height)
        images.append(resize_image(image, (INPUT_SIZE, INPUT_SIZE)))
        boxes.append([xmin / width, ymin / height, xmax / width, ymax / height])
        classes.append(table.class_names.index(name))
    held_out = (np.stack(images), np.array(boxes), np.array(classes))
    return train, held_out


def train_and_evaluate(train, held_out, *, alpha=0.7, head_lr=LEARNING_RATE,
                       permute_targets=False) -> dict:
    """Train a fresh tiny localizer on ``train``; mean IoU and accuracies on ``held_out``."""
    images, boxes, classes = train
    if permute_targets:  # each image gets another image's box and class
        order = np.random.default_rng(SEED).permutation(len(images))
        boxes, classes = boxes[order], classes[order]
    keras.utils.set_random_seed(SEED)
    mean, std = compute_channel_stats(images)
    model = build_localizer(num_classes=2, input_shape=(INPUT_SIZE, INPUT_SIZE, 3),
                            small_cnn_filters=(16, 32, 64), feature_dropout=0.0,
                            class_head_units=(32,), class_head_dropout=(0.0,),
                            box_head_units=(64, 32), box_head_dropout=(0.0, 0.0),
                            mean=mean, std=std)
    compile_localizer(model, alpha=alpha, backbone_lr=LEARNING_RATE, class_head_lr=head_lr,
                      box_head_lr=head_lr, jit_compile=False)

    def cosine(epoch):
        return LEARNING_RATE * (0.05 + 0.475 * (1 + math.cos(math.pi * epoch / EPOCHS)))

    model.fit(build_dataset(images, boxes, classes, 32, shuffle=True, seed=SEED),
              epochs=EPOCHS, verbose=0, shuffle=False,
              callbacks=[keras.callbacks.LearningRateScheduler(cosine)])
    test_images, test_boxes, test_classes = held_out
    outputs = model.predict(test_images.astype("float32"), batch_size=128, verbose=0)
    ious = box_iou(test_boxes, np.asarray(outputs["box"], dtype=np.float64))
    correct = np.asarray(outputs["class"]).argmax(axis=1) == test_classes
    mean_box = np.tile(boxes.mean(axis=0), (len(test_boxes), 1))
    return {"mean_iou": float(ious.mean()), "accuracy": float(correct.mean()),
            "accuracy_at_iou50": float((correct & (ious >= 0.5)).mean()),
            "mean_box_iou": float(box_iou(test_boxes, mean_box).mean())}


@pytest.fixture(scope="module")
def trained(generated):
    return train_and_evaluate(*generated)


def test_trained_localizer_puts_boxes_on_held_out_objects(trained):
    """If this fails, a user's trained model draws boxes that miss the faces it should find."""
    assert trained["mean_iou"] > MIN_IOU, trained
    assert trained["mean_iou"] > trained["mean_box_iou"] + MIN_IOU_GAIN_OVER_MEAN_BOX, trained


def test_trained_localizer_names_held_out_classes(trained):
    """If this fails, a user's trained model says "mask" for faces without one (and back)."""
    assert trained["accuracy"] > MIN_ACCURACY, trained


def test_trained_localizer_gets_box_and_class_right_together(trained):
    """If this fails, few predictions would count as hits on a leaderboard (class + IoU>=0.5)."""
    assert trained["accuracy_at_iou50"] > MIN_ACCURACY_AT_IOU50, trained


@pytest.mark.slow  # calibration of the thresholds above (~40 s), as for Mask R-CNN
def test_shuffled_labels_cannot_pass_the_learning_thresholds(generated):
    """Control: if this fails, the thresholds above no longer prove that anything was learned
    (held-out images leak into training, or the task became trivial)."""
    control = train_and_evaluate(*generated, permute_targets=True)
    assert control["mean_iou"] < MIN_IOU - 0.15, control
    assert control["accuracy"] < MIN_ACCURACY - 0.2, control
    assert control["accuracy_at_iou50"] < MIN_ACCURACY_AT_IOU50 - 0.4, control
