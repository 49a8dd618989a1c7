"""Everything between files on disk and the model's input tensors.

- ``dataset``: Matterport's ``Dataset`` API; ``errors``: ``DatasetError``.
- ``image_io``: image files -> uint8 RGB arrays, or [H, W, N] stacks as stored (16-bit PNG,
  TIFF pages, .npy).
- ``augment``: albumentations / imgaug augmentation that keeps masks and boxes consistent.
- ``anchor_targets``: RPN training targets per image (numpy).
- ``pipeline``: the ``tf.data`` input pipeline (``build_dataset``) for training and evaluation;
  ``skipped_samples``: its tally of images that failed to load.
- ``grouped_batches``: variable-size batches for "pad64" / "none" (aspect-ratio groups, padding
  per batch, as torchvision batches).
- ``repeat_factors``: repeat-factor sampling for long-tailed data (the pipeline's option).
- ``generator``: Matterport's ``load_image_gt`` / ``data_generator`` API on the pipeline;
  ``head_targets``: its numpy second-stage targets (random ROIs, detection targets, mold_mask).
- ``datasets/``: loaders for public formats (COCO, MVTec D2S, DeepFashion2, VIA, shapes).

May import: ``mrcnn.geometry`` and ``mrcnn.config``. Never ``modeling``, ``evaluation`` or ``engine``.
"""
