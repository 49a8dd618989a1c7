"""Scoring detections against ground truth.

- ``matterport_ap``: Matterport's per-image AP (``compute_matches``, ``compute_ap``,
  ``compute_ap_range``, ``compute_recall``), kept number-for-number.
- ``coco``: COCO evaluation through pycocotools (bbox and segm stats, per-class AP, results JSON).
- ``evaluate``: ``evaluate_dataset`` runs a model over a ``Dataset`` and reports both.

May import: ``mrcnn.geometry``, ``mrcnn.data`` and ``mrcnn.config``. Never ``engine``.
"""
