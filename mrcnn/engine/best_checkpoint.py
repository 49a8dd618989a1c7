"""The best checkpoint of a run: ``mask_rcnn_<name>_best.h5`` for the best validation score.

:class:`mrcnn.engine.callbacks.MeanAPCallback` hands each evaluation to :class:`BestCheckpoint`,
which rewrites the file (atomically) when the chosen metric improves and records what it holds in
``best.json`` beside it, so that a resumed run only replaces it with a better one.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from mrcnn.engine.json_files import write_json
from mrcnn.engine.training import run_dirs
from mrcnn.engine.weights import save_weights_h5, weight_layers

logger = logging.getLogger(__name__)

BEST_METRICS = ("val_segm_AP", "val_bbox_AP", "val_mAP50", "val_mAP")
# COCO's segm AP, unless a run cannot compute it (no masks in its ground truth: -1).
DEFAULT_METRIC, FALLBACK_METRIC = "val_segm_AP", "val_mAP50"
RECORD_NAME = "best.json"


def best_checkpoint_path(log_dir: str | Path, name: str) -> Path:
    """``log_dir/mask_rcnn_<name>_best.h5``."""
    return Path(log_dir) / f"mask_rcnn_{name.lower()}_best.h5"


def find_best(model_dir: str | Path, name: str) -> Path:
    """The best checkpoint of the newest ``<name>*`` run under ``model_dir`` that has one."""
    for run in reversed(run_dirs(model_dir, name)):
        path = best_checkpoint_path(run, name)
        if path.is_file():
            return path
    raise FileNotFoundError(f"no mask_rcnn_{name.lower()}_best.h5 in any run under {model_dir} "
                            "(train with --map-every N to keep the best checkpoint)")


class BestCheckpoint:
    """Keeps the network's weights at its best value of ``metric`` (higher is better)."""

    def __init__(self, network, log_dir: str | Path, name: str, metric: str = DEFAULT_METRIC):
        if metric not in BEST_METRICS:
            raise ValueError(f"best-checkpoint metric {metric!r}: expected one of {BEST_METRICS}")
        self.network = network
        self.path = best_checkpoint_path(log_dir, name)
        self.record_path = self.path.with_name(RECORD_NAME)
        self.metric = metric
        self.best = -math.inf
        self._read_record()

    def update(self, epoch: int, scores: dict[str, float]) -> bool:
        """Save the weights if ``scores`` (after ``epoch`` epochs) beat the best so far."""
        if self.best == -math.inf and self.metric == DEFAULT_METRIC and \
                not scores.get(DEFAULT_METRIC, -1) >= 0:
            self.metric = FALLBACK_METRIC
        value = float(scores[self.metric])
        if not (math.isfinite(value) and value > self.best):
            return False
        self.best = value
        save_weights_h5(weight_layers(self.network.parts), self.path)
        write_json(self.record_path, {"metric": self.metric, "value": value, "epoch": epoch,
                                      "checkpoint": self.path.name})
        logger.info("best %s %.4f at epoch %d: saved %s", self.metric, value, epoch, self.path)
        return True

    def _read_record(self) -> None:
        if not (self.record_path.is_file() and self.path.is_file()):
            return
        try:
            record = json.loads(self.record_path.read_text())
            accepted = {self.metric, FALLBACK_METRIC if self.metric == DEFAULT_METRIC else None}
            if record["metric"] in accepted:
                self.metric, self.best = record["metric"], float(record["value"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            logger.warning("ignoring %s (%s): the next evaluation starts a new best",
                           self.record_path, error)
