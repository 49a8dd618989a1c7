"""Training callbacks: mAP on held-out images, logged to TensorBoard while a run trains.

    from mrcnn.engine.callbacks import MeanAPCallback
    model.train(train_set, val_set, learning_rate=..., epochs=20, layers="heads",
                custom_callbacks=[MeanAPCallback(model, val_set, every=2, limit=50)])
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

from mrcnn.engine.best_checkpoint import BEST_METRICS, DEFAULT_METRIC, BestCheckpoint

logger = logging.getLogger(__name__)


class MeanAPCallback(keras.callbacks.Callback):
    """Every ``every`` epochs, detect on ``limit`` images of ``dataset`` and log the scores.

    Logged (TensorBoard run ``<log_dir>/validation_map``, and into the epoch's ``logs`` so the
    History and other callbacks see them): ``val_mAP50`` and ``val_mAP`` (Matterport's
    per-image means), ``val_bbox_AP`` and ``val_segm_AP`` (COCO). With ``images > 0`` the
    detections on the first images are logged as TensorBoard images too.
    model: the :class:`mrcnn.model.MaskRCNN` being trained (its weights are used as they are).
    best_metric: keep ``mask_rcnn_<name>_best.h5`` for the best value of this score
    (:mod:`mrcnn.engine.best_checkpoint`; default COCO segm AP), or None for no best checkpoint.
    """

    def __init__(self, model, dataset, every: int = 1, limit: int = 20, images: int = 1,
                 best_metric: str | None = DEFAULT_METRIC):
        super().__init__()
        if every < 1 or limit < 1:
            raise ValueError(f"every and limit must be >= 1, got every={every}, limit={limit}")
        if best_metric is not None and best_metric not in BEST_METRICS:
            raise ValueError(f"best_metric {best_metric!r}: expected one of {BEST_METRICS}")
        self.maskrcnn = model
        self.dataset = dataset
        self.every = int(every)
        self.image_ids = list(dataset.image_ids)[:limit]
        self.images = int(images)
        self.best_metric = best_metric
        self.best: BestCheckpoint | None = None
        self._writer = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.best_metric is not None:
            self.best = BestCheckpoint(self.maskrcnn.keras_model, self.maskrcnn.log_dir,
                                       self.maskrcnn.config.NAME, self.best_metric)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (epoch + 1) % self.every:
            return
        from mrcnn.evaluation.evaluate import evaluate_dataset

        metrics = evaluate_dataset(self.maskrcnn, self.dataset, image_ids=self.image_ids,
                                   progress=False)
        scores = {"val_mAP50": metrics["mAP50"], "val_mAP": metrics["mAP"],
                  "val_bbox_AP": metrics["bbox"]["AP"], "val_segm_AP": metrics["segm"]["AP"]}
        if logs is not None:
            logs.update(scores)
        if self.best is not None:
            self.best.update(epoch + 1, scores)
        writer = self._summary_writer()
        with writer.as_default(step=epoch):
            for name, value in scores.items():
                tf.summary.scalar(name, value)
            for index, image_id in enumerate(self.image_ids[:self.images]):
                tf.summary.image(f"val_detections/{index}", self._drawing(image_id)[None])
        writer.flush()
        logger.info("epoch %d: %s", epoch + 1,
                    ", ".join(f"{name} {value:.4f}" for name, value in scores.items()))

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _summary_writer(self):
        if self._writer is None:
            path = Path(self.maskrcnn.log_dir) / "validation_map"
            self._writer = tf.summary.create_file_writer(str(path))
        return self._writer

    def _drawing(self, image_id: int) -> np.ndarray:
        """uint8 [H, W, 3]: the image with its detections drawn."""
        from mrcnn.visualize import display_instances

        image = self.dataset.load_image(image_id)
        result = self.maskrcnn.detect([image])[0]
        figure = display_instances(image, result["rois"], result["masks"], result["class_ids"],
                                   self.dataset.class_names, result["scores"], figsize=(6, 6))
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        plt.close(figure)
        return tf.io.decode_png(buffer.getvalue(), channels=3).numpy()
