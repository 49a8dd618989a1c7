"""Every U-Net variant learns: a few dozen steps on generated blobs give a high held-out Dice.

The task: bright blobs (1 or 2 ellipses, anywhere in the image) on a darker noisy background whose
colours change from image to image. A constant output, a model trained on shuffled masks or a
wrong loss stays near Dice 0 (the empty mask) or about 0.2 (the all-foreground mask); a blob's
position carries no information, so no prior can do better. A model that learned reaches ~0.9.
If one of these tests fails, a user training that variant would get masks that do not follow
the person: check the head, the loss, the target pipeline and the variant's wiring.
"""

import time

import keras
import numpy as np
import pytest

from unet import SegmentationEvaluator, build_inference_model, build_unet
from unet.inference import predict_probability
from unet.training import compile_model

SIZE = 32
SEED = 0
TRAIN_IMAGES, BATCH, EPOCHS = 64, 8, 8  # 64 Adam steps
LEARNING_RATE = 3e-3
HELD_OUT = 32
# Held-out per-image Dice a variant must reach. Measured with seeds 0, 1 and 2: every variant
# scored 0.86..0.99 (lowest: classic, seed 1); shuffled masks, a head frozen at 0.5 and a
# combined loss whose Dice term has the wrong sign all scored 0.00 (empty masks), and the
# all-foreground mask scores 0.19.
MIN_DICE = 0.75

# depth 2 and 8 filters keep every plain variant under ~10 s on 2 cores; the keras.applications
# encoders cost ~20 s of graph tracing each when trainable. The ResNet50 encoder stays frozen (as
# one does with ImageNet weights), which halves its time while its decoder, skip taps and head
# still have to learn; frozen random MobileNetV2 / EfficientNetB0 features are too poor to learn
# from, so those two train whole.
VARIANTS = {
    "classic": dict(arch="classic", depth=2, base_filters=8),
    "improved": dict(arch="improved", depth=2, base_filters=8),
    "improved-logits": dict(arch="improved", depth=2, base_filters=8, logits=True),
    "residual": dict(arch="residual", depth=2, base_filters=8),
    "attention": dict(arch="attention", depth=2, base_filters=8),
    "unet++": dict(arch="unet++", depth=2, base_filters=8, deep_supervision=True),
    "mobilenetv2": dict(arch="encoder", encoder="mobilenetv2", base_filters=8),
    "resnet50-frozen": dict(arch="encoder", encoder="resnet50", base_filters=8),
    "efficientnetb0": dict(arch="encoder", encoder="efficientnetb0", base_filters=8),
}
FROZEN_ENCODER = {"resnet50-frozen"}


