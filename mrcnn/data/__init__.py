"""Everything between files on disk and the model's input tensors.

- ``dataset``: Matterport's ``Dataset`` API; ``errors``: ``DatasetError``.
- ``image_io``: image files -> uint8 RGB arrays, or [H, W, N] stacks as stored (16-bit PNG,
  TIFF pages, .npy).
- ``augment``: albumentations / imgaug augmentation that keeps masks and boxes consistent.
- ``anchor_targets``: RPN training targets per image (numpy).
- ``ground_truth``: one image's ground truth and training sample (``load_image_gt``; numpy).
- ``sample_builder``: the seeded sample of each position of the training stream, which both
  training inputs build: ``pipeline``, the ``tf.data`` input (``build_dataset``), and
  ``py_loader``, the ``keras.utils.PyDataset`` input that needs no TensorFlow;
  ``skipped_samples``: their tally of images that failed to load.
- ``grouped_batches``: variable-size batches for "pad64" / "none" (aspect-ratio groups, padding
  per batch, as torchvision batches).
- ``repeat_factors``: repeat-factor sampling for long-tailed data (the inputs' option).
- ``generator``: Matterport's ``load_image_gt`` / ``data_generator`` API on ``ground_truth``;
  ``head_targets``: its numpy second-stage targets (random ROIs, detection targets, mold_mask).
- ``datasets/``: loaders for public formats (COCO, MVTec D2S, DeepFashion2, VIA, shapes).

May import: ``mrcnn.geometry`` and ``mrcnn.config``. Never ``modeling``, ``evaluation`` or ``engine``.
"""
