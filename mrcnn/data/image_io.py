"""Reading image files into arrays: uint8 RGB photos, and [H, W, N] stacks of any bit depth.

``load_rgb_image`` gives what every RGB model here expects (uint8, 16-bit scaled to 8 bits).
``load_image_channels`` gives ``[H, W, N]`` for ``IMAGE_CHANNEL_COUNT = N`` with the values as
stored: PNG/JPEG/... through Pillow (16-bit PNG through OpenCV: Pillow truncates 16-bit colour),
TIFF through tifffile (pages and samples become channels), ``.npy`` through numpy. Scaling to
the network's input range is molding's job (``MEAN_PIXEL``, ``PIXEL_STD``), not the loader's.
"""

from __future__ import annotations

import errno
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mrcnn.data.errors import DatasetError

logger = logging.getLogger(__name__)

# Pillow modes holding more than 8 bits per pixel in one channel.
_WIDE_GRAY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")
TIFF_SUFFIXES = (".tif", ".tiff")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_rgb_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as uint8[H, W, 3] RGB, upright.

    Grayscale is replicated to 3 channels, an alpha channel is dropped (not composited),
    palette and CMYK images are converted, 16-bit images are scaled to 8 bits, and the EXIF
    orientation tag is applied. Raises FileNotFoundError for a missing file and
    :class:`mrcnn.data.dataset.DatasetError` naming the file for anything that is not a readable image,
    including one larger than Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``).
    """
    return _decode_with_pillow(_existing_file(path), _to_rgb_array)


def load_image_channels(path: str | os.PathLike, channel_count: int = 3) -> np.ndarray:
    """Read an image file as [H, W, channel_count], values as stored (no rescaling).

    - ``.npy``: an integer or float array [H, W] or [H, W, N] (channels last), no pickles.
    - ``.tif``/``.tiff``: tifffile's first series; every axis but Y and X becomes channels in
      the file's order (P pages of S samples: P * S channels, page-major). A single-page 8-bit
      TIFF with ``channel_count=3`` goes the RGB way below instead.
    - anything else: Pillow, EXIF orientation applied. With ``channel_count=3`` 8-bit images
      load exactly as :func:`load_rgb_image` (gray replicated, alpha dropped, palette/CMYK to
      RGB); otherwise the bands as stored (palette expanded to RGB or RGBA, 1-bit to 0/255).
    - dtypes: uint8, uint16 (16-bit PNG and TIFF keep their 16 bits), other ints and floats
      as stored; float TIFFs stay float.
    One channel is replicated when three are asked for (grayscale to RGB); any other count
    that differs from ``channel_count``, an unreadable file, an array of another rank or a
    dtype that is not int/float raise DatasetError naming the file and what was expected.
    """
    path = _existing_file(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        array = _checked_array(_read_npy(path), path)
    elif suffix in TIFF_SUFFIXES and not (channel_count == 3 and _is_8bit_single_page(path)):
        array = _checked_array(_read_tiff(path), path)
    elif _is_16bit_png(path):
        array = _read_16bit_png(path)
        if channel_count == 3 and array.shape[2] == 4:
            array = array[:, :, :3]  # alpha dropped, as for 8-bit images
    elif channel_count == 3:
        array = _decode_with_pillow(path, _to_rgb_or_wide_gray)
    else:
        array = _decode_with_pillow(path, _stored_bands)
    return fit_channels(array, channel_count, path)


def fit_channels(image: np.ndarray, channel_count: int, path: str | os.PathLike) -> np.ndarray:
    """``image`` [H, W, C] with C == channel_count; one channel is replicated to three."""
    channels = image.shape[2]
    if channels == channel_count:
        return image
    if channels == 1 and channel_count == 3:
        return np.repeat(image, 3, axis=2)
    raise DatasetError(f"{path} has {channels} channel(s), expected {channel_count} (the "
                       "model's IMAGE_CHANNEL_COUNT, given to the Dataset as image_channel_count)")


def read_image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) from the file's header, without decoding the pixels (TIFF, .npy, and
    whatever Pillow opens); DatasetError naming the file if it cannot be read."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        elif suffix in TIFF_SUFFIXES:
            import tifffile

            with tifffile.TiffFile(path) as tiff:
                series = tiff.series[0]
                axes, full_shape = series.get_axes(False), series.get_shape(False)
                shape = tuple(full_shape[axes.index(a)] for a in "YX")
        else:
            with Image.open(path) as image:
                shape = image.size[::-1]
    except (OSError, UnidentifiedImageError, ValueError, IndexError) as error:
        raise DatasetError(f"cannot read image {path}: {error}") from error
    if len(shape) < 2:
        raise DatasetError(f"cannot read image {path}: an array of shape {list(shape)}, "
                           "expected [H, W] or [H, W, N]")
    return int(shape[0]), int(shape[1])


def _existing_file(path: str | os.PathLike | None) -> Path:
    if path is None:
        raise DatasetError("no image path: the image was added without a path")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "image file not found", str(path))
    return path


def _decode_with_pillow(path: Path, convert: Callable[[Image.Image], np.ndarray]) -> np.ndarray:
    """``convert`` of the upright decoded image, Pillow's failures as DatasetError."""
    try:
        with warnings.catch_warnings():
            # Above the limit Pillow only warns; decoding it could exhaust memory.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image = ImageOps.exif_transpose(image)
                return convert(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DatasetError(f"{path} is too large to decode safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise DatasetError(f"{path} is not an image file Pillow can read") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise DatasetError(f"{path} is a corrupt or truncated image: {exc}") from exc


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    """A decoded Pillow image of any mode -> uint8[H, W, 3]."""
    if image.mode in _WIDE_GRAY_MODES:
        gray = np.asarray(image).astype(np.float64)
        gray = np.clip(np.round(gray / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode == "F":
        gray = np.asarray(image, dtype=np.float64)
        if gray.size and np.nanmax(gray) <= 1.0:
            gray = gray * 255.0
        gray = np.clip(np.nan_to_num(np.round(gray)), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode != "RGB":
        # "RGBA"/"LA"/"PA" lose alpha; "L"/"1"/"P"/"CMYK"/"YCbCr"/... are converted.
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def _to_rgb_or_wide_gray(image: Image.Image) -> np.ndarray:
    """8-bit images as :func:`_to_rgb_array`; 16-bit and float gray kept as stored [H, W, 1]."""
    if image.mode in _WIDE_GRAY_MODES + ("F",):
        return _stored_bands(image)
    return _to_rgb_array(image)


def _stored_bands(image: Image.Image) -> np.ndarray:
    """The bands of a Pillow image as stored: [H, W, bands] (palette expanded, 1-bit to L)."""
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA" if image.mode == "PA" or "transparency" in image.info
                              else "RGB")
    elif image.mode == "1":
        image = image.convert("L")
    array = np.asarray(image)
    return np.ascontiguousarray(array.reshape(array.shape[:2] + (-1,)))


def _is_16bit_png(path: Path) -> bool:
    """A PNG whose header says 16 bits per sample (Pillow truncates 16-bit colour to 8)."""
    with open(path, "rb") as handle:
        header = handle.read(26)
    # Signature, IHDR length and type, width, height, then the bit depth.
    return len(header) == 26 and header.startswith(_PNG_SIGNATURE) and header[24] == 16


def _read_16bit_png(path: Path) -> np.ndarray:
    """uint16[H, W, 1, 3 or 4] gray or RGB(A) of a 16-bit PNG (OpenCV decodes colour as BGR)."""
    import cv2

    decoded = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise DatasetError(f"{path} is a corrupt or truncated 16-bit PNG")
    if decoded.ndim == 2:
        return decoded[:, :, None]
    order = [2, 1, 0, 3][: decoded.shape[2]]
    return np.ascontiguousarray(decoded[:, :, order])


def _read_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DatasetError(f"{path} is not a readable .npy array (object arrays and pickles "
                           f"are refused): {error}") from error
    if array.ndim not in (2, 3):
        raise DatasetError(f"{path} holds an array of shape {list(array.shape)}; expected "
                           "[H, W] or [H, W, N] (channels last; np.moveaxis a [N, H, W] stack)")
    return array


def _is_8bit_single_page(path: Path) -> bool:
    """A one-page uint8 TIFF: an ordinary photo that Pillow decodes as :func:`load_rgb_image`."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tiff:
            return len(tiff.pages) == 1 and tiff.series[0].dtype == np.uint8
    except (OSError, ValueError, IndexError):
        return False  # _read_tiff says what is wrong


def _read_tiff(path: Path) -> np.ndarray:
    """[H, W, N]: the channels of every series of the first one's height and width, in order
    (pages written one by one form one series each); any other series is left out."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tiff:
            if not tiff.series:
                raise DatasetError(f"{path} is not a readable TIFF: it holds no image")
            stacks = [_series_channels(series, path) for series in tiff.series]
    except (OSError, ValueError, IndexError, KeyError) as error:
        raise DatasetError(f"{path} is not a readable TIFF: {error}") from error
    kept = [stack for stack in stacks if stack.shape[:2] == stacks[0].shape[:2]]
    if len(kept) < len(stacks):
        logger.warning("%s: %d of its %d series are not %dx%d pixels like the first; left out",
                       path, len(stacks) - len(kept), len(stacks), *stacks[0].shape[:2])
    return kept[0] if len(kept) == 1 else np.concatenate(kept, axis=2)


def _series_channels(series, path: Path) -> np.ndarray:
    """One tifffile series as [H, W, N]: Y and X first, every other axis flattened into N."""
    # Unsqueezed: a 1-pixel-high image keeps its Y axis.
    axes, shape = series.get_axes(False), series.get_shape(False)
    if "Y" not in axes or "X" not in axes:
        raise DatasetError(f"{path}: a TIFF of axes {axes!r}, expected an image (Y and X axes)")
    array = series.asarray().reshape(shape)
    order = [axes.index("Y"), axes.index("X")] + [i for i, a in enumerate(axes) if a not in "YX"]
    array = np.transpose(array, order)
    return np.ascontiguousarray(array.reshape(array.shape[:2] + (-1,)))


def _checked_array(array: np.ndarray, path: Path) -> np.ndarray:
    """[H, W, N] of an int or float dtype with H, W >= 1, else DatasetError naming the file."""
    if array.dtype.kind not in "uif":
        raise DatasetError(f"{path} holds {array.dtype} values; expected an integer or float "
                           "array (uint8, uint16, int16, float32, ...)")
    if min(array.shape[:2]) == 0:
        raise DatasetError(f"{path} holds an empty image of shape {list(array.shape)}")
    return array.reshape(array.shape[:2] + (-1,))
