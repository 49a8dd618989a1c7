"""MVTec D2S (Densely Segmented Supermarket): COCO-format annotations of 60 product classes.

Expected layout (what the two MVTec archives unpack to, merged under one folder)::

    {dataset_dir}/annotations/D2S_training.json, D2S_validation.json, D2S_test_info.json, ...
    {dataset_dir}/images/D2S_000200.jpg, ...

The archive folders ``d2s_annotations_v1.1/annotations`` and ``d2s_images_v1/images`` are found
too. ``subset`` is ``"train"``, ``"val"``, ``"test"`` (image list only, no annotations) or
the middle of any file name ``D2S_<subset>.json`` (e.g. ``"validation_clutter"``,
``"augmented"``).
"""

from __future__ import annotations

from pathlib import Path

from pycocotools.coco import COCO

from mrcnn.config import Config
from mrcnn.data.datasets.coco import CocoDataset
from mrcnn.data.errors import DatasetError

D2S_NUM_CLASSES = 60
SUBSET_FILES = {"train": "D2S_training.json", "val": "D2S_validation.json",
                "test": "D2S_test_info.json"}
ARCHIVE_FOLDERS = {"annotations": ("annotations", "d2s_annotations_v1.1/annotations"),
                   "images": ("images", "d2s_images_v1/images")}


class D2SConfig(Config):
    """Mask R-CNN settings for D2S's 1440x1920 top-down photos of products on a checkout tray."""

    NAME = "d2s"
    # Background + the 60 D2S product classes.
    NUM_CLASSES = 1 + D2S_NUM_CLASSES
    # One 1024x1024 image per 12 GB GPU: the photos are large and the scenes dense.
    IMAGES_PER_GPU = 1
    # IMAGE_MAX_DIM scales the 1440x1920 photos by 1024/1920 = 0.533 to exactly 768x1024: the
    # whole tray stays in view, and the square canvas pads only 256 rows. (IMAGE_MIN_DIM only
    # ever upscales in Matterport's resize_image; 768 states the resulting short side.)
    # Halving the photo keeps whole packages seen from above well above the smallest anchor.
    IMAGE_RESIZE_MODE = "square"
    IMAGE_MIN_DIM = 768
    IMAGE_MAX_DIM = 1024
    # Products seen from above are compact, mid-sized objects relative to the frame, so
    # Matterport's 32..512 px pyramid (on the 1024 canvas) fits them; the 0.5 and 2 ratios
    # cover elongated items lying flat (bottles, bananas).
    RPN_ANCHOR_SCALES = (32, 64, 128, 256, 512)
    RPN_ANCHOR_RATIOS = [0.5, 1, 2]
    # Clutter scenes hold many products at once; 100 instances leave ample room.
    MAX_GT_INSTANCES = 100
    DETECTION_MAX_INSTANCES = 100
    # Many look-alike classes (flavours of one brand): keep fairly confident detections only.
    DETECTION_MIN_CONFIDENCE = 0.7


class D2SDataset(CocoDataset):
    """D2S images and instance masks; ``load_mask`` as :class:`CocoDataset` (source ``"d2s"``)."""

    SOURCE = "d2s"

    def load_d2s(self, dataset_dir: str | Path, subset: str, return_coco: bool = False,
                 annotation_file: str | Path | None = None,
                 image_dir: str | Path | None = None) -> COCO | None:
        """Register the classes and images of one D2S subset (see the module docstring)."""
        dataset_dir = Path(dataset_dir)
        if annotation_file is None:
            name = SUBSET_FILES.get(subset, f"D2S_{subset}.json")
            annotation_file = _find(dataset_dir, "annotations") / name
            if not annotation_file.is_file():
                found = sorted(p.name for p in annotation_file.parent.glob("D2S_*.json"))
                raise DatasetError(f"D2S subset {subset!r}: {annotation_file} not found; "
                                   f"subsets here: {found or 'none'}")
        if image_dir is None:
            image_dir = _find(dataset_dir, "images")
        return self.load_coco_annotations(annotation_file, image_dir, return_coco=return_coco)


def _find(dataset_dir: Path, kind: str) -> Path:
    """The first existing folder of ``kind`` among the known layouts (default: the first)."""
    for relative in ARCHIVE_FOLDERS[kind]:
        if (dataset_dir / relative).is_dir():
            return dataset_dir / relative
    return dataset_dir / ARCHIVE_FOLDERS[kind][0]
