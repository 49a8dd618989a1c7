"""What Matterport-exact preprocessing costs: detect()'s molding and the training masks.

Three ways to turn a photo into the network input (square mode, IMAGE_MIN_DIM 800,
IMAGE_MAX_DIM 1024), and three to resize 20 instance masks with it:

- ``exact``: the library (``resize_image`` + ``mold_image``, ``resize_mask``), the default;
- ``before``: OpenCV's bilinear / nearest resize with rounding and a float32 mean, the path
  before issue 12 (commit f9b70b8), kept here only as the baseline;
- ``matterport``: scikit-image / scipy called as Matterport's ``utils.py`` calls them.

Prints a table (median and range of ``--repeats`` runs after one warm-up, and the largest
difference from Matterport's result) and writes ``benchmarks/results/preprocessing_parity.json``.

    python benchmarks/preprocessing_parity.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import scipy.ndimage
import skimage.data
import skimage.transform
from provenance import provenance, write_report

from mrcnn.geometry.imaging import mold_image, resize_image, resize_mask

RESULTS = Path(__file__).resolve().parent / "results" / "preprocessing_parity.json"
MIN_DIM, MAX_DIM = 800, 1024
MEAN_PIXEL = np.array([123.7, 116.8, 103.9])
PHOTOS = [(480, 640), (1024, 1365)]
INSTANCES = 20


class _Config:
    MEAN_PIXEL = MEAN_PIXEL


def _square_geometry(height: int, width: int) -> tuple[float, int, int, list[tuple[int, int]]]:
    """resize_image's square-mode scale, new size and padding (identical in all three paths)."""
    scale = max(1, MIN_DIM / min(height, width))
    if round(max(height, width) * scale) > MAX_DIM:
        scale = MAX_DIM / max(height, width)
    new_h, new_w = round(height * scale), round(width * scale)
    top, left = (MAX_DIM - new_h) // 2, (MAX_DIM - new_w) // 2
    return scale, new_h, new_w, [(top, MAX_DIM - new_h - top), (left, MAX_DIM - new_w - left),
                                 (0, 0)]


def exact_image(image: np.ndarray) -> np.ndarray:
    return mold_image(resize_image(image, MIN_DIM, MAX_DIM, 0, "square")[0], _Config)


def before_image(image: np.ndarray) -> np.ndarray:
    _, new_h, new_w, padding = _square_geometry(*image.shape[:2])
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    padded = np.pad(resized, padding, mode="constant", constant_values=0)
    return padded.astype(np.float32) - MEAN_PIXEL.astype(np.float32)


def matterport_image(image: np.ndarray) -> np.ndarray:
    _, new_h, new_w, padding = _square_geometry(*image.shape[:2])
    resized = skimage.transform.resize(image, (new_h, new_w), order=1, mode="constant",
                                       preserve_range=True, anti_aliasing=False)
    padded = np.pad(resized, padding, mode="constant", constant_values=0).astype(image.dtype)
    return (padded.astype(np.float32) - MEAN_PIXEL).astype(np.float32)


def exact_masks(masks: np.ndarray) -> np.ndarray:
    scale, _, _, padding = _square_geometry(*masks.shape[:2])
    return resize_mask(masks, scale, padding)


def before_masks(masks: np.ndarray) -> np.ndarray:
    _, new_h, new_w, padding = _square_geometry(*masks.shape[:2])
    resized = cv2.resize(masks.astype(np.uint8), (new_w, new_h),
                         interpolation=cv2.INTER_NEAREST).astype(bool)
    return np.pad(resized, padding, mode="constant", constant_values=0)


def matterport_masks(masks: np.ndarray) -> np.ndarray:
    scale, _, _, padding = _square_geometry(*masks.shape[:2])
    zoomed = scipy.ndimage.zoom(masks, zoom=[scale, scale, 1], order=0)
    return np.pad(zoomed, padding, mode="constant", constant_values=0)


def photo(height: int, width: int) -> np.ndarray:
    """scikit-image's coffee photo (400x600) brought to height x width."""
    return cv2.resize(skimage.data.coffee(), (width, height), interpolation=cv2.INTER_AREA)


def instance_masks(height: int, width: int, seed: int = 0) -> np.ndarray:
    """INSTANCES elliptic instance masks bool[height, width, INSTANCES]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    masks = np.zeros((height, width, INSTANCES), bool)
    for i in range(INSTANCES):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(10, height / 3), rng.uniform(10, width / 3)
        masks[:, :, i] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
    return masks


def time_it(function: Callable[[], np.ndarray], repeats: int) -> tuple[list[float], np.ndarray]:
    result = function()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return seconds, result


def run(repeats: int = 7) -> dict:
    paths = {"image": {"exact": exact_image, "before": before_image,
                       "matterport": matterport_image},
             "masks": {"exact": exact_masks, "before": before_masks,
                       "matterport": matterport_masks}}
    cases = []
    for height, width in PHOTOS:
        inputs = {"image": photo(height, width), "masks": instance_masks(height, width)}
        for kind, functions in paths.items():
            timings = {name: time_it(lambda f=f, x=inputs[kind]: f(x), repeats)
                       for name, f in functions.items()}
            reference = timings["matterport"][1].astype(np.float64)
            for name, (seconds, result) in timings.items():
                difference = np.abs(result.astype(np.float64) - reference)
                cases.append({
                    "input": f"{kind} {height}x{width}" + (f"x{INSTANCES}" if kind == "masks"
                                                           else ""),
                    "path": name,
                    "median_ms": round(1000 * float(np.median(seconds)), 2),
                    "min_ms": round(1000 * min(seconds), 2),
                    "max_ms": round(1000 * max(seconds), 2),
                    "max_abs_diff_vs_matterport": float(difference.max()),
                    "differing_values": int((difference > 0).sum()),
                })
    return {"provenance": provenance(), "repeats": repeats, "min_dim": MIN_DIM,
            "max_dim": MAX_DIM, "cases": cases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    report = run(args.repeats)
    print(f"{'input':24} {'path':11} {'median':>9} {'min-max':>17} {'max diff':>9} "
          f"{'differing':>10}")
    for case in report["cases"]:
        print(f"{case['input']:24} {case['path']:11} {case['median_ms']:>7.1f}ms "
              f"{case['min_ms']:>7.1f}-{case['max_ms']:>6.1f}ms "
              f"{case['max_abs_diff_vs_matterport']:>9.4g} {case['differing_values']:>10}")
    write_report(RESULTS, report)


if __name__ == "__main__":
    main()
