"""Single-object localization + classification: one box and one class per image (face mask)."""

from localization.annotations import AnnotationError, LocalizationSample, load_annotations
from localization.augment import BoxAugmenter
from localization.boxes import compute_giou, compute_iou
from localization.data import build_dataset, compute_channel_stats, stratified_split
from localization.losses import BoxLoss, WeightedClassCrossEntropy, build_localization_losses
from localization.metrics import MeanBoxIoU, compute_localization_metrics
from localization.model import TINY_PRESET, SortBoxCorners, build_localizer
from localization.optimizer import HeadGroupAdamW, build_optimizer
from localization.training import compile_localizer, load_localizer, save_localizer

__all__ = [
    "TINY_PRESET",
    "AnnotationError",
    "BoxAugmenter",
    "BoxLoss",
    "HeadGroupAdamW",
    "LocalizationSample",
    "MeanBoxIoU",
    "SortBoxCorners",
    "WeightedClassCrossEntropy",
    "build_dataset",
    "build_localization_losses",
    "build_localizer",
    "build_optimizer",
    "compile_localizer",
    "compute_channel_stats",
    "compute_giou",
    "compute_iou",
    "compute_localization_metrics",
    "load_annotations",
    "load_localizer",
    "save_localizer",
    "stratified_split",
]
