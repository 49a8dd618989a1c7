"""Training helpers: trainable-layer presets, log-dir and checkpoint naming, callbacks."""

from __future__ import annotations

import datetime
import logging
import math
import os
import re
from collections.abc import Collection
from pathlib import Path

import h5py
import keras
import numpy as np

from mrcnn.engine.weights import save_weights_h5, weight_layers
from vision_common.input_pipelines import tensorflow_installed

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


def set_trainable(layers_by_name: dict[str, keras.layers.Layer], regex: str,
                  fixed: Collection[str] = ()) -> list[str]:
    """Make layers whose name fully matches ``regex`` trainable and freeze the rest, and the
    ``fixed`` ones whatever their name.

    Returns the trainable layer names. Raises ValueError if nothing matches (a typo would
    otherwise silently train nothing).
    """
    pattern = re.compile(regex)
    trainable = []
    for name, layer in layers_by_name.items():
        layer.trainable = bool(pattern.fullmatch(name)) and name not in fixed
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


def run_dirs(model_dir: str | Path, name: str) -> list[Path]:
    """The ``<name>*`` run folders under ``model_dir``, oldest first (their names hold the date)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(d for d in model_dir.glob(f"{name.lower()}*") if d.is_dir())


def find_last(model_dir: str | Path, name: str) -> Path:
    """The newest readable checkpoint of the newest ``<name>*`` run under ``model_dir``.

    A checkpoint that is not a readable HDF5 weights file (truncated by a crash, a full disk or
    a partial copy) is passed over with a warning and the one before it is used.
    Raises FileNotFoundError saying where it looked.
    """
    prefix = name.lower()
    runs = run_dirs(model_dir, name)
    if not runs:
        raise FileNotFoundError(f"no run directory '{prefix}<YYYYMMDDTHHMM>' under {model_dir}")
    for run in reversed(runs):
        numbered = (p for p in run.glob(f"mask_rcnn_{prefix}_*.h5")
                    if re.fullmatch(rf"mask_rcnn_{re.escape(prefix)}_\d+\.h5", p.name))
        for checkpoint in sorted(numbered, reverse=True):  # not the _best.h5
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


def tensorboard(log_dir: Path) -> list[keras.callbacks.Callback]:
    """Keras's TensorBoard callback for ``log_dir``, or none where TensorFlow (which writes its
    event files) is not installed: training goes on, with a warning."""
    if not tensorflow_installed():
        logger.warning("TensorFlow is not installed: no TensorBoard logs in %s", log_dir)
        return []
    return [keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False)]


class CheckpointCallback(keras.callbacks.Callback):
    """Write ``mask_rcnn_<name>_<epoch>.h5`` at the end of every epoch, atomically.

    The optimizer's state (momentum, step counter) goes next to it as ``<checkpoint>.opt.npz``,
    written first, so that a checkpoint always has the state of the same step. When a run
    resumes in a new process from one of these checkpoints, the first epoch restores that
    state if the optimizer has the same variables (same trainable layers); the learning rate
    is never restored. A second ``train()`` call in the same process starts with a fresh
    optimizer, as in Matterport.
    """

    def __init__(self, network, log_dir: Path, name: str):
        super().__init__()
        self.network = network
        self.log_dir = Path(log_dir)
        self.name_ = name
        self._first_epoch = True

    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch and epoch > 0:
            resumed = checkpoint_path(self.log_dir, self.name_, epoch).absolute()
            if resumed not in _SAVED_BY_THIS_PROCESS:
                restore_optimizer_state(self.model.optimizer, optimizer_state_path(resumed))
        self._first_epoch = False

    def on_epoch_end(self, epoch, logs=None):
        path = checkpoint_path(self.log_dir, self.name_, epoch + 1)
        save_optimizer_state(self.model.optimizer, optimizer_state_path(path))
        save_weights_h5(weight_layers(self.network.parts), path)
        _SAVED_BY_THIS_PROCESS.add(path.absolute())
        logger.info("saved %s", path)


# Checkpoints this process wrote: continuing from them is a new train() call, not a resume.
_SAVED_BY_THIS_PROCESS: set[Path] = set()


def optimizer_state_path(checkpoint: str | Path) -> Path:
    """``mask_rcnn_<name>_<epoch>.opt.npz`` next to the checkpoint."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ".opt.npz")


def save_optimizer_state(optimizer: keras.optimizers.Optimizer, path: Path) -> None:
    """Every optimizer variable, keyed by position and name (optimizer prefix dropped), atomically."""
    arrays = {f"{index:04d}:{_variable_key(v)}": np.asarray(v.numpy())
              for index, v in enumerate(optimizer.variables)}
    temporary = path.with_name(path.name + ".tmp.npz")
    np.savez(temporary, **arrays)
    os.replace(temporary, path)


def restore_optimizer_state(optimizer: keras.optimizers.Optimizer, path: Path) -> bool:
    """Load what :func:`save_optimizer_state` wrote, except the learning rate; True if done.

    A missing or unreadable file, or one for other trainable layers, is logged and ignored:
    training continues with a fresh optimizer.
    """
    if not path.is_file():
        logger.warning("no optimizer state %s: resuming with a fresh optimizer", path.name)
        return False
    try:
        with np.load(path) as saved:
            arrays = {key: saved[key] for key in saved.files}
    except (OSError, ValueError) as error:
        logger.warning("unreadable optimizer state %s (%s): resuming with a fresh optimizer",
                       path, error)
        return False
    variables = optimizer.variables
    expected = [(f"{i:04d}:{_variable_key(v)}", tuple(v.shape)) for i, v in enumerate(variables)]
    found = [(key, tuple(array.shape)) for key, array in sorted(arrays.items())]
    if expected != found:
        logger.warning("optimizer state %s is for other trainable layers: resuming with a fresh "
                       "optimizer", path.name)
        return False
    for (key, _), variable in zip(expected, variables, strict=True):
        if not key.endswith("learning_rate"):
            variable.assign(arrays[key])
    logger.info("restored optimizer state from %s (step %s)", path.name,
                int(optimizer.iterations.numpy()))
    return True


def _variable_key(variable) -> str:
    """A variable's path without the optimizer's instance name (sgd, sgd_1, ...)."""
    return variable.path.split("/", 1)[-1]


class SkippedSamplesReport(keras.callbacks.Callback):
    """Log at the end of each epoch how many samples the input pipeline skipped, and why.

    Reads :data:`mrcnn.data.pipeline.SKIPPED_SAMPLES`; the counts are also put into the epoch's logs as
    ``skipped_samples`` (so History and TensorBoard see them). Silent when nothing was skipped.
    """

    def on_train_begin(self, logs=None):
        from mrcnn.data.skipped_samples import SKIPPED_SAMPLES

        SKIPPED_SAMPLES.take()  # what earlier runs skipped is not this epoch's

    def on_epoch_end(self, epoch, logs=None):
        from mrcnn.data.skipped_samples import SKIPPED_SAMPLES

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
