"""Kaggle Data Science Bowl 2018 nuclei (stage 1): one folder per image, one PNG per nucleus.

Layout (the Kaggle zips, each unpacked into a folder of its own name)::

    {dataset_dir}/stage1_train/<id>/images/<id>.png   # RGBA or gray microscopy image
    {dataset_dir}/stage1_train/<id>/masks/<any>.png   # one binary PNG per nucleus, image size
    {dataset_dir}/stage1_test/<id>/images/<id>.png    # no masks/

``subset`` (Matterport's): ``"train"`` is stage1_train without :data:`VAL_IMAGE_IDS`, ``"val"``
is those 25 images, and a folder name (``"stage1_train"``, ``"stage1_test"``, ``"stage2_test"``)
is every image in it. Images load as RGB (alpha dropped, gray replicated).

Checks: an image folder without ``images/<id>.png``, or (in the annotated subsets) without mask
PNGs, is skipped with a warning naming the folder (counted in ``load_issues``): an annotated
image without its masks would teach the model that nuclei are background. ``load_mask`` raises
DatasetError naming the PNG for a mask that cannot be read or differs from the image in size.
Overlapping instance masks are kept (Mask R-CNN handles them; the submission removes overlaps).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from mrcnn.config import Config
from mrcnn.data.dataset import Dataset, DatasetError
from mrcnn.data.datasets.annotations import LoadIssues, read_image_size

if TYPE_CHECKING:
    import albumentations as A

logger = logging.getLogger(__name__)

__all__ = ["SUBSETS", "VAL_IMAGE_IDS", "NucleusConfig", "NucleusDataset",
           "NucleusInferenceConfig", "build_augmentation"]

SUBSETS = ("train", "val", "stage1_train", "stage1_test", "stage2_test")
ANNOTATED_SUBSETS = ("train", "val", "stage1_train")

# Matterport's validation images: the dataset has no official split, so it picked a variety of
# stage1_train images.
VAL_IMAGE_IDS = (
    "0c2550a23b8a0f29a7575de8c61690d3c31bc897dd5ba66caec201d201a278c2",
    "92f31f591929a30e4309ab75185c96ff4314ce0a7ead2ed2c2171897ad1da0c7",
    "1e488c42eb1a54a3e8412b1f12cde530f950f238d71078f2ede6a85a02168e1f",
    "c901794d1a421d52e5734500c0a2a8ca84651fb93b19cec2f411855e70cae339",
    "8e507d58f4c27cd2a82bee79fe27b069befd62a46fdaed20970a95a2ba819c7b",
    "60cb718759bff13f81c4055a7679e81326f78b6a193a2d856546097c949b20ff",
    "da5f98f2b8a64eee735a398de48ed42cd31bf17a6063db46a9e0783ac13cd844",
    "9ebcfaf2322932d464f15b5662cae4d669b2d785b8299556d73fffcae8365d32",
    "1b44d22643830cd4f23c9deadb0bd499fb392fb2cd9526d81547d93077d983df",
    "97126a9791f0c1176e4563ad679a301dac27c59011f579e808bbd6e9f4cd1034",
    "e81c758e1ca177b0942ecad62cf8d321ffc315376135bcbed3df932a6e5b40c0",
    "f29fd9c52e04403cd2c7d43b6fe2479292e53b2f61969d25256d2d2aca7c6a81",
    "0ea221716cf13710214dcd331a61cea48308c3940df1d28cfc7fd817c83714e1",
    "3ab9cab6212fabd723a2c5a1949c2ded19980398b56e6080978e796f45cbbc90",
    "ebc18868864ad075548cc1784f4f9a237bb98335f9645ee727dac8332a3e3716",
    "bb61fc17daf8bdd4e16fdcf50137a8d7762bec486ede9249d92e511fcb693676",
    "e1bcb583985325d0ef5f3ef52957d0371c96d4af767b13e48102bca9d5351a9b",
    "947c0d94c8213ac7aaa41c4efc95d854246550298259cf1bb489654d0e969050",
    "cbca32daaae36a872a11da4eaff65d1068ff3f154eedc9d3fc0c214a4e5d32bd",
    "f4c4db3df4ff0de90f44b027fc2e28c16bf7e5c75ea75b0a9762bbb7ac86e7a3",
    "4193474b2f1c72f735b13633b219d9cabdd43c21d9c2bb4dfc4809f104ba4c06",
    "f73e37957c74f554be132986f38b6f1d75339f636dfe2b681a0cf3f88d2733af",
    "a4c44fc5f5bf213e2be6091ccaed49d8bf039d78f6fbd9c4d7b7428cfcb2eda4",
    "cab4875269f44a701c5e58190a1d2f6fcb577ea79d842522dcab20ccb39b7ad2",
    "8ecdb93582b2d5270457b36651b62776256ade3aaa2d7432ae65c14f07432d49",
)


class NucleusConfig(Config):
    """Matterport's nucleus training settings: random 512 px crops of 2x upscaled images."""

    NAME = "nucleus"
    # Adjust to the GPU memory.
    IMAGES_PER_GPU = 6
    # Background + nucleus.
    NUM_CLASSES = 1 + 1
    # Matterport's count of training images (its stage1_train minus the validation ids).
    STEPS_PER_EPOCH = (657 - len(VAL_IMAGE_IDS)) // IMAGES_PER_GPU
    VALIDATION_STEPS = max(1, len(VAL_IMAGE_IDS) // IMAGES_PER_GPU)
    # No confidence cut: with two classes 0.5 is the minimum anyway (nucleus vs background).
    DETECTION_MIN_CONFIDENCE = 0
    BACKBONE = "resnet50"
    # Random 512x512 crops of images upscaled at least 2x (nuclei are small).
    IMAGE_RESIZE_MODE = "crop"
    IMAGE_MIN_DIM = 512
    IMAGE_MAX_DIM = 512
    IMAGE_MIN_SCALE = 2.0
    # Length of square anchor side in pixels.
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    # ROIs kept after non-maximum suppression (training and inference).
    POST_NMS_ROIS_TRAINING = 1000
    POST_NMS_ROIS_INFERENCE = 2000
    # A high RPN NMS threshold keeps more proposals for the many, touching nuclei.
    RPN_NMS_THRESHOLD = 0.9
    # Anchors per image used for RPN training.
    RPN_TRAIN_ANCHORS_PER_IMAGE = 64
    # Image mean (RGB) of the stage-1 images: mostly dark fluorescence backgrounds.
    MEAN_PIXEL = np.array([43.53, 39.56, 48.22])
    USE_MINI_MASK = True
    MINI_MASK_SHAPE = (56, 56)  # (height, width) of the mini-mask
    # ROIs per image fed to the heads; the RPN rarely yields enough positives for the paper's 512.
    TRAIN_ROIS_PER_IMAGE = 128
    # Some images hold hundreds of nuclei.
    MAX_GT_INSTANCES = 200
    DETECTION_MAX_INSTANCES = 400


class NucleusInferenceConfig(NucleusConfig):
    """Matterport's nucleus inference settings: whole images (2x, padded to multiples of 64)."""

    GPU_COUNT = 1
    IMAGES_PER_GPU = 1
    IMAGE_RESIZE_MODE = "pad64"
    RPN_NMS_THRESHOLD = 0.7


def build_augmentation() -> A.BaseCompose:
    """Matterport's nucleus augmentation: 0 to 2 of flips, a quarter turn, brightness, blur.

    imgaug's ``SomeOf((0, 2), ...)`` draws how many (0, 1 or 2) uniformly: a ``OneOf`` of the
    three counts does the same. The quarter turn is 0-3 x 90 degrees (Matterport: 90, 180 or 270;
    the training crops are square, so any turn keeps the size).
    """
    import albumentations as A  # 1.5 s to import: only when training, not for ``--help``

    def children() -> list[A.BasicTransform | A.BaseCompose]:
        return [A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5), A.RandomRotate90(p=1.0),
                A.MultiplicativeNoise(multiplier=(0.8, 1.5), p=1.0),
                A.GaussianBlur(blur_limit=0, sigma_limit=(0.0, 5.0), p=1.0)]

    return A.OneOf([A.NoOp(p=1.0), A.SomeOf(children(), n=1), A.SomeOf(children(), n=2)], p=1.0)


