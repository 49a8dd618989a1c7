"""Training helpers: trainable-layer presets, log-dir and checkpoint naming, callbacks."""

from __future__ import annotations

import datetime
import logging
import math
import re
from pathlib import Path

import h5py
import keras

from mrcnn.weights import save_weights_h5, weight_layers

logger = logging.getLogger(__name__)

# Matterport's `layers=` presets: regexes matched in full against layer names.
LAYER_PRESETS = {
    "heads": r"(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "3+": r"(res3.*)|(bn3.*)|(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "4+": r"(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "5+": r"(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "all": ".*",
}

# logs/<name><YYYYMMDDTHHMM>/mask_rcnn_<name>_<epoch:04d>.h5 (Matterport's layout).
CHECKPOINT_PATTERN = re.compile(
    r".*[/\\][\w-]+(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})[/\\]mask\_rcnn\_[\w-]+(\d{4})\.h5$"
)


def layer_regex(layers: str) -> str:
    """A preset name (heads, 3+, 4+, 5+, all) or a regex -> the regex; invalid regex -> ValueError."""
    regex = LAYER_PRESETS.get(layers, layers)
    try:
        re.compile(regex)
    except re.error as error:
        raise ValueError(
            f"layers={layers!r} is neither a preset {sorted(LAYER_PRESETS)} nor a valid regex: {error}"
        ) from error
    return regex


def set_trainable(layers_by_name: dict[str, keras.layers.Layer], regex: str) -> list[str]:
    """Make layers whose name fully matches ``regex`` trainable and freeze the rest.

    Returns the trainable layer names. Raises ValueError if nothing matches (a typo would
    otherwise silently train nothing).
    """
    pattern = re.compile(regex)
    trainable = []
    for name, layer in layers_by_name.items():
        layer.trainable = bool(pattern.fullmatch(name))
        if layer.trainable:
            trainable.append(name)
    if not trainable:
        raise ValueError(f"layers regex {regex!r} matches no layer with weights")
    return trainable


def new_log_dir(model_dir: str | Path, name: str, now: datetime.datetime | None = None) -> Path:
    """``model_dir/<name><YYYYMMDDTHHMM>`` for a new run."""
    now = now or datetime.datetime.now()
    return Path(model_dir) / f"{name.lower()}{now:%Y%m%dT%H%M}"


def checkpoint_path(log_dir: str | Path, name: str, epoch: int) -> Path:
    """``log_dir/mask_rcnn_<name>_<epoch:04d>.h5``; epoch counts completed epochs from 1."""
    return Path(log_dir) / f"mask_rcnn_{name.lower()}_{epoch:04d}.h5"


def parse_checkpoint(path: str | Path) -> tuple[Path, int] | None:
    """(log_dir, epoch) of a checkpoint named in Matterport's layout, or None."""
    match = CHECKPOINT_PATTERN.match(str(Path(path).absolute()))
    if not match:
        return None
    return Path(path).absolute().parent, int(match.group(6))


def find_last(model_dir: str | Path, name: str) -> Path:
    """The newest readable checkpoint of the newest ``<name>*`` run under ``model_dir``.

    A checkpoint that is not a readable HDF5 weights file (truncated by a crash, a full disk or
    a partial copy) is passed over with a warning and the one before it is used.
    Raises FileNotFoundError saying where it looked.
    """
    model_dir = Path(model_dir)
    prefix = name.lower()
    runs = sorted(d for d in model_dir.glob(f"{prefix}*") if d.is_dir()) if model_dir.is_dir() else []
    if not runs:
        raise FileNotFoundError(f"no run directory '{prefix}<YYYYMMDDTHHMM>' under {model_dir}")
    for run in reversed(runs):
        for checkpoint in sorted(run.glob(f"mask_rcnn_{prefix}_*.h5"), reverse=True):
            problem = checkpoint_problem(checkpoint)
            if problem is None:
                return checkpoint
            logger.warning("ignoring checkpoint %s: %s; trying the previous one", checkpoint,
                           problem)
    raise FileNotFoundError(f"no readable mask_rcnn_{prefix}_*.h5 checkpoint in any run under "
                            f"{model_dir}")


def checkpoint_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be a complete weights file (cheap: HDF5 header and layer list), or None."""
    try:
        with h5py.File(path, "r") as handle:
            root = handle["model_weights"] if "model_weights" in handle else handle
            names = root.attrs.get("layer_names")
            if names is None or len(names) == 0:
                return "no 'layer_names' attribute (not a Keras weights file)"
            missing = [n for n in names if (n.decode() if isinstance(n, bytes) else n) not in root]
            if missing:
                return f"{len(missing)} layer groups missing (truncated)"
    except (OSError, KeyError) as error:
        return f"not a readable HDF5 file ({error})"
    return None


class CheckpointCallback(keras.callbacks.Callback):
    """Write ``mask_rcnn_<name>_<epoch>.h5`` at the end of every epoch, atomically."""

    def __init__(self, network, log_dir: Path, name: str):
        super().__init__()
        self.network = network
        self.log_dir = Path(log_dir)
        self.name_ = name

    def on_epoch_end(self, epoch, logs=None):
        path = checkpoint_path(self.log_dir, self.name_, epoch + 1)
        save_weights_h5(weight_layers(self.network.parts), path)
        logger.info("saved %s", path)


class SkippedSamplesReport(keras.callbacks.Callback):
    """Log at the end of each epoch how many samples the input pipeline skipped, and why.

    Reads :data:`mrcnn.data.SKIPPED_SAMPLES`; the counts are also put into the epoch's logs as
    ``skipped_samples`` (so History and TensorBoard see them). Silent when nothing was skipped.
    """

    def on_train_begin(self, logs=None):
        from mrcnn.data import SKIPPED_SAMPLES

        SKIPPED_SAMPLES.take()  # what earlier runs skipped is not this epoch's

    def on_epoch_end(self, epoch, logs=None):
        from mrcnn.data import SKIPPED_SAMPLES

        counts = SKIPPED_SAMPLES.take()
        total = sum(counts.values())
        if logs is not None:
            logs["skipped_samples"] = float(total)
        if total:
            reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(counts.items()))
            logger.warning("epoch %d: skipped %d samples (%s); they were replaced by the next "
                           "loadable image", epoch + 1, total, reasons)


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stop at the first NaN/inf loss, naming the step and the last saved checkpoint."""

    def __init__(self, log_dir: Path):
        super().__init__()
        self.log_dir = Path(log_dir)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            checkpoints = sorted(self.log_dir.glob("mask_rcnn_*.h5"))
            last = checkpoints[-1] if checkpoints else "none yet"
            logger.error("loss became %s at epoch %d step %d; last good checkpoint: %s",
                         loss, self.epoch + 1, batch + 1, last)
            self.model.stop_training = True