def make_blobs(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` images ``uint8 (N, SIZE, SIZE, 3)`` and masks ``uint8 (N, SIZE, SIZE)`` {0, 1}.

    Each mask is the union of 1 or 2 axis-aligned ellipses placed uniformly at random; the
    foreground is 70..110 grey levels brighter per channel than the image's own background,
    plus Gaussian noise (sigma 30) on every pixel.
    """
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:SIZE, :SIZE]
    images, masks = [], []
    for _ in range(count):
        mask = np.zeros((SIZE, SIZE), bool)
        for _ in range(rng.integers(1, 3)):
            center_y, center_x = rng.uniform(0, SIZE, 2)
            radius_y, radius_x = rng.uniform(3, SIZE / 4, 2)
            mask |= ((rows - center_y) / radius_y) ** 2 + ((cols - center_x) / radius_x) ** 2 <= 1
        background = rng.uniform(40, 110, 3)
        foreground = background + rng.uniform(70, 110, 3)
        image = np.where(mask[..., None], foreground, background)
        image = image + rng.normal(0, 30, (SIZE, SIZE, 3))
        images.append(np.clip(image, 0, 255).astype(np.uint8))
        masks.append(mask.astype(np.uint8))
    return np.stack(images), np.stack(masks)


def settle_batchnorm_quickly(model: keras.Model, momentum: float = 0.9) -> None:
    """Sets every BatchNormalization (nested encoders included) to ``momentum``.

    With Keras' default 0.99 the moving statistics that inference uses are still ~50 % their
    initial values after 64 steps, so inference would not show what training learned.
    """
    pending = list(model.layers)
    while pending:
        layer = pending.pop()
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
        pending.extend(getattr(layer, "layers", []))


def train_and_score(variant: str, seed: int = SEED, shuffle_labels: bool = False) -> dict:
    """Trains ``variant`` from scratch and returns its held-out scores and the seconds taken.

    Returns ``{"dice", "iou", "seconds"}``: per-image means over ``HELD_OUT`` generated images,
    masks predicted with :func:`unet.inference.predict_probability` thresholded at 0.5.
    """
    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    images, masks = make_blobs(TRAIN_IMAGES, seed=100 + seed)
    targets = masks[..., None].astype("float32")
    if shuffle_labels:
        targets = targets[np.random.default_rng(seed).permutation(len(targets))]
    model = build_unet(input_shape=(SIZE, SIZE, 3), **VARIANTS[variant])
    settle_batchnorm_quickly(model)
    if variant in FROZEN_ENCODER:
        model.get_layer("encoder").trainable = False
    compile_model(model, "bce_dice", LEARNING_RATE)
    heads = len(model.outputs)
    model.fit(images.astype("float32"), (targets,) * heads if heads > 1 else targets,
              batch_size=BATCH, epochs=EPOCHS, verbose=0)
    predictor = build_inference_model(model, "accurate")
    evaluator = SegmentationEvaluator()
    test_images, test_masks = make_blobs(HELD_OUT, seed=999)
    for image, target in zip(test_images, test_masks, strict=True):
        evaluator.add(predict_probability(predictor, image) > 0.5, target)
    scores = evaluator.summarize()["per_image"]
    return {"dice": scores["dice"], "iou": scores["iou"],
            "seconds": time.perf_counter() - start}


def test_held_out_blobs_are_hard_for_trivial_masks():
    """The empty and the all-foreground mask score far below MIN_DICE, whatever the model."""
    _, masks = make_blobs(HELD_OUT, seed=999)
    for constant in (np.zeros_like(masks[0]), np.ones_like(masks[0])):
        evaluator = SegmentationEvaluator()
        for target in masks:
            evaluator.add(constant, target)
        assert evaluator.summarize()["per_image"]["dice"] < 0.4


# The keras.applications encoders take 1-2 min each on 2 cores: slow (make test-slow); the six
# from-scratch variants cover the decoder, the head and the losses in the default suite.
PRETRAINED_ENCODERS = {"mobilenetv2", "resnet50-frozen", "efficientnetb0"}


@pytest.mark.parametrize("variant", [
    pytest.param(name, marks=pytest.mark.slow) if name in PRETRAINED_ENCODERS else name
    for name in VARIANTS])
def test_variant_learns_to_segment_held_out_blobs(variant):
    """After 64 steps the variant's masks follow the blobs (Dice >= MIN_DICE on new images)."""
    scores = train_and_score(variant)
    assert scores["dice"] >= MIN_DICE, (
        f"{variant}: held-out Dice {scores['dice']:.3f} (IoU {scores['iou']:.3f}) after "
        f"{TRAIN_IMAGES // BATCH * EPOCHS} steps; a variant that learns reaches ~0.9"
    )


def test_shuffled_masks_cannot_reach_the_threshold():
    """Control: the same training with every mask paired to another image stays below it.

    This is what makes MIN_DICE meaningful: passing the test above needs masks that follow
    the image, not just a plausible amount of foreground.
    """
    scores = train_and_score("classic", shuffle_labels=True)
    assert scores["dice"] < MIN_DICE - 0.2, scores