class NucleusDataset(Dataset):
    """DSB 2018 nuclei; one class ``nucleus``. ``image_info[i]["id"]`` is the Kaggle ImageId."""

    SOURCE = "nucleus"

    def __init__(self, class_map: dict | None = None) -> None:
        super().__init__(class_map)
        self.load_issues: list[str] = []

    def load_nucleus(self, dataset_dir: str | Path, subset: str) -> None:
        """Register the images of one subset (see the module docstring)."""
        if subset not in SUBSETS:
            raise DatasetError(f"nucleus subset must be one of {SUBSETS}, got {subset!r}")
        self.add_class(self.SOURCE, 1, "nucleus")
        folder = Path(dataset_dir) / ("stage1_train" if subset in ("train", "val") else subset)
        if not folder.is_dir():
            raise DatasetError(f"nucleus subset {subset!r}: no folder {folder} (expected "
                               "<id>/images/<id>.png inside; see datasets/README.md)")
        found = sorted(p.name for p in folder.iterdir() if p.is_dir())
        present = set(found)
        if subset == "val":
            image_ids = [i for i in VAL_IMAGE_IDS if i in present]
            if len(image_ids) < len(VAL_IMAGE_IDS):
                logger.warning("%s: %d of the %d validation ids are missing", folder,
                               len(VAL_IMAGE_IDS) - len(image_ids), len(VAL_IMAGE_IDS))
        else:
            image_ids = [i for i in found if subset != "train" or i not in VAL_IMAGE_IDS]
        issues = LoadIssues(str(folder))
        added = 0
        for image_id in image_ids:
            problem = _folder_problem(folder / image_id, subset in ANNOTATED_SUBSETS)
            if problem:
                issues.add(f"{folder / image_id}: {problem}; image skipped")
                continue
            self.add_image(self.SOURCE, image_id=image_id,
                           path=folder / image_id / "images" / f"{image_id}.png")
            added += 1
        issues.summarize()
        self.load_issues.extend(issues.messages)
        if not added:
            raise DatasetError(f"nucleus subset {subset!r}: no usable image in {folder}")

    def load_mask(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """bool[H, W, N] from the PNGs of ``masks/`` (sorted by name) and int32[N] ones."""
        info = self.image_info[image_id]
        if info["source"] != self.SOURCE:
            return super().load_mask(image_id)
        image_path = Path(info["path"])
        shape = read_image_size(image_path)
        files = sorted((image_path.parent.parent / "masks").glob("*.png"))
        masks = np.zeros((*shape, len(files)), dtype=bool)
        for index, path in enumerate(files):
            masks[:, :, index] = _read_mask(path, shape)
        return masks, np.ones(len(files), dtype=np.int32)

    def image_reference(self, image_id: int) -> str:
        """The Kaggle ImageId."""
        info = self.image_info[image_id]
        return info["id"] if info["source"] == self.SOURCE else super().image_reference(image_id)


def _folder_problem(folder: Path, annotated: bool) -> str | None:
    """What makes an image folder unusable, or None."""
    if not (folder / "images" / f"{folder.name}.png").is_file():
        return f"no images/{folder.name}.png"
    if annotated and not any((folder / "masks").glob("*.png")):
        return "no mask PNG in masks/ (an annotated subset needs one per nucleus)"
    return None


def _read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """bool[H, W] of one instance PNG (non-zero = nucleus); DatasetError naming the file."""
    try:
        with Image.open(path) as image:
            mask = np.asarray(image.convert("L")) > 0
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise DatasetError(f"cannot read mask {path}: {error}") from error
    if mask.shape != shape:
        raise DatasetError(f"mask {path} is {mask.shape[0]}x{mask.shape[1]} pixels, its image "
                           f"is {shape[0]}x{shape[1]} (height x width)")
    return mask
