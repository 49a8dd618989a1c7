"""Running a model: training, its callbacks, devices and weights.

- ``training``: trainable-layer presets, run folders, checkpoints (atomic, with optimizer state,
  found again by ``find_last``), the skipped-samples summary and the stop on a non-finite loss.
- ``callbacks``: ``MeanAPCallback`` (mAP and detection images to TensorBoard every N epochs).
- ``run_config``: the run folder's ``config.json``; ``best_checkpoint``: the run's
  ``mask_rcnn_<name>_best.h5``; ``schedules``: learning-rate schedules and their callback;
  ``json_files``: JSON written atomically.
- ``distribute``: ``tf.distribute`` strategies from ``Config.DISTRIBUTION_STRATEGY``;
  ``training_data``: the input of ``MaskRCNN.train()`` (``tf.data``, or the ``PyDataset`` loader
  without TensorFlow).
- ``weights``: Matterport-layout ``.h5`` read/write by layer name; ``pretrained`` and
  ``download``: COCO / ImageNet weights, fetched once and cached.

May import: ``mrcnn.data``, ``mrcnn.modeling``, ``mrcnn.evaluation``, ``mrcnn.geometry`` and the
leaf modules ``mrcnn.config`` and ``mrcnn.visualize``.
"""
