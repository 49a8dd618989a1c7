"""Geometry shared by the input side and the output side of Mask R-CNN (numpy only).

- ``boxes``: box and mask geometry (IoU, box deltas, NMS, boxes from masks).
- ``anchors``: anchor generation per pyramid level; pixel <-> normalized box coordinates.
- ``imaging``: the original-image <-> model-input frame (resize and pad, molding, image meta,
  mini-masks, pasting masks back).

``data/`` uses it to build inputs and targets, ``modeling/`` and ``evaluation/`` to read outputs.
May import: numpy, SciPy, scikit-image. Never another ``mrcnn`` subpackage.
"""
