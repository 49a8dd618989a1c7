"""Resumable, checksum-verified downloads of pretrained weights into a user cache.

Environment variables (for offline machines and mirrors):

- ``MRCNN_CACHE_DIR``: cache folder (default ``~/.cache/mrcnn``).
- ``MRCNN_COCO_WEIGHTS``: path of a local ``mask_rcnn_coco.h5``; nothing is downloaded.
- ``MRCNN_IMAGENET_WEIGHTS_DIR``: folder holding the Keras ResNet ``*_notop.h5`` files under
  their original names; nothing is downloaded.
- ``MRCNN_WEIGHTS_URL``: base URL of a mirror (``https://...``, ``file:///...``) that holds the
  files under their original names; replaces the public hosts.

A download goes to ``<dest>.part`` first; an interrupted one is resumed with an HTTP Range
request, and the checksum is verified BEFORE the file is moved to ``dest``: a corrupt file is
deleted, never kept.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

logger = logging.getLogger(__name__)

COCO_MODEL_URL = "https://github.com/matterport/Mask_RCNN/releases/download/v2.0/mask_rcnn_coco.h5"
KERAS_RESNET_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
MATTERPORT_RESNET50_URL = ("https://github.com/fchollet/deep-learning-models/releases/download/"
                           "v0.2/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")


class DownloadError(OSError):
    """A file could not be downloaded, or what arrived is not the expected file."""


@dataclass(frozen=True)
class WeightsFile:
    """A published weights file; ``md5``/``sha256`` are its known checksums (None: unpublished)."""

    url: str
    md5: str | None = None
    sha256: str | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


WEIGHTS_FILES = {
    # Matterport's COCO model (ResNet-101 FPN). No checksum is published for it; the weights
    # loader rejects a file that is not a readable Matterport .h5.
    "coco": WeightsFile(COCO_MODEL_URL),
    # keras.applications ImageNet weights without the classifier (md5 from keras' WEIGHTS_HASHES).
    # Their layers are named conv2_block1_1_conv..., not Matterport's res2a_branch2a...
    "imagenet_resnet50": WeightsFile(
        KERAS_RESNET_URL + "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        md5="4d473c1dd8becc155b73f8504c6f6626"),
    "imagenet_resnet101": WeightsFile(
        KERAS_RESNET_URL + "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5",
        md5="88cf7a10940856eca736dc7b7e228a21"),
    # The ResNet-50 file Matterport's get_imagenet_weights() uses, with Matterport's layer names.
    "imagenet_resnet50_matterport": WeightsFile(MATTERPORT_RESNET50_URL,
                                                md5="a268eb855778b3df3c7506639542a6af"),
}


def cache_dir() -> Path:
    """``$MRCNN_CACHE_DIR`` or ``~/.cache/mrcnn``."""
    return Path(os.environ.get("MRCNN_CACHE_DIR") or Path.home() / ".cache" / "mrcnn")


def download_file(url: str, dest: str | Path | None = None, sha256: str | None = None,
                  resume: bool = True, progress: bool = True, md5: str | None = None,
                  timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` (a file path, a folder, or None for the cache folder).

    An existing ``dest`` is reused when its checksum matches (or none is given) and replaced
    when it does not. Raises DownloadError on HTTP/network errors, truncated transfers (the
    ``.part`` file is kept for the next call to resume) and checksum mismatches (deleted).
    """
    filename = url.rsplit("/", 1)[-1]
    dest = cache_dir() / filename if dest is None else Path(dest)
    if dest.is_dir():
        dest = dest / filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file():
        problem = _checksum_problem(dest, sha256, md5)
        if problem is None:
            return dest
        logger.warning("%s: %s; downloading it again", dest, problem)
        dest.unlink()
    part = dest.with_name(dest.name + ".part")
    if part.exists() and not resume:
        part.unlink()
    _fetch(url, part, progress, timeout)
    problem = _checksum_problem(part, sha256, md5)
    if problem is not None:
        part.unlink()
        raise DownloadError(f"download of {url}: {problem}; the downloaded file was deleted")
    os.replace(part, dest)
    logger.info("downloaded %s to %s", url, dest)
    return dest


