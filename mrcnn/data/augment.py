"""Augmentation adapters: one image and its instance masks, transformed consistently.

The default engine is albumentations: pass any transform or pipeline (``A.Compose([...])``).
imgaug augmenters are accepted too when imgaug is installed (it is optional: imgaug 0.4 does not
import on NumPy 2); as in Matterport, masks only go through imgaug's geometric augmenters.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

# imgaug augmenters that move pixels without changing their values; only these touch masks
# (colour, blur or noise augmenters must not alter a binary mask). Matterport's whitelist.
IMGAUG_MASK_AUGMENTERS = frozenset(
    {"Sequential", "SomeOf", "OneOf", "Sometimes", "Fliplr", "Flipud", "CropAndPad", "Affine",
     "PiecewiseAffine"}
)


def is_albumentations(augmentation: Any) -> bool:
    """True for an albumentations transform or pipeline.

    Never imports albumentations: an object can only be one of its transforms once the user
    has imported it, and its import costs a training process 77 MiB, or 480 MiB where PyTorch
    is installed (albumentations then imports torch).
    """
    albumentations = sys.modules.get("albumentations")
    return albumentations is not None and isinstance(
        augmentation, (albumentations.BaseCompose, albumentations.BasicTransform))


def is_imgaug(augmentation: Any) -> bool:
    """True for an object that behaves like an imgaug augmenter (duck typing: no import)."""
    return callable(getattr(augmentation, "to_deterministic", None)) and callable(
        getattr(augmentation, "augment_image", None)
    )


def check_augmentation(augmentation: Any) -> None:
    """Raise TypeError unless ``augmentation`` is None, albumentations or imgaug."""
    if augmentation is None or is_albumentations(augmentation) or is_imgaug(augmentation):
        return
    raise TypeError(
        "augmentation must be an albumentations transform (e.g. A.Compose([A.HorizontalFlip()])) "
        f"or an imgaug augmenter, got {type(augmentation).__module__}."
        f"{type(augmentation).__qualname__}: {augmentation!r:.80}"
    )


def apply_augmentation(
    augmentation: Any,
    image: np.ndarray,
    masks: np.ndarray | Sequence[np.ndarray],
    class_ids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Augment an image and its instance masks with the same random draw.

    image: uint8[H, W, C]. masks: bool[H, W, N] or a list of N bool[H, W]. class_ids: int[N].
    Returns (image, masks bool[H', W', N'], class_ids int32[N']): instances whose mask became
    empty (moved out of the image) are dropped together with their class id.
    """
    check_augmentation(augmentation)
    masks = _stack_masks(masks, np.asarray(image).shape[:2])
    class_ids = np.asarray(class_ids, dtype=np.int32).reshape(-1)
    if len(class_ids) != masks.shape[-1]:
        raise ValueError(f"got {masks.shape[-1]} masks but {len(class_ids)} class ids")
    if augmentation is None:
        return image, masks, class_ids
    if is_albumentations(augmentation):
        image, masks = _augment_albumentations(augmentation, image, masks)
    else:
        image, masks = _augment_imgaug(augmentation, image, masks)
    keep = masks.any(axis=(0, 1))
    return image, masks[:, :, keep], class_ids[keep]


def _stack_masks(masks: np.ndarray | Sequence[np.ndarray], hw: tuple[int, int]) -> np.ndarray:
    """Masks as a list of [H, W] or an array [H, W, N] -> bool[H, W, N]."""
    if isinstance(masks, np.ndarray):
        if masks.ndim != 3:
            raise ValueError(f"masks must be [H, W, N], got shape {masks.shape}")
        return masks.astype(bool, copy=False)
    masks = list(masks)
    if not masks:
        return np.zeros(hw + (0,), dtype=bool)
    return np.stack([np.asarray(m, dtype=bool) for m in masks], axis=-1)


def _augment_albumentations(transform: Any, image: np.ndarray, masks: np.ndarray):
    if masks.shape[-1] == 0:
        out = transform(image=image)
        return out["image"], np.zeros(out["image"].shape[:2] + (0,), dtype=bool)
    out = transform(image=image, masks=np.moveaxis(masks, -1, 0).astype(np.uint8))
    augmented = np.stack([np.asarray(m) for m in out["masks"]], axis=-1)
    return out["image"], augmented > 0


def _augment_imgaug(augmenter: Any, image: np.ndarray, masks: np.ndarray):
    import imgaug  # the caller passed an imgaug augmenter, so imgaug is installed

    deterministic = augmenter.to_deterministic()
    image_out = deterministic.augment_image(image)
    if masks.shape[-1] == 0:
        return image_out, np.zeros(image_out.shape[:2] + (0,), dtype=bool)
    hooks = imgaug.HooksImages(activator=_imgaug_mask_activator)
    masks_out = np.asarray(deterministic.augment_image(masks.astype(np.uint8), hooks=hooks))
    if masks_out.shape[:2] != np.asarray(image_out).shape[:2]:
        raise ValueError(
            f"imgaug augmentation {type(augmenter).__name__} made the image "
            f"{np.asarray(image_out).shape[:2]} but the masks {masks_out.shape[:2]}: only "
            f"{sorted(IMGAUG_MASK_AUGMENTERS)} reach the masks, so size-changing augmenters must "
            "be among them (or use albumentations)")
    return image_out, masks_out.astype(bool)


def _imgaug_mask_activator(images, augmenter, parents, default) -> bool:
    """imgaug hook: apply only the mask-safe (geometric) augmenters to masks."""
    return type(augmenter).__name__ in IMGAUG_MASK_AUGMENTERS


def reseed(augmentation: Any, seed: int) -> None:
    """Seed an augmentation's own random state, so a seeded input pipeline is reproducible."""
    if hasattr(augmentation, "set_random_seed"):  # albumentations
        augmentation.set_random_seed(seed)
    elif hasattr(augmentation, "reseed"):  # imgaug
        augmentation.reseed(seed)