def get_weights_path(kind: str, backbone: str = "resnet101", progress: bool = True) -> Path:
    """Local path of pretrained weights, downloaded into the cache on first use.

    kind: ``"coco"`` (Matterport's mask_rcnn_coco.h5), ``"imagenet"`` (keras.applications
    ResNet notop weights of ``backbone``: resnet50 or resnet101) or
    ``"imagenet_resnet50_matterport"``. Honours the environment variables of this module.
    """
    if kind == "coco" and os.environ.get("MRCNN_COCO_WEIGHTS"):
        return _existing_file(os.environ["MRCNN_COCO_WEIGHTS"], "MRCNN_COCO_WEIGHTS")
    key = f"imagenet_{backbone}" if kind == "imagenet" else kind
    if key not in WEIGHTS_FILES:
        choices = ["coco", "imagenet"] + [k for k in WEIGHTS_FILES if k != "coco"]
        raise ValueError(f"unknown weights {kind!r} (backbone {backbone!r}); expected one of "
                         f"{choices}, with backbone 'resnet50' or 'resnet101' for 'imagenet'")
    spec = WEIGHTS_FILES[key]
    if key.startswith("imagenet") and os.environ.get("MRCNN_IMAGENET_WEIGHTS_DIR"):
        folder = Path(os.environ["MRCNN_IMAGENET_WEIGHTS_DIR"])
        return _existing_file(folder / spec.filename, "MRCNN_IMAGENET_WEIGHTS_DIR")
    return download_file(_mirrored(spec.url), cache_dir() / spec.filename, sha256=spec.sha256,
                         md5=spec.md5, progress=progress)


def download_trained_weights(coco_model_path: str | Path, verbose: int = 1) -> Path:
    """Matterport's helper: put mask_rcnn_coco.h5 at ``coco_model_path``.

    Copies ``$MRCNN_COCO_WEIGHTS`` when set, downloads otherwise (through the mirror of
    ``$MRCNN_WEIGHTS_URL`` when set).
    """
    coco_model_path = Path(coco_model_path)
    if verbose > 0:
        logger.info("Downloading pretrained model to %s ...", coco_model_path)
    if os.environ.get("MRCNN_COCO_WEIGHTS"):
        source = _existing_file(os.environ["MRCNN_COCO_WEIGHTS"], "MRCNN_COCO_WEIGHTS")
        coco_model_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, coco_model_path)
    else:
        download_file(_mirrored(COCO_MODEL_URL), coco_model_path, progress=verbose > 0)
    if verbose > 0:
        logger.info("... done downloading pretrained model!")
    return coco_model_path


def _mirrored(url: str) -> str:
    base = os.environ.get("MRCNN_WEIGHTS_URL")
    return f"{base.rstrip('/')}/{url.rsplit('/', 1)[-1]}" if base else url


def _existing_file(path: str | Path, variable: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path} (from ${variable}) does not exist")
    return path


def _fetch(url: str, part: Path, progress: bool, timeout: float) -> None:
    """Append the missing bytes of ``url`` to ``part`` (Range request when it is not empty)."""
    start = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "mrcnn-toolkit"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                          timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and start:  # nothing left to send: .part may already be complete
            total = error.headers.get("Content-Range", "").rpartition("/")[2]
            if total.isdigit() and int(total) == start:
                return
            part.unlink()
            return _fetch(url, part, progress, timeout)
        raise DownloadError(f"download of {url} failed: HTTP {error.code} {error.reason}") \
            from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(f"cannot download {url}: {reason}") from error
    with response:
        status = getattr(response, "status", None) or 200
        if start and status != 206:  # the server ignored the Range header: start over
            logger.info("%s does not support resuming; downloading from the start", url)
            start = 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        with open(part, "ab" if start else "wb") as out, \
                tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=part.name[:-len(".part")], disable=not progress) as bar:
            try:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as error:
                raise DownloadError(f"download of {url} interrupted after {out.tell()} bytes "
                                    f"({error}); run again to resume from {part}") from error
    size = part.stat().st_size
    if total is not None and size != total:
        raise DownloadError(f"download of {url} stopped at {size} of {total} bytes; run again "
                            f"to resume from {part}")


def _checksum_problem(path: Path, sha256: str | None, md5: str | None) -> str | None:
    for name, expected in (("sha256", sha256), ("md5", md5)):
        if expected:
            actual = _file_hash(path, name)
            if actual != expected.lower():
                return f"{name} is {actual}, expected {expected.lower()}"
    return None


def _file_hash(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
